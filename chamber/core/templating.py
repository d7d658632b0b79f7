"""Helpers the templates call: attributes that tie an input to its hint and errors, and the
machine-readable time of a `<time datetime>`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wtforms import Field


def field_attributes(field: Field, width: int | None = None) -> dict[str, Any]:
    """Class, aria-describedby and aria-invalid for an input, leaving out what does not apply."""
    described = []
    if field.description:
        described.append(f"{field.id}-hint")
    if field.errors:
        described.append(f"{field.id}-error")
    attributes: dict[str, Any] = {}
    if field.type != "BooleanField":
        classes = ["input"]
        if field.errors:
            classes.append("input-error")
        if width:
            classes.append(f"width-{width}")
        attributes["class_"] = " ".join(classes)
    if described:
        attributes["aria-describedby"] = " ".join(described)
    if field.errors:
        attributes["aria-invalid"] = "true"
    if field.type == "SelectField" and not _first_choice_is_empty(field):
        # `required` on a select asks for an empty first option to mean "not chosen" (HTML's
        # rule); a list of real choices always has one chosen, and the server checks it anyway.
        attributes["required"] = False
    return attributes


def _first_choice_is_empty(field: Field) -> bool:
    choices = list(getattr(field, "iter_choices", lambda: [])())
    return bool(choices) and choices[0][0] in ("", None)


def html_datetime(moment: datetime) -> str:
    """A moment for `<time datetime="...">`: UTC to the second, e.g. `2030-06-12T07:30:00Z`.
    HTML allows at most three digits of fractional seconds; a page needs none."""
    if moment.tzinfo is None:
        raise ValueError("html_datetime needs an aware datetime (times are stored as UTC)")
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
