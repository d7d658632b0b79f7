"""The privacy notice's current version, for the forms that record which version a person saw.

The notice lives in `privacy` (layer 9), above the forms that collect personal data (members,
registration), so they ask through this signal and `privacy` answers (as `calendar_audience`)."""

from __future__ import annotations

from typing import Any

from blinker import Namespace
from flask import current_app

from chamber.extensions import db

_signals = Namespace()

# Receivers return a SELECT of the number of the version the public page shows now (one row, one
# column; 0: the built-in text), so that a form's INSERT can read it as it writes (a subquery)
# rather than ask for it first.
notice_version_asked = _signals.signal("privacy-notice-version-asked")


def current_notice_version() -> int | None:
    """The version of the privacy notice shown now, or None when no receiver answers."""
    statement = _statement()
    return None if statement is None else int(db.session.scalar(statement))


def notice_version_as_written() -> Any | None:
    """The version shown now as a subquery of the statement that records it (None when no
    receiver answers): `Model(privacy_notice_version=notice_version_as_written())`."""
    statement = _statement()
    return None if statement is None else statement.scalar_subquery()


def _statement() -> Any | None:
    answers = notice_version_asked.send(current_app._get_current_object())  # type: ignore[attr-defined]
    return next((value for _receiver, value in answers if value is not None), None)
