"""Two-factor sign-in with an authenticator app (TOTP, RFC 6238), recovery codes, and the rule
an admin sets that every staff account must have it. Operations flush and never commit.

The shared secret is 160 random bits (pyotp's base32 default), shown once while the person
enrols (as a QR code drawn by segno and as text) and kept in `staff_user.totp_secret`, never shown
again and never logged. A code is accepted for the current 30-second step and one step either side
(a phone's clock a little out), and only once: the step of the last accepted code is kept, and a
code from it or an earlier step is refused. Recovery codes are ten random codes of 50 bits each,
shown once, kept only as SHA-256 hashes, each used once.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime

import pyotp
import segno
from flask import current_app
from markupsafe import Markup

from chamber.auth import audit, sessions
from chamber.auth.models import RecoveryCode, StaffPolicy, StaffUser
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token
from chamber.core.transactions import rows_changed
from chamber.extensions import db

# Steps either side of now whose code is still taken: 30 seconds of clock drift each way.
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_RECOVERY_LENGTH = 10  # 31^10, about 2^50
_CODE = re.compile(r"[0-9]{6}")


class TwoFactorRefused(Refusal):
    """A two-factor change that cannot be made; the message is shown to the person."""


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, user: StaffUser) -> str:
    issuer = current_app.config["CHAMBER_NAME"]
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def qr_svg(secret: str, user: StaffUser) -> Markup:
    """The enrolment QR code as inline SVG (no script, no style attribute: the CSP allows it)."""
    code = segno.make(provisioning_uri(secret, user), error="m")
    svg = code.svg_inline(
        scale=5, light="#fff", omitsize=True, title="QR code for your authenticator app"
    )
    return Markup(svg)  # noqa: S704 - segno's own markup; the secret and email are inside a URI


def spaced(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _clean_code(code: str | None) -> str:
    return re.sub(r"[\s-]", "", code or "")


def matching_step(secret: str, code: str | None, now: datetime | None = None) -> int | None:
    """The time step whose code `code` is, within DRIFT_STEPS of now, or None."""
    code = _clean_code(code)
    if not _CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now or utcnow())
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step  # no early return: every step is compared, whichever matches
    return found


def accept_code(user: StaffUser, code: str | None, now: datetime | None = None) -> bool:
    """Whether `code` is the user's current code, not used before; spends its time step.

    Two requests racing with the same code: the conditional UPDATE lets one of them through."""
    if not user.has_two_factor or user.totp_secret is None:
        return False
    step = matching_step(user.totp_secret, code, now)
    if step is None:
        return False
    return (
        rows_changed(
            db.update(StaffUser)
            .where(
                StaffUser.id == user.id,
                (StaffUser.totp_last_step.is_(None)) | (StaffUser.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
        == 1
    )


def looks_like_recovery_code(code: str | None) -> bool:
    cleaned = _clean_code(code).lower()
    return len(cleaned) == _RECOVERY_LENGTH and all(ch in _RECOVERY_ALPHABET for ch in cleaned)


def use_recovery_code(user: StaffUser, code: str | None) -> bool:
    """Whether `code` is one of the user's unused recovery codes; spends it."""
    if not looks_like_recovery_code(code):
        return False
    code_hash = hash_token(_clean_code(code).lower())
    return (
        rows_changed(
            db.update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )
        == 1
    )


def recovery_codes_left(user: StaffUser) -> int:
    return len(
        db.session.scalars(
            db.select(RecoveryCode.id).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
            )
        ).all()
    )


def _new_recovery_codes(user: StaffUser) -> list[str]:
    db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=hash_token(raw)))
    return codes


def enable(
    user: StaffUser, secret: str, code: str | None, now: datetime | None = None
) -> list[str]:
    """Turn two-factor sign-in on with the `secret` the person's app was given, once they typed
    its current code; returns the ten recovery codes to show them once. Flushes."""
    if user.has_two_factor:
        raise TwoFactorRefused("Two-factor sign-in is already on for your account.")
    step = matching_step(secret, code, now)
    if step is None:
        raise TwoFactorRefused(
            "That code is not right. Check that your phone's time is set automatically, and "
            "type the six digits your app shows now.",
            field="code",
        )
    user.totp_secret = secret
    user.totp_enabled_at = now or utcnow()
    user.totp_last_step = step
    codes = _new_recovery_codes(user)
    audit.record("two_factor_enabled", kind="staff_user", object_id=user.id, by=user)
    db.session.flush()
    return codes


def disable(user: StaffUser, password: str) -> None:
    """Turn two-factor sign-in off, with the account's password. Refused while admins require it."""
    if not user.check_password(password):
        raise TwoFactorRefused("The password is not right.", field="password")
    if policy().require_two_factor:
        raise TwoFactorRefused(
            "Two-factor sign-in is required for every staff account, so it cannot be turned off."
        )
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.record("two_factor_disabled", kind="staff_user", object_id=user.id, by=user)
    db.session.flush()


# --- the rule: every staff account must have it ---------------------------------------------------


def policy() -> StaffPolicy:
    """The sign-in rules (a default, unsaved, until an admin first saves them)."""
    found = db.session.get(StaffPolicy, 1)
    return found if found is not None else StaffPolicy(id=1, require_two_factor=False)


def set_required(required: bool, *, by: StaffUser) -> None:
    """Require two-factor sign-in of every staff account, or stop requiring it. Turning it on
    signs out every account without it: each is asked to set it up at its next sign-in. Flushes."""
    current = policy()
    if bool(current.require_two_factor) == required:
        return
    if required and not by.has_two_factor:
        raise TwoFactorRefused(
            "Turn on two-factor sign-in for your own account first (Your account, Two-factor "
            "sign-in), so that you are not signed out by the rule you set."
        )
    current.require_two_factor = required
    current.changed_at = utcnow()
    db.session.merge(current)
    if required:
        for user in db.session.scalars(
            db.select(StaffUser).where(StaffUser.totp_enabled_at.is_(None))
        ):
            sessions.end_all(user)
    audit.record(
        "setting_changed",
        kind="setting",
        object_id="require_two_factor",
        detail=f"Two-factor sign-in required: {'yes' if required else 'no'}",
        by=by,
    )
    db.session.flush()
