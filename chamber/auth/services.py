"""Operations on staff accounts. They flush and never commit: the caller owns the transaction."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import update
from zxcvbn import zxcvbn

from chamber.auth import audit, sessions
from chamber.auth.models import PasswordReset, Role, StaffUser
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.extensions import db

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
# zxcvbn estimates how many guesses a password takes against its lists of common passwords,
# names, words, keyboard patterns, dates and repeats (shipped with the package; nothing is
# downloaded). Its top score, 4, means 10^10 guesses or more: "Summer2024!!" and the chamber's
# name with a year score 3 and are refused; a few unrelated words or a random string pass.
MIN_PASSWORD_SCORE = 4
_ZXCVBN_MAX_LENGTH = 72  # zxcvbn refuses longer input; the first 72 characters are judged
# zxcvbn keeps the words of the person in a module-level dictionary while it scores, so two
# threads scoring at once would see each other's words.
_zxcvbn_lock = threading.Lock()
# A pre-computed hash checked when no account matches, so that a wrong email costs as long as a
# wrong password and the two cannot be told apart by timing.
_DUMMY = StaffUser(password_hash="")


class StaffError(Refusal):
    """A change to staff accounts that is not allowed; the message is shown to the user."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_by_email(email: str) -> StaffUser | None:
    user: StaffUser | None = db.session.scalar(
        db.select(StaffUser).where(StaffUser.email == normalise_email(email))
    )
    return user


def authenticate(email: str, password: str) -> StaffUser | None:
    user = find_by_email(email)
    if user is None:
        if not _DUMMY.password_hash:
            _DUMMY.set_password("not a real password")
        _DUMMY.check_password(password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    return user


def by_id(user_id: int) -> StaffUser | None:
    return db.session.get(StaffUser, user_id)


def signed_in(user: StaffUser) -> None:
    """The person has passed every step of signing in."""
    user.last_login_at = utcnow()


def password_problem(password: str, *, about: Iterable[str] = ()) -> str | None:
    """Why `password` will not do, or None. `about` is what someone could guess it from (the
    person's name and email); the chamber's own name is always added."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be {MAX_PASSWORD_LENGTH} characters or fewer."
    warning = _too_guessable(password, about)
    if warning is not None:
        return " ".join(
            part
            for part in (
                "That password is too easy to guess.",
                warning,
                "A few unrelated words make a strong password that is easy to remember.",
            )
            if part
        )
    return None


def _too_guessable(password: str, about: Iterable[str]) -> str | None:
    """None for a strong password; else zxcvbn's warning ("This is a very common password."),
    which may be empty."""
    words = ["chamber", "commerce", "events", "seminar"]
    for value in (current_app.config["CHAMBER_NAME"], *about):
        words.append(value)
        words.extend(re.findall(r"[^\W_]+", value))  # "Hertfordshire", "pat" from pat@example.com
    with _zxcvbn_lock:
        result = zxcvbn(password[:_ZXCVBN_MAX_LENGTH], user_inputs=words)
    if result["score"] >= MIN_PASSWORD_SCORE:
        return None
    return result["feedback"]["warning"]


def create_staff(
    email: str, name: str, role: Role, password: str, *, by: StaffUser | None
) -> StaffUser:
    """Add a staff account, recorded in the audit trail. `by` is the admin who added it, or None
    for the `chamber create-staff` command and the demo (no one is signed in)."""
    if find_by_email(email) is not None:
        raise StaffError("A staff user with that email address already exists.")
    problem = password_problem(password, about=(email, name))
    if problem:
        raise StaffError(problem)
    user = StaffUser(email=normalise_email(email), name=name.strip(), role=Role(role), active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    how = "" if by is not None else ", by the chamber create-staff command"
    audit.record(
        "staff_created",
        kind="staff_user",
        object_id=user.id,
        detail=f"role {user.role}{how}",
        by=by,
    )
    return user


def staff_users() -> list[StaffUser]:
    """Every staff account, active ones first, by name."""
    return list(
        db.session.scalars(db.select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.name))
    )


def _active_admins_other_than(user: StaffUser) -> int:
    # Lock the other admins' rows (PostgreSQL) so that two admins demoting each other at the same
    # moment cannot both succeed and leave none.
    others = db.session.scalars(
        db.select(StaffUser.id)
        .where(StaffUser.role == Role.admin, StaffUser.active.is_(True), StaffUser.id != user.id)
        .with_for_update()
    ).all()
    return len(others)


def update_staff(user: StaffUser, *, name: str, role: Role, active: bool, by: StaffUser) -> None:
    """Change a staff user's name, role or active flag; the last active admin cannot be removed."""
    losing_admin = user.role == Role.admin and user.active and (role != Role.admin or not active)
    if losing_admin and _active_admins_other_than(user) == 0:
        raise StaffError("There must always be at least one active admin.")
    if user.id == by.id and not active:
        raise StaffError("You cannot deactivate your own account.")
    user.name = name.strip()
    user.role = Role(role)
    user.active = active
    if not active:
        sessions.end_all(user)
    db.session.flush()


def set_password(user: StaffUser, password: str, *, by: StaffUser | None = None) -> None:
    """Set a new password, end the user's other sessions and spend every password reset link of
    theirs not yet used (an admin resetting an account they think is taken over leaves no link
    in the taker's mailbox that still works). Someone setting their own password keeps the
    session they did it from: they have just shown they hold it."""
    problem = password_problem(password, about=(user.email, user.name))
    if problem:
        raise StaffError(problem)
    user.set_password(password)
    keep = by.session_token if by is not None and by.id == user.id else None
    sessions.end_all(user, keep=keep)
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow())
    )
    db.session.flush()
