"""Cancelling places: a confirmation step that says what will happen on the booker's manage page,
the delegate's own place page and the staff page; exactly the right emails, each person once;
forged ids, other people's links and missing CSRF tokens refused with nothing changed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chamber.core.times import utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.registration import places, services
from chamber.registration.models import Delegate
from chamber.registration.services import DelegateDetails
from tests.factories import make_booking
from tests.support import csrf_token, post_form

ALICE = DelegateDetails("Alice Booker", "alice@octree.example")
COLIN = DelegateDetails("Colin <b>Colleague</b>", "colin@octree.example")
DANA = DelegateDetails("Dana Third", "dana@octree.example")
WENDY = "wendy@waiting.example"


def delegate(email: str) -> Delegate:
    return db.session.scalars(db.select(Delegate).where(Delegate.email_normalised == email)).one()


def status(email: str) -> str:
    db.session.expire_all()
    return delegate(email).status.value


def messages() -> list[tuple[str, str]]:
    """(key kind, recipient) of every message in the outbox, in the order queued."""
    rows = db.session.execute(
        db.select(OutboxMessage.key, OutboxMessage.to_address).order_by(OutboxMessage.id)
    )
    return [(key.split(":")[0], to) for key, to in rows]


@pytest.fixture
def booked(make_event) -> tuple[Event, str]:
    """Alice booked herself, Colin and Dana (the last seats); Wendy waits. Returns the event and
    Alice's manage token; the outbox starts empty."""
    event = make_event(capacity=3, business_limit=5)
    result = make_booking(event, ALICE, COLIN, DANA, source="web", commit=False)
    make_booking(event, WENDY, business="Waiting Ltd", source="web", commit=False)
    token = services.new_manage_token(result.booking)
    db.session.execute(db.delete(OutboxMessage))
    db.session.commit()
    return event, token


# --- the booker's manage page --------------------------------------------------------------------


def test_the_manage_page_offers_cancelling_only_through_a_confirmation(client, booked):
    _, token = booked
    colin = delegate(COLIN.email)
    page = client.get(f"/r/{token}")
    assert page.status_code == 200
    assert f'href="/r/{token}/cancel/{colin.id}"' in page.text
    assert f'href="/r/{token}/cancel"' in page.text
    assert 'method="post"' not in page.text  # no button on it cancels straight away
    assert "Colin &lt;b&gt;Colleague&lt;/b&gt;" in page.text


def test_the_confirmation_says_what_will_happen_and_a_get_changes_nothing(client, booked):
    _, token = booked
    colin = delegate(COLIN.email)
    page = client.get(f"/r/{token}/cancel/{colin.id}")
    assert page.status_code == 200
    text = page.text
    assert "Cancel Colin &lt;b&gt;Colleague&lt;/b&gt;&#39;s place?" in text
    assert "Colin &lt;b&gt;Colleague&lt;/b&gt;'s place will be cancelled." in text
    assert "The seat goes to the next person on the waiting list" in text
    assert "We email Colin &lt;b&gt;Colleague&lt;/b&gt; (colin@octree.example)" in text
    assert "We email you (alice@octree.example) to confirm" in text
    assert WENDY not in text  # the booker is not shown who is waiting
    assert "Go back" in text and f'action="/r/{token}/cancel/{colin.id}"' in text
    assert page.headers["Cache-Control"].count("no-store")
    assert status(COLIN.email) == "confirmed" and messages() == []


def test_the_bookers_own_place_and_the_whole_booking_are_described_too(client, booked):
    _, token = booked
    alice = delegate(ALICE.email)
    own = client.get(f"/r/{token}/cancel/{alice.id}").text
    assert "Cancel your place?" in own and "Your place will be cancelled." in own
    assert "removes the event from your calendar" in own
    whole = client.get(f"/r/{token}/cancel").text
    assert "Cancel the whole booking?" in whole
    for name in (
        "Your place",
        "Colin &lt;b&gt;Colleague&lt;/b&gt;'s place",
        "Dana Third's",
    ):
        assert name in whole
    assert "The seats go to the next people on the waiting list" in whole


def test_cancelling_a_colleague_emails_them_and_confirms_to_the_booker_once(client, booked):
    _, token = booked
    colin = delegate(COLIN.email)
    response = post_form(client, f"/r/{token}/cancel/{colin.id}", {})
    assert response.status_code == 302
    assert status(COLIN.email) == "cancelled" and status(WENDY) == "confirmed"
    assert messages() == [
        ("promoted", WENDY),
        ("seat-cancelled", COLIN.email),
        ("places-cancelled", ALICE.email),
    ]
    after = client.get(response.headers["Location"]).text
    assert "We have emailed you to confirm it." in after


def test_cancelling_the_whole_booking_sends_one_email_to_each_person(client, booked):
    _, token = booked
    assert post_form(client, f"/r/{token}/cancel", {}).status_code == 302
    assert [status(p.email) for p in (ALICE, COLIN, DANA)] == ["cancelled"] * 3
    assert sorted(messages()) == sorted(
        [
            ("promoted", WENDY),
            ("seat-cancelled", COLIN.email),
            ("seat-cancelled", DANA.email),
            ("places-cancelled", ALICE.email),
        ]
    )
    summary = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.to_address == ALICE.email)
    ).one()
    assert summary.subject.startswith("Cancelled: places on your booking")
    for name in ("Alice Booker", "Colin <b>Colleague</b>", "Dana Third"):
        assert name in summary.text_body


def test_the_booker_cancelling_only_their_own_place_gets_one_email(client, booked):
    _, token = booked
    alice = delegate(ALICE.email)
    assert post_form(client, f"/r/{token}/cancel/{alice.id}", {}).status_code == 302
    assert messages() == [("promoted", WENDY), ("places-cancelled", ALICE.email)]
    mail = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.to_address == ALICE.email)
    ).one()
    assert mail.subject.startswith("Cancelled: your place")


def test_another_bookings_delegate_is_a_404_on_both_steps(client, booked):
    _, token = booked
    wendy = delegate(WENDY)
    assert client.get(f"/r/{token}/cancel/{wendy.id}").status_code == 404
    refused = client.post(
        f"/r/{token}/cancel/{wendy.id}", data={"csrf_token": csrf_token(client, f"/r/{token}/add")}
    )
    assert refused.status_code == 404
    assert client.get(f"/r/{token}/cancel/999999").status_code == 404
    assert status(WENDY) == "waitlisted" and status(COLIN.email) == "confirmed"
    assert messages() == []


def test_no_csrf_token_is_refused_and_nothing_is_cancelled(client, booked):
    _, token = booked
    colin = delegate(COLIN.email)
    for path in (f"/r/{token}/cancel/{colin.id}", f"/r/{token}/cancel"):
        assert client.post(path).status_code == 400
        assert client.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert status(COLIN.email) == "confirmed" and messages() == []


def test_after_the_event_the_link_cannot_cancel(client, booked):
    event, token = booked
    event.starts_at = utcnow() - timedelta(hours=5)
    event.ends_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    colin = delegate(COLIN.email)
    page = client.get(f"/r/{token}/cancel/{colin.id}", follow_redirects=True)
    assert "can no longer be changed" in page.text
    post_form(client, f"/r/{token}/cancel/{colin.id}", {}, token_from=f"/r/{token}/add")
    assert status(COLIN.email) == "confirmed" and messages() == []


# --- the delegate's own place link ---------------------------------------------------------------


def test_a_delegate_cancels_their_own_place_and_the_booker_is_told(client, booked):
    _, _token = booked
    colin = delegate(COLIN.email)
    token = places.new_place_token(colin)
    db.session.commit()
    page = client.get(f"/places/{token}/cancel")
    assert "Your place will be cancelled." in page.text
    assert "We email Alice Booker, who booked your place" in page.text
    assert "Go back" in page.text and messages() == []
    assert post_form(client, f"/places/{token}/cancel", {}).status_code == 302
    assert status(COLIN.email) == "cancelled"
    assert messages() == [
        ("promoted", WENDY),
        ("seat-cancelled", COLIN.email),
        ("place-cancelled", ALICE.email),
    ]
    told = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.to_address == ALICE.email)
    ).one()
    assert "Colin <b>Colleague</b> has cancelled their place" in told.text_body


def test_a_place_link_cannot_reach_another_place_by_forged_ids(client, booked):
    _, manage = booked
    colin, dana = delegate(COLIN.email), delegate(DANA.email)
    token = places.new_place_token(colin)
    db.session.commit()
    csrf = csrf_token(client, f"/places/{token}/cancel")
    # The place token is not a manage token, whatever id is put beside it.
    for path in (f"/r/{token}/cancel/{dana.id}", f"/r/{token}/cancel"):
        assert client.get(path).status_code == 404
        assert client.post(path, data={"csrf_token": csrf}).status_code == 404
    # Extra fields naming another delegate are ignored: only Colin's own place is cancelled.
    response = client.post(
        f"/places/{token}/cancel",
        data={"csrf_token": csrf, "delegate_id": str(dana.id), "id": str(dana.id)},
    )
    assert response.status_code == 302
    assert status(COLIN.email) == "cancelled" and status(DANA.email) == "confirmed"
    assert client.get(f"/places/{token[:-2]}xx/cancel").status_code == 404
    assert manage != token


def test_a_place_cancel_without_csrf_is_refused(client, booked):
    colin = delegate(COLIN.email)
    token = places.new_place_token(colin)
    db.session.commit()
    assert client.post(f"/places/{token}/cancel").status_code == 400
    assert status(COLIN.email) == "confirmed" and messages() == []


# --- staff ---------------------------------------------------------------------------------------


def test_the_staff_page_says_who_is_emailed_and_who_gets_the_seat(organiser_client, booked):
    event, _ = booked
    colin = delegate(COLIN.email)
    page = organiser_client.get(f"/staff/events/{event.id}/registrations/{colin.id}/cancel").text
    assert "do not email" not in page
    assert "Their seat goes straight to Wendy" in page
    assert "We email Colin &lt;b&gt;Colleague&lt;/b&gt; (colin@octree.example)" in page
    assert "We email Alice Booker (alice@octree.example), who made the booking" in page


def test_staff_cancelling_emails_the_delegate_the_booker_and_the_next_waiting(
    organiser_client, booked
):
    event, _ = booked
    colin = delegate(COLIN.email)
    path = f"/staff/events/{event.id}/registrations/{colin.id}/cancel"
    assert post_form(organiser_client, path, {}).status_code == 302
    assert messages() == [
        ("promoted", WENDY),
        ("seat-cancelled", COLIN.email),
        ("place-cancelled", ALICE.email),
    ]
    told = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.to_address == ALICE.email)
    ).one()
    assert "The Chamber's events team has cancelled Colin <b>Colleague</b>'s place" in (
        told.text_body
    )


def test_staff_cancelling_the_bookers_own_place_emails_them_once(organiser_client, booked):
    event, _ = booked
    alice = delegate(ALICE.email)
    path = f"/staff/events/{event.id}/registrations/{alice.id}/cancel"
    page = organiser_client.get(path).text
    assert "who made the booking" not in page
    assert post_form(organiser_client, path, {}).status_code == 302
    assert messages() == [("promoted", WENDY), ("seat-cancelled", ALICE.email)]


# --- the public page's words ---------------------------------------------------------------------


def test_a_full_event_offers_the_waiting_list_not_places(client, make_event):
    event = make_event(capacity=1)
    page = client.get(f"/events/{event.slug}").text
    assert ">Book places</a>" in page
    make_booking(event, "first@example.com")
    page = client.get(f"/events/{event.slug}").text
    assert ">Join the waiting list</a>" in page and ">Book places</a>" not in page
    form = client.get(f"/events/{event.slug}/register").text
    assert "<h1>Join the waiting list</h1>" in form
    assert ">Join the waiting list</button>" in form
