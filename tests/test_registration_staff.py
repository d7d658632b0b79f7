"""Staff registrations for one event: counts, the searchable list, promote, cancel, resend,
booking by hand, the CSV export, and who may do any of it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from chamber.core.csvexport import BOM, csv_bytes, neutralise
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.members.models import SizeBand
from chamber.registration import manage, services, staff
from chamber.registration.models import Booking, Delegate
from chamber.registration.services import BusinessDetails, DelegateDetails
from tests.factories import OCTREE, make_booking
from tests.support import count_queries, csrf_token, post_form
from tests.test_access import committed_rows

ASHBOURNE = BusinessDetails("Ashbourne Insurance", SizeBand.large, "Insurance", "Hitchin")
TINY = BusinessDetails("Tiny_Co 100%", SizeBand.micro, "Retail", "Letchworth")


def person(n: int | str, name: str | None = None) -> DelegateDetails:
    return DelegateDetails(name=name or f"Person {n}", email=f"person{n}@example.com")


def delegate(email: str) -> Delegate:
    return db.session.scalars(db.select(Delegate).where(Delegate.email_normalised == email)).one()


def statuses(event) -> dict[str, str]:
    rows = db.session.execute(
        db.select(Delegate.email_normalised, Delegate.status).where(Delegate.event_id == event.id)
    )
    return {email: status.value for email, status in rows}


def outbox_keys(prefix: str = "") -> list[str]:
    return sorted(
        db.session.scalars(
            db.select(OutboxMessage.key).where(OutboxMessage.key.like(f"{prefix}%"))
        ).all()
    )


def list_path(event) -> str:
    return f"/staff/events/{event.id}/registrations"


def act(client, event, target: Delegate, action: str, **extra):
    return post_form(
        client,
        f"{list_path(event)}/{target.id}/{action}",
        extra,
        token_from=list_path(event),
        follow_redirects=True,
    )


@pytest.fixture
def seminar(make_event):
    """Capacity 3: Octree (small, member) has two seats; Ashbourne (large) one seat and one
    waiting; Tiny (micro) cancelled its only delegate. Persons 1 and 3 have checked in."""
    event = make_event(capacity=3, business_limit=5, title="Cyber seminar")
    make_booking(event, person(1, "Zoë O'Brien"), person(2), business=OCTREE)
    make_booking(event, person(3), person(4, "Wendy Waiting"), business=ASHBOURNE)
    tiny = make_booking(event, person(5), business=TINY).waitlisted[0]
    services.cancel_delegate(event, tiny)
    for email in ("person1@example.com", "person3@example.com"):
        delegate(email).checked_in_at = datetime.now(UTC)
    db.session.commit()
    return event


# --- counts --------------------------------------------------------------------------------------


def test_counts_and_breakdowns_by_size_and_membership(seminar, make_event):
    make_booking(
        make_event(), person(9), business=TINY
    )  # another event's delegates are not counted
    counts = staff.registration_counts(seminar.id)

    assert counts.total == staff.Tally(
        confirmed=3, waitlisted=1, cancelled=1, checked_in=2, businesses=2, businesses_attended=2
    )
    bands = counts.by_size_band
    assert list(bands) == [SizeBand.micro, SizeBand.small, SizeBand.medium, SizeBand.large]
    assert bands[SizeBand.small] == staff.Tally(2, 0, 0, 1, 1, 1)
    assert bands[SizeBand.large] == staff.Tally(1, 1, 0, 1, 1, 1)
    assert bands[SizeBand.micro] == staff.Tally(0, 0, 1, 0, 0, 0)  # cancelled: no business
    assert bands[SizeBand.medium] == staff.Tally()
    assert counts.by_membership[True] == staff.Tally(2, 0, 0, 1, 1, 1)
    assert counts.by_membership[False] == staff.Tally(1, 1, 1, 1, 1, 1)


def test_the_page_shows_the_counts_and_the_event_page_links_to_it(organiser_client, seminar):
    page = organiser_client.get(list_path(seminar))
    assert page.status_code == 200
    for text in (
        "<strong>3</strong> confirmed",
        "<strong>1</strong> waiting",
        "<strong>1</strong> cancelled",
        "<strong>2</strong> checked in",
        "<strong>2</strong> businesses registered",
        "<strong>2</strong> businesses attended",
        "By business size",
        "By Chamber membership",
    ):
        assert text in page.text, text
    event_page = organiser_client.get(f"/staff/events/{seminar.id}")
    assert f'href="{list_path(seminar)}"' in event_page.text
    assert "<strong>3</strong> confirmed" in event_page.text


def test_an_event_without_bookings_says_so(organiser_client, make_event):
    page = organiser_client.get(list_path(make_event()))
    assert page.status_code == 200
    assert "Nobody has booked yet" in page.text
    assert "<strong>0</strong> confirmed" in page.text


# --- the list ------------------------------------------------------------------------------------


def names_listed(client, event, **args) -> list[str]:
    page = client.get(list_path(event), query_string=args)
    assert page.status_code == 200
    rows = page.text.split('<tr id="delegate-')[1:]
    return [row.split("<strong>")[1].split("</strong>")[0] for row in rows]


def test_the_list_shows_business_status_place_in_line_check_in_and_needs(
    organiser_client, make_event
):
    event = make_event(capacity=1, business_limit=5, starts_at=datetime(2030, 7, 4, 7, tzinfo=UTC))
    make_booking(event, person(1), business=OCTREE)
    second = DelegateDetails("Second", "second@example.com")
    make_booking(event, person(2), second, business=ASHBOURNE, source="web", commit=False)
    delegate("second@example.com").needs = "Vegetarian; step-free access"
    delegate("person1@example.com").checked_in_at = datetime(2030, 7, 4, 7, 5, tzinfo=UTC)
    db.session.commit()
    text = organiser_client.get(list_path(event)).text
    assert "Octree Ltd" in text and "Small, member" in text and "Ashbourne Insurance" in text
    assert "Waiting #1" in text and "Waiting #2" in text
    assert "4 Jul 08:05" in text  # checked in, shown in London time
    assert "Vegetarian; step-free access" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("octREE", ["Person 2", "Zoë O'Brien"]),  # business, any case
        ("PERSON3@", ["Person 3"]),  # email
        ("waiting", ["Wendy Waiting"]),  # name
        ("%", ["Person 5"]),  # a literal %, not a wildcard ("Tiny_Co 100%")
        ("y_c", ["Person 5"]),
        ("_", ["Person 5"]),  # a literal _, not "any one character"
        ("nobody at all", []),
    ],
)
def test_search_finds_name_email_or_business_as_typed(organiser_client, seminar, query, expected):
    found = names_listed(organiser_client, seminar, q=query)
    assert [name.replace("&#39;", "'") for name in found] == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"status": "confirmed"}, {"Person 2", "Person 3", "Zoë O&#39;Brien"}),
        ({"status": "waitlisted"}, {"Wendy Waiting"}),
        ({"status": "cancelled"}, {"Person 5"}),
        ({"band": "large"}, {"Person 3", "Wendy Waiting"}),
        ({"band": "micro", "status": "confirmed"}, set()),
        ({"member": "yes"}, {"Person 2", "Zoë O&#39;Brien"}),
        ({"member": "no", "status": "waitlisted"}, {"Wendy Waiting"}),
        ({"status": "<script>", "band": "huge", "member": "maybe"}, None),  # ignored: everyone
    ],
)
def test_filters_by_status_size_and_membership(organiser_client, seminar, args, expected):
    everyone = {"Person 2", "Person 3", "Person 5", "Wendy Waiting", "Zoë O&#39;Brien"}
    assert set(names_listed(organiser_client, seminar, **args)) == (
        everyone if expected is None else expected
    )


def test_sorting_by_status_puts_the_waiting_list_in_its_order(organiser_client, make_event):
    event = make_event(capacity=1, business_limit=5)
    make_booking(event, person(1, "Aaron"), person(2, "Zed"), person(3, "Mia"))
    assert names_listed(organiser_client, event) == ["Aaron", "Mia", "Zed"]
    assert names_listed(organiser_client, event, sort="status") == ["Aaron", "Zed", "Mia"]
    # The waiting list on its own is shown in its order, unless staff ask for another.
    assert names_listed(organiser_client, event, status="waitlisted") == ["Zed", "Mia"]
    assert names_listed(organiser_client, event, status="waitlisted", sort="name") == ["Mia", "Zed"]


def test_the_list_is_paginated_and_pages_keep_the_filters(
    organiser_client, make_event, monkeypatch
):
    monkeypatch.setattr(manage, "PER_PAGE", 5)
    event = make_event(capacity=100, business_limit=20)
    make_booking(event, *(person(n, f"Delegate {n:02d}") for n in range(12)))
    make_booking(event, person("x", "Someone Else"), business=ASHBOURNE)
    first = organiser_client.get(list_path(event), query_string={"band": "small"})
    assert "Page 1 of 3" in first.text and "Showing 1 to 5 of 12 delegates matching" in first.text
    assert f'href="{list_path(event)}?page=2&amp;band=small"' in first.text
    last = names_listed(organiser_client, event, band="small", page=3)
    assert last == ["Delegate 10", "Delegate 11"]
    assert names_listed(organiser_client, event, band="small", page=999) == []


def test_the_number_of_queries_does_not_grow_with_the_delegates(organiser_client, make_event):
    def queries_for(event) -> int:
        organiser_client.get(list_path(event))  # warm up: the session, the login
        with count_queries() as statements:
            assert organiser_client.get(list_path(event)).status_code == 200
        return len(statements)

    one = make_event(capacity=0)
    make_booking(one, person("solo"))
    many = make_event(capacity=20, business_limit=1)
    for n in range(40):
        business = BusinessDetails(f"Business {n}", list(SizeBand)[n % 4], is_member=n % 2 == 0)
        make_booking(many, person(n), business=business)
    assert queries_for(one) == queries_for(many)


def test_every_order_pages_through_everyone_once(organiser_client, make_event, monkeypatch):
    """Page boundaries in each order and filter: every delegate once, in the order asked for, with
    names compared in any case and the same name ordered by booking."""
    monkeypatch.setattr(manage, "PER_PAGE", 3)
    RANK = {"confirmed": 0, "waitlisted": 1, "cancelled": 2}  # noqa: N806
    event = make_event(capacity=5, business_limit=10)
    names = ["bea", "Ada", "Carl", "Ada", "Zed", "ann", "Ed", "Bea"]
    for n, name in enumerate(names):
        business = BusinessDetails(
            f"{'ZYX'[n % 3]} Business", list(SizeBand)[n % 4], is_member=n % 2 == 0
        )
        make_booking(event, person(n, name), business=business)
    services.cancel_delegate(event, delegate("person1@example.com"))  # Ada; Ann takes the seat
    db.session.commit()
    everyone = db.session.scalars(db.select(Delegate).where(Delegate.event_id == event.id)).all()
    order = {
        "name": lambda d: (d.name.lower(), d.id),
        "business": lambda d: (d.booking.organisation.name.lower(), d.name.lower(), d.id),
        "booked": lambda d: (d.created_at, d.id),
        "status": lambda d: (RANK[d.status.value], d.status_changed_at, d.id),
    }

    def listed(**args) -> list[str]:
        found, page = [], 1
        while names := names_listed(organiser_client, event, page=page, **args):
            found += names
            page += 1
        assert page == 1 + -(-len(found) // 3)  # every page but the last is full
        return found

    for sort, key in order.items():
        assert listed(sort=sort) == [d.name for d in sorted(everyone, key=key)], sort
    waiting = [d for d in everyone if d.status.value == "waitlisted"]
    assert listed(status="waitlisted", sort="name") == [
        d.name for d in sorted(waiting, key=order["name"])
    ]
    members = [d for d in everyone if d.booking.organisation.is_member]
    assert listed(member="yes") == [d.name for d in sorted(members, key=order["name"])]
    assert listed(q="X BUSINESS") == [
        d.name for d in sorted(everyone, key=order["name"]) if d.booking.organisation.name[0] == "X"
    ]


def test_the_queries_of_every_kind_of_page_do_not_grow_with_the_delegates(
    organiser_client, make_event, monkeypatch
):
    monkeypatch.setattr(manage, "PER_PAGE", 2)

    def queries_for(event, **args) -> int:
        organiser_client.get(list_path(event), query_string=args)  # warm up
        with count_queries() as statements:
            assert len(names_listed(organiser_client, event, **args)) == 2
        return len(statements)

    few, many = make_event(capacity=3, business_limit=5), make_event(capacity=30, business_limit=1)
    for event, count in ((few, 8), (many, 40)):
        for n in range(count):
            business = BusinessDetails(f"Business {n}", list(SizeBand)[n % 4], is_member=n % 2 == 0)
            make_booking(event, person(f"{event.id}-{n}"), business=business)
    pages = (
        {}, {"page": 2}, {"q": "person"}, {"q": "business"}, {"sort": "business"},
        {"sort": "status", "page": 2}, {"status": "confirmed"}, {"band": "small", "member": "no"},
    )  # fmt: skip
    assert [queries_for(few, **args) for args in pages] == [
        queries_for(many, **args) for args in pages
    ]


@pytest.mark.parametrize(
    "args",
    [
        {"q": "a\x00b"},
        {"q": "x" * 5000},
        {"q": "<script>alert(1)</script>"},
        {"page": "abc"},
        {"page": "-3"},
        {"page": "1" + "0" * 30},
        {"page": "2", "sort": "business", "q": "%_\\"},
        {"sort": "password"},
    ],
)
def test_strange_query_strings_are_harmless(organiser_client, seminar, args):
    response = organiser_client.get(list_path(seminar), query_string=args)
    assert response.status_code == 200
    assert "<script>alert" not in response.text


# --- promote -------------------------------------------------------------------------------------


def test_promote_is_refused_while_the_event_is_full(organiser_client, seminar):
    wendy = delegate("person4@example.com")
    page = act(organiser_client, seminar, wendy, "promote")
    assert page.status_code == 200
    assert "No seat is free: 3 of 3 places are taken" in page.text
    assert "raise the event&#39;s capacity" in page.text
    assert statuses(seminar)["person4@example.com"] == "waitlisted"
    assert outbox_keys("promoted:") == []


def test_promote_gives_a_free_seat_and_emails_the_delegate(organiser_client, seminar):
    seminar.capacity = 4  # staff raised the capacity on the event form
    db.session.commit()
    wendy = delegate("person4@example.com")
    page = act(organiser_client, seminar, wendy, "promote", q="wendy")
    assert "Promoted Wendy Waiting from the waiting list" in page.text
    assert statuses(seminar)["person4@example.com"] == "confirmed"
    assert [key.split(":")[:3] for key in outbox_keys("promoted:")] == [
        ["promoted", "delegate", str(wendy.id)]
    ]


def test_promote_goes_back_to_the_list_as_it_was(organiser_client, seminar):
    wendy = delegate("person4@example.com")
    response = post_form(
        organiser_client,
        f"{list_path(seminar)}/{wendy.id}/promote",
        {"q": "wendy", "status": "waitlisted", "page": "1", "evil": "x"},
        token_from=list_path(seminar),
    )
    assert response.status_code == 302
    assert response.headers["Location"] == (
        f"{list_path(seminar)}?q=wendy&status=waitlisted&page=1"
    )


def test_a_confirmed_delegate_cannot_be_promoted(organiser_client, seminar):
    page = act(organiser_client, seminar, delegate("person1@example.com"), "promote")
    assert "is not on the waiting list" in page.text


# --- cancel --------------------------------------------------------------------------------------


def test_cancel_asks_first_and_says_who_gets_the_seat(organiser_client, seminar):
    zoe = delegate("person1@example.com")
    page = organiser_client.get(f"{list_path(seminar)}/{zoe.id}/cancel")
    assert page.status_code == 200
    assert "Cancel Zoë O&#39;Brien's place?" in page.text
    assert (
        "<strong>Their seat goes straight to Wendy Waiting</strong>, first on the waiting list"
        in (page.text)
    )
    assert statuses(seminar)["person1@example.com"] == "confirmed"


def test_cancelling_gives_the_seat_to_the_first_waiting_who_is_emailed(organiser_client, seminar):
    zoe = delegate("person1@example.com")
    page = act(organiser_client, seminar, zoe, "cancel")
    assert "Cancelled Zoë O&#39;Brien&#39;s place." in page.text
    assert "Their seat went to Wendy Waiting" in page.text
    found = statuses(seminar)
    assert (found["person1@example.com"], found["person4@example.com"]) == (
        "cancelled",
        "confirmed",
    )
    wendy = delegate("person4@example.com")
    promoted = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("promoted:%"))
    ).one()
    assert promoted.to_address == wendy.email_normalised
    assert promoted.subject.startswith("Good news: you now have a place")


def test_cancelling_twice_says_it_is_already_done(organiser_client, seminar):
    tiny = delegate("person5@example.com")
    page = act(organiser_client, seminar, tiny, "cancel")
    assert "already cancelled" in page.text
    assert outbox_keys() == []


# --- resend --------------------------------------------------------------------------------------


def test_resend_queues_a_new_confirmation_each_time(organiser_client, seminar):
    zoe = delegate("person1@example.com")
    first = act(organiser_client, seminar, zoe, "resend")
    assert "A fresh confirmation email is on its way to Zoë O&#39;Brien" in first.text
    act(organiser_client, seminar, zoe, "resend")
    keys = outbox_keys(f"confirmed:delegate:{zoe.id}:resent:")
    assert len(keys) == 2 and len(set(keys)) == 2
    messages = db.session.scalars(db.select(OutboxMessage)).all()
    assert {m.to_address for m in messages} == {"person1@example.com"}
    assert all(m.subject.startswith("Your place at") for m in messages)


@pytest.mark.parametrize("email", ["person4@example.com", "person5@example.com"])
def test_resend_is_only_for_confirmed_delegates(organiser_client, seminar, email):
    page = act(organiser_client, seminar, delegate(email), "resend")
    assert "no confirmed place, so there is no confirmation to send" in page.text
    assert outbox_keys() == []


@pytest.mark.parametrize("why", ["over", "anonymised"])
def test_a_place_at_an_event_that_is_over_or_anonymised_is_kept_as_it_is(
    organiser_client, seminar, why
):
    """No resend, promote or cancel: an event that is over keeps its places as the record of who
    was booked and who came, and an anonymised place has only a made-up address to email. The
    list offers none of them, and a forged post is refused with the reason, emailing nobody."""
    zoe, wendy = delegate("person1@example.com"), delegate("person4@example.com")
    before = statuses(seminar)
    if why == "over":
        seminar.starts_at -= timedelta(days=60)
        seminar.ends_at -= timedelta(days=60)
        expected = "The event is over, so its places stay as they were"
    else:
        zoe.anonymised_at = wendy.anonymised_at = datetime.now(UTC)
        expected = "This place&#39;s details were anonymised"
    db.session.commit()
    listed = organiser_client.get(list_path(seminar)).text
    for target in (zoe, wendy):
        row = listed.split(f'id="delegate-{target.id}"')[1].split("</tr>")[0]
        assert "Resend" not in row and "Promote" not in row and "Cancel" not in row
    for target, action in ((zoe, "resend"), (wendy, "promote"), (zoe, "cancel")):
        page = act(organiser_client, seminar, target, action)
        assert expected in page.text, action
    cancelling = organiser_client.get(
        f"{list_path(seminar)}/{zoe.id}/cancel", follow_redirects=True
    )
    assert expected in cancelling.text
    db.session.expire_all()
    assert statuses(seminar) == before
    assert outbox_keys() == []
    if why == "over":  # nor does it take more bookings
        assert "Add a booking" not in listed
        adding = organiser_client.get(f"{list_path(seminar)}/new", follow_redirects=True)
        assert "The event is over, so it takes no more bookings." in adding.text
        forged = post_form(
            organiser_client, f"{list_path(seminar)}/new", BOOKING, token_from=list_path(seminar)
        )
        assert forged.status_code in (302, 400)
        db.session.expire_all()
        assert statuses(seminar) == before and outbox_keys() == []


# --- booking by hand -----------------------------------------------------------------------------

BOOKING = {
    "business_name": "Hitchin Bakery",
    "size_band": "micro",
    "sector": "Food",
    "town_or_postcode": "SG5 1AA",
    "is_member": "no",
    "booker_name": "",
    "booker_email": "",
    "delegates-0-name": "Bea Baker",
    "delegates-0-email": "Bea@Bakery.example",
    "delegates-0-job_title": "Owner",
    "delegates-0-needs": "Gluten free",
}


def new_path(event) -> str:
    return f"{list_path(event)}/new"


def test_staff_book_by_hand_after_booking_closes_and_emails_go_out(organiser_client, make_event):
    event = make_event(capacity=1, registration_closes_at=datetime.now(UTC) - timedelta(hours=1))
    response = post_form(
        organiser_client,
        new_path(event),
        {**BOOKING, "delegates-1-name": "Second Baker", "delegates-1-email": "two@bakery.example"},
    )
    assert response.status_code == 302, response.text
    page = organiser_client.get(response.headers["Location"])
    assert "Booked 2 delegates for Hitchin Bakery (1 with a place, 1 on the waiting list)" in (
        page.text
    )
    assert statuses(event) == {
        "bea@bakery.example": "confirmed",
        "two@bakery.example": "waitlisted",
    }
    booking = db.session.scalars(db.select(Booking)).one()
    assert booking.source == "staff" and booking.privacy_acknowledged_at is None
    assert booking.booker.email == "bea@bakery.example"  # no booker given: the first delegate
    assert delegate("bea@bakery.example").needs == "Gluten free"
    assert sorted(key.split(":")[0] for key in outbox_keys()) == [
        "booking",
        "confirmed",
        "waitlisted",
    ]


def test_a_named_booker_gets_the_manage_link(organiser_client, make_event):
    event = make_event()
    response = post_form(
        organiser_client,
        new_path(event),
        {**BOOKING, "booker_name": "Pat Booker", "booker_email": "pat@bakery.example"},
    )
    assert response.status_code == 302
    booker_mail = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("booking:%"))
    ).one()
    assert booker_mail.to_address == "pat@bakery.example"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"business_name": ""}, "Enter your business"),
        ({"size_band": None}, "Choose how many people"),
        (
            {f"delegates-0-{f}": "" for f in ("name", "email", "job_title", "needs")},
            "Enter the first delegate",
        ),
        ({"delegates-0-email": ""}, "Enter delegate 1&#39;s email address"),
        ({"delegates-0-name": "N" * 121}, "Full name must be 120 characters or fewer"),
        ({"business_name": "B" * 201}, "Business name must be 200 characters or fewer"),
        ({"delegates-0-email": "not-an-email"}, "right format"),
        ({"delegates-0-email": "<b>x</b>@example.com"}, "right format"),
        ({"booker_email": "pat@bakery.example"}, "Enter the booker&#39;s name"),
        ({"booker_name": "Pat"}, "Enter the booker&#39;s email address"),
        ({"delegates-0-name": "Bea\x07"}, "contains a character that is not allowed"),
        (
            {
                f"delegates-{n}-{f}": f"x{n}@b.example"
                for n in range(1, 4)
                for f in ("name", "email")
            },
            "You can book up to 3 delegates here",
        ),
    ],
)
def test_bad_booking_input_comes_back_with_the_reason_and_stores_nothing(
    organiser_client, make_event, changes, message
):
    event = make_event(business_limit=3)
    before = committed_rows()
    data = {k: v for k, v in {**BOOKING, **changes}.items() if v is not None}
    response = post_form(organiser_client, new_path(event), data)
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert message in response.text
    assert committed_rows() == before


def test_the_per_business_limit_counts_earlier_bookings(organiser_client, make_event):
    event = make_event(business_limit=1)
    make_booking(event, person(1), business=BusinessDetails("Hitchin Bakery Ltd", SizeBand.micro))
    response = post_form(organiser_client, new_path(event), BOOKING)
    assert response.status_code == 400
    assert "Each business may book up to 1 place for this event" in response.text
    assert len(statuses(event)) == 1


def test_someone_already_booked_is_named_not_booked_twice(organiser_client, make_event):
    event = make_event()
    make_booking(event, DelegateDetails("Bea Baker", "bea@bakery.example"))
    response = post_form(organiser_client, new_path(event), BOOKING)
    assert response.status_code == 400
    assert "This person already has a place" in response.text
    assert len(statuses(event)) == 1 and outbox_keys() == []


def test_a_cancelled_event_takes_no_bookings(organiser_client, make_event):
    event = make_event(status="cancelled")
    assert "This event has been cancelled" in organiser_client.get(new_path(event)).text
    response = post_form(organiser_client, new_path(event), BOOKING)
    assert response.status_code == 400
    assert statuses(event) == {}


def test_markup_is_stored_as_typed_and_shown_escaped(organiser_client, make_event):
    event = make_event()
    hostile = "<script>alert(1)</script>'; DROP TABLE delegate; --"
    data = {**BOOKING, "business_name": hostile, "delegates-0-name": hostile}
    assert post_form(organiser_client, new_path(event), data).status_code == 302
    page = organiser_client.get(list_path(event), query_string={"q": "<script>"})
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert delegate("bea@bakery.example").name == hostile


# --- who may do what -----------------------------------------------------------------------------


def staff_urls(event, target: Delegate) -> list[tuple[str, str]]:
    base = list_path(event)
    return [
        ("GET", base),
        ("GET", f"{base}.csv"),
        ("GET", f"{base}/new"),
        ("POST", f"{base}/new"),
        ("GET", f"{base}/{target.id}/cancel"),
        ("POST", f"{base}/{target.id}/cancel"),
        ("POST", f"{base}/{target.id}/promote"),
        ("POST", f"{base}/{target.id}/resend"),
    ]


def test_a_forged_csrf_token_is_refused_and_changes_nothing(organiser_client, seminar):
    seminar.capacity = 10
    db.session.commit()
    before = committed_rows()
    for method, path in staff_urls(seminar, delegate("person4@example.com")):
        if method != "POST":
            continue
        for data in ({}, {"csrf_token": "forged"}, {**BOOKING, "csrf_token": "x" * 91}):
            response = organiser_client.post(path, data=data)
            assert response.status_code == 400, path
            assert "The form could not be sent" in response.text
    assert committed_rows() == before


def test_another_events_delegate_is_not_found_through_this_event(
    organiser_client, seminar, make_event
):
    other = make_event(title="Another seminar")
    stranger = make_booking(other, person(99)).confirmed[0]
    token = csrf_token(organiser_client, list_path(seminar))
    before = committed_rows()
    for method, path in staff_urls(seminar, stranger):
        if str(stranger.id) not in path:
            continue
        response = organiser_client.open(path, method=method, data={"csrf_token": token})
        assert response.status_code == 404, path
    assert committed_rows() == before


def test_the_door_volunteer_is_refused_and_a_visitor_sent_to_log_in(
    checkin_client, client, seminar
):
    target = delegate("person4@example.com")
    token = csrf_token(checkin_client, "/staff/")
    before = committed_rows()
    for method, path in staff_urls(seminar, target):
        refused = checkin_client.open(path, method=method, data={"csrf_token": token})
        assert refused.status_code == 403, path
        anonymous = client.open(path, method=method, data={"csrf_token": csrf_token(client)})
        assert anonymous.status_code == 302, path
        assert anonymous.headers["Location"].startswith("/staff/login?next=")
    assert committed_rows() == before


def test_an_admin_sees_the_registrations_too(admin_client, seminar):
    assert admin_client.get(list_path(seminar)).status_code == 200


# --- the CSV export ------------------------------------------------------------------------------


def test_the_csv_opens_cleanly_in_a_spreadsheet_and_neutralises_formulas(
    organiser_client, make_event
):
    event = make_event(
        slug="cyber-2030", capacity=1, business_limit=5,
        starts_at=datetime(2030, 7, 4, 7, tzinfo=UTC),
    )  # fmt: skip
    hostile = '=HYPERLINK("http://x")'
    make_booking(
        event,
        DelegateDetails(hostile, "a@example.com", phone="+44 1438 000000"),
        DelegateDetails("Zoë Ødegård 李", "zoe@example.com", needs="Line one\nline two"),
        business=BusinessDetails("@Evil Ltd", SizeBand.medium, "-1+1", "SG1", is_member=True),
        booker=person(1),
        source="web",
        now=datetime(2030, 6, 1, 12, 30, tzinfo=UTC),
        commit=False,
    )
    delegate("a@example.com").checked_in_at = datetime(2030, 7, 4, 7, 5, tzinfo=UTC)
    db.session.commit()

    response = organiser_client.get(f"{list_path(event)}.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="cyber-2030-delegates.csv"'
    )
    body = response.data
    assert body.startswith(BOM.encode())
    assert body.count(b"\r\n") == 3  # header and two rows; the newline in needs is quoted
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows[0] == [
        "Name", "Email", "Job title", "Phone", "Access or dietary needs", "Business", "Size band",
        "Sector", "Town or postcode", "Chamber member", "Status", "Waiting list position",
        "Booked at (Europe/London)", "Checked in at (Europe/London)",
    ]  # fmt: skip
    first, second = rows[1], rows[2]
    assert first[0] == "'" + hostile
    assert first[3] == "'+44 1438 000000"
    assert first[5] == "'@Evil Ltd" and first[7] == "'-1+1"
    assert first[9:] == ["Yes", "Confirmed", "", "2030-06-01 13:30", "2030-07-04 08:05"]
    assert second[0] == "Zoë Ødegård 李" and second[4] == "Line one\nline two"
    assert second[10:12] == ["Waitlisted", "1"]
    assert second[6] == SizeBand.medium.label


def test_the_csv_of_an_event_without_delegates_is_just_the_header(organiser_client, make_event):
    response = organiser_client.get(f"{list_path(make_event())}.csv")
    assert response.data.startswith(BOM.encode() + b'"Name","Email",')
    assert response.data.count(b"\r\n") == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20", "'+44 20"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("plain = fine", "plain = fine"),
        ("", ""),
        (None, ""),
        (-2, "-2"),  # a number is data, not a formula someone typed
        (3, "3"),
    ],
)
def test_neutralise_makes_formula_cells_plain_text(value, expected):
    assert neutralise(value) == expected


def test_csv_bytes_quotes_every_cell():
    """Quoted whatever it holds: a spreadsheet that splits on semicolons (Excel where the decimal
    mark is a comma) must not split `Bob;=2+5` and run `=2+5` as a formula."""
    body = csv_bytes(["a", "=b"], [['x,"y"', "line\nbreak"], [None, 7], ["Bob;=2+5", "Ann"]])
    assert body == (
        BOM.encode()
        + b'"a","\'=b"\r\n'
        + b'"x,""y""","line\nbreak"\r\n'
        + b'"","7"\r\n'
        + b'"Bob;=2+5","Ann"\r\n'
    )
    # Read as such a spreadsheet would: the cell stays whole, and no cell begins a formula.
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert not any(cell.lstrip('"').startswith("=") for row in rows for cell in row), rows
