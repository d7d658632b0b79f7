"""The door adds walk-ins (booked through the staff booking and checked in, in one step, only if
a seat is free) and prints badges and a sign-in sheet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.members.models import Organisation, SizeBand
from chamber.registration.models import Delegate, DelegateStatus
from chamber.registration.services import BusinessDetails
from tests.factories import at, make_booking
from tests.support import count_queries, csrf_token, post_form

WALK_IN = {"name": "Walter Inman", "email": "walter@inman.example", "business": "Inman & Co",
           "size_band": "micro"}  # fmt: skip


@pytest.fixture
def seminar(make_event):
    """Today's event (it began an hour ago), with two of three places taken."""
    event = make_event(
        title="Cyber seminar", capacity=3, business_limit=3,
        starts_at=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1),
    )  # fmt: skip
    make_booking(
        event,
        "tony@octree.example",
        business=BusinessDetails("Octree Ltd", SizeBand.small, is_member=True),
    )
    make_booking(event, "bea@bakery.example", business="Bakery Co")
    return event


def walk_in_path(event) -> str:
    return f"/staff/checkin/{event.id}/walk-in"


def delegate_by_email(email: str) -> Delegate | None:
    return db.session.scalar(db.select(Delegate).where(Delegate.email_normalised == email))


def test_a_walk_in_is_booked_and_checked_in_in_one_step(checkin_client, seminar):
    response = post_form(checkin_client, walk_in_path(seminar), WALK_IN)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/checkin/{seminar.id}?q=walter@inman.example"
    walter = delegate_by_email("walter@inman.example")
    assert walter.status == DelegateStatus.confirmed
    assert walter.checked_in_at is not None and walter.checked_in_by_id is not None
    assert walter.booking.source == "staff"
    assert walter.booking.organisation.name == "Inman & Co"
    # The same confirmation as anyone booked (their manage link, the resources, the QR code).
    assert db.session.scalar(
        db.select(OutboxMessage).where(OutboxMessage.to_address == "walter@inman.example")
    )
    page = checkin_client.get(response.headers["Location"]).text
    assert "Added and checked in: Walter Inman." in page
    assert "Checked in</strong>" in page
    assert "Walter Inman" in page


def test_a_known_business_keeps_its_size_and_need_not_be_asked(checkin_client, seminar):
    data = {**WALK_IN, "business": "octree ltd", "size_band": ""}
    assert post_form(checkin_client, walk_in_path(seminar), data).status_code == 302
    octree = db.session.scalar(db.select(Organisation).where(Organisation.name == "Octree Ltd"))
    assert octree.size_band == SizeBand.small and octree.is_member
    assert delegate_by_email("walter@inman.example").booking.organisation_id == octree.id


def test_a_new_business_without_its_size_is_asked_for_it_and_nothing_is_stored(
    checkin_client, seminar
):
    response = post_form(checkin_client, walk_in_path(seminar), {**WALK_IN, "size_band": ""})
    assert response.status_code == 400
    assert (
        "We have not met this business before: choose how many people it employs." in response.text
    )
    assert (
        'aria-describedby="size_band-hint size_band-error"' in response.text
        or "size_band-error" in response.text
    )
    assert delegate_by_email("walter@inman.example") is None


def test_a_full_event_admits_no_walk_in_and_says_what_staff_can_do(checkin_client, seminar):
    make_booking(seminar, "third@example.com", business="Third Ltd")
    page = checkin_client.get(walk_in_path(seminar)).text
    assert "The event is full" in page
    response = post_form(checkin_client, walk_in_path(seminar), WALK_IN)
    assert response.status_code == 400
    assert (
        "The event is full (3 of 3 places taken), so Walter Inman was not added." in response.text
    )
    assert delegate_by_email("walter@inman.example") is None  # not even on the waiting list
    assert (
        db.session.scalar(db.select(Organisation).where(Organisation.name == "Inman & Co")) is None
    )
    confirmed = db.session.scalar(
        db.select(db.func.count(Delegate.id)).where(
            Delegate.event_id == seminar.id, Delegate.status == DelegateStatus.confirmed
        )
    )
    assert confirmed == 3


def test_someone_already_booked_is_found_not_booked_twice(checkin_client, seminar):
    response = post_form(
        checkin_client, walk_in_path(seminar), {**WALK_IN, "email": "TONY@octree.example"}
    )
    assert response.status_code == 400
    assert "Already registered: tony@octree.example" in response.text
    assert db.session.scalar(db.select(db.func.count(Delegate.id))) == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Enter their full name."),
        ("email", "", "Enter their email address"),
        ("email", "not-an-address", "Enter an email address in the right format"),
        ("business", "", "Enter their business"),
        ("name", "Eve\r\nBcc: x@example.com", "one line"),
        ("name", "x" * 121, "Full name must be 120 characters or fewer."),
        ("name", "Verify at https://evil.example", "web or email address"),
        ("name", "Walter evil.example", "web or email address"),
        ("business", "www.evil.example", "web address"),
        ("business", "Bad\x07Co", "contains a character that is not allowed"),
        ("size_band", "enormous", "Not a valid choice"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_nothing_stored(
    checkin_client, seminar, field, value, message
):
    response = post_form(checkin_client, walk_in_path(seminar), {**WALK_IN, field: value})
    assert response.status_code == 400
    assert message.lower() in response.text.lower()
    assert delegate_by_email("walter@inman.example") is None


def test_hostile_text_is_stored_and_shown_as_text(checkin_client, seminar):
    data = {
        **WALK_IN,
        "name": "<script>alert(1)</script> {{ 7*7 }}",
        "business": "'; DROP TABLE delegate; --",
    }
    response = post_form(checkin_client, walk_in_path(seminar), data, follow_redirects=True)
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in response.text
    badges = checkin_client.get(f"/staff/checkin/{seminar.id}/badges").text
    assert "&#39;; DROP TABLE delegate; --" in badges


def test_without_the_form_token_nothing_is_added(checkin_client, seminar):
    response = checkin_client.post(walk_in_path(seminar), data=WALK_IN)
    assert response.status_code == 400
    assert delegate_by_email("walter@inman.example") is None


def test_a_volunteer_cannot_add_walk_ins_or_print_for_another_days_event(
    checkin_client, make_event
):
    tomorrow = make_event(starts_at=at(days=1))
    assert checkin_client.get(walk_in_path(tomorrow)).status_code == 403
    token = csrf_token(checkin_client, "/staff/checkin/")
    response = checkin_client.post(walk_in_path(tomorrow), data={**WALK_IN, "csrf_token": token})
    assert response.status_code == 403
    assert delegate_by_email("walter@inman.example") is None
    for sheet in ("badges", "sign-in-sheet"):
        assert checkin_client.get(f"/staff/checkin/{tomorrow.id}/{sheet}").status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client, seminar):
    for path in (walk_in_path(seminar), f"/staff/checkin/{seminar.id}/badges"):
        response = client.get(path)
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_the_door_page_links_to_the_walk_in_form_and_the_sheets(checkin_client, seminar):
    page = checkin_client.get(f"/staff/checkin/{seminar.id}").text
    assert f'href="/staff/checkin/{seminar.id}/walk-in"' in page
    assert f'href="/staff/checkin/{seminar.id}/badges"' in page
    assert f'href="/staff/checkin/{seminar.id}/sign-in-sheet"' in page


def test_badges_and_the_sign_in_sheet_list_the_confirmed_by_name_with_their_business(
    checkin_client, seminar
):
    make_booking(
        seminar, "zed@waiting.example", "amy@waiting.example", business="Waiting Ltd"
    )  # one waits
    badges = checkin_client.get(f"/staff/checkin/{seminar.id}/badges")
    assert badges.status_code == 200 and badges.headers["Cache-Control"] == "no-store"
    text = badges.text
    assert text.count('<div class="badge">') == 3
    assert text.index(">Bea<") < text.index(">Tony<") < text.index(">Zed<")
    assert '<p class="badge-business">Octree Ltd</p>' in text
    assert "Amy" not in text  # on the waiting list
    assert 'href="/static/door-print.css"' in text
    with checkin_client.get("/static/door-print.css") as stylesheet:
        assert "@page { size: A4" in stylesheet.text

    sheet = checkin_client.get(f"/staff/checkin/{seminar.id}/sign-in-sheet").text
    assert '<th scope="col" class="col-signature">Signature</th>' in sheet
    assert "<td>Tony</td><td>Octree Ltd</td>" in sheet
    assert "Amy" not in sheet


def test_the_sheets_take_the_same_queries_for_few_or_many(checkin_client, make_event):
    event = make_event(
        capacity=100, business_limit=5, starts_at=datetime.now(UTC) - timedelta(minutes=30)
    )
    make_booking(event, "a@example.com")

    def queries(path: str) -> int:
        checkin_client.get(path)
        with count_queries() as statements:
            checkin_client.get(path)
        return len(statements)

    few = [queries(f"/staff/checkin/{event.id}/{sheet}") for sheet in ("badges", "sign-in-sheet")]
    for n in range(12):
        make_booking(event, f"p{n}@example.com", f"q{n}@example.com", business=f"Business {n}")
    many = [queries(f"/staff/checkin/{event.id}/{sheet}") for sheet in ("badges", "sign-in-sheet")]
    assert many == few


def test_a_walk_in_never_changes_the_directory_record_of_someone_we_know(
    checkin_client, seminar, make_event
):
    """The door adds a place; what is typed there (by a volunteer, in a queue) is kept on the
    place, never written over the person's or their business's record in the directory."""
    tony = db.session.scalar(
        db.select(Delegate).where(Delegate.email_normalised == "tony@octree.example")
    )
    contact, octree = tony.contact, tony.booking.organisation
    carol = make_booking(make_event(), "carol@known.example", business="Known Ltd").booking.booker
    tony.status = DelegateStatus.cancelled  # so that he may be added again, at the door
    db.session.commit()
    known = (contact.name, contact.organisation_id, octree.size_band, octree.is_member)
    carol_known = (carol.name, carol.organisation_id)
    renamed = {**WALK_IN, "name": "Attacker Renamed", "email": "tony@octree.example",
               "business": "Octree Ltd", "size_band": "large"}  # fmt: skip
    moved = {**WALK_IN, "name": "Carol Moved", "email": "carol@known.example",
             "business": "Evil Corp Ltd"}  # fmt: skip
    for typed in (renamed, moved):
        assert post_form(checkin_client, walk_in_path(seminar), typed).status_code == 302
    db.session.expire_all()
    assert (contact.name, contact.organisation_id, octree.size_band, octree.is_member) == known
    assert (carol.name, carol.organisation_id) == carol_known
    # Each place keeps what was typed, and is the known person's.
    for name, person in (("Attacker Renamed", contact), ("Carol Moved", carol)):
        place = db.session.scalar(db.select(Delegate).where(Delegate.name == name))
        assert place.contact_id == person.id and place.checked_in_at is not None
