"""Retention that runs itself (docs/privacy.md, "Retention"): a registry of the kinds of personal
data, each with its setting (config.SETTINGS, `CHAMBER_RETAIN_*`), the rows that are due, and what
anonymising them does (privacy.anonymise). The worker runs it once a day; `chamber privacy run`
runs it now; the staff page shows the settings and what the next run will do.

A kind is one entry: a later kind (the audit log) is added with `register_kind`, nothing else.
Every run goes kind by kind in the registry's order, in batches of BATCH rows, each batch its own
transaction, so a stopped run has kept what it did and the next run goes on from there; running it
twice changes nothing more. Every time is passed in (`now`), so tests travel in time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select, delete, exists, func, or_, select

from chamber.auth import audit
from chamber.auth.audit import AuditEntry
from chamber.core.dialects import on_postgresql
from chamber.core.times import utcnow
from chamber.core.transactions import unit_of_work
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.members.models import (
    Consent,
    Contact,
    ContactRole,
    SubscriptionRequest,
    TopicOptOut,
)
from chamber.privacy import anonymise
from chamber.privacy.models import RetentionRun
from chamber.registration.models import Booking, Delegate
from chamber.resources.models import LinkCheck
from chamber.surveys.models import Answer, Question, QuestionKind, Response, Survey

BATCH = 500
RUN_LOCK = 0x63686D7274  # the advisory lock two workers claim a run under (PostgreSQL)
EVERY = timedelta(days=1)  # how often the worker runs it
RETRY_AFTER = timedelta(minutes=15)  # a run that failed or was stopped: tried again after this
ABANDONED_AFTER = timedelta(hours=1)  # a run not ended after this: its worker died; run again


@dataclass(frozen=True)
class RetentionKind:
    key: str  # stable: the run records count by it
    label: str
    setting: str  # the Flask config key of its `CHAMBER_*` setting
    unit: str  # "months" or "days"
    after: str  # after what the time runs: "their event", "it was written" ...
    what: str  # what goes and what stays, as staff read it
    due: Callable[[datetime], Select[Any]]  # the ids due, given the cut-off time
    apply: Callable[[list[int], datetime], int]  # anonymise these ids; how many changed


KINDS: dict[str, RetentionKind] = {}


def register_kind(kind: RetentionKind) -> None:
    """Add a kind of data to retention (in the order runs go through them)."""
    KINDS[kind.key] = kind


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day if shorter)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    next_month = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=moment.tzinfo)
    last_day = (next_month - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def setting_of(kind: RetentionKind) -> int:
    return int(current_app.config[kind.setting])


def cutoff(kind: RetentionKind, now: datetime) -> datetime | None:
    """Rows older than this are due; None when the setting is 0 (kept)."""
    amount = setting_of(kind)
    if amount <= 0:
        return None
    if kind.unit == "months":
        return months_before(now, amount)
    return now - timedelta(days=amount)


# --- the kinds -------------------------------------------------------------------------------------


def _ended_by(moment: datetime) -> Select[Any]:
    return select(Event.id).where(Event.ends_at <= moment)


def _delegates_due(before: datetime) -> Select[Any]:
    return select(Delegate.id).where(
        Delegate.anonymised_at.is_(None), Delegate.event_id.in_(_ended_by(before))
    )


def _needs_due(before: datetime) -> Select[Any]:
    return select(Delegate.id).where(Delegate.needs != "", Delegate.event_id.in_(_ended_by(before)))


def _bookers_due(before: datetime) -> Select[Any]:
    """Contacts held only because they booked or were booked: no consent, subscription, topic
    choice or soft opt-in, no role at their business, and every place of theirs anonymised or due
    (their events ended before the cut-off)."""
    recent_events = db.select(Event.id).where(Event.ends_at > before)
    return select(Contact.id).where(
        Contact.anonymised_at.is_(None),
        Contact.role == ContactRole.other,
        Contact.soft_opt_in_at.is_(None),
        or_(
            exists().where(Delegate.contact_id == Contact.id),
            exists().where(Booking.booker_id == Contact.id),
        ),
        ~exists().where(Consent.contact_id == Contact.id),
        ~exists().where(SubscriptionRequest.contact_id == Contact.id),
        ~exists().where(TopicOptOut.contact_id == Contact.id),
        ~exists().where(Delegate.contact_id == Contact.id, Delegate.event_id.in_(recent_events)),
        ~exists().where(Booking.booker_id == Contact.id, Booking.event_id.in_(recent_events)),
    )


def _free_text_due(before: datetime) -> Select[Any]:
    return (
        select(Answer.id)
        .join(Question, Question.id == Answer.question_id)
        .join(Response, Response.id == Answer.response_id)
        .join(Survey, Survey.id == Response.survey_id)
        .where(
            Question.kind == QuestionKind.free_text,
            Answer.text.is_not(None),
            Answer.text != "",
            Survey.event_id.in_(_ended_by(before)),
        )
    )


def _messages_due(before: datetime) -> Select[Any]:
    return select(OutboxMessage.id).where(
        OutboxMessage.status.in_(anonymise.FINISHED),
        OutboxMessage.created_at <= before,
        or_(
            OutboxMessage.text_body != "",
            OutboxMessage.html_body != "",
            OutboxMessage.render_params.is_not(None),
        ),
    )


def _link_checks_due(before: datetime) -> Select[Any]:
    return select(LinkCheck.id).where(LinkCheck.checked_at <= before)


def _delete_link_checks(ids: list[int], _now: datetime) -> int:
    result = db.session.execute(
        delete(LinkCheck).where(LinkCheck.id.in_(ids)).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


register_kind(
    RetentionKind(
        key="delegates",
        label="Delegates' personal details",
        setting="RETAIN_DELEGATES_MONTHS",
        unit="months",
        after="their event",
        what="Name, email, phone, job title and needs go; the place's status, attendance, "
        "business and survey answers stay.",
        due=_delegates_due,
        apply=anonymise.anonymise_delegates,
    )
)
register_kind(
    RetentionKind(
        key="bookers",
        label="Contacts held only for bookings",
        setting="RETAIN_DELEGATES_MONTHS",
        unit="months",
        after="their last event",
        what="People we hold only because they booked or were booked (no consent, subscription "
        "or role at their business) lose name, email, phone and job title, and are archived.",
        due=_bookers_due,
        apply=anonymise.anonymise_contacts,
    )
)
register_kind(
    RetentionKind(
        key="needs",
        label="Access and dietary needs",
        setting="RETAIN_NEEDS_MONTHS",
        unit="months",
        after="the event",
        what="Delegates' access and dietary needs are blanked.",
        due=_needs_due,
        apply=lambda ids, _now: anonymise.blank_needs(ids),
    )
)
register_kind(
    RetentionKind(
        key="survey_text",
        label="Free-text survey answers",
        setting="RETAIN_SURVEY_TEXT_MONTHS",
        unit="months",
        after="the event",
        what="What people wrote in free-text answers is blanked; ratings, choices and who "
        "answered (the counts) stay.",
        due=_free_text_due,
        apply=lambda ids, _now: anonymise.blank_free_text(ids),
    )
)
register_kind(
    RetentionKind(
        key="outbox",
        label="Email bodies and recipients",
        setting="RETAIN_OUTBOX_DAYS",
        unit="days",
        after="it was written",
        what="A sent, failed or cancelled email loses its body, attachments, recipient and error "
        "text; its kind, status, subject and times stay.",
        due=_messages_due,
        apply=lambda ids, _now: anonymise.clear_messages(ids),
    )
)
register_kind(
    RetentionKind(
        key="link_checks",
        label="Link-check history",
        setting="RETAIN_LINK_CHECKS_DAYS",
        unit="days",
        after="the check",
        what="Each link's older checks are deleted; its latest state stays on the resource.",
        due=_link_checks_due,
        apply=_delete_link_checks,
    )
)


def _audit_due(before: datetime) -> Select[Any]:
    return select(AuditEntry.id).where(AuditEntry.at < before)


def _purge_audit(_ids: list[int], now: datetime) -> int:
    """The audit trail is deleted, never edited, and only through `audit.purge_older_than`
    (which the PostgreSQL trigger lets through for entries before the cutoff it names)."""
    before = cutoff(KINDS["audit"], now)
    return audit.purge_older_than(before) if before is not None else 0


register_kind(
    RetentionKind(
        key="audit",
        label="Audit trail",
        setting="AUDIT_RETENTION_MONTHS",
        unit="months",
        after="it was logged",
        what="Entries older than this are deleted; newer ones cannot be changed or removed.",
        due=_audit_due,
        apply=_purge_audit,
    )
)


# --- what is due, and when -------------------------------------------------------------------------


@dataclass(frozen=True)
class KindDue:
    kind: RetentionKind
    setting: int
    cutoff: datetime | None
    count: int

    @property
    def kept_for(self) -> str:
        """How long it is kept, in words ("1 month after their event"); "" when kept (0)."""
        if not self.setting:
            return ""
        unit = self.kind.unit if self.setting != 1 else self.kind.unit.removesuffix("s")
        return f"{self.setting} {unit} after {self.kind.after}"


def due_counts(now: datetime) -> list[KindDue]:
    """For each kind: its setting, its cut-off at `now`, and how many rows are due then."""
    found = []
    for kind in KINDS.values():
        before = cutoff(kind, now)
        count = 0
        if before is not None:
            count = (
                db.session.scalar(db.select(func.count()).select_from(kind.due(before).subquery()))
                or 0
            )
        found.append(KindDue(kind, setting_of(kind), before, count))
    return found


def last_run() -> RetentionRun | None:
    """The latest real run, whatever became of it (a dry run moves no schedule)."""
    return _latest(RetentionRun.dry_run.is_(False))


def last_complete_run() -> RetentionRun | None:
    """The latest real run that went to the end: the one the daily schedule counts from."""
    return _latest(
        RetentionRun.dry_run.is_(False),
        RetentionRun.finished_at.is_not(None),
        RetentionRun.error == "",
    )


def _latest(*conditions: Any) -> RetentionRun | None:
    found: RetentionRun | None = db.session.scalar(
        db.select(RetentionRun)
        .where(*conditions)
        .order_by(RetentionRun.started_at.desc(), RetentionRun.id.desc())
        .limit(1)
    )
    return found


def next_run_at(now: datetime) -> datetime:
    """When the worker will next run it: a day after the last complete run began (or now, if none
    did). A run that failed or was stopped is tried again RETRY_AFTER after it began, and one that
    never ended (its worker died) ABANDONED_AFTER after it began; until then it may still be
    running in another worker, which takes no second run beside it."""
    complete = last_complete_run()
    at = now if complete is None else max(now, complete.started_at + EVERY)
    attempt = last_run()
    if attempt is not None and attempt is not complete:
        wait = RETRY_AFTER if attempt.finished_at is not None else ABANDONED_AFTER
        at = max(at, attempt.started_at + wait)
    return at


def is_due(now: datetime) -> bool:
    return next_run_at(now) <= now


# --- running ---------------------------------------------------------------------------------------


@dataclass
class RetentionReport:
    run_id: int
    dry_run: bool
    total: int  # rows due when the run began
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    def summary(self) -> str:
        parts = ", ".join(
            f"{self.counts.get(key, 0)} {kind.label.lower()}" for key, kind in KINDS.items()
        )
        if self.dry_run:
            return f"Dry run, nothing changed: {self.done} row(s) would be anonymised ({parts})."
        verb = "Stopped after anonymising" if self.stopped else "Anonymised"
        return f"{verb} {self.done} row(s) ({parts})."


def run_retention(
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    trigger: str = "worker",
    batch: int = BATCH,
    on_progress: Callable[[RetentionReport], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    only_if_due: bool = False,
) -> RetentionReport | None:
    """Anonymise everything due at `now`, kind by kind, a batch per transaction (commits: for the
    worker and the command, never inside a request). A dry run counts and changes nothing.

    With `only_if_due` (the worker), the run is claimed first: None if it is not due, or if
    another worker has just begun it (on PostgreSQL the check and the claim hold an advisory
    lock, so two workers started together make one run). A run that fails records its error, and
    is tried again RETRY_AFTER later."""
    now = now or utcnow()
    with unit_of_work():
        if only_if_due:
            if on_postgresql():
                db.session.execute(select(func.pg_advisory_xact_lock(RUN_LOCK)))
            if not is_due(now):
                return None
        due = due_counts(now)
        run = RetentionRun(trigger=trigger, dry_run=dry_run, started_at=now, counts={})
        db.session.add(run)
        db.session.flush()
        report = RetentionReport(run.id, dry_run, total=sum(d.count for d in due))
    try:
        if dry_run:
            report.counts = {d.kind.key: d.count for d in due}
            report.done = report.total
            if on_progress:
                on_progress(report)
        else:
            for item in due:
                if item.cutoff is None or not item.count:
                    continue
                report.counts[item.kind.key] = _run_kind(
                    item.kind, item.cutoff, now, batch, report, on_progress, should_stop
                )
                if report.stopped:
                    break
    except Exception as failure:
        db.session.rollback()
        _finish(report, f"failed: {type(failure).__name__}: {failure}"[:2000])
        raise
    _finish(report, "stopped before the end; the next run goes on" if report.stopped else "")
    return report


def _finish(report: RetentionReport, error: str) -> None:
    with unit_of_work():
        finished = db.session.get(RetentionRun, report.run_id)
        assert finished is not None
        finished.counts = dict(report.counts)
        finished.finished_at = utcnow()
        finished.error = error


def _run_kind(
    kind: RetentionKind,
    before: datetime,
    now: datetime,
    batch: int,
    report: RetentionReport,
    on_progress: Callable[[RetentionReport], None] | None,
    should_stop: Callable[[], bool],
) -> int:
    changed = 0
    while True:
        if should_stop():
            report.stopped = True
            return changed
        with unit_of_work():
            ids = list(db.session.scalars(kind.due(before).limit(batch)))
            if not ids:
                return changed
            done = kind.apply(ids, now)
        changed += done
        report.done += done
        if on_progress:
            on_progress(report)
        if done == 0:  # nothing more this kind can change: never loop on the same rows
            return changed
