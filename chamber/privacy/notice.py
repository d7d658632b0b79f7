"""The public privacy notice: its versions, the one shown now, and the built-in text shown until
an admin saves one (docs/privacy.md, "Privacy notice").

Admins write the notice in Markdown; each save is a new version, never an edit of an old one, so
the text a person was shown (the number their booking, consent or subscription recorded) can be
read again. The chamber's name and contact come from the settings and frame the text on the page;
they are never placeholders in it (text a person typed is data, not a template)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from flask import current_app
from sqlalchemy import Select, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from chamber.auth.models import StaffUser
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.privacy.models import PrivacyNotice

BODY_MAX = 50_000  # characters: a long notice is a few thousand
SUMMARY_MAX = 200
BUILT_IN = 0  # the version number of the built-in text


class NoticeRefused(Refusal):
    """A save of the notice that cannot be made (shown on the edit form)."""


@dataclass(frozen=True)
class ShownNotice:
    """What the public page shows: the version, its text and when it was saved (None: built in)."""

    version: int
    body: str
    saved_at: datetime | None

    @property
    def is_built_in(self) -> bool:
        return self.version == BUILT_IN


@dataclass(frozen=True)
class ChamberContact:
    """Who the notice is from, as the settings say."""

    name: str
    email: str


def chamber_contact() -> ChamberContact:
    """The chamber's name (CHAMBER_NAME) and the address people write to about their data: the
    reply-to address if one is set, else the sender's (CHAMBER_MAIL_REPLY_TO, CHAMBER_MAIL_FROM)."""
    config = current_app.config
    address = parseaddr(config.get("MAIL_REPLY_TO") or config.get("MAIL_FROM") or "")[1]
    return ChamberContact(name=config["CHAMBER_NAME"], email=address)


def current_notice() -> ShownNotice:
    """The latest saved version, or the built-in text when none has been saved (one query)."""
    latest = db.session.scalar(
        db.select(PrivacyNotice).order_by(PrivacyNotice.version.desc()).limit(1)
    )
    if latest is None:
        return ShownNotice(BUILT_IN, default_text(chamber_contact()), None)
    return ShownNotice(latest.version, latest.body, latest.saved_at)


def current_version() -> int:
    """The number of the version shown now (0: the built-in text), in one query."""
    return int(db.session.scalar(current_version_statement()))


@functools.cache
def current_version_statement() -> Select[tuple[int]]:
    """`current_version`'s statement, made once."""
    statement: Select[tuple[int]] = db.select(
        func.coalesce(func.max(PrivacyNotice.version), BUILT_IN)
    )
    return statement


def notice_version_asked(_sender: object) -> Select[tuple[int]]:
    """The receiver of `core.notice.notice_version_asked`: the forms below ask through it."""
    return current_version_statement()


def versions() -> list[PrivacyNotice]:
    """Every saved version, newest first, with who saved it (two queries, however many)."""
    return list(
        db.session.scalars(
            db.select(PrivacyNotice)
            .options(selectinload(PrivacyNotice.saved_by))
            .order_by(PrivacyNotice.version.desc())
        )
    )


def version(number: int) -> PrivacyNotice | None:
    found: PrivacyNotice | None = db.session.scalar(
        db.select(PrivacyNotice).where(PrivacyNotice.version == number)
    )
    return found


def save_notice(
    body: str, summary: str, *, by: StaffUser, now: datetime | None = None
) -> PrivacyNotice:
    """A new version of the notice with `body`, numbered one past the latest. Saving the text
    shown now again is refused (it would be a version that changes nothing). Two admins saving
    at once both read the same latest number: the unique version makes the second's flush fail,
    and they are asked to look again. Flushes, never commits."""
    body = body.strip()
    if not body:
        raise NoticeRefused("Enter the text of the privacy notice.", field="body")
    if len(body) > BODY_MAX:
        raise NoticeRefused(f"The notice must be {BODY_MAX:,} characters or fewer.", field="body")
    shown = current_notice()
    if body == shown.body.strip():
        raise NoticeRefused(
            "This is the text shown now: change something before saving a new version.",
            field="body",
        )
    notice = PrivacyNotice(
        version=shown.version + 1,
        body=body,
        summary=summary.strip()[:SUMMARY_MAX],
        saved_by_id=by.id,
        saved_at=now or utcnow(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(notice)
            db.session.flush()
    except IntegrityError as error:
        raise NoticeRefused(
            "Someone saved a new version while you were editing: open the notice again to see it."
        ) from error
    return notice


# --- the built-in text ---------------------------------------------------------------------------

# Kept in step with the retention defaults (docs/privacy.md, "Retention").
DELEGATE_DETAILS_MONTHS = 24
NEEDS_MONTHS = 1
OUTBOX_BODY_DAYS = 90


def default_text(contact: ChamberContact) -> str:
    """A notice for a UK chamber of commerce that runs events and sends its members email, to be
    read, adapted and saved by an admin. Built from the settings by this code, never from text
    anyone typed."""
    write_to = f"[{contact.email}](mailto:{contact.email})" if contact.email else "us"
    return f"""\
# Who we are

{contact.name} ("we") runs business events and seminars, keeps a directory of its members and
the businesses it works with, and sends news of its events to people who want it. We decide how
your personal data is used: we are its controller under the UK GDPR and the Data Protection Act
2018. To ask anything about your data, write to {write_to}.

# What we collect

- **When you book an event**: your name, email address, job title and phone number, your
  business's name, size, sector, town or postcode and whether it is a member; the same details for
  each delegate you book; any access or dietary needs you tell us.
- **At the event**: whether you came (we check people in at the door).
- **When you subscribe to our emails**: your name, email address, your business's name, the
  topics you chose, and when and how you agreed.
- **When you answer a survey**: your answers, with your business's size, sector and membership.
  If the survey says it is anonymous, we report answers only in totals, never with your name, and
  show no results that could single out one person while fewer than five people have answered.
- **Emails we send you**: a record of each message (its subject, when it was sent and whether it
  was delivered).

# Why we use it, and our lawful basis

- **To run the event you booked** (your place, the waiting list, confirmations, changes,
  reminders, joining details, check-in): *contract*, since you asked us to book you a place.
- **To meet your access or dietary needs**: your *explicit consent*, given when you tell us.
- **To send a survey after an event you attended**: our *legitimate interests* in improving our
  events; you can opt out in any email.
- **To send news of our events and our newsletter**: your *consent*; or, if you booked an event
  with us and did not opt out, the "soft opt-in"; or, for an address at a company, our
  *legitimate interests*. You can unsubscribe at any time.
- **To keep our member directory and records of membership**: our *legitimate interests* in
  running a membership organisation.
- **To keep counts of who came and survey totals** for our reports and funders: our *legitimate
  interests*; these keep no names.

We never sell your data. Our email and hosting providers process it for us under contract.

# How long we keep it

- Delegates' personal details (names, contact details): **24 months after the event**, then we
  remove them and keep only counts (attendance, business size, sector, membership).
- Access and dietary needs: **1 month after the event**.
- The text of emails we sent you: **90 days**; we keep a record that a message was sent.
- If you unsubscribe, we keep a one-way fingerprint of your address so that we never email you
  again by mistake.

# Your rights

You may ask us for a copy of the data we hold about you, to correct it, to erase it, to restrict or
object to how we use it, and to withdraw consent at any time (withdrawing does not make earlier
use unlawful). Every marketing email has a one-click unsubscribe link. We answer within one month.
Write to {write_to}.

If you are unhappy with how we use your data, please tell us first. You may also complain to the
Information Commissioner's Office (ICO): [ico.org.uk/make-a-complaint](https://ico.org.uk/make-a-complaint/),
0303 123 1113.
"""
