"""What auth tells the domains above it, as blinker signals sent with the app as sender. Auth sits
below mail (whose staff pages stand behind auth's guard) and never imports it.

- `password_reset_requested(app, reset=)`: an active staff account asked for a password reset, in
  the same transaction (the `PasswordReset` row flushed). Mail queues the email with its link
  (`mail.staff_mail`), whose token it mints when the email is sent.
"""

from __future__ import annotations

from blinker import Namespace
from flask import Flask, current_app

signals = Namespace()

password_reset_requested = signals.signal("password-reset-requested")


def this_app() -> Flask:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app
