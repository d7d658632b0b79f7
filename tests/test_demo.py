"""The demo data set: the seed seminar twice (past, upcoming), shared speakers, working logins."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from chamber.auth.models import Role, StaffUser
from chamber.core.times import utcnow
from chamber.demo import directory as directory_demo
from chamber.demo import load_demo, seminar
from chamber.events.models import AgendaItem, AgendaItemSpeaker, Event, Speaker
from chamber.extensions import db
from tests.support import post_form

# Each test loads the whole demo (seconds), and one runs the `chamber demo` command twice.
pytestmark = pytest.mark.slow

SPEAKERS = {
    "David Lloyd": "Hertfordshire Police &amp; Crime Commissioner",
    "William Davies": "National Counter Terrorism Security Office",
    "Tony Richardson": "Octree",
    "Stephanie Frankish": "Crime Reduction and Community Safety Unit",
    "Julie Lloyd": "Crime Reduction and Community Safety Unit",
    "Peter Smits": "Managing Director, Ashbourne Insurance",
    "Yolanda Rugg": "Chief Executive, Hertfordshire Chamber of Commerce",
}


def load(app, **kwargs):
    login = load_demo(app, **kwargs)
    db.session.commit()
    return login


def count(model) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def counts() -> dict[str, int]:
    models = (Event, Speaker, AgendaItem, AgendaItemSpeaker, StaffUser)
    return {model.__name__: count(model) for model in models}


def editions() -> dict[str, Event]:
    return {event.slug: event for event in db.session.scalars(db.select(Event))}


def upcoming_edition() -> Event:
    (event,) = [e for slug, e in editions().items() if slug != seminar.PAST_EDITION_SLUG]
    return event


def logs_in(app, email: str, password: str) -> bool:
    response = post_form(app.test_client(), "/staff/login", {"email": email, "password": password})
    return response.status_code == 302


# --- what is loaded ------------------------------------------------------------------------------


def test_loading_twice_adds_nothing_the_second_time(app):
    load(app)
    first = counts()
    load(app)
    assert counts() == first == {
        "Event": 2, "Speaker": 7, "AgendaItem": 18, "AgendaItemSpeaker": 14, "StaffUser": 3,
    }  # fmt: skip


def test_speakers_are_shared_and_the_crime_reduction_talk_has_both_presenters_in_order(app):
    load(app)
    for event in editions().values():
        shared = [item for item in event.agenda_items if len(item.speakers) > 1]
        assert len(shared) == 1
        assert [s.name for s in shared[0].speakers] == ["Stephanie Frankish", "Julie Lloyd"]
    names = sorted(db.session.scalars(db.select(Speaker.name)))
    assert names == sorted(SPEAKERS)
    assert all(speaker.email is None for speaker in db.session.scalars(db.select(Speaker)))


def test_an_existing_speaker_is_reused_and_keeps_staff_edits(app, make_speaker):
    tony = make_speaker("Tony Richardson", "Octree", bio="Edited by staff.")
    load(app)
    assert count(Speaker) == 7
    assert db.session.get(Speaker, tony.id).bio == "Edited by staff."
    assert tony.id in {s.id for item in upcoming_edition().agenda_items for s in item.speakers}


def test_past_edition_is_the_2016_seminar_in_london_time(app):
    load(app)
    past = editions()[seminar.PAST_EDITION_SLUG]
    assert past.status == "published" and past.is_past()
    # 08:00 to 12:00 British Summer Time is 07:00 to 11:00 UTC.
    assert past.starts_at == datetime(2016, 6, 9, 7, 0, tzinfo=UTC)
    assert past.ends_at == datetime(2016, 6, 9, 11, 0, tzinfo=UTC)
    assert f"{past.local_start:%H:%M}" == "08:00"


def test_upcoming_edition_is_weeks_ahead_and_open_for_registration(app):
    load(app)
    event = upcoming_edition()
    now = utcnow()
    assert event.slug == f"cybercrime-seminar-{event.local_start:%Y}"
    assert event.status == "published"
    assert now + timedelta(weeks=4) <= event.starts_at <= now + timedelta(weeks=8)
    assert event.local_start.weekday() == 3 and f"{event.local_start:%H:%M}" == "08:00"
    assert event.registration_opens_at is None
    assert now < event.registration_closes_at < event.starts_at
    assert (event.capacity, event.business_limit) == (120, 3)
    assert event.host == "Hertfordshire Chamber of Commerce"
    assert event.supporter_list == ["Hertfordshire Police and Crime Commissioner's Community Fund"]


def test_next_edition_is_a_thursday_at_least_four_weeks_away_and_not_at_christmas():
    assert seminar.next_edition_day(date(2026, 3, 2)) == date(2026, 4, 2)
    assert seminar.next_edition_day(date(2026, 3, 5)) == date(2026, 4, 2)
    assert seminar.next_edition_day(date(2026, 11, 26)) == date(2027, 1, 7)


def test_rerun_after_the_upcoming_edition_has_passed_adds_the_next_one_only(app):
    load(app, today=date(2026, 3, 2))
    load(app, today=date(2026, 3, 30))  # the April edition is still to come: nothing new
    assert sorted(editions()) == ["cybercrime-seminar-2016", "cybercrime-seminar-2026"]
    load(app, today=date(2026, 5, 1))
    load(app, today=date(2026, 5, 1))
    assert sorted(editions()) == [
        "cybercrime-seminar-2016",
        "cybercrime-seminar-2026",
        "cybercrime-seminar-2026-06-04",
    ]
    assert (count(Speaker), count(StaffUser)) == (7, 3)


# --- what people see -----------------------------------------------------------------------------


def test_home_page_lists_the_upcoming_seminar_but_not_the_past_one(app, client):
    load(app)
    response = client.get("/")
    assert response.status_code == 200
    assert seminar.TITLE in response.text
    assert f'href="/events/{upcoming_edition().slug}"' in response.text
    assert f'href="/events/{seminar.PAST_EDITION_SLUG}"' not in response.text


def test_past_events_page_lists_the_2016_seminar(app, client):
    load(app)
    response = client.get("/events/past")
    assert response.status_code == 200
    assert f'href="/events/{seminar.PAST_EDITION_SLUG}"' in response.text
    assert "Thursday 9 June 2016" in response.text


@pytest.mark.parametrize("which", ["past", "upcoming"])
def test_event_page_shows_agenda_speakers_and_organisations(app, client, which):
    load(app)
    slug = seminar.PAST_EDITION_SLUG if which == "past" else upcoming_edition().slug
    page = client.get(f"/events/{slug}").text
    for name, byline in SPEAKERS.items():
        assert f"<h3>{name}</h3>" in page
        assert f'<p class="meta">{byline}</p>' in page
    assert "Holiday Inn Stevenage" in page and "St George&#39;s Way<br>Stevenage SG1 1HS" in page
    assert "Police and Crime Commissioner&#39;s Community Fund" in page
    assert "08:00" in page and "12:00" in page
    items = re.split(r'<li class="agenda-item', page)
    (talk,) = [item for item in items if "Cyber Essentials and your security plan" in item]
    speakers_line = re.search(r'class="agenda-speakers">(.*?)</p>', talk, re.S).group(1)
    byline = re.sub(r"<[^>]+>", "", speakers_line)
    assert " ".join(byline.split()) == (
        "Stephanie Frankish, Crime Reduction and Community Safety Unit and "
        "Julie Lloyd, Crime Reduction and Community Safety Unit"
    )
    steps = re.findall(r"<li><strong>(\w+)</strong>:", talk)
    assert steps == ["Audit", "Plan", "Execute", "Monitor", "Repeat"]


# --- staff logins --------------------------------------------------------------------------------


def test_returned_logins_log_in_with_their_roles(app):
    login = load(app)
    assert (login.email, login.role) == ("demo@chamber.example", "admin")
    assert logs_in(app, login.email, login.password)
    roles = {other.role for other in login.others}
    assert roles == {"organiser", "checkin"}
    for other in login.others:
        assert logs_in(app, other.email, other.password)
    admin = db.session.scalar(db.select(StaffUser).where(StaffUser.email == login.email))
    assert admin.role == Role.admin


def test_password_is_kept_private_in_the_instance_folder_and_reused(app):
    first = load(app)
    path = Path(app.instance_path) / "demo-password"
    assert path.read_text().strip() == first.password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.password) >= 24
    assert load(app).password == first.password


def test_a_regenerated_password_file_resets_the_account(app):
    old = load(app)
    (Path(app.instance_path) / "demo-password").unlink()
    new = load(app)
    assert new.password != old.password
    assert logs_in(app, new.email, new.password)
    assert not logs_in(app, old.email, old.password)


def test_a_demoted_or_deactivated_demo_account_is_put_back(app):
    login = load(app)
    user = db.session.scalar(db.select(StaffUser).where(StaffUser.email == login.email))
    user.role, user.active = Role.checkin, False
    db.session.commit()
    load(app)
    assert (user.role, user.active) == (Role.admin, True)


# --- the real command ----------------------------------------------------------------------------


def chamber_command() -> list[str]:
    script = Path(sys.executable).with_name("chamber")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from chamber.cli import main; main()"]


def test_chamber_demo_command_twice_prints_one_working_login_and_duplicates_nothing(tmp_path):
    instance = tmp_path / "demo-instance"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHAMBER_")}
    env["CHAMBER_INSTANCE_PATH"] = str(instance)
    outputs = [
        subprocess.run(
            [*chamber_command(), "demo", "--no-serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    password = (instance / "demo-password").read_text().strip()
    for output in outputs:
        assert "email:      demo@chamber.example" in output
        assert f"password:   {password}" in output
    connection = sqlite3.connect(instance / "chamber.sqlite")
    expected = {"event": 2, "speaker": 7, "agenda_item": 18, "agenda_item_speaker": 14,
                "staff_user": 3}  # fmt: skip
    try:
        rows = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in expected}  # fmt: skip
    finally:
        connection.close()
    assert rows == expected


def test_the_demo_fills_the_past_room_and_the_upcoming_waiting_list(app):
    from chamber.registration.models import Booking, Delegate, DelegateStatus

    load_demo(app)
    db.session.commit()
    rows = db.session.execute(
        db.select(
            Event.slug,
            Delegate.status,
            db.func.count(Delegate.id),
            db.func.count(db.distinct(Booking.organisation_id)),
        )
        .join(Delegate, Delegate.event_id == Event.id)
        .join(Booking, Booking.id == Delegate.booking_id)
        .group_by(Event.slug, Delegate.status)
    ).all()
    by = {
        (slug.endswith("2016"), status): (people, businesses)
        for slug, status, people, businesses in rows
    }
    assert by[(False, DelegateStatus.confirmed)][0] == 120  # the upcoming edition is full...
    assert by[(False, DelegateStatus.waitlisted)][0] == 5  # ...with a short waiting list
    attended = db.session.scalar(
        db.select(db.func.count(db.distinct(Booking.organisation_id)))
        .join(Delegate, Delegate.booking_id == Booking.id)
        .join(Event, Event.id == Delegate.event_id)
        .where(Event.slug == "cybercrime-seminar-2016", Delegate.checked_in_at.is_not(None))
    )
    assert attended > 60  # "over 60 businesses attended"
    # Booked before now, never in the future: the upcoming edition over the last fortnight, so
    # the staff home page's chart of the last 14 days has them.
    now = utcnow()
    upcoming = db.session.execute(
        db.select(db.func.min(Booking.created_at), db.func.max(Booking.created_at))
        .join(Event, Event.id == Booking.event_id)
        .where(Event.slug != "cybercrime-seminar-2016")
    ).one()
    assert now - timedelta(days=14) < upcoming[0] <= upcoming[1] <= now
    assert db.session.scalar(db.select(db.func.max(Booking.created_at))) <= now
    load_demo(app)
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Delegate.id))) == sum(
        p for p, _ in by.values()
    )


def test_the_past_edition_has_a_sent_survey_whose_breakdown_shows_the_articles_figures(
    app, organiser_client
):
    from chamber.surveys.models import Invitation, Response, Survey, SurveyStatus

    load(app)
    load(app)  # a second run adds no second survey
    (survey,) = db.session.scalars(db.select(Survey)).all()
    assert survey.event.slug == seminar.PAST_EDITION_SLUG
    assert survey.status == SurveyStatus.sent
    assert 30 <= count(Response) <= 50 < count(Invitation)

    response = organiser_client.get(f"/staff/surveys/{survey.id}/results?breakdown=sme")
    assert response.status_code == 200
    text = " ".join(re.sub(r"<[^>]+>", " ", response.text).split())
    assert "Did your business have a cyber breach or attack in the last 12 months?" in text
    assert re.search(r"SMEs \(under 250 employees\) \d+ 74%", text)
    assert re.search(r"Large businesses \(250\+\) \d+ 93%", text)
    assert "Net Promoter Score" in text and "Responses over time" in text
    csv_file = organiser_client.get(f"/staff/surveys/{survey.id}/results.csv")
    assert csv_file.status_code == 200
    assert len(csv_file.data.decode("utf-8-sig").splitlines()) == count(Response) + 1


def test_the_demo_directory_has_300_described_organisations_and_a_second_load_changes_nothing(app):
    from chamber.directory.models import Segment
    from chamber.mail.models import Suppression
    from chamber.members.models import (
        Consent,
        Contact,
        LegalForm,
        Organisation,
        OrganisationTag,
        TopicOptOut,
    )

    load(app)

    def snapshot():
        models = (Organisation, Contact, Consent, TopicOptOut, OrganisationTag, Suppression,
                  Segment)  # fmt: skip
        rows = {model.__name__: count(model) for model in models}
        described = db.session.execute(
            db.select(Organisation.name, Organisation.legal_form, Organisation.postcode,
                      Organisation.is_member, Organisation.renews_on).order_by(Organisation.id)
        ).all()  # fmt: skip
        soft = db.session.scalars(db.select(Contact.soft_opt_in_at).order_by(Contact.id)).all()
        return rows, described, soft

    first = snapshot()
    rows, described, _ = first
    # Segments: the directory's two and the demo campaign's Members.
    assert rows["Organisation"] == 300 and rows["Segment"] == 3
    assert rows["Contact"] > 300 and rows["Consent"] > 0 and rows["Suppression"] > 0
    assert all(postcode for _, _, postcode, _, _ in described)  # every business is described
    # A town, never a postcode, in the town's place, and its postcode in one of its districts.
    places = db.session.execute(
        db.select(Organisation.town_or_postcode, Organisation.postcode)
    ).all()
    districts = {}
    for town, district in directory_demo.PLACES:
        districts.setdefault(town, set()).add(district)
    for town, postcode in places:
        assert town in districts, town
        assert postcode.split()[0] in districts[town], (town, postcode)
    forms = {form for _, form, _, _, _ in described}
    assert {LegalForm.limited_company, LegalForm.public_body, LegalForm.sole_trader} <= forms
    members_now = [renews for _, _, _, member, renews in described if member]
    assert 60 < len(members_now) < 240 and all(renews is not None for renews in members_now)
    names = {name for name, *_ in described}
    assert {"Octree Ltd", "Hertfordshire Constabulary"} <= names or any(
        "octree" in name.lower() for name in names
    )
    load(app)
    assert snapshot() == first


def test_the_demo_has_a_sent_invitation_whose_report_shows_its_bookings_and_a_draft(app, client):
    from chamber.campaigns import queries
    from chamber.campaigns.models import Campaign, CampaignRecipient, CampaignStatus

    load(app)
    load(app)  # a second load adds no campaign and queues nobody twice
    campaigns = {c.subject: c for c in db.session.scalars(db.select(Campaign))}
    assert len(campaigns) == 2
    invitation = campaigns["Cyber crime seminar: book your free places"]
    draft = campaigns["Five cyber security habits for the new year"]
    assert (invitation.status, draft.status) == (CampaignStatus.sent, CampaignStatus.draft)
    assert invitation.event_id == upcoming_edition().id
    report = queries.report(invitation)
    assert report.progress.sent == report.progress.queued > 10
    assert report.progress.left_out > 0 and report.bookings > 3
    assert report.delegates >= report.bookings
    assert count(CampaignRecipient) == report.progress.queued + report.progress.left_out
