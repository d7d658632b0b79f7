"""The staff home page: each upcoming event's places, waiting list, businesses and members' share,
days to go, what needs attention (with links to fix it) and a chart of its bookings; in a fixed
number of queries however many events and bookings."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail.models import MessageStatus, OutboxMessage
from chamber.mail.services import enqueue
from chamber.members.models import SizeBand
from chamber.registration.models import DelegateStatus
from chamber.registration.services import BusinessDetails
from chamber.resources.models import (
    EventResource,
    LinkState,
    Resource,
    ResourceKind,
    ResourceStatus,
)
from chamber.surveys.models import Survey, SurveyStatus
from tests.factories import at, make_booking
from tests.support import count_queries

MEMBER = BusinessDetails("Octree Ltd", SizeBand.small, is_member=True)
NON_MEMBER = BusinessDetails("Herts Bakery", SizeBand.micro)


def failed_message_to(address: str) -> None:
    enqueue(key=f"failed:{address}", to=address, subject="Your place", template="test_message")
    db.session.flush()
    message = db.session.scalar(
        db.select(OutboxMessage).where(OutboxMessage.key == f"failed:{address}")
    )
    message.status = MessageStatus.failed
    message.last_error = "550 no such user"


def card_of(page: str, title: str) -> str:
    start = page.index(f">{title}</a>")
    end = page.find('<section class="event-card"', start)
    return page[start : end if end != -1 else len(page)]


def figure(card: str, name: str) -> str:
    match = re.search(rf"<dt>{name}</dt><dd>([^<]*)</dd>", card)
    assert match, name
    return match.group(1)


def test_each_upcoming_event_shows_its_places_waiting_businesses_members_and_days(
    make_event, organiser_client
):
    event = make_event(title="Cyber seminar", capacity=3, starts_at=at(days=9, hour=9))
    make_booking(event, "a@example.com", "b@example.com", business=MEMBER)
    make_booking(event, "c@example.com", "d@example.com", business=NON_MEMBER)  # one waits
    make_event(title="Past one", starts_at=at(days=-20))

    page = organiser_client.get("/staff/").text
    card = card_of(page, "Cyber seminar")
    assert figure(card, "Booked") == "3 of 3"
    assert figure(card, "Waiting") == "1"
    assert figure(card, "Businesses") == "2"
    assert figure(card, "Members") == "50%"
    assert "in 9 days" in card
    assert "Past one" not in page


def test_an_event_with_no_bookings_shows_no_members_share(make_event, organiser_client):
    make_event(title="Quiet one")
    card = card_of(organiser_client.get("/staff/").text, "Quiet one")
    assert figure(card, "Booked") == "0 of 80"
    assert figure(card, "Members") == "–"
    assert "Needs attention" not in card


def test_what_needs_attention_links_to_the_page_that_fixes_it(make_event, admin_client):
    event = make_event(title="Busy seminar", capacity=1, starts_at=at(days=2))
    result = make_booking(event, "first@example.com", "second@example.com")
    # A seat freed behind the waiting list's back (as a raised capacity would, before promotion).
    event.capacity = 3
    link = Resource(
        slug=f"dead-{uuid.uuid4().hex[:6]}", title="Dead guide", url="https://dead.example/",
        kind=ResourceKind.link, status=ResourceStatus.published, link_state=LinkState.broken,
    )  # fmt: skip
    db.session.add(link)
    db.session.flush()
    db.session.add(EventResource(event_id=event.id, resource_id=link.id))
    failed_message_to(result.confirmed[0].email_normalised)
    db.session.commit()

    card = card_of(admin_client.get("/staff/").text, "Busy seminar")
    assert "Needs attention" in card
    assert '<a href="/staff/outbox/?status=failed">1 email(s) to its delegates failed</a>' in card
    assert (
        f'<a href="/staff/resources/events/{event.id}">1 link(s) in its resources are broken or '
        "unreachable</a>"
    ) in card
    assert (
        f'<a href="/staff/events/{event.id}/registrations">1 waiting while 2 seat(s) are free</a>'
    ) in card
    assert f'<a href="/staff/surveys/new?event_id={event.id}">No follow-up survey yet</a>' in card


def test_an_organiser_is_told_of_failed_mail_without_a_link_they_may_not_follow(
    make_event, organiser_client
):
    event = make_event(title="Seminar")
    result = make_booking(event, "x@example.com")
    failed_message_to(result.confirmed[0].email_normalised)
    db.session.commit()
    card = card_of(organiser_client.get("/staff/").text, "Seminar")
    assert "1 email(s) to its delegates failed (an admin can see them in the Outbox)" in card
    assert "/staff/outbox" not in card


def test_failed_mail_to_the_people_booked_or_waiting_is_matched_by_normalised_address(
    make_event, organiser_client
):
    first = make_event(title="First seminar", starts_at=at(days=3))
    second = make_event(title="Second seminar", starts_at=at(days=4))
    make_booking(first, "zoë.smith@example.com", "bob@example.com")
    gone = make_booking(first, "gone@example.com").confirmed[0]
    make_booking(second, "zoë.smith@example.com")
    gone.status = DelegateStatus.cancelled  # no longer coming: their mail is not the event's
    for key, to, status in [
        ("a", "  ZOË.Smith@EXAMPLE.com ", MessageStatus.failed),  # Python's lower case, not SQL's
        ("b", "zoë.smith@example.com", MessageStatus.failed),
        ("c", "zoë.smith@example.com", MessageStatus.sent),
        ("d", "zoë.smith@example.co", MessageStatus.failed),  # someone else
        ("e", "stranger@example.com", MessageStatus.failed),
        ("f", "gone@example.com", MessageStatus.failed),
    ]:
        enqueue(key=f"mail:{key}", to=to, subject="Your place", template="test_message")
        db.session.flush()
        message = db.session.scalar(
            db.select(OutboxMessage).where(OutboxMessage.key == f"mail:{key}")
        )
        message.status = status
    db.session.commit()

    page = organiser_client.get("/staff/").text
    assert "2 email(s) to its delegates failed" in card_of(page, "First seminar")
    assert "2 email(s) to its delegates failed" in card_of(page, "Second seminar")


def test_a_draft_survey_near_the_event_and_a_survey_overdue_are_flagged(
    make_event, organiser_client
):
    soon = make_event(title="Soon", starts_at=at(days=1))
    draft = Survey(event=soon, title="How was it?", status=SurveyStatus.draft)
    overdue_event = make_event(title="Overdue", starts_at=at(days=20))
    overdue = Survey(
        event=overdue_event, title="Tell us", status=SurveyStatus.scheduled,
        send_at=utcnow() - timedelta(hours=1),
    )  # fmt: skip
    later = make_event(title="Later", starts_at=at(days=30))
    db.session.add_all([draft, overdue])
    db.session.commit()
    page = organiser_client.get("/staff/").text
    assert (
        f'<a href="/staff/surveys/{draft.id}">Its follow-up survey is still a draft: schedule it</a>'
        in card_of(page, "Soon")
    )
    assert "Its survey is due and not sent" in card_of(page, "Overdue")
    assert "survey" not in card_of(page, later.title).lower().replace("registrations", "")


def test_the_bookings_chart_has_its_numbers_a_caption_and_a_table(make_event, organiser_client):
    event = make_event(title="Charted")
    make_booking(event, "a@example.com", "b@example.com")
    card = card_of(organiser_client.get("/staff/").text, "Charted")
    assert "<figcaption>Registrations a day, last 14 days</figcaption>" in card
    today = utcnow()
    label = re.search(r'role="img" aria-label="([^"]+)"', card).group(1)
    assert label.startswith("2 registration(s) from ")
    assert f"the busiest day was {today:%-d %b} with 2." in label
    assert '<text x="' in card and ">2</text>" in card  # the count written on its bar
    assert f"<td>{today:%a %-d %b}</td><td>2</td>" in card
    assert "<script" not in card


def test_hostile_titles_are_shown_as_text(make_event, organiser_client):
    make_event(title="<script>alert(1)</script> {{ 7*7 }}")
    page = organiser_client.get("/staff/").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in page


def test_the_page_takes_the_same_queries_for_one_event_or_ten_with_many_bookings(
    app, make_event, organiser_client
):
    def queries_now() -> int:
        organiser_client.get("/staff/")  # warm: the session, the templates
        with count_queries() as statements:
            assert organiser_client.get("/staff/").status_code == 200
        return len(statements)

    first = make_event(capacity=5)
    make_booking(first, "one@example.com")
    one = queries_now()

    for n in range(9):
        event = make_event(capacity=4)
        for b in range(3):
            make_booking(
                event, f"p{n}-{b}-1@example.com", f"p{n}-{b}-2@example.com",
                business=BusinessDetails(f"Business {n}-{b}", SizeBand.small, is_member=bool(b % 2)),
            )  # fmt: skip
        enqueue(key=f"x{n}", to=f"p{n}-0-1@example.com", subject="s", template="test_message")
    db.session.commit()
    assert queries_now() == one


def test_the_door_team_sees_no_figures(make_event, checkin_client):
    make_event(title="Cyber seminar")
    page = checkin_client.get("/staff/").text
    assert "Cyber seminar" not in page and "Open check-in" in page
