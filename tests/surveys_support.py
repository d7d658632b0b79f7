"""Shared pieces for the survey tests: a finished seminar with delegates, and the survey link."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from chamber.core.times import utcnow
from chamber.events.models import AgendaKind, Event
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.registration import services as registration
from chamber.registration.models import Delegate
from chamber.resources.models import EventResource, Resource, ResourceStatus
from chamber.surveys import dispatch, services
from chamber.surveys.models import Invitation, Survey
from tests.factories import acting_staff, make_booking

LINK = re.compile(r"https?://[^/\s]+/s/([A-Za-z0-9_-]+)")


def book(
    event: Event,
    email: str,
    *,
    name: str = "Dee Legate",
    business: str | None = None,
    size_band: SizeBand = SizeBand.small,
    sector: str = "IT",
    member: bool = False,
    checked_in: bool = True,
) -> Delegate:
    """A delegate of a business of their own, who came unless `checked_in=False`."""
    details = registration.BusinessDetails(
        business or f"Business of {email}", size_band, sector=sector, is_member=member
    )
    person = registration.DelegateDetails(name, email)
    return make_booking(event, person, business=details, checked_in=checked_in).confirmed[0]


PACK = (
    "The NCSC Small Business Guide",
    "Cyber Essentials certification",
    "Staff awareness training",
)


def attach_pack(event: Event, titles=PACK, status: ResourceStatus = ResourceStatus.published):
    """Resources in `event`'s pack, in order."""
    for position, title in enumerate(titles):
        resource = Resource(
            slug=f"e{event.id}-{uuid.uuid4().hex[:8]}",
            title=title,
            status=status,
            url="https://x.test/",
        )
        db.session.add(resource)
        db.session.flush()
        db.session.add(EventResource(event_id=event.id, resource_id=resource.id, position=position))
    db.session.commit()


def finished_seminar(
    make_event, make_item, *, days_ago: int = 1, pack: bool = True, **fields
) -> Event:
    """A published seminar that ended `days_ago` days ago, with two talks and a break, and (unless
    `pack` is false) three published resources in its pack."""
    starts = utcnow().replace(second=0, microsecond=0) - timedelta(days=days_ago, hours=4)
    event = make_event(starts_at=starts, **fields)
    make_item(event, minutes_in=0, title="Welcome", kind=AgendaKind.welcome)
    make_item(event, minutes_in=30, title="Phishing and passwords")
    make_item(event, minutes_in=60, title="Coffee", kind=AgendaKind.break_)
    make_item(event, minutes_in=90, title="Ransomware: a case study", kind=AgendaKind.panel)
    if pack:
        attach_pack(event)
    return event


def sent_survey(event: Event, **settings) -> Survey:
    """The template survey for `event`, sent now (invitations queued, committed)."""
    survey = services.create_survey(event, by=acting_staff())
    for name, value in settings.items():
        setattr(survey, name, value)
    services.prepare_to_send_now(survey, by=acting_staff())
    assert dispatch.send_survey(survey) is not None
    db.session.commit()
    return survey


def token_for(invitation: Invitation) -> str:
    """A fresh link for one invitation, as an email would carry."""
    token = dispatch.new_survey_token(invitation)
    db.session.commit()
    return token


def invitation_of(survey: Survey, email: str) -> Invitation:
    return db.session.scalars(
        db.select(Invitation).where(Invitation.survey_id == survey.id, Invitation.email == email)
    ).one()


# --- in the browser ------------------------------------------------------------------------------

# Words in the matched elements that the browser drew across two lines (broken mid-letter).
BROKEN_WORDS = """(selector) => {
  const broken = [];
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.textContent.matchAll(/[^\\s\\-–]+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}"""


def words_broken_mid_letter(page, selector: str = "table th, table td") -> list[str]:
    return page.evaluate(BROKEN_WORDS, selector)


def tab_to(page, locator, limit: int = 80) -> None:
    """Press Tab until `locator` has the keyboard focus, as a keyboard user would reach it."""
    handle = locator.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(el) => document.activeElement === el", handle):
            return
    raise AssertionError(f"Tab never reached {locator}")


def focus_is_visible(locator) -> bool:
    return locator.evaluate(
        "(el) => el.matches(':focus-visible') && getComputedStyle(el).outlineStyle !== 'none'"
        " && parseFloat(getComputedStyle(el).outlineWidth) >= 2"
    )
