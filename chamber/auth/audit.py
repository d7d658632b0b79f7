"""The audit trail: an append-only log of the staff actions that matter (docs/audit.md).

Any domain calls `record(action, kind=..., object_id=..., detail=...)` after a change succeeded,
inside the request's transaction: a change that is refused or rolled back leaves no entry. The
one exception is a failed sign-in (wrong password, wrong code), which the request answers with a
4xx and rolls back: `record_now` writes it on a connection of its own, committed at once.

Nothing in the app edits or deletes an entry: there is no route for it, the model has no method
for it, and on PostgreSQL a trigger refuses UPDATE and DELETE outright, except a DELETE of rows
older than the cutoff the retention job names for its own transaction (`purge_older_than`).

An entry names staff and the objects they acted on by kind and id; its detail says what changed
in words chosen by the code, never a member of the public's name or address, so erasing a person
never needs to touch this log.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app, has_request_context, request
from flask_login import current_user
from sqlalchemy import Select, String, func, insert, text
from sqlalchemy.orm import Mapped, mapped_column

from chamber.core.dialects import on_postgresql
from chamber.core.times import UTCDateTime, local_to_utc, utcnow
from chamber.extensions import db

# The fixed vocabulary: action name -> what it means, in words for the audit page. A name not
# listed here is a programming error (`record` raises), so the filter lists every action there is.
ACTIONS: dict[str, str] = {
    # signing in
    "sign_in": "Signed in",
    "sign_in_failed": "Sign-in failed",
    "sign_out": "Signed out",
    "second_factor_failed": "Two-factor code refused",
    "recovery_code_used": "Signed in with a recovery code",
    "password_reset_requested": "Asked for a password reset",
    "password_reset": "Reset their password by email",
    "two_factor_enabled": "Turned on two-factor sign-in",
    "two_factor_disabled": "Turned off two-factor sign-in",
    "session_ended": "Signed a session out",
    "other_sessions_ended": "Signed out everywhere else",
    # staff accounts and settings
    "staff_created": "Added a staff account",
    "staff_changed": "Changed a staff account",
    "staff_password_set": "Set a staff member's password",
    "setting_changed": "Changed a setting",
    # events and bookings
    "event_created": "Created an event",
    "event_changed": "Changed an event",
    "event_published": "Published an event",
    "event_unpublished": "Unpublished an event",
    "event_cancelled": "Cancelled an event",
    "event_copied": "Copied an event",
    "booking_added": "Added a booking",
    "place_cancelled": "Cancelled a place",
    "place_promoted": "Gave a waiting place a seat",
    "checked_in": "Checked a delegate in",
    "check_in_undone": "Undid a check-in",
    "walk_in": "Admitted a walk-in",
    # the member directory
    "record_added": "Added a directory record",
    "record_changed": "Changed a directory record",
    "record_archived": "Archived a directory record",
    "record_restored": "Restored a directory record",
    "records_merged": "Merged two directory records",
    "directory_imported": "Imported a spreadsheet into the directory",
    "consent_recorded": "Recorded someone's consent",
    "consent_withdrawn": "Recorded a withdrawal of consent",
    "bounce_lifted": "Lifted a hard bounce",
    # personal data leaving the app
    "exported": "Exported personal data",
    "downloaded": "Downloaded a list with personal data",
    # mail
    "campaign_sent": "Sent a campaign",
    "campaign_scheduled": "Scheduled a campaign",
    "email_retried": "Sent a failed email again",
    "email_cancelled": "Cancelled an email",
    # privacy (issue 15: retention, a person's data)
    "person_looked_up": "Looked up a person's data",
    "person_exported": "Exported a person's data",
    "person_erased": "Erased a person",
    "retention_changed": "Changed a retention setting",
    "retention_run": "Ran retention",
    "privacy_notice_changed": "Changed the privacy notice",
}

DETAIL_LENGTH = 300
USER_AGENT_LENGTH = 200


class AuditEntry(db.Model):
    """One thing a member of staff did: who (their id, and their email as it was then, since the
    log outlives accounts and a changed email), when (UTC), what (an action of `ACTIONS` and the
    kind and id of the object), a short detail, and from where (the client address as the app
    sees it, and the user agent, trimmed). There is no foreign key to `staff_user`: the log keeps
    its copy whatever happens to the account, and a key's ON DELETE would have to change it."""

    __tablename__ = "audit_entry"
    __table_args__ = (db.Index("ix_audit_entry_object", "object_kind", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(index=True)
    user_email: Mapped[str] = mapped_column(String(254), default="")
    action: Mapped[str] = mapped_column(String(40), index=True)
    object_kind: Mapped[str] = mapped_column(String(40), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(String(DETAIL_LENGTH), default="")
    ip_address: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(USER_AGENT_LENGTH), default="")

    @property
    def action_label(self) -> str:
        return ACTIONS.get(self.action, self.action)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} {self.object_kind} {self.object_id}>"


# --- writing -------------------------------------------------------------------------------------


def one_line(value: object, length: int) -> str:
    """`value` as one line of printable text at most `length` long: line breaks become spaces,
    other control and format characters go."""
    if value is None:
        return ""
    cleaned = []
    for ch in str(value):
        category = unicodedata.category(ch)
        if ch in "\r\n\t\u2028\u2029\x85\x0b\x0c":
            cleaned.append(" ")
        elif category in ("Cc", "Cf", "Cs", "Co"):
            continue
        else:
            cleaned.append(ch)
    return " ".join("".join(cleaned).split())[:length]


def _values(
    action: str,
    *,
    kind: str,
    object_id: object,
    detail: str,
    by: Any,
    email: str | None,
) -> dict[str, Any]:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to auth.audit.ACTIONS")
    if by is None and has_request_context() and current_user.is_authenticated:
        by = current_user
    ip = user_agent = ""
    if has_request_context():
        ip = request.remote_addr or ""  # set by ProxyFix for the CHAMBER_PROXY_COUNT proxies
        user_agent = request.headers.get("User-Agent", "")
    return {
        "at": utcnow(),
        "user_id": getattr(by, "id", None),
        "user_email": one_line(email if email is not None else getattr(by, "email", ""), 254),
        "action": action,
        "object_kind": one_line(kind, 40),
        "object_id": one_line("" if object_id is None else object_id, 64),
        "detail": one_line(detail, DETAIL_LENGTH),
        "ip_address": one_line(ip, 45),
        "user_agent": one_line(user_agent, USER_AGENT_LENGTH),
    }


def record(
    action: str,
    *,
    kind: str = "",
    object_id: object = None,
    detail: str = "",
    by: Any = None,
    email: str | None = None,
) -> AuditEntry:
    """Log `action` in the current transaction (flushed): it commits with the change it
    describes, and a rollback takes it away. `by` is the acting staff user (default: the one
    signed in); `email` overrides the address logged (a sign-in by someone not yet loaded)."""
    entry = AuditEntry(
        **_values(action, kind=kind, object_id=object_id, detail=detail, by=by, email=email)
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def record_now(
    action: str,
    *,
    kind: str = "",
    object_id: object = None,
    detail: str = "",
    by: Any = None,
    email: str | None = None,
) -> None:
    """Log `action` at once, on a connection and transaction of its own, whatever becomes of the
    request's: for what is refused and must still be seen (a failed sign-in)."""
    values = _values(action, kind=kind, object_id=object_id, detail=detail, by=by, email=email)
    with db.engine.begin() as connection:
        connection.execute(insert(AuditEntry), [values])


# --- retention -----------------------------------------------------------------------------------


def retention_cutoff(now: datetime | None = None) -> datetime:
    """Entries logged before this are past `CHAMBER_AUDIT_RETENTION_MONTHS` (30-day months)."""
    months = int(current_app.config["AUDIT_RETENTION_MONTHS"])
    return (now or utcnow()) - timedelta(days=30 * months)


def purge_older_than(cutoff: datetime) -> int:
    """Delete entries logged before `cutoff`, in the caller's transaction; returns how many.

    The retention job's call, and the only DELETE the PostgreSQL trigger lets through: this
    transaction tells it the cutoff (`chamber.audit_purge_before`, local to the transaction), and
    it refuses any row at or after it."""
    naive = cutoff.astimezone(UTC).replace(tzinfo=None) if cutoff.tzinfo else cutoff
    if on_postgresql():
        db.session.execute(
            text("SELECT set_config('chamber.audit_purge_before', :cutoff, true)"),
            {"cutoff": naive.isoformat(sep=" ")},
        )
    result = db.session.execute(db.delete(AuditEntry).where(AuditEntry.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


# --- reading -------------------------------------------------------------------------------------


def entries(
    *,
    who: str = "",
    action: str = "",
    kind: str = "",
    object_id: str = "",
    since: date | None = None,
    until: date | None = None,
) -> Select[tuple[AuditEntry]]:
    """The entries matching the audit page's filters, unordered (the caller orders or pages):
    `who` part of the email, `action` one of ACTIONS, `kind` and `object_id` exactly, `since` and
    `until` whole days in the chamber's zone, both included."""
    query = db.select(AuditEntry)
    if who:
        pattern = "%" + who.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(AuditEntry.user_email).like(pattern + "%", escape="\\"))
    if action:
        query = query.where(AuditEntry.action == action)
    if kind:
        query = query.where(AuditEntry.object_kind == kind)
    if object_id:
        query = query.where(AuditEntry.object_id == object_id)
    zone = current_app.config["TIMEZONE"]
    if since is not None:
        query = query.where(AuditEntry.at >= local_to_utc(datetime.combine(since, time()), zone))
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), time())
        query = query.where(AuditEntry.at < local_to_utc(end, zone))
    return query


def object_kinds() -> list[str]:
    """Every kind of object the log names, for the page's filter."""
    return [
        kind
        for kind in db.session.scalars(
            db.select(AuditEntry.object_kind).distinct().order_by(AuditEntry.object_kind)
        )
        if kind
    ]


EXPORT_LIMIT = 100_000
EXPORT_HEADER = (
    "When (UTC)",
    "Staff user id",
    "Staff email",
    "Action",
    "Object kind",
    "Object id",
    "Detail",
    "IP address",
    "User agent",
)


def export_rows(query: Select[tuple[AuditEntry]]) -> list[tuple[object, ...]]:
    """The CSV's rows, newest first, at most EXPORT_LIMIT."""
    return [
        (
            entry.at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.user_id if entry.user_id is not None else "",
            entry.user_email,
            entry.action,
            entry.object_kind,
            entry.object_id,
            entry.detail,
            entry.ip_address,
            entry.user_agent,
        )
        for entry in db.session.scalars(query.order_by(AuditEntry.id.desc()).limit(EXPORT_LIMIT))
    ]
