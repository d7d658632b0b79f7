"""The door role works only today's published events and undoes only today's check-ins;
attendance history and other events are for organisers and admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chamber.core.tokens import hash_token
from chamber.extensions import db
from chamber.registration.models import Delegate
from tests.factories import at
from tests.support import post_form
from tests.test_checkin import book


def now_minus(minutes: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


@pytest.fixture
def events(make_event):
    made = {
        "today": make_event(starts_at=now_minus(60), title="Today"),
        "past": make_event(starts_at=at(-400), title="Years ago"),
        "draft": make_event(starts_at=now_minus(60), title="Secret draft", status="draft"),
        "future": make_event(starts_at=at(7), title="Next week"),
    }
    for name, event in made.items():
        book(event, f"{name} Ltd", (f"Person {name}", f"{name}@example.com"))
    return made


def person(name: str) -> Delegate:
    return db.session.scalars(db.select(Delegate).where(Delegate.name == f"Person {name}")).one()


@pytest.mark.parametrize("which", ["past", "draft", "future"])
def test_a_volunteer_is_refused_other_days_and_drafts_with_a_clear_page(
    checkin_client, events, which
):
    event = events[which]
    for path in (f"/staff/checkin/{event.id}", f"/staff/checkin/{event.id}/counts"):
        refused = checkin_client.get(path)
        assert refused.status_code == 403, path
        assert "Check-in is not open for this event" in refused.text
        assert f"Person {which}" not in refused.text
    assert "Secret draft" not in checkin_client.get(f"/staff/checkin/{events['draft'].id}").text
    delegate = person(which)
    tapped = post_form(
        checkin_client,
        f"/staff/checkin/{event.id}/delegates/{delegate.id}/check-in",
        {},
        token_from="/staff/",
    )
    assert tapped.status_code == 403
    db.session.refresh(delegate)
    assert delegate.checked_in_at is None


def test_a_volunteer_scanning_another_days_code_is_refused(checkin_client, events):
    delegate = person("past")
    delegate.checkin_token_hash = hash_token("a-known-token-for-a-past-event-long-enough")
    db.session.commit()
    response = checkin_client.get("/staff/checkin/scan/a-known-token-for-a-past-event-long-enough")
    assert response.status_code == 403 and "Person past" not in response.text


def test_a_volunteer_works_todays_event(checkin_client, events):
    event, delegate = events["today"], person("today")
    assert checkin_client.get(f"/staff/checkin/{event.id}").status_code == 200
    path = f"/staff/checkin/{event.id}/delegates/{delegate.id}"
    assert (
        post_form(checkin_client, f"{path}/check-in", {}, token_from="/staff/").status_code == 302
    )
    db.session.refresh(delegate)
    assert delegate.checked_in_at is not None
    assert post_form(checkin_client, f"{path}/undo", {}, token_from="/staff/").status_code == 302
    db.session.refresh(delegate)
    assert delegate.checked_in_at is None  # a check-in made today may be undone


def test_a_volunteer_cannot_undo_an_earlier_days_check_in(checkin_client, organiser_client, events):
    event, delegate = events["today"], person("today")
    delegate.checked_in_at = at(-3)  # an earlier day (say, a multi-day event's first)
    db.session.commit()
    path = f"/staff/checkin/{event.id}/delegates/{delegate.id}/undo"
    refused = post_form(checkin_client, path, {}, token_from="/staff/")
    assert refused.status_code == 302
    assert "only an organiser can undo" in checkin_client.get(refused.headers["Location"]).text
    db.session.refresh(delegate)
    assert delegate.checked_in_at is not None
    assert post_form(organiser_client, path, {}, token_from="/staff/").status_code == 302
    db.session.refresh(delegate)
    assert delegate.checked_in_at is None


def test_organisers_and_admins_see_every_events_door(organiser_client, admin_client, events):
    for client in (organiser_client, admin_client):
        for which, event in events.items():
            page = client.get(f"/staff/checkin/{event.id}")
            assert page.status_code == 200 and f"Person {which}" in page.text, which
    past = person("past")
    past.checked_in_at = at(-400, 9)
    db.session.commit()
    undo = f"/staff/checkin/{events['past'].id}/delegates/{past.id}/undo"
    assert post_form(organiser_client, undo, {}, token_from="/staff/").status_code == 302
    db.session.refresh(past)
    assert past.checked_in_at is None
