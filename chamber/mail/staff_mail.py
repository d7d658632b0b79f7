"""The email a staff account is owed by auth: the password reset link (`docs/security.md`).

Auth cannot import mail (mail's pages stand behind auth's guard), so auth sends
`auth.signals.password_reset_requested` and this module, connected in `mail.init_app`, queues
the email through the outbox; its link's token is minted when the email is sent, so no secret
sits in the outbox, and only for the account's own address.
"""

from __future__ import annotations

from flask import Flask

from chamber.auth import password_reset
from chamber.auth.models import PasswordReset
from chamber.core.urls import external_url
from chamber.mail import links, services
from chamber.mail.models import MailKind


def send_reset_link(_app: Flask, *, reset: PasswordReset) -> None:
    user = reset.user
    services.enqueue(
        key=f"password-reset:{reset.id}",
        to=user.email,
        to_name=user.name,
        subject="Set a new password",
        template="auth/password_reset",
        context={"reset": reset, "minutes": password_reset.lifetime_minutes()},
        kind=MailKind.transactional,
    )


def _mint_reset_link(recipient: str, ref: str) -> str:
    """The reset link of request `ref`, only if the message goes to that account's address; a
    request already used or out of time gets a link that says so (a 404)."""
    if not ref.isdigit():
        raise links.LinkRefused(f"a reset link needs a request's number, not {ref[:20]!r}")
    reset = password_reset.usable(int(ref))
    if reset is None:
        return external_url("auth.reset_password", token=password_reset.GONE)
    if services.normalise_address(recipient) != services.normalise_address(reset.user.email):
        raise links.LinkRefused(f"reset {ref}'s link is not for this recipient")
    return external_url("auth.reset_password", token=password_reset.new_link_token(reset))
