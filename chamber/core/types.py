"""Column types shared by every domain's models."""

from __future__ import annotations

import enum

from sqlalchemy import Enum


def enum_type(enum_class: type[enum.Enum]) -> Enum:
    """A portable enum column: a VARCHAR holding each member's value, with a CHECK constraint."""
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=True,
        length=20,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
        name=enum_class.__name__.lower(),
    )
