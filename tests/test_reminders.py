"""The reminder before an event: when it goes (in the event's zone, across clock changes, moving
with the event), once per confirmed delegate however many workers run, never for a cancelled
place or event, what it says, and the staff settings."""

from __future__ import annotations

import html
import threading
from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from chamber.core.times import local_to_utc
from chamber.events.models import EventStatus
from chamber.extensions import db
from chamber.mail.delivery import deliver_due
from chamber.mail.models import MailKind, OutboxMessage
from chamber.registration import reminders
from chamber.registration.models import DelegateReminder, DelegateStatus
from chamber.worker import Worker
from tests.factories import at, make_booking
from tests.support import count_queries, post_form


def london(*args) -> datetime:
    return local_to_utc(datetime(*args), "Europe/London")


def reminder_keys() -> set[str]:
    return set(
        db.session.scalars(db.select(OutboxMessage.key).where(OutboxMessage.key.like("reminder:%")))
    )


# --- when ----------------------------------------------------------------------------------------


def test_two_days_before_at_nine_in_london_across_the_clocks_going_forward(make_event):
    # The clocks go forward on Sunday 28 March 2027: the event is in summer time, the reminder not.
    event = make_event(starts_at=london(2027, 3, 29, 10, 0))
    assert reminders.reminder_at(event) == datetime(2027, 3, 27, 9, 0, tzinfo=UTC)
    assert event.local(reminders.reminder_at(event)).strftime("%a %H:%M") == "Sat 09:00"


def test_two_days_before_at_nine_in_london_across_the_clocks_going_back(make_event):
    # Back on Sunday 31 October 2027: the reminder is in summer time (08:00 UTC), the event not.
    event = make_event(starts_at=london(2027, 11, 1, 10, 0))
    assert reminders.reminder_at(event) == datetime(2027, 10, 30, 8, 0, tzinfo=UTC)


def test_a_new_york_event_is_reminded_at_nine_new_york_time(make_event):
    # US clocks go forward on 14 March 2027: 09:00 EST on the 13th is 14:00 UTC.
    starts = local_to_utc(datetime(2027, 3, 15, 10, 0), "America/New_York")
    event = make_event(starts_at=starts, timezone="America/New_York")
    assert reminders.reminder_at(event) == datetime(2027, 3, 13, 14, 0, tzinfo=UTC)


def test_a_time_the_clocks_skip_goes_just_after_the_gap_and_a_moved_event_moves_it(make_event):
    event = make_event(starts_at=london(2027, 3, 28, 10, 0))
    event.reminder_days_before, event.reminder_time = 0, time(1, 30)  # 01:30 never happens
    # The first moment after the gap: 02:00 BST, when the clocks have gone forward.
    assert reminders.reminder_at(event) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    # Lord Howe Island goes forward half an hour, 02:00 to 02:30, on 3 October 2027.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    starts = datetime(2027, 10, 3, 10, 0, tzinfo=lord_howe).astimezone(UTC)
    skipped = reminders.reminder_at_for(starts, "Australia/Lord_Howe", 0, time(2, 15))
    assert skipped.astimezone(lord_howe).time() == time(2, 30)
    event.reminder_time = time(9, 0)
    event.starts_at, event.ends_at = london(2027, 6, 10, 10, 0), london(2027, 6, 10, 12, 0)
    assert reminders.reminder_at(event) == london(2027, 6, 10, 9, 0)
    event.reminder_enabled = False
    assert reminders.reminder_at(event) is None


# --- who, and once -------------------------------------------------------------------------------


def test_each_confirmed_delegate_gets_one_reminder_however_often_the_worker_runs(app, make_event):
    event = make_event(starts_at=at(1, 10), capacity=2)  # the reminder time has passed
    booked = make_booking(event, "ann@a.example", "bob@a.example", "cy@a.example")
    waiting = booked.waitlisted[0]
    cancelled = make_booking(event, "dee@d.example", business="Dee Ltd").waitlisted[0]
    cancelled.status = DelegateStatus.cancelled
    db.session.commit()
    echoed: list[str] = []
    worker = Worker(app, echo=echoed.append)
    worker.send_event_reminders()
    worker.send_event_reminders()
    assert reminders.send_due().queued == 0
    ids = [d.id for d in booked.confirmed]
    assert reminder_keys() == {f"reminder:{event.id}:{i}" for i in ids}
    assert f"reminder:{event.id}:{waiting.id}" not in reminder_keys()
    assert echoed == ["Reminders: 2 queued for 1 event(s)"]
    kinds = db.session.scalars(
        db.select(OutboxMessage.kind).where(OutboxMessage.key.like("reminder:%"))
    ).all()
    assert set(kinds) == {MailKind.transactional}  # a service message: no consent needed
    assert reminders.reminder_state(event).sent == 2


def test_two_workers_at_once_queue_each_reminder_once(app, make_event):
    event = make_event(starts_at=at(1, 10), capacity=500, business_limit=30)
    make_booking(event, *[f"p{n}@many.example" for n in range(30)])
    event_id = event.id
    db.session.remove()
    start = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def work():
        try:
            with app.app_context():
                start.wait()
                counts.append(reminders.send_event_reminders(event_id, datetime.now(UTC)))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sum(counts) == 30
    assert len(reminder_keys()) == 30
    assert db.session.scalar(db.select(db.func.count(DelegateReminder.id))) == 30


@pytest.mark.parametrize("case", ["cancelled", "draft", "started", "off", "not yet"])
def test_no_reminder_for_a_cancelled_draft_started_or_unreminded_event(case, make_event):
    starts = {"started": at(0, datetime.now(UTC).hour) - timedelta(minutes=30), "not yet": at(5)}
    event = make_event(starts_at=starts.get(case, at(1, 10)))
    make_booking(event, "ann@a.example")
    if case == "cancelled":
        event.status = EventStatus.cancelled
    elif case == "draft":
        event.status = EventStatus.draft
    elif case == "off":
        event.reminder_enabled = False
    db.session.commit()
    assert reminders.send_due().queued == 0
    assert reminder_keys() == set()


def test_someone_who_books_after_the_reminder_went_gets_theirs_at_once(make_event):
    event = make_event(starts_at=at(1, 10))
    make_booking(event, "early@a.example")
    assert reminders.send_due().queued == 1
    late = make_booking(event, "late@b.example", business="Late Ltd").confirmed[0]
    assert reminders.send_due().queued == 1
    assert f"reminder:{event.id}:{late.id}" in reminder_keys()


def test_a_delegate_reminded_before_the_event_moved_is_not_reminded_again(make_event):
    event = make_event(starts_at=at(1, 10))
    make_booking(event, "ann@a.example")
    assert reminders.send_due().queued == 1
    event.starts_at, event.ends_at = (
        event.starts_at + timedelta(days=7),
        event.ends_at + timedelta(days=7),
    )
    db.session.commit()
    later = event.starts_at - timedelta(hours=1)
    assert reminders.send_due(later).queued == 0


# --- what it says --------------------------------------------------------------------------------


def test_the_reminder_says_what_a_delegate_needs_on_the_day(
    app, make_event, make_item, smtp_server
):
    event = make_event(
        starts_at=at(1, 10),
        venue_address="St George's Way",
        venue_town="Stevenage",
        venue_postcode="SG1 1HS",
        parking="Free in the **hotel** car park.",
        access="Step-free; hearing loop <script>alert(1)</script> {{ 7*7 }}",
        what_to_bring="Photo ID [[link:00000000000000000000000000000000:manage:1]]",
    )
    make_item(event, minutes_in=0, title="Welcome and introductions")
    make_booking(event, "ann@a.example")
    reminders.send_due()
    report = deliver_due()
    assert report.sent == 1, report
    message = smtp_server.messages[-1]
    assert message["Subject"].startswith(f"Reminder: {event.title}")
    text = message.get_body(("plain",)).get_content()
    markup = message.get_body(("html",)).get_content()
    for needed in ("Free in the **hotel** car park.", "Welcome and introductions", "London time",
                   "/staff/checkin/scan/", f"/events/{event.slug}.ics", "/r/", "Photo ID"):  # fmt: skip
        assert needed in text, needed
    assert "<strong>hotel</strong>" in markup
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    # Template syntax stays text: never evaluated (the links' random tokens may hold "49").
    assert "hearing loop <script>alert(1)</script> {{ 7*7 }}" in text
    assert "hearing loop <script>alert(1)</script> 49" not in text
    assert "[[link:00000000000000000000000000000000:manage:1]]" in text  # typed text stays text
    map_links = [u for u in html.unescape(markup).split('"') if "openstreetmap" in u]
    assert map_links and map_links[0].startswith("https://www.openstreetmap.org/search?")
    assert parse_qs(urlsplit(map_links[0]).query) == {
        "query": ["St George's Way, Stevenage SG1 1HS"]
    }


def test_a_map_link_is_an_encoded_search_whatever_the_address_says(make_event):
    event = make_event(venue_address='1 "Quote" St & <Co>\njavascript:alert(1)#x?y=z')
    url = reminders.map_url(event)
    assert url.startswith("https://www.openstreetmap.org/search?query=")
    assert parse_qs(urlsplit(url).query)["query"][0].startswith('1 "Quote" St & <Co>')
    assert "#" not in url and "<" not in url and " " not in url


# --- the staff settings --------------------------------------------------------------------------


def reminder_form(**changes) -> dict:
    return {"enabled": "y", "days_before": "2", "at": "09:00", **changes}


def test_staff_change_the_reminder_and_see_when_it_goes(organiser_client, make_event):
    event = make_event(starts_at=london(2027, 3, 29, 10, 0))
    page = f"/staff/events/{event.id}/reminder"
    saved = post_form(organiser_client, page, reminder_form(days_before="3", at="17:30"))
    assert saved.status_code == 302
    db.session.refresh(event)
    assert (event.reminder_days_before, event.reminder_time) == (3, time(17, 30))
    shown = organiser_client.get(f"/staff/events/{event.id}").text
    assert "Friday 26 March 2027 at 17:30" in shown and "London time" in shown
    off = post_form(organiser_client, page, reminder_form(enabled=""))
    assert off.status_code == 302
    assert "Turned off" in organiser_client.get(f"/staff/events/{event.id}").text


@pytest.mark.parametrize(
    "changes",
    [
        {"days_before": "-1"},
        {"days_before": "29"},
        {"days_before": "two"},
        {"days_before": ""},
        {"at": "25:00"},
        {"at": "9am"},
        {"at": "nonsense"},
        {"at": ""},
        {"at": "09:00\r\nBcc: x@example.com"},
        {"at": "0" * 500},
        {"at": "<b>9</b>"},
        {"at": "{{ 9 }}"},
        {"at": "[[link:x]]"},
        {"days_before": "0", "at": "11:00"},  # after the event's 10:00 start
    ],
)
def test_bad_reminder_settings_are_refused_and_nothing_changes(
    organiser_client, make_event, changes
):
    event = make_event(starts_at=london(2027, 3, 29, 10, 0))
    response = post_form(
        organiser_client, f"/staff/events/{event.id}/reminder", reminder_form(**changes)
    )
    assert response.status_code == 400
    assert "There is a problem" in response.text
    db.session.refresh(event)
    assert (event.reminder_days_before, event.reminder_time) == (2, time(9, 0))


def test_the_reminder_form_needs_its_csrf_token(organiser_client, make_event):
    event = make_event()
    page = f"/staff/events/{event.id}/reminder"
    assert organiser_client.post(page, data=reminder_form()).status_code == 400
    forged = organiser_client.post(page, data={**reminder_form(), "csrf_token": "forged"})
    assert forged.status_code == 400
    assert organiser_client.get("/staff/events/999999/reminder").status_code == 404


def test_joining_details_are_edited_with_the_event_and_shown_on_its_page(
    organiser_client, client, make_event
):
    from tests.test_email_links import event_form

    event = make_event()
    edit = f"/staff/events/{event.id}/edit"
    sequence = event.sequence
    saved = post_form(
        organiser_client,
        edit,
        event_form(
            event,
            parking="Use the **multi-storey**",
            access="Lift to floor 1",
            what_to_bring="<img src=x onerror=alert(1)>",
        ),  # fmt: skip
    )
    assert saved.status_code == 302, saved.text
    db.session.refresh(event)
    assert event.parking == "Use the **multi-storey**"
    assert event.sequence == sequence  # not a calendar change: nobody is emailed
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id))) == 0
    page = client.get(f"/events/{event.slug}").text
    assert "<strong>multi-storey</strong>" in page and "Lift to floor 1" in page
    assert "<img" not in page.split("Getting there")[1].split("</section>")[0]
    too_long = post_form(organiser_client, edit, event_form(event, parking="x" * 2001))
    assert too_long.status_code == 400


def test_the_event_staff_page_reads_a_fixed_number_of_queries(
    organiser_client, make_event, organiser
):
    from chamber.registration import event_messages
    from chamber.registration.models import MessageAudience

    event = make_event(starts_at=at(1, 10))

    def queries() -> int:
        with count_queries() as statements:
            assert organiser_client.get(f"/staff/events/{event.id}").status_code == 200
        return len(statements)

    make_booking(event, "a@one.example")
    reminders.send_due()
    draft = event_messages.MessageDraft(MessageAudience.confirmed, "Hello", "Body")
    event_messages.save_draft(event, None, draft, by=organiser)
    db.session.commit()
    few = queries()
    for n in range(5):
        make_booking(event, f"p{n}@many{n}.example", business=f"Many {n} Ltd")
        event_messages.save_draft(event, None, draft, by=organiser)
        db.session.commit()
    reminders.send_due()
    assert queries() == few


def test_one_event_whose_reminders_fail_does_not_stop_the_others(make_event, monkeypatch):
    broken, fine = make_event(starts_at=at(1, 10)), make_event(starts_at=at(1, 11))
    make_booking(broken, "ann@a.example")
    make_booking(fine, "bob@b.example", business="Bob Ltd")
    real = reminders.reminder_context

    def failing(event):
        if event.id == broken.id:
            raise RuntimeError("a template broke")
        return real(event)

    monkeypatch.setattr(reminders, "reminder_context", failing)
    report = reminders.send_due()
    assert (report.queued, report.failed) == (1, [broken.id])
    assert {key.split(":")[1] for key in reminder_keys()} == {str(fine.id)}
    assert db.session.scalar(db.select(db.func.count(DelegateReminder.id))) == 1  # rolled back


def test_a_copy_of_an_event_keeps_its_joining_details_and_reminder_settings(make_event):
    from chamber.events import copying
    from tests.factories import acting_staff

    event = make_event(parking="P1", access="Lift", what_to_bring="ID", reminder_days_before=5,
                       reminder_time=time(7, 45))  # fmt: skip
    copy = copying.copy_event(
        event, copying.EventCopy("Again", event.starts_at + timedelta(days=70)), by=acting_staff()
    )
    assert (copy.parking, copy.access, copy.what_to_bring) == ("P1", "Lift", "ID")
    assert (copy.reminder_days_before, copy.reminder_time) == (5, time(7, 45))
