"""Sending surveys: invitations when a survey falls due, then one reminder to those who have not
answered. Each survey (and its reminder round) is claimed by one conditional UPDATE, so two
workers at once never both send it; the unique (survey, delegate) pair and the outbox keys make a
second attempt a no-op anyway. The link in each email is minted at send time (`mail.links`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, update

from chamber.core.dialects import insert_or_skip
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token, new_token
from chamber.core.transactions import rows_changed, unit_of_work
from chamber.core.urls import external_url
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.mail import links
from chamber.mail.models import MailKind
from chamber.mail.services import enqueue, normalise_address, suppressed_among
from chamber.registration.models import Delegate, DelegateStatus
from chamber.resources import attachments
from chamber.surveys.models import Invitation, Recipients, Survey, SurveyStatus, SurveyToken


@dataclass
class DispatchReport:
    surveys: int = 0
    invitations: int = 0
    reminders: int = 0
    skipped_unsubscribed: int = 0
    details: list[str] = field(default_factory=list)


# --- claiming ------------------------------------------------------------------------------------


def _claim(condition: Sequence[ColumnElement[bool]], values: dict[str, Any]) -> bool:
    """One UPDATE of one survey row that only the first worker can make; True if it was ours.

    On PostgreSQL the row is picked with FOR UPDATE SKIP LOCKED, so a second worker passes over a
    survey the first is still sending instead of waiting for it; on SQLite the single statement
    takes the write lock, and the condition is false for whoever comes second.
    """
    target = db.select(Survey.id).where(*condition).with_for_update(skip_locked=True)
    changed = rows_changed(
        update(Survey)
        .where(Survey.id.in_(target.scalar_subquery()))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return changed == 1


def _event_is_over(now: datetime) -> ColumnElement[bool]:
    """The survey's event took place and has ended: not cancelled, not a draft, not still to come
    (a postponed event's survey waits for the new end). A subquery, so FOR UPDATE locks only the
    survey row."""
    return Survey.event_id.in_(
        db.select(Event.id).where(Event.status == EventStatus.published, Event.ends_at <= now)
    )


# --- invitations ---------------------------------------------------------------------------------


def recipients_query(survey: Survey) -> Select[Any]:
    query: Select[Any] = db.select(Delegate.id, Delegate.email_normalised).where(
        Delegate.event_id == survey.event_id,
        Delegate.status == DelegateStatus.confirmed,
        Delegate.anonymised_at.is_(None),  # a made-up address: nobody to ask
    )
    if survey.recipients == Recipients.checked_in:
        query = query.where(Delegate.checked_in_at.is_not(None))
    return query.order_by(Delegate.id)


def recipient_count(survey: Survey) -> int:
    return int(
        db.session.scalar(
            db.select(db.func.count()).select_from(
                recipients_query(survey).order_by(None).subquery()
            )
        )
        or 0
    )


def recipients_to_email(survey: Survey) -> tuple[int, int]:
    """If the survey were sent now: (people who would be emailed, people left out because they
    unsubscribed), for the "Send now" confirmation. Two queries, however many recipients."""
    emails = [email for _, email in db.session.execute(recipients_query(survey))]
    unsubscribed = len(suppressed_among(emails))
    return len(emails) - unsubscribed, unsubscribed


def _insert_invitations(survey: Survey, now: datetime) -> int:
    rows = db.session.execute(recipients_query(survey)).all()
    unsubscribed = suppressed_among([email for _, email in rows])
    values = [
        {"survey_id": survey.id, "delegate_id": delegate_id, "email": email, "invited_at": now}
        for delegate_id, email in rows
        if email not in unsubscribed
    ]
    if values:
        db.session.execute(
            insert_or_skip(Invitation)
            .values(values)
            .on_conflict_do_nothing(index_elements=["survey_id", "delegate_id"])
        )
    return len(rows) - len(values)


def _invitations(survey_id: int, *conditions: ColumnElement[bool]) -> list[tuple[Invitation, str]]:
    return list(
        db.session.execute(
            db.select(Invitation, Delegate.name)
            .join(Delegate, Delegate.id == Invitation.delegate_id)
            .where(Invitation.survey_id == survey_id, *conditions)
            .order_by(Invitation.id)
        )
    )


def pack_url(event: Event) -> str | None:
    """The link to the event's resource pack, or None when the pack has nothing to follow in it
    (no resource attached, or only retired ones with nothing in their place)."""
    found = attachments.event_resources(event)
    shown = found.event_wide + [entry for entries in found.by_item.values() for entry in entries]
    if all(entry.ended for entry in shown):
        return None
    return external_url("resources.pack", slug=event.slug)


def _context(
    survey: Survey, invitation: Invitation, name: str, pack: str | None = None
) -> dict[str, Any]:
    event = survey.event
    return {
        "survey": survey,
        "event": event,
        "invitation": invitation,
        "name": name,
        "pack_url": pack,
        "closes": event.local(survey.closes_at) if survey.closes_at else None,
        "unsubscribe_reason": "You get this email because you came to one of our events.",
    }


def send_survey(survey: Survey, now: datetime | None = None) -> tuple[int, int] | None:
    """Claim a due, scheduled survey and queue one invitation per recipient; flushes, never
    commits. Returns (invitations queued, recipients skipped as unsubscribed), or None if the
    survey was not ours to send (not scheduled, not due, its event cancelled or not over yet,
    another worker has it, or it has no recipients yet)."""
    now = now or utcnow()
    if recipient_count(survey) == 0:  # stay due: people may yet be checked in, or staff widen it
        return None
    claimed = _claim(
        (
            Survey.id == survey.id,
            Survey.status == SurveyStatus.scheduled,
            Survey.send_at <= now,
            _event_is_over(now),
        ),
        {"status": SurveyStatus.sent, "sent_at": now},
    )
    if not claimed:
        return None
    db.session.refresh(survey)
    skipped = _insert_invitations(survey, now)
    queued = 0
    pack = pack_url(survey.event)  # once for every invitation: a fixed number of queries
    for invitation, name in _invitations(survey.id):
        queued += enqueue(
            key=f"survey-invite:{invitation.id}",
            to=invitation.email,
            to_name=name,
            subject=survey.title,
            template="surveys/invitation",
            context=_context(survey, invitation, name, pack),
            kind=MailKind.survey,
        )
    return queued, skipped


# --- reminders -----------------------------------------------------------------------------------


def reminder_due_at(survey: Survey) -> datetime | None:
    if not survey.reminder_enabled or survey.sent_at is None:
        return None
    return survey.sent_at + timedelta(days=survey.reminder_after_days)


def send_reminders(survey: Survey, now: datetime | None = None) -> int | None:
    """Claim the survey's one reminder round and queue a reminder to each invitation not yet
    answered (nor reminded); flushes, never commits. None if it was not ours to send."""
    now = now or utcnow()
    due = reminder_due_at(survey)
    if due is None or due > now or survey.is_closed(now):
        return None
    claimed = _claim(
        (
            Survey.id == survey.id,
            Survey.status == SurveyStatus.sent,
            Survey.reminder_enabled.is_(True),
            Survey.reminders_sent_at.is_(None),
        ),
        {"reminders_sent_at": now},
    )
    if not claimed:
        return None
    db.session.refresh(survey)
    waiting = _invitations(
        survey.id, Invitation.responded_at.is_(None), Invitation.reminded_at.is_(None)
    )
    queued = 0
    for invitation, name in waiting:
        queued += enqueue(
            key=f"survey-reminder:{invitation.id}",
            to=invitation.email,
            to_name=name,
            subject=f"Reminder: {survey.title}",
            template="surveys/reminder",
            context=_context(survey, invitation, name),
            kind=MailKind.survey,
        )
    if waiting:
        db.session.execute(
            update(Invitation)
            .where(Invitation.id.in_([invitation.id for invitation, _ in waiting]))
            .values(reminded_at=now)
            .execution_options(synchronize_session=False)
        )
    return queued


# --- the worker's step ---------------------------------------------------------------------------


def send_due(now: datetime | None = None, worker_id: str = "worker") -> DispatchReport:
    """Send every survey that is due, then every reminder round that is due, committing each
    survey on its own (a failure in one leaves the others sent)."""
    now = now or utcnow()
    report = DispatchReport()
    with unit_of_work():  # the read ends here, so each claim below starts a fresh transaction
        due = db.session.scalars(
            db.select(Survey.id)
            .where(
                Survey.status == SurveyStatus.scheduled, Survey.send_at <= now, _event_is_over(now)
            )
            .order_by(Survey.send_at, Survey.id)
        ).all()
    for survey_id in due:
        with unit_of_work():  # one survey, one transaction; one not ours to send writes nothing
            survey = db.session.get(Survey, survey_id)
            result = send_survey(survey, now) if survey is not None else None
            title = survey.title if survey is not None else ""
        if result is None:
            continue
        queued, skipped = result
        report.surveys += 1
        report.invitations += queued
        report.skipped_unsubscribed += skipped
        report.details.append(f"{title}: {queued} invitation(s) [{worker_id}]")

    with unit_of_work():
        reminding = db.session.scalars(
            db.select(Survey)
            .where(
                Survey.status == SurveyStatus.sent,
                Survey.reminder_enabled.is_(True),
                Survey.reminders_sent_at.is_(None),
                Survey.sent_at.is_not(None),
                db.or_(Survey.closes_at.is_(None), Survey.closes_at > now),
            )
            .order_by(Survey.id)
        ).all()
        candidates = [s.id for s in reminding if (due_at := reminder_due_at(s)) and due_at <= now]
    for survey_id in candidates:
        with unit_of_work():
            survey = db.session.get(Survey, survey_id)
            reminded = send_reminders(survey, now) if survey is not None else None
            title = survey.title if survey is not None else ""
        if reminded is None:
            continue
        report.reminders += reminded
        report.details.append(f"{title}: {reminded} reminder(s) [{worker_id}]")
    return report


# --- the link in each email ----------------------------------------------------------------------


def new_survey_token(invitation: Invitation) -> str:
    token = new_token()
    db.session.add(SurveyToken(invitation_id=invitation.id, token_hash=hash_token(token)))
    return token


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation a survey link was minted for; None for a wrong or tampered token."""
    if not token or len(token) > 100 or not token.isascii():
        return None
    found: Invitation | None = db.session.scalar(
        db.select(Invitation)
        .join(SurveyToken, SurveyToken.invitation_id == Invitation.id)
        .where(SurveyToken.token_hash == hash_token(token))
    )
    return found


def _mint_survey_link(recipient: str, ref: str) -> str:
    invitation = db.session.get(Invitation, int(ref)) if ref.isdigit() else None
    if invitation is None or normalise_address(invitation.email) != normalise_address(recipient):
        raise links.LinkRefused(f"survey link {ref!r} is not the recipient's own invitation")
    token = new_survey_token(invitation)
    return external_url("surveys.respond", token=token)
