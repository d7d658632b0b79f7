"""Helpers the templates call: attributes that tie an input to its hint and errors."""

from __future__ import annotations

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
    return attributes
