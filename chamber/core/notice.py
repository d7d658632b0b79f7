"""The privacy notice's current version, for the forms that record which version a person saw.

The notice lives in `privacy` (layer 9), above the forms that collect personal data (members,
registration), so they ask through this signal and `privacy` answers (as `calendar_audience`)."""

from __future__ import annotations

from blinker import Namespace
from flask import current_app

_signals = Namespace()

# Receivers return the number of the version the public page shows now (0: the built-in text).
notice_version_asked = _signals.signal("privacy-notice-version-asked")


def current_notice_version() -> int | None:
    """The version of the privacy notice shown now, or None when no receiver answers."""
    answers = notice_version_asked.send(current_app._get_current_object())  # type: ignore[attr-defined]
    return next((value for _receiver, value in answers if value is not None), None)
