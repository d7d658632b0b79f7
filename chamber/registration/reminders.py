"""The reminder each confirmed delegate gets before their event: when it goes, what it says, and
the worker's step that queues the ones due, once per delegate.

When: `reminder_days_before` days before the event's start, at `reminder_time` on the clock of
the event's own zone (default two days before at 09:00), worked out from the start each time, so
an event that moves takes its reminder with it. A time the clocks skip goes at the first moment
after the gap. Who: every confirmed delegate of a published event that has not started; someone
confirmed after the reminder time (a late booking, a seat from the waiting list) gets theirs at
the worker's next round. Once: a `delegate_reminder` row per delegate is the claim (two workers
insert it, one wins), and the outbox key `reminder:<event>:<delegate>` guards the message too;
a delegate reminded before the event moved is not reminded again (the move's own email told
them the new time). See docs/reminders.md.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import selectinload

from chamber.auth.models import StaffUser
from chamber.core.dialects import insert_or_skip
from chamber.core.errors import Refusal
from chamber.core.times import NonexistentLocalTime, local_to_utc, utcnow, zone
from chamber.core.transactions import unit_of_work
from chamber.core.urls import external_url
from chamber.events.changes import zone_label
from chamber.events.models import Event, EventStatus
from chamber.events.services import agenda_with_speakers
from chamber.extensions import db
from chamber.mail.services import enqueue
from chamber.registration.models import Booking, Delegate, DelegateReminder, DelegateStatus
from chamber.registration.notifications import own_link

log = logging.getLogger(__name__)

MAX_DAYS_BEFORE = 28  # the event table's check says the same
BATCH = 200  # delegates claimed and queued in one transaction


class ReminderRefused(Refusal):
    """Reminder settings that cannot work; the message says why."""


def reminder_at_for(starts_at: datetime, zone_name: str, days_before: int, at: time) -> datetime:
    """The reminder's moment (UTC): `days_before` days before the local date of `starts_at`, at
    the wall-clock time `at` in `zone_name`. A time that occurs twice (the clocks go back) is its
    first; one the clocks skip goes at the first moment after the gap."""
    local_day = starts_at.astimezone(zone(zone_name)).date() - timedelta(days=days_before)
    wall = datetime.combine(local_day, at.replace(tzinfo=None))
    try:
        return local_to_utc(wall, zone_name)
    except NonexistentLocalTime:  # the clocks skip it: the first wall-clock minute after the gap
        for minutes in range(1, 24 * 60):
            with suppress(NonexistentLocalTime):
                return local_to_utc(wall + timedelta(minutes=minutes), zone_name)
        raise


def reminder_at(event: Event) -> datetime | None:
    """When `event`'s reminder goes (UTC), or None when it is turned off."""
    if not event.reminder_enabled:
        return None
    return reminder_at_for(
        event.starts_at, event.timezone, event.reminder_days_before, event.reminder_time
    )


# --- staff settings ------------------------------------------------------------------------------


def set_reminder(event: Event, *, enabled: bool, days_before: int, at: time, by: StaffUser) -> None:
    """Change when `event`'s reminder goes, or turn it off. Refuses a reminder that would go at
    or after the event's start. Flushes, never commits; not a calendar change."""
    if not 0 <= days_before <= MAX_DAYS_BEFORE:
        raise ReminderRefused(
            f"Days before must be between 0 and {MAX_DAYS_BEFORE}.", field="days_before"
        )
    if enabled and reminder_at_for(event.starts_at, event.timezone, days_before, at) >= (
        event.starts_at
    ):
        raise ReminderRefused(
            "That would send the reminder after the event has started: choose an earlier time "
            "or more days before.",
            field="at",
        )
    event.reminder_enabled = enabled
    event.reminder_days_before = days_before
    event.reminder_time = at
    db.session.flush()
    log.info("%s set event %s's reminder: %s", by.email, event.id, enabled and days_before)


@dataclass(frozen=True)
class ReminderState:
    """The reminder as the event's staff page shows it."""

    at: datetime | None  # in the event's zone; None when turned off
    sent: int  # delegates reminded so far
    state: str  # off, scheduled, sending (due, being sent), late (after the start), over, unsent
    zone: str


def reminder_state(event: Event, now: datetime | None = None) -> ReminderState:
    now = now or utcnow()
    sent = reminded_count(event.id)
    moment = reminder_at(event)
    if moment is None:
        state = "off"
    elif moment >= event.starts_at:
        state = "late"
    elif event.starts_at <= now:
        state = "over"
    elif not event.is_published:
        state = "unsent"  # a draft or a cancelled event sends none
    elif moment <= now:
        state = "sending"
    else:
        state = "scheduled"
    local = event.local(moment) if moment is not None else None
    return ReminderState(local, sent, state, zone_label(event.timezone))


def reminded_count(event_id: int) -> int:
    return int(
        db.session.scalar(
            db.select(db.func.count(DelegateReminder.id)).where(
                DelegateReminder.event_id == event_id
            )
        )
        or 0
    )


# --- the email -----------------------------------------------------------------------------------


def map_url(event: Event) -> str | None:
    """An OpenStreetMap search for the venue's address (its name when it has none): typed text
    goes only into the query string, encoded."""
    where = ", ".join(event.address_lines) or event.venue_name
    if not where.strip():
        return None
    return "https://www.openstreetmap.org/search?" + urlencode({"query": where})


def reminder_context(event: Event) -> dict[str, Any]:
    """What every delegate's reminder for `event` shares (worked out once per event)."""
    return {
        "event_url": external_url("events.show", slug=event.slug),
        "calendar_url": external_url("calendar.event_ics", slug=event.slug),
        "map_url": map_url(event),
        "zone": zone_label(event.timezone),
        "agenda": agenda_with_speakers(event),
    }


def queue_reminder(event: Event, delegate: Delegate, shared: dict[str, Any] | None = None) -> bool:
    """Queue `delegate`'s reminder (key `reminder:<event>:<delegate>`); False if it was queued
    before."""
    shared = shared if shared is not None else reminder_context(event)
    local = event.local_start
    return enqueue(
        key=f"reminder:{event.id}:{delegate.id}",
        to=delegate.email_normalised,
        to_name=delegate.name,
        subject=f"Reminder: {event.title}, {local:%A %-d %B} at {local:%H:%M}",
        template="registration/reminder",
        context={
            "event": event,
            "delegate": delegate,
            "own_link": own_link(delegate),
            "pack_url": external_url("resources.pack", slug=event.slug),
            **shared,
        },
    )


# --- the worker's step ---------------------------------------------------------------------------


@dataclass
class ReminderReport:
    events: int = 0
    queued: int = 0
    details: list[str] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # events whose reminders failed this round


def due_event_ids(now: datetime) -> list[int]:
    """Published events with a reminder on, not yet started, whose reminder time has come. Read
    among those starting within the longest reminder's reach, then timed in each event's zone."""
    candidates = db.session.scalars(
        db.select(Event)
        .where(
            Event.status == EventStatus.published,
            Event.reminder_enabled.is_(True),
            Event.starts_at > now,
            Event.starts_at <= now + timedelta(days=MAX_DAYS_BEFORE + 2),
        )
        .order_by(Event.starts_at, Event.id)
    ).all()
    return [event.id for event in candidates if (at := reminder_at(event)) and at <= now]


def _unreminded(event_id: int) -> Select[tuple[Delegate]]:
    return (
        select(Delegate)
        .where(
            Delegate.event_id == event_id,
            Delegate.status == DelegateStatus.confirmed,
            ~exists().where(DelegateReminder.delegate_id == Delegate.id),
        )
        .order_by(Delegate.id)
        .limit(BATCH)
        .options(selectinload(Delegate.booking).selectinload(Booking.booker))
    )


def _claim(event_id: int, delegate_ids: list[int], now: datetime) -> set[int]:
    """Insert a reminder row for each delegate; returns those whose row this transaction wrote
    (another worker's row, committed or not, wins: on PostgreSQL this waits for it)."""
    rows = [{"event_id": event_id, "delegate_id": d, "queued_at": now} for d in delegate_ids]
    claimed = db.session.scalars(
        insert_or_skip(DelegateReminder)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["delegate_id"])
        .returning(DelegateReminder.delegate_id)
    )
    return set(claimed)


def send_event_reminders(event_id: int, now: datetime) -> int:
    """Queue the reminders `event_id` owes now, a batch per transaction; returns how many."""
    queued = 0
    while True:
        with unit_of_work():
            event = db.session.get(Event, event_id)
            if event is None or not event.is_published or event.starts_at <= now:
                return queued
            at = reminder_at(event)
            if at is None or at > now:
                return queued
            delegates: list[Delegate] = list(db.session.scalars(_unreminded(event_id)))
            if not delegates:
                return queued
            claimed = _claim(event_id, [d.id for d in delegates], now)
            shared = reminder_context(event)
            for delegate in delegates:
                if delegate.id in claimed:
                    queued += queue_reminder(event, delegate, shared)
        if len(delegates) < BATCH:
            return queued


def send_due(now: datetime | None = None, worker_id: str = "worker") -> ReminderReport:
    """Queue every reminder that is due, each event's in transactions of its own."""
    now = now or utcnow()
    report = ReminderReport()
    with unit_of_work():
        due = due_event_ids(now)
    for event_id in due:
        try:
            queued = send_event_reminders(event_id, now)
        except Exception:  # one bad event must not hold up the others' reminders (invariant 12)
            log.exception("Reminders for event %s failed; tried again next round", event_id)
            report.failed.append(event_id)
            continue
        if queued:
            report.events += 1
            report.queued += queued
            report.details.append(f"event {event_id}: {queued} reminder(s) [{worker_id}]")
    return report
