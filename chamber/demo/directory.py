"""The demo's member directory: about 300 Hertfordshire organisations (fictional, but for the
organisations the 2016 article's speakers came from) with their contacts, a mix of members, lapsed
members and others, legal forms, and what each person has said about marketing, joined to the
demo's bookings and survey through the businesses that booked.

Loaded after the bookings, and only into blanks: a business the bookings made gets its directory
details once; the top-up runs until there are 300; a second run changes nothing."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from werkzeug.datastructures import MultiDict

from chamber.auth.models import StaffUser
from chamber.core.times import utcnow
from chamber.demo.bookings import FIRST, LARGE, LAST, TRADES, WORDS
from chamber.directory import segments
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.members import services as members
from chamber.members.models import (
    Consent,
    Contact,
    ContactRole,
    LegalForm,
    MarketingTopic,
    Organisation,
    OrganisationTag,
    SizeBand,
    TopicOptOut,
)
from chamber.registration.models import Booking

DIRECTORY_SIZE = 300
TIERS = ["Patron", "Corporate", "Business", "Business", "Start-up"]
# Hertfordshire's postcode districts, by town.
PLACES = [("Stevenage", "SG1"), ("Stevenage", "SG2"), ("Hitchin", "SG4"), ("Hitchin", "SG5"),
          ("Letchworth Garden City", "SG6"), ("Baldock", "SG7"), ("Royston", "SG8"),
          ("Hertford", "SG13"), ("Hertford", "SG14"), ("Ware", "SG12"),
          ("Welwyn Garden City", "AL7"), ("Welwyn Garden City", "AL8"), ("Hatfield", "AL10"),
          ("St Albans", "AL1"), ("St Albans", "AL3"), ("Harpenden", "AL5"), ("Watford", "WD17"),
          ("Watford", "WD24"), ("Hemel Hempstead", "HP1"), ("Tring", "HP23"),
          ("Bishop's Stortford", "CM23"), ("Cheshunt", "EN8")]  # fmt: skip
SOLE_TRADES = [("Plumbing", "Construction"), ("Bookkeeping", "Professional services"),
               ("Photography", "Creative"), ("Joinery", "Construction"),
               ("Web Design", "Technology"), ("Hair Studio", "Personal services"),
               ("Catering", "Food and drink"), ("Dog Grooming", "Personal services")]  # fmt: skip
# The organisations the article's speakers came from (their people are the speakers; the
# directory lists each organisation with a fictional enquiries contact).
SPEAKERS_ORGANISATIONS = [
    ("Octree Ltd", SizeBand.small, "Technology", LegalForm.limited_company, "Hitchin", "SG5"),
    ("Ashbourne Insurance Ltd", SizeBand.small, "Finance", LegalForm.limited_company,
     "Stevenage", "SG1"),
    ("National Counter Terrorism Security Office", SizeBand.large, "Public sector",
     LegalForm.public_body, "Welwyn Garden City", "AL7"),
    ("Crime Reduction and Community Safety Unit", SizeBand.medium, "Public sector",
     LegalForm.public_body, "Welwyn Garden City", "AL8"),
    ("Hertfordshire Constabulary", SizeBand.large, "Public sector", LegalForm.public_body,
     "Welwyn Garden City", "AL8"),
]  # fmt: skip
JOBS = ["Managing Director", "Office Manager", "IT Manager", "Finance Director", "Owner",
        "Operations Manager", "Head of IT", "Partner", "HR Manager", "Practice Manager"]  # fmt: skip
CONSENT_WORDING = "Yes, send me news of the chamber's events (you can unsubscribe at any time)."


def load_directory(*, today: date, by: StaffUser, seed: int = 2027) -> None:
    """Fill the directory in: details for the businesses the bookings made, then a top-up of new
    ones (with contacts) to `DIRECTORY_SIZE`, then each person's marketing choices."""
    rng = random.Random(seed)
    for organisation in _undescribed():
        _describe(organisation, rng, today)
    for name, band, sector, form, town, postcode in SPEAKERS_ORGANISATIONS:
        _add(rng, today, name, band, sector, form=form, town=town, postcode=postcode)
    attempts = 0
    while _count(Organisation) < DIRECTORY_SIZE and attempts < DIRECTORY_SIZE * 4:
        attempts += 1
        _add(rng, today, *_invented(rng))
    _choices(seed, today)
    _segments(by)
    db.session.flush()


def _count(model) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model)) or 0


def _undescribed() -> list[Organisation]:
    """Businesses no one has filled in yet: made by a booking, with no postcode (a legal form
    only if their name says one)."""
    return list(
        db.session.scalars(
            db.select(Organisation).where(Organisation.postcode == "").order_by(Organisation.id)
        )
    )


def _invented(rng: random.Random) -> tuple[str, SizeBand, str]:
    roll = rng.random()
    if roll < 0.15:
        trade, sector = rng.choice(SOLE_TRADES)
        return f"{rng.choice(LAST)} {trade}", SizeBand.micro, sector
    if roll < 0.2:
        name, sector = rng.choice(LARGE)
        return name, SizeBand.large, sector
    trade, sector = rng.choice(TRADES)
    band = rng.choices([SizeBand.micro, SizeBand.small, SizeBand.medium], weights=[40, 40, 20])[0]
    suffix = rng.choice(["Ltd", "Ltd", "Limited", "LLP", ""])
    return f"{rng.choice(WORDS)} {trade} {suffix}".strip(), band, sector


def _legal_form(name: str, sector: str, band: SizeBand, rng: random.Random) -> LegalForm:
    if said := members.legal_form_from_name(name):
        return said
    if sector in ("Public sector", "Health") and band is SizeBand.large:
        return LegalForm.public_body
    if sector == "Charity":
        return LegalForm.other_corporate
    if band is SizeBand.micro:
        return rng.choice([LegalForm.sole_trader, LegalForm.sole_trader, LegalForm.partnership])
    return rng.choice([LegalForm.limited_company, LegalForm.unknown])


def _describe(organisation: Organisation, rng: random.Random, today: date) -> None:
    typed = organisation.town_or_postcode
    # The booking form asks for a town or a postcode ("SG1 2AB": its inward part begins with a
    # digit): a postcode typed there is the postcode, in its own district's town; a town gets a
    # postcode of one of its districts.
    district = typed.split()[0] if typed[-3:-2].isdigit() else None
    if district:
        places = [place for place in PLACES if place[1] == district]
    else:
        places = [place for place in PLACES if place[0] == typed]
    town, postcode = rng.choice(places or PLACES)
    organisation.legal_form = _legal_form(
        organisation.name, organisation.sector, organisation.size_band, rng
    )
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    made_up = f"{postcode} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    organisation.postcode = typed if district else made_up
    organisation.town_or_postcode = town if district else (typed or town)
    slug = "".join(ch for ch in organisation.name.lower() if ch.isalnum())[:24]
    organisation.website = f"https://www.{slug}.example/"
    roll = rng.random()
    if organisation.is_member or roll < 0.45:
        organisation.is_member = True
        organisation.membership_tier = rng.choice(TIERS)
        organisation.member_since = today - timedelta(days=rng.randint(60, 365 * 12))
        organisation.renews_on = _next_anniversary(organisation.member_since, today)
    elif roll < 0.6:  # a lapsed member
        organisation.member_since = today - timedelta(days=rng.randint(800, 365 * 9))
        organisation.lapsed_on = today - timedelta(days=rng.randint(30, 700))
        organisation.membership_tier = rng.choice(TIERS)
    tags = {tag for tag, chance in (("cyber-essentials", 0.2), ("sponsor", 0.05),
                                    ("board", 0.03), ("export", 0.1)) if rng.random() < chance}  # fmt: skip
    organisation.tags = [OrganisationTag(tag=tag) for tag in sorted(tags)]
    if rng.random() < 0.1:
        organisation.notes = rng.choice(
            [
                "Asked about a cyber-security workshop for their own staff.",
                "Prefers phone calls to email.",
                "Interested in sponsoring a seminar next year.",
            ]
        )


def _next_anniversary(since: date, today: date) -> date:
    """The membership's next renewal: the first anniversary of `since` after `today`."""
    for year in (today.year, today.year + 1):
        day = min(since.day, 28) if since.month == 2 else since.day
        renewal = since.replace(year=year, day=day)
        if renewal > today:
            return renewal
    raise AssertionError("unreachable: next year's anniversary is after today")


def _add(
    rng: random.Random,
    today: date,
    name: str,
    band: SizeBand,
    sector: str,
    *,
    form: LegalForm | None = None,
    town: str = "",
    postcode: str = "",
) -> None:
    if members.find_organisation(name) is not None:
        return
    organisation = members.find_or_create_organisation(name=name, size_band=band, sector=sector)
    _describe(organisation, rng, today)
    if form is not None:
        organisation.legal_form = form
    if town:
        organisation.town_or_postcode, organisation.postcode = town, f"{postcode} 9ZZ"
    domain = organisation.website.removeprefix("https://www.").rstrip("/")
    for number in range(rng.choice([1, 1, 2, 2, 3])):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first}.{last}".lower().replace("'", "").replace("ë", "e")
        personal = organisation.legal_form in (LegalForm.sole_trader, LegalForm.partnership)
        email = (
            f"{local}{rng.randint(1, 99)}@gmail.com"
            if personal and rng.random() < 0.5
            else (f"{local}@{domain}")
        )
        contact = members.find_or_create_contact(
            email=email, name=f"{first} {last}", organisation=organisation,
            job_title=rng.choice(JOBS), phone=f"01438 {rng.randint(100000, 999999)}",
            confirmed=True,  # the chamber's own directory, as staff keep it
        )  # fmt: skip
        contact.role = (
            ContactRole.main
            if number == 0
            else rng.choice([ContactRole.billing, ContactRole.other])
        )


def _choices(seed: int, today: date) -> None:
    """What people said about marketing: confirmed consent from the subscribe form, a soft opt-in
    from a booking, an opted-out topic, an unsubscribe. Each person's choice comes from their own
    address, so it is the same on every run, and is only ever added to a blank."""
    consented = set(db.session.scalars(db.select(Consent.contact_id)))
    bookers = set(db.session.scalars(db.select(Booking.booker_id)))  # a soft opt-in needs one
    opted_out = set(db.session.scalars(db.select(TopicOptOut.contact_id)))
    noon = datetime.combine(today, datetime.min.time()).replace(hour=12, tzinfo=utcnow().tzinfo)
    for contact in db.session.scalars(db.select(Contact).order_by(Contact.id)):
        rng = random.Random(f"{seed}:{contact.email}")
        roll = rng.random()
        when = noon - timedelta(days=rng.randint(10, 900))
        if roll < 0.25 and contact.id not in consented:
            for topic in (MarketingTopic.events, MarketingTopic.newsletter):
                db.session.add(
                    Consent(
                        contact=contact, purpose=topic.value, wording=CONSENT_WORDING,
                        source="subscribe form", given_at=when,
                        confirmed_at=when + timedelta(minutes=rng.randint(2, 600)),
                    )
                )  # fmt: skip
        elif 0.25 <= roll < 0.5 and contact.soft_opt_in_at is None and contact.id in bookers:
            contact.soft_opt_in_at = when
        elif 0.5 <= roll < 0.56 and contact.id not in opted_out:
            db.session.add(TopicOptOut(contact_id=contact.id, topic=MarketingTopic.newsletter))
        elif 0.56 <= roll < 0.6:
            mail.suppress(contact.email, reason="unsubscribe")


# Saved segments, as staff would make them: (name, the builder's query string).
SEGMENTS = [
    ("SME members who have never attended a seminar",
     {"membership": "member", "size_band": ["micro", "small", "medium"], "never_attended": "yes"}),
    ("Stevenage and Hitchin businesses with Cyber Essentials",
     {"places": "Stevenage, Hitchin, SG1, SG2, SG4, SG5", "tags": "cyber-essentials"}),
]  # fmt: skip


def _segments(by: StaffUser) -> None:
    known = {segment.name for segment in segments.saved_segments()}
    for name, args in SEGMENTS:
        if name not in known:
            filters = segments.SegmentFilters.from_args(MultiDict(args))
            segments.save_segment(name, filters, by=by)
