"""Reads for the staff home page and the health report: the outbox's backlog, and each upcoming
event's figures in a fixed number of queries however many events and bookings there are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flask import Flask
from sqlalchemy import ColumnElement, ScalarSelect, func, select

from chamber.core.heartbeat import HealthPart, describe_age
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail.delivery import due_filter
from chamber.mail.models import MessageStatus, OutboxMessage
from chamber.mail.services import COUNT_CAP
from chamber.members.models import Organisation
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.registration.seats import holds_a_seat
from chamber.resources.models import EventResource, LinkState, Resource, ResourceKind
from chamber.surveys.models import Survey, SurveyStatus


def mail_health(app: Flask, now: datetime) -> HealthPart:
    """The outbox's part of the health report: how many messages are due and not sent, and how
    long the oldest has waited; a problem past either threshold (`CHAMBER_HEALTH_MAIL_BACKLOG_*`).
    Failed messages are counted but are no backlog: staff see them on the Outbox page. Nor is bulk
    mail (campaigns), which CHAMBER_BULK_PER_MINUTE holds back on purpose: it is counted apart."""
    max_age = app.config["HEALTH_MAIL_BACKLOG_SECONDS"]
    max_count = app.config["HEALTH_MAIL_BACKLOG_COUNT"]
    # Counted up to a cap past the backlog's threshold, and the oldest taken from the front of
    # `ix_outbox_message_stream_due` for each status that can be due: one statement whose cost does not
    # follow the size of the outbox or of a backlog.
    cap = max(COUNT_CAP, max_count)

    def counted(condition: ColumnElement[bool]) -> ScalarSelect[int]:
        rows = select(OutboxMessage.id).where(condition).limit(cap + 1).subquery()
        return select(func.count()).select_from(rows).scalar_subquery()

    def oldest_of(status: MessageStatus) -> ScalarSelect[datetime]:  # NULL when none
        return (
            select(func.min(OutboxMessage.next_attempt_at))
            .where(OutboxMessage.status == status, due_filter(now), not_bulk)
            .scalar_subquery()
        )

    not_bulk = OutboxMessage.bulk.is_(False)
    due, oldest_pending, oldest_sending, failed, bulk_due = db.session.execute(
        db.select(
            counted(due_filter(now) & not_bulk),
            oldest_of(MessageStatus.pending),
            oldest_of(MessageStatus.sending),
            counted(OutboxMessage.status == MessageStatus.failed),
            counted(due_filter(now) & OutboxMessage.bulk.is_(True)),
        )
    ).one()
    oldest = min((o for o in (oldest_pending, oldest_sending) if o is not None), default=None)
    many = f"{cap:,} or more" if due > cap else str(due)
    age = None
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
        age = max(0, int((now - oldest).total_seconds()))
    problems = []
    if age is not None and age > max_age:
        problems.append(
            f"Mail is piling up: {many} message(s) waiting, the oldest for {describe_age(age)}."
        )
    elif due > max_count:
        problems.append(f"Mail is piling up: {many} message(s) waiting to be sent.")
    figures = {
        "state": "backlog" if problems else "ok",
        "queued": min(due, cap),
        "oldest_queued_age_seconds": age,
        "backlog_after_seconds": max_age,
        "backlog_after_count": max_count,
        "failed": min(failed, cap),
        "bulk_queued": min(bulk_due, cap),  # campaign mail due, sent at its own pace
        "counted_up_to": cap,  # "queued", "failed" and "bulk_queued" stop there: there may be more
    }
    return HealthPart("mail", figures, problems)


# --- each upcoming event's figures ----------------------------------------------------------------

CHART_DAYS = 14  # the bookings chart: registrations a day over the last two weeks
SURVEY_READY_DAYS = 7  # an event ending within this many days should have its survey scheduled
ATTENTION_LINK_STATES = (LinkState.broken, LinkState.unreachable)
ACTIVE_STATUSES = (DelegateStatus.confirmed, DelegateStatus.waitlisted)  # booked or waiting


@dataclass
class Attention:
    """Something about an event that staff should act on, and the page where they can."""

    message: str
    endpoint: str | None
    values: dict[str, object] = field(default_factory=dict)


@dataclass
class EventFigures:
    event: Event
    confirmed: int = 0
    waiting: int = 0
    checked_in: int = 0
    businesses: int = 0
    member_businesses: int = 0
    days_to_go: int = 0
    failed_mail: int = 0
    broken_links: int = 0
    survey: Survey | None = None
    by_day: list[tuple[date, int]] = field(default_factory=list)
    attention: list[Attention] = field(default_factory=list)

    @property
    def members_share(self) -> int | None:
        """Percentage of the businesses booked that are members, or None with none booked."""
        if not self.businesses:
            return None
        return round(100 * self.member_businesses / self.businesses)

    @property
    def seats_free(self) -> int:
        return max(0, self.event.capacity - self.confirmed)


def event_figures(events: list[Event], now: datetime) -> list[EventFigures]:
    """The staff home page's figures for `events`, in seven queries however many events,
    bookings and delegates there are."""
    figures = {event.id: EventFigures(event) for event in events}
    ids = list(figures)
    if not ids:
        return []
    today = now.date()
    for item in figures.values():
        item.days_to_go = max(0, (item.event.starts_at.date() - today).days)

    # Seats taken, people waiting, and how many of those with a seat are checked in.
    seated = holds_a_seat()
    for event_id, confirmed, arrived, waiting in db.session.execute(
        db.select(
            Delegate.event_id,
            db.func.count(db.case((seated, Delegate.id))),
            db.func.count(db.case((seated & Delegate.checked_in_at.is_not(None), Delegate.id))),
            db.func.count(db.case((Delegate.status == DelegateStatus.waitlisted, Delegate.id))),
        )
        .where(Delegate.event_id.in_(ids))
        .group_by(Delegate.event_id)
    ):
        figures[event_id].confirmed = confirmed
        figures[event_id].checked_in = arrived
        figures[event_id].waiting = waiting

    # Businesses with someone booked (confirmed or waiting), and how many of them are members:
    # the distinct (event, business) pairs from the delegates and their bookings (both read by
    # event), and only those pairs joined to the business. Joining every delegate to its business
    # first had PostgreSQL hash all the businesses in the directory (benchmarks/scale.py).
    pairs = (
        db.select(Delegate.event_id, Booking.organisation_id)
        .join(Booking, db.and_(Booking.id == Delegate.booking_id, Booking.event_id.in_(ids)))
        .where(Delegate.event_id.in_(ids), Delegate.status.in_(ACTIVE_STATUSES))
        .distinct()
        .subquery()
    )
    for event_id, businesses, members in db.session.execute(
        db.select(
            pairs.c.event_id,
            db.func.count(pairs.c.organisation_id),
            db.func.sum(db.case((Organisation.is_member, 1), else_=0)),
        )
        .join(Organisation, Organisation.id == pairs.c.organisation_id)
        .group_by(pairs.c.event_id)
    ):
        figures[event_id].businesses = businesses
        figures[event_id].member_businesses = int(members or 0)

    # Failed mail to the people booked or waiting (one delegate row each, by the partial unique
    # index), each person's counted through `ix_outbox_message_status_to_normalised`: a look-up a
    # person, so the cost follows the delegates of these events, never the size of the outbox or
    # how much of it ever failed.
    failed_to_delegate = (
        db.select(db.func.count())
        .where(
            OutboxMessage.status == MessageStatus.failed,
            OutboxMessage.to_normalised == Delegate.email_normalised,
        )
        .correlate(Delegate)
        .scalar_subquery()
    )
    for event_id, failed in db.session.execute(
        db.select(Delegate.event_id, db.func.sum(failed_to_delegate))
        .where(Delegate.event_id.in_(ids), Delegate.status.in_(ACTIVE_STATUSES))
        .group_by(Delegate.event_id)
    ):
        figures[event_id].failed_mail = int(failed or 0)

    # Broken links among the event's resources.
    for event_id, broken in db.session.execute(
        db.select(EventResource.event_id, db.func.count(db.distinct(Resource.id)))
        .join(Resource, Resource.id == EventResource.resource_id)
        .where(
            EventResource.event_id.in_(ids),
            Resource.kind == ResourceKind.link,
            Resource.link_state.in_(ATTENTION_LINK_STATES),
        )
        .group_by(EventResource.event_id)
    ):
        figures[event_id].broken_links = broken

    for survey in db.session.scalars(db.select(Survey).where(Survey.event_id.in_(ids))):
        figures[survey.event_id].survey = survey

    # Registrations a day over the last CHART_DAYS days (the day in UTC).
    first_day = today - timedelta(days=CHART_DAYS - 1)
    start = datetime.combine(first_day, time(), tzinfo=UTC)
    day = db.func.date(Delegate.created_at)
    counted: dict[int, dict[date, int]] = {event_id: {} for event_id in ids}
    for event_id, on, count in db.session.execute(
        db.select(Delegate.event_id, day, db.func.count(Delegate.id))
        .where(Delegate.event_id.in_(ids), Delegate.created_at >= start)
        .group_by(Delegate.event_id, day)
    ):
        on_day = on if isinstance(on, date) else date.fromisoformat(str(on)[:10])
        counted[event_id][on_day] = count
    days = [first_day + timedelta(days=n) for n in range(CHART_DAYS)]
    for event_id, item in figures.items():
        item.by_day = [(d, counted[event_id].get(d, 0)) for d in days]
        item.attention = attention_for(item, now)
    return [figures[event.id] for event in events]


def attention_for(item: EventFigures, now: datetime) -> list[Attention]:
    event = item.event
    found = []
    if item.failed_mail:
        found.append(
            Attention(
                f"{item.failed_mail} email(s) to its delegates failed",
                "outbox.index",
                {"status": MessageStatus.failed.value},
            )
        )
    if item.broken_links:
        found.append(
            Attention(
                f"{item.broken_links} link(s) in its resources are broken or unreachable",
                "manage_resources.event_resources",
                {"event_id": event.id},
            )
        )
    if item.waiting and item.seats_free:
        found.append(
            Attention(
                f"{item.waiting} waiting while {item.seats_free} seat(s) are free",
                "manage_registrations.index",
                {"event_id": event.id},
            )
        )
    survey = item.survey
    if survey is not None and survey.status == SurveyStatus.scheduled and survey.send_at:
        if survey.send_at <= now:
            found.append(
                Attention(
                    "Its survey is due and not sent: is the worker running?",
                    "manage_surveys.show",
                    {"survey_id": survey.id},
                )
            )
    elif event.ends_at - now <= timedelta(days=SURVEY_READY_DAYS):
        if survey is None:
            found.append(
                Attention(
                    "No follow-up survey yet", "manage_surveys.create", {"event_id": event.id}
                )
            )
        elif survey.status == SurveyStatus.draft:
            found.append(
                Attention(
                    "Its follow-up survey is still a draft: schedule it",
                    "manage_surveys.show",
                    {"survey_id": survey.id},
                )
            )
    return found
