"""Erasing one person, in one step, with a preview (docs/privacy.md, "Erasure").

`erasure_preview(email)` says what `erase_person(email, by=...)` will do; erasing does it all in
the caller's transaction (flushes, never commits): their places at events still to come are
cancelled under the seats' lock and the seats go to the waiting list (registration.waitlist);
every email still owed to them is cancelled and every email to them or quoting their address is
cleared; their contact, bookings and delegate places are anonymised (privacy.anonymise); their
consents, subscriptions and topic choices are removed; their links stop working; and their address
stays on the suppression list only as its hash (mail.services.keep_only_hash).

What reports need stays: the places (cancelled or attended), the businesses, survey responses
with their size band, sector and member flag. Answers to anonymous surveys were never linked to a
person and are not looked at; answers to named surveys lose their link when the invitation does.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, cast, delete, func, or_, update

from chamber.auth import audit
from chamber.auth.models import StaffUser
from chamber.core.addresses import address_hash, normalise_address
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.events.models import Event, Speaker
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.models import MessageStatus, OutboxMessage, Suppression, UnsubscribeToken
from chamber.members.import_models import ImportJob, ImportJobRow, ImportStatus
from chamber.members.models import (
    Consent,
    Contact,
    MarketingToken,
    MergeRecord,
    SubscriptionRequest,
    TopicOptOut,
)
from chamber.privacy import anonymise
from chamber.registration import services as seats
from chamber.registration import waitlist
from chamber.registration.models import Booking, BookingToken, Delegate, DelegateStatus
from chamber.surveys.models import Invitation, SurveyToken

MAX_ADDRESS = 254
WAITING_TO_SEND = (MessageStatus.pending, MessageStatus.failed)
FINISHED_JOBS = (ImportStatus.done, ImportStatus.failed, ImportStatus.cancelled)
NOT_YET_RUN = (ImportStatus.mapping, ImportStatus.queued)
IMPORT_STOPPED = (
    "Stopped before it ran, and its file deleted: the file held the data of someone whose data "
    "the Chamber erased on their request. Upload the file again without them to import the rest."
)
IMPORT_FILE_DELETED = (
    "Its file was deleted: it held the data of someone whose data the Chamber erased on their "
    "request. Upload the file again without them to import it."
)


class ErasureRefused(Refusal):
    """An address that cannot be erased as given."""


def checked_address(email: str | None) -> str:
    """The address as every table holds it, or a refusal on the `email` field."""
    address = normalise_address(email or "")
    if not address:
        raise ErasureRefused("Enter the email address of the person to erase.", field="email")
    if len(address) > MAX_ADDRESS:
        raise ErasureRefused(
            f"An email address has at most {MAX_ADDRESS} characters.", field="email"
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in address) or any(
        ch.isspace() for ch in address
    ):
        raise ErasureRefused(
            "An email address has no spaces, line breaks or control characters.", field="email"
        )
    if "@" not in address.strip("@"):
        raise ErasureRefused("Enter a whole email address, like name@example.com.", field="email")
    if anonymise.is_placeholder(address):
        raise ErasureRefused("That address is one retention or erasure made up.", field="email")
    return address


@dataclass(frozen=True)
class PlaceLine:
    event_title: str
    starts_at: datetime
    status: DelegateStatus


@dataclass
class ErasurePreview:
    email: str
    contact_name: str | None
    places_to_cancel: list[PlaceLine] = field(default_factory=list)
    past_places: int = 0  # attended or cancelled places kept, anonymised
    bookings_made: int = 0  # bookings they made for others (the booking stays)
    emails_to_cancel: int = 0  # still owed to them: cancelled
    emails_held: int = 0  # to them or quoting their address: cleared
    consents: int = 0
    subscriptions: int = 0
    topic_choices: int = 0
    survey_invitations: int = 0
    already_suppressed: bool = False
    staff_account: bool = False
    import_files: int = 0  # uploaded spreadsheets holding the address: deleted
    imports_running: list[int] = field(default_factory=list)  # these refuse the erasure for now

    @property
    def found_anything(self) -> bool:
        return bool(
            self.contact_name is not None
            or self.places_to_cancel
            or self.past_places
            or self.emails_held
            or self.import_files
            or self.already_suppressed
        )


@dataclass
class ErasureReport:
    places_cancelled: int = 0
    promoted: int = 0
    delegates_anonymised: int = 0
    contacts_anonymised: int = 0
    emails_cancelled: int = 0
    emails_cleared: int = 0
    consents_removed: int = 0
    subscriptions_removed: int = 0


# --- reading -------------------------------------------------------------------------------------


def _contacts(address: str) -> list[Contact]:
    return list(db.session.scalars(db.select(Contact).where(Contact.email == address)))


def _delegates(address: str, contact_ids: list[int]) -> list[Delegate]:
    condition = Delegate.email_normalised == address
    if contact_ids:
        condition = or_(condition, Delegate.contact_id.in_(contact_ids))
    return list(
        db.session.scalars(
            db.select(Delegate)
            .where(condition, Delegate.anonymised_at.is_(None))
            .order_by(Delegate.event_id, Delegate.id)
        )
    )


def _still_to_come(delegates: list[Delegate], now: datetime) -> list[tuple[Delegate, Event]]:
    """Their places that hold or wait for a seat at an event not yet over."""
    ids = [d.id for d in delegates if d.status != DelegateStatus.cancelled]
    if not ids:
        return []
    rows = db.session.execute(
        db.select(Delegate, Event)
        .join(Event, Event.id == Delegate.event_id)
        .where(Delegate.id.in_(ids), Event.ends_at > now)
        .order_by(Event.id, Delegate.id)
    ).all()
    return [(row[0], row[1]) for row in rows]


def _messages_about(address: str) -> Any:
    """Messages to the address, or quoting it anywhere a person could read it."""
    pattern = f"%{_like_escaped(address)}%"
    return db.select(OutboxMessage.id).where(
        or_(
            OutboxMessage.to_normalised == address,
            func.lower(OutboxMessage.text_body).like(pattern, escape="\\"),
            func.lower(OutboxMessage.html_body).like(pattern, escape="\\"),
            func.lower(OutboxMessage.subject).like(pattern, escape="\\"),
            func.lower(OutboxMessage.to_name).like(pattern, escape="\\"),
            func.lower(OutboxMessage.last_error).like(pattern, escape="\\"),
            func.lower(OutboxMessage.reply_to).like(pattern, escape="\\"),
        )
    )


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _count(statement: Any) -> int:
    return db.session.scalar(db.select(func.count()).select_from(statement.subquery())) or 0


def erasure_preview(email: str | None, now: datetime | None = None) -> ErasurePreview:
    """What erasing this address would do, changing nothing."""
    now = now or utcnow()
    address = checked_address(email)
    contacts = _contacts(address)
    contact_ids = [c.id for c in contacts]
    delegates = _delegates(address, contact_ids)
    coming = _still_to_come(delegates, now)
    preview = ErasurePreview(
        email=address,
        contact_name=contacts[0].name if contacts else None,
        places_to_cancel=[PlaceLine(e.title, e.starts_at, d.status) for d, e in coming],
        past_places=len(delegates) - len(coming),
    )
    if contact_ids:
        preview.bookings_made = _count(
            db.select(Booking.id).where(Booking.booker_id.in_(contact_ids))
        )
        preview.consents = _count(db.select(Consent.id).where(Consent.contact_id.in_(contact_ids)))
        preview.subscriptions = _count(
            db.select(SubscriptionRequest.id).where(SubscriptionRequest.contact_id.in_(contact_ids))
        )
        preview.topic_choices = _count(
            db.select(TopicOptOut.contact_id).where(TopicOptOut.contact_id.in_(contact_ids))
        )
    preview.emails_to_cancel = _count(
        db.select(OutboxMessage.id).where(
            OutboxMessage.to_normalised == address, OutboxMessage.status.in_(WAITING_TO_SEND)
        )
    )
    preview.emails_held = _count(_messages_about(address))
    preview.survey_invitations = _count(
        db.select(Invitation.id).where(
            or_(Invitation.email == address, Invitation.delegate_id.in_([d.id for d in delegates]))
        )
    )
    preview.already_suppressed = mail.is_suppressed(address)
    preview.staff_account = (
        db.session.scalar(db.select(StaffUser.id).where(StaffUser.email == address)) is not None
    )
    for job in _imports_holding(address):
        preview.import_files += 1
        if job.status == ImportStatus.running and not _lease_run_out(job, now):
            preview.imports_running.append(job.id)
    return preview


# --- erasing -------------------------------------------------------------------------------------


def erase_person(email: str | None, *, by: StaffUser, now: datetime | None = None) -> ErasureReport:
    """Erase everything held about the person with this address (see the module's docstring).
    The seats' lock is the transaction's first write, as `registration.services.seats_locked`
    requires; flushes, never commits."""
    now = now or utcnow()
    address = checked_address(email)
    report = ErasureReport()
    contact_ids = [c.id for c in _contacts(address)]
    coming = _still_to_come(_delegates(address, contact_ids), now)
    events = sorted({event.id: event for _d, event in coming}.values(), key=lambda e: e.id)
    for position, event in enumerate(events):  # in id order: two erasures never deadlock
        if position == 0:
            seats.lock_event_seats(event)  # ends the reads: everything is read again below
        else:
            seats.lock_event_seats_after_saving(event)

    contact_ids = [c.id for c in _contacts(address)]
    delegates = _delegates(address, contact_ids)
    delegate_ids = [d.id for d in delegates]
    placeholders = [anonymise.placeholder_address("delegate", i) for i in delegate_ids] + [
        anonymise.placeholder_address("contact", i) for i in contact_ids
    ]
    # Anonymised first, so that the emails the cancellations owe (to the booker, say) name
    # nobody; those to the person's own (now made-up) address are cancelled below.
    report.delegates_anonymised = anonymise.anonymise_delegates(delegate_ids, now)
    _remove_marketing(contact_ids, report)
    report.contacts_anonymised = anonymise.anonymise_contacts(contact_ids, now)
    for event in events:
        places = [d for d, e in _still_to_come(delegates, now) if e.id == event.id]
        done = waitlist.cancel_places(event, places, by=waitlist.CancelledBy.staff, now=now)
        report.places_cancelled += len(done.cancelled)
        report.promoted += len(done.promoted)

    _clear_messages(address, placeholders, report)
    _forget_links(address, contact_ids, delegate_ids)
    _forget_elsewhere(address)
    mail.keep_only_hash(address)
    # Who erased, and what it did; never the address (it is gone, but for its hash).
    audit.record(
        "person_erased",
        kind="person",
        detail=f"{report.places_cancelled} places cancelled ({report.promoted} promoted), "
        f"{report.delegates_anonymised} places and {report.contacts_anonymised} contacts "
        f"anonymised, {report.emails_cancelled} emails cancelled",
        by=by,
    )
    db.session.flush()
    return report


def _rows(statement: Any) -> int:
    result = db.session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _remove_marketing(contact_ids: list[int], report: ErasureReport) -> None:
    if not contact_ids:
        return
    requests = db.select(SubscriptionRequest.id).where(
        SubscriptionRequest.contact_id.in_(contact_ids)
    )
    _rows(delete(MarketingToken).where(MarketingToken.contact_id.in_(contact_ids)))
    report.consents_removed = _rows(delete(Consent).where(Consent.contact_id.in_(contact_ids)))
    _rows(delete(MarketingToken).where(MarketingToken.request_id.in_(requests)))
    report.subscriptions_removed = _rows(
        delete(SubscriptionRequest).where(SubscriptionRequest.contact_id.in_(contact_ids))
    )
    _rows(delete(TopicOptOut).where(TopicOptOut.contact_id.in_(contact_ids)))
    db.session.flush()


def _clear_messages(address: str, placeholders: list[str], report: ErasureReport) -> None:
    """Every email still owed to the person is cancelled (conditionally: one a worker holds right
    now is left to it); then every email to them or quoting their address is cleared."""
    db.session.flush()
    to_them = or_(
        OutboxMessage.to_normalised == address, OutboxMessage.to_normalised.in_(placeholders)
    )
    report.emails_cancelled = _rows(
        update(OutboxMessage)
        .where(to_them, OutboxMessage.status.in_(WAITING_TO_SEND))
        .values(status=MessageStatus.cancelled, last_error="cancelled: the person was erased")
    )
    about = [*db.session.scalars(_messages_about(address))]
    about += list(
        db.session.scalars(
            db.select(OutboxMessage.id).where(OutboxMessage.to_normalised.in_(placeholders))
        )
    )
    # Those still owed to others that quote the address are cancelled too: never sent half-empty.
    _rows(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(about), OutboxMessage.status.in_(WAITING_TO_SEND))
        .values(status=MessageStatus.cancelled)
    )
    report.emails_cleared = anonymise.clear_messages(sorted(set(about)))


def _forget_links(address: str, contact_ids: list[int], delegate_ids: list[int]) -> None:
    """Links sent to them stop working: unsubscribe, manage, survey (the invitation stays, with a
    made-up address, so that a named survey's response counts stay)."""
    _rows(delete(UnsubscribeToken).where(UnsubscribeToken.email == address))
    if contact_ids:
        bookings = db.select(Booking.id).where(Booking.booker_id.in_(contact_ids))
        _rows(delete(BookingToken).where(BookingToken.booking_id.in_(bookings)))
    invitations = db.select(Invitation.id).where(
        or_(Invitation.email == address, Invitation.delegate_id.in_(delegate_ids))
    )
    _rows(delete(SurveyToken).where(SurveyToken.invitation_id.in_(invitations)))
    _rows(
        update(Invitation)
        .where(Invitation.email == address)
        .values(email=anonymise._placeholder_sql("invitation", Invitation.id))
    )


def _forget_import_files(address: str) -> None:
    """Delete every uploaded import file that holds the address (read in the file's own encoding:
    a UTF-16 file holds it as other bytes). One not yet run (its columns being chosen, or waiting
    for the worker), or running under a lease its worker let run out, is cancelled with it, so that
    it never makes the person again; one done, cancelled or failed keeps its report, and the
    reason its file is gone. While one that holds the address is running, the erasure is refused
    (its chunks may be writing the person now): staff cancel it or let it finish, then erase.
    `import_jobs.start` refuses a job whose file is gone."""
    now = utcnow()
    for job_id, status, dry_run, _lease in _imports_holding(address):
        if status in FINISHED_JOBS:
            imported = status == ImportStatus.done and not dry_run  # its report says it all
            reason = {} if imported else {"error": IMPORT_FILE_DELETED}
            _rows(
                update(ImportJob)
                .where(ImportJob.id == job_id)
                .values(content=b"", size=0, **reason)
            )
            continue
        stopped = _rows(
            update(ImportJob)
            .where(
                ImportJob.id == job_id,
                or_(
                    ImportJob.status.in_(NOT_YET_RUN),
                    (ImportJob.status == ImportStatus.running) & (ImportJob.lease_until < now),
                ),
            )
            .values(
                status=ImportStatus.cancelled,
                cancel_requested=True,
                finished_at=now,
                claimed_by=None,
                lease_until=None,
                error=IMPORT_STOPPED,
                content=b"",
                size=0,
            )
        )
        if not stopped:  # running, or claimed by the worker since it was read
            raise ErasureRefused(
                f"Import {job_id} holds this address and is running now. Cancel it on its page "
                "(or let it finish), then erase.",
                field="email",
            )


class ImportHolding(NamedTuple):
    id: int
    status: ImportStatus
    dry_run: bool
    lease_until: datetime | None


def _imports_holding(address: str) -> Iterator[ImportHolding]:
    """The id, status, dry-run mark and lease of each import whose stored file holds the
    address, its file read one at a time."""
    jobs = db.session.execute(
        db.select(
            ImportJob.id,
            ImportJob.status,
            ImportJob.dry_run,
            ImportJob.lease_until,
            ImportJob.encoding,
        )
        .where(ImportJob.size > 0)
        .order_by(ImportJob.id)
    ).all()
    for job in jobs:
        content = db.session.scalar(db.select(ImportJob.content).where(ImportJob.id == job.id))
        if content and address in _decoded(content, job.encoding).lower():
            yield ImportHolding(job.id, job.status, job.dry_run, job.lease_until)


def _lease_run_out(job: ImportHolding, now: datetime) -> bool:
    """A running import whose worker let its lease run out: the erasure cancels it."""
    return job.lease_until is not None and job.lease_until < now


def _decoded(content: bytes, encoding: str) -> str:
    try:
        return content.decode(encoding or "utf-8", errors="ignore")
    except LookupError:  # an encoding Python does not know: read it as UTF-8
        return content.decode("utf-8", errors="ignore")


def _forget_elsewhere(address: str) -> None:
    """Where else an address can sit: a speaker's private email, an import's report and file, a
    merge's snapshot of the contact that was removed."""
    pattern = f"%{_like_escaped(address)}%"
    _rows(update(Speaker).where(func.lower(Speaker.email) == address).values(email=None))
    _rows(
        update(ImportJobRow)
        .where(
            or_(
                ImportJobRow.email == address,
                func.lower(ImportJobRow.detail).like(pattern, escape="\\"),
                func.lower(cast(ImportJobRow.cells, String)).like(pattern, escape="\\"),
            )
        )
        .values(email="", detail="", cells=None)
    )
    _forget_import_files(address)
    _rows(
        update(MergeRecord)
        .where(func.lower(cast(MergeRecord.removed_snapshot, String)).like(pattern, escape="\\"))
        .values(removed_snapshot={"erased": True})
    )
    # A suppression row holding the address in its answer from a mail server, under another row.
    _rows(
        update(Suppression)
        .where(
            Suppression.email_hash != address_hash(address),
            func.lower(Suppression.detail).like(pattern, escape="\\"),
        )
        .values(detail=None)
    )
