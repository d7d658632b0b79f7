"""What a survey does when its event changes: a cancelled event's scheduled survey goes back to
draft, and an unsent survey follows the event's end when the event moves (postponed, brought
forward, another zone). `event_changed` receives `events.signals.calendar_changed` (connected in
`surveys.init_app`), so it runs in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from chamber.events.models import Event
from chamber.extensions import db
from chamber.surveys import services
from chamber.surveys.models import Survey, SurveyStatus


def event_changed(
    _app: object, *, event: Event, changed: tuple[str, ...], before: dict[str, Any]
) -> None:
    if "status" in changed and event.is_cancelled:
        _back_to_draft(event)
    if "ends_at" in changed or "timezone" in changed:
        old_end = before.get("ends_at", event.ends_at), before.get("timezone", event.timezone)
        _follow_the_end(event, old_end)


def _back_to_draft(event: Event) -> None:
    """Conditional, so a worker that has just sent the survey is never overruled."""
    db.session.execute(
        update(Survey)
        .where(Survey.event_id == event.id, Survey.status == SurveyStatus.scheduled)
        .values(status=SurveyStatus.draft)
        .execution_options(synchronize_session=False)
    )
    _expire_survey(event)


def _follow_the_end(event: Event, before: tuple[datetime, str]) -> None:
    """Move an unsent survey's send time to the morning after the new end, if it would now go
    before the event is over or was the old default; the closing date keeps its place after it."""
    survey = services.survey_for_event(event.id)
    if survey is None or survey.status == SurveyStatus.sent or survey.send_at is None:
        return
    old_default = services.send_at_after(*before)
    if not (survey.send_at < event.ends_at or survey.send_at == old_default):
        return
    send_at = services.default_send_at(event)
    closes_at = survey.closes_at
    if closes_at is not None and (
        closes_at == services.default_closes_at(survey.send_at)
        or closes_at <= send_at
        or survey.reminder_enabled
        and send_at + timedelta(days=survey.reminder_after_days) >= closes_at
    ):
        closes_at = services.default_closes_at(send_at)
    db.session.execute(
        update(Survey)
        .where(Survey.id == survey.id, Survey.status != SurveyStatus.sent)
        .values(send_at=send_at, closes_at=closes_at)
        .execution_options(synchronize_session=False)
    )
    _expire_survey(event)


def _expire_survey(event: Event) -> None:
    for obj in db.session.identity_map.values():
        if isinstance(obj, Survey) and obj.event_id == event.id:
            db.session.expire(obj)
