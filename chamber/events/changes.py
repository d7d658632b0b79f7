"""What changed about an event, in words, for the emails that tell its delegates: old and new
values side by side, times in the event's own zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chamber.core.times import format_date, format_time, utc_to_local
from chamber.events.models import Event, EventStatus
from chamber.events.places import address_lines

ADDRESS_FIELDS = ("venue_address", "venue_town", "venue_postcode", "venue_country")


def zone_label(zone_name: str) -> str:
    """`Europe/London` as people say it: "London time"."""
    return f"{zone_name.rsplit('/', 1)[-1].replace('_', ' ')} time"


def _moment(local: datetime) -> str:
    return f"{format_date(local)}, {format_time(local)}"


def _moved(what: str, old: datetime, old_zone: str, new: datetime, new_zone: str) -> str | None:
    old_local, new_local = utc_to_local(old, old_zone), utc_to_local(new, new_zone)
    if old_zone != new_zone:
        return (
            f"The {what} moved from {_moment(old_local)} ({zone_label(old_zone)}) "
            f"to {_moment(new_local)} ({zone_label(new_zone)})."
        )
    if old_local == new_local:
        return None
    to = format_time(new_local) if old_local.date() == new_local.date() else _moment(new_local)
    return f"The {what} moved from {_moment(old_local)} to {to} ({zone_label(new_zone)})."


def _changed_text(what: str, old: str, new: str) -> str:
    if not old:
        return f"The {what} is now {new}."
    if not new:
        return f"The {what} ({old}) was removed."
    return f"The {what} changed from {old} to {new}."


def describe_changes(event: Event, before: dict[str, Any]) -> list[str]:
    """One sentence per change, from `before` (the old values of the fields that changed, as the
    `calendar_changed` signal carries them) to what `event` says now."""
    said: list[str] = []
    old_zone = before.get("timezone", event.timezone)
    if old_zone != event.timezone:
        said.append(f"The time zone changed from {old_zone} to {event.timezone}.")
    for field, what in (("starts_at", "start"), ("ends_at", "end")):
        if field in before or "timezone" in before:
            old = before.get(field, getattr(event, field))
            sentence = _moved(what, old, old_zone, getattr(event, field), event.timezone)
            if sentence:
                said.append(sentence)
    if "venue_name" in before:
        said.append(_changed_text("venue", before["venue_name"], event.venue_name))
    if any(field in before for field in ADDRESS_FIELDS):
        old_parts = [before.get(field, getattr(event, field)) for field in ADDRESS_FIELDS]
        old = ", ".join(address_lines(*old_parts))
        new = ", ".join(event.address_lines)
        if old != new:
            said.append(_changed_text("address", old, new))
    if before.get("status", event.status) != event.status:
        if event.status == EventStatus.cancelled:
            said.append("The event was cancelled.")
        elif event.status == EventStatus.published:
            said.append("The event is published again and going ahead.")
    return said
