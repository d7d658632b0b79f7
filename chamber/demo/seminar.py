"""The seed seminar (Herts Chamber's cybercrime morning, 2016): its speakers and its editions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from chamber.auth.models import StaffUser
from chamber.core.times import local_to_utc, utcnow
from chamber.events import services as events
from chamber.events.models import AgendaKind, Event, EventStatus, Speaker
from chamber.extensions import db

ZONE = "Europe/London"  # the seminar is in Stevenage, whatever the chamber's default zone is
TITLE = "Cybercrime seminar: protect your business"
SUMMARY = (
    "A morning for local businesses on cyber attacks and online fraud: how criminals get in, "
    "the Government's Cyber Essentials scheme, a five-step security plan and what insurance covers."
)
DESCRIPTION = """\
A breakfast seminar on cybercrime for businesses of every size, hosted by Hertfordshire Chamber
of Commerce and supported by the Hertfordshire Police and Crime Commissioner's Community Fund.

It aims to give businesses the skills and knowledge to:

- reduce the risks of cyber attacks and online fraud;
- prevent loss;
- educate their people; and
- protect their organisations.

You will hear from the Police & Crime Commissioner, the National Counter Terrorism Security Office,
Octree, the Crime Reduction and Community Safety Unit and Ashbourne Insurance: how much a single
tweet gives away, why the biggest threat can come from inside, how trusted websites end up
delivering malware, the **Cyber Essentials** scheme, a five-step plan for your security, and what
a cyber insurance policy does and does not cover.

Breakfast and networking from 08:00; the talks start at 08:30 and the morning ends at noon.
"""
PAST_EDITION_NOTE = "\n**Over 60 businesses attended this seminar.**\n"
VENUE_NAME = "Holiday Inn Stevenage"
VENUE_ADDRESS = "St George's Way"  # the street: the page shows the venue name above it
VENUE_TOWN, VENUE_POSTCODE = "Stevenage", "SG1 1HS"
# Joining details: on the event's page and in the reminder each delegate gets two days before.
PARKING = (
    "The hotel's car park is free for delegates: give your car's registration at the front "
    "desk. Stevenage railway station is about 15 minutes' walk away."
)
ACCESS = (
    "Step-free from the car park to the seminar room, which is on the ground floor, with "
    "accessible toilets beside it. A portable **hearing loop** is available: ask at the "
    "registration desk."
)
WHAT_TO_BRING = (
    "- Your check-in code (on your phone or printed)\n"
    "- Business cards, for the networking\n"
    "- Questions for the panel"
)
HOST = "Hertfordshire Chamber of Commerce"
SUPPORTERS = ("Hertfordshire Police and Crime Commissioner's Community Fund",)
CAPACITY = 120  # the article counts over 60 businesses; room for two from each and then some
BUSINESS_LIMIT = 3
STARTS, ENDS = time(8, 0), time(12, 0)
REGISTRATION_CLOSES = time(17, 0)  # the afternoon before, so the door list can be printed

# The article is from 2016 and gives no date; this Thursday stands in for it.
PAST_EDITION_DAY = date(2016, 6, 9)
PAST_EDITION_SLUG = "cybercrime-seminar-2016"
# Slugs this module gives editions: by year, or by full date when the year's slug is taken.
EDITION_SLUG = re.compile(r"cybercrime-seminar-\d{4}(-\d{2}-\d{2})?")
SEMINAR_WEEKDAY = 3  # Thursday
WEEKS_AHEAD = 4


@dataclass(frozen=True)
class SpeakerText:
    name: str
    job_title: str
    organisation: str
    bio: str


SPEAKERS = (
    SpeakerText(
        "David Lloyd", "Hertfordshire Police & Crime Commissioner", "",
        "Police & Crime Commissioner for Hertfordshire. He asked Hertfordshire Constabulary to "
        "set up a dedicated Cybercrime and Financial Investigation Unit, and his Business Crime "
        "Strategy for Hertfordshire calls on the county's authorities, representative groups and "
        "businesses to work together to prevent and tackle crime.",
    ),
    SpeakerText(
        "William Davies", "", "National Counter Terrorism Security Office",
        "From the National Counter Terrorism Security Office. He shows how easily a person's "
        "location and personal details can be traced from a single tweet, and why the biggest "
        "threat sometimes comes from inside an organisation.",
    ),
    SpeakerText(
        "Tony Richardson", "", "Octree",
        "From Octree. He explains how legitimate websites are compromised to deliver malware to "
        "their visitors, and how automated advertising systems are used for malvertising.",
    ),
    SpeakerText(
        "Stephanie Frankish", "", "Crime Reduction and Community Safety Unit",
        "From the Crime Reduction and Community Safety Unit. With Julie Lloyd she presents the "
        "Government's Cyber Essentials scheme and five steps to a business security plan.",
    ),
    SpeakerText(
        "Julie Lloyd", "", "Crime Reduction and Community Safety Unit",
        "From the Crime Reduction and Community Safety Unit. With Stephanie Frankish she presents "
        "the Government's Cyber Essentials scheme and five steps to a business security plan.",
    ),
    SpeakerText(
        "Peter Smits", "Managing Director", "Ashbourne Insurance",
        "Managing Director of Ashbourne Insurance. He explains the financial risks businesses face "
        "when they are not protected, and what to look for in a policy that covers cybercrime.",
    ),
    SpeakerText(
        "Yolanda Rugg", "Chief Executive", "Hertfordshire Chamber of Commerce",
        "Chief Executive of Hertfordshire Chamber of Commerce, which hosts the seminar. She urges "
        "businesses to make security everybody's business by training all their staff in "
        "prevention.",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Slot:
    starts: time
    ends: time
    kind: AgendaKind
    title: str
    speakers: tuple[str, ...]
    description: str


AGENDA = (
    Slot(time(8, 0), time(8, 30), AgendaKind.networking, "Registration and breakfast networking",
         (), "Collect your badge, have breakfast and meet other local businesses."),
    Slot(time(8, 30), time(8, 50), AgendaKind.welcome, "Welcome: one step ahead of the criminals",
         ("David Lloyd",), """\
Cybercrime is a growing threat to businesses and to the wider public, from cyber bullying to fraud.
The Commissioner explains why he asked Hertfordshire Constabulary to set up a dedicated
**Cybercrime and Financial Investigation Unit**, why prevention and protection matter as much as
tracking criminals down, and why his **Business Crime Strategy for Hertfordshire** asks
authorities, representative groups and businesses to work together.
"""),
    Slot(time(8, 50), time(9, 25), AgendaKind.talk, "What one tweet gives away",
         ("William Davies",), """\
- How easily someone's location and personal details can be traced from a single tweet.
- Why the biggest threat sometimes comes from inside the organisation: staff who have not been
  made aware of security protocols.
- Why offboarding procedures matter when people leave.
"""),
    Slot(time(9, 25), time(10, 0), AgendaKind.talk, "Malware from websites you trust",
         ("Tony Richardson",), """\
Many legitimate websites have been compromised to deliver malware to unsuspecting visitors. Sites
that carry advertising banners face the same problem from another direction: their automated
systems for processing adverts can be used to put up **malvertising**, with the same effect.
"""),
    Slot(time(10, 0), time(10, 20), AgendaKind.break_, "Coffee break", (), ""),
    Slot(time(10, 20), time(11, 0), AgendaKind.talk, "Cyber Essentials and your security plan",
         ("Stephanie Frankish", "Julie Lloyd"), """\
The **Cyber Essentials** scheme, launched by the Government in 2014, gives every business a basic
cyber security standard. Then five steps to a security plan:

1. **Audit**: identify the assets and information that need to be protected, review the threats
   and risks, and make a prioritised list of what to protect.
2. **Plan**: write procedures and policies, identify who is responsible and agree a timetable.
3. **Execute**: communicate with staff, train where necessary and put the plan in place.
4. **Monitor**: scan for new threats; update the plan as people, hardware or software change; keep
   up maintenance such as backups and anti-virus updates.
5. **Repeat**: review and update the plan at regular intervals, or whenever the business goes
   through significant change.
"""),
    Slot(time(11, 0), time(11, 30), AgendaKind.talk, "Counting the cost: cybercrime and insurance",
         ("Peter Smits",), """\
The financial risks a business faces when it is not protected. Cybercrime is an insurable risk,
but check the small print of any policy for the level of cover it gives.
"""),
    Slot(time(11, 30), time(11, 45), AgendaKind.close,
         "Closing remarks: make it everybody's business", ("Yolanda Rugg",), """\
Members and the wider business community need to be up to speed with current attacks and threats:
when the Chamber ran this seminar in 2016, over 74% of SMEs and 93% of large businesses had
reported a cyber breach in the previous year. Protect your data and systems, and those of the
organisations you do business with, by training all your staff in prevention.
"""),
    Slot(time(11, 45), time(12, 0), AgendaKind.networking, "Coffee and networking", (),
         "Time to talk to the speakers and to each other before the morning ends."),
)  # fmt: skip


def load_speakers(*, by: StaffUser) -> dict[str, Speaker]:
    """Each seminar speaker by name: the existing row if there is one (staff may have edited it)."""
    speakers = {}
    for text in SPEAKERS:
        speaker = db.session.scalar(
            db.select(Speaker).where(Speaker.name == text.name).order_by(Speaker.id).limit(1)
        )
        if speaker is None:
            speaker = events.save_speaker(None, events.SpeakerDetails(
                name=text.name, job_title=text.job_title, organisation=text.organisation,
                bio=text.bio, email=None,  # no private contact details in a demo
            ), by=by)  # fmt: skip
        speakers[text.name] = speaker
    return speakers


def load_past_edition(speakers: dict[str, Speaker], *, by: StaffUser) -> Event | None:
    """The 2016 seminar the article reports; left alone once it exists."""
    if events.slug_taken(PAST_EDITION_SLUG):
        return None
    return _create_edition(
        PAST_EDITION_DAY, PAST_EDITION_SLUG, speakers, DESCRIPTION + PAST_EDITION_NOTE, by=by
    )


def load_upcoming_edition(
    speakers: dict[str, Speaker], today: date, *, by: StaffUser
) -> Event | None:
    """A new edition a few weeks after `today`, unless an edition has yet to end.

    So a re-run adds nothing while the demo still has its upcoming seminar, and a re-run after
    that seminar has passed adds the next one instead of leaving the home page empty.
    """
    start_of_today = local_to_utc(datetime.combine(today, time(0)), ZONE)
    if any(EDITION_SLUG.fullmatch(slug) for slug in _slugs_of_events_ending_after(start_of_today)):
        return None
    day = next_edition_day(today)
    for slug in (f"cybercrime-seminar-{day:%Y}", f"cybercrime-seminar-{day:%Y-%m-%d}"):
        if not events.slug_taken(slug):
            return _create_edition(day, slug, speakers, DESCRIPTION, by=by)
    return None  # an edition on that very day exists already: nothing to add


def next_edition() -> Event | None:
    """The seminar's edition that has yet to start, if there is one (the one campaigns invite to)."""
    return db.session.scalars(
        db.select(Event)
        .where(Event.starts_at > utcnow(), Event.slug.startswith("cybercrime-seminar-"))
        .order_by(Event.starts_at)
        .limit(1)
    ).first()


def next_edition_day(today: date) -> date:
    """The first Thursday at least four weeks away, avoiding the Christmas and New Year break."""
    day = today + timedelta(weeks=WEEKS_AHEAD)
    day += timedelta(days=(SEMINAR_WEEKDAY - day.weekday()) % 7)
    while (day.month == 12 and day.day >= 20) or (day.month == 1 and day.day <= 3):
        day += timedelta(weeks=1)
    return day


def _slugs_of_events_ending_after(moment: datetime) -> list[str]:
    return list(
        db.session.scalars(
            db.select(Event.slug).where(
                Event.slug.like("cybercrime-seminar-%"), Event.ends_at > moment
            )
        )
    )


def _local(day: date, moment: time) -> datetime:
    return local_to_utc(datetime.combine(day, moment), ZONE)


def _create_edition(
    day: date, slug: str, speakers: dict[str, Speaker], description: str, *, by: StaffUser
) -> Event:
    # Through the same services as the staff forms, so the demo obeys the rules staff input does.
    event = events.save_event(None, events.EventDetails(
        title=TITLE, slug=slug, summary=SUMMARY, description=description,
        venue_name=VENUE_NAME, venue_address=VENUE_ADDRESS, venue_town=VENUE_TOWN,
        venue_postcode=VENUE_POSTCODE, timezone=ZONE,
        starts_at=_local(day, STARTS), ends_at=_local(day, ENDS),
        capacity=CAPACITY, business_limit=BUSINESS_LIMIT,
        registration_opens_at=None,  # open from the moment it is published
        registration_closes_at=_local(day - timedelta(days=1), REGISTRATION_CLOSES),
        host=HOST, supporters="\n".join(SUPPORTERS),
        parking=PARKING, access=ACCESS, what_to_bring=WHAT_TO_BRING,
    ), by=by)  # fmt: skip
    for slot in AGENDA:
        details = events.AgendaItemDetails(
            title=slot.title, description=slot.description, kind=slot.kind,
            starts_at=_local(day, slot.starts), ends_at=_local(day, slot.ends),
        )  # fmt: skip
        speaker_ids = [speakers[name].id for name in slot.speakers]
        events.save_agenda_item(event, None, details, speaker_ids, by=by)
    events.set_status(event, EventStatus.published, by=by)
    return event
