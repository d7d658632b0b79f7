"""Operations on staff accounts. They flush and never commit: the caller owns the transaction."""

from __future__ import annotations

from chamber.auth.models import Role, StaffUser
from chamber.core.times import utcnow
from chamber.extensions import db

MIN_PASSWORD_LENGTH = 12
# A pre-computed hash checked when no account matches, so that a wrong email costs as long as a
# wrong password and the two cannot be told apart by timing.
_DUMMY = StaffUser(password_hash="")


class StaffError(ValueError):
    """A change to staff accounts that is not allowed; the message is shown to the user."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_by_email(email: str) -> StaffUser | None:
    return db.session.scalar(db.select(StaffUser).where(StaffUser.email == normalise_email(email)))


def authenticate(email: str, password: str) -> StaffUser | None:
    user = find_by_email(email)
    if user is None:
        if not _DUMMY.password_hash:
            _DUMMY.set_password("not a real password")
        _DUMMY.check_password(password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    user.last_login_at = utcnow()
    return user


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 200:
        return "Password must be 200 characters or fewer."
    return None


def create_staff(email: str, name: str, role: Role, password: str) -> StaffUser:
    if find_by_email(email) is not None:
        raise StaffError("A staff user with that email address already exists.")
    problem = password_problem(password)
    if problem:
        raise StaffError(problem)
    user = StaffUser(email=normalise_email(email), name=name.strip(), role=role, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


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
    user.role = role
    user.active = active
    db.session.flush()


def set_password(user: StaffUser, password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise StaffError(problem)
    user.set_password(password)
    db.session.flush()
