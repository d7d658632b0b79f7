"""Demo staff accounts, each with a random password kept in the instance folder (mode 0600)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from chamber.auth import services as staff
from chamber.auth.models import Role, StaffUser


@dataclass(frozen=True)
class DemoAccount:
    email: str
    name: str
    role: Role
    password_file: str  # in the instance folder


# The admin comes first: putting the others back to their roles needs an active admin to remain.
ACCOUNTS = (
    DemoAccount("demo@chamber.example", "Demo Admin", Role.admin, "demo-password"),
    DemoAccount(
        "organiser@chamber.example", "Demo Organiser", Role.organiser, "demo-password-organiser"
    ),
    DemoAccount(
        "door@chamber.example", "Demo Door Volunteer", Role.checkin, "demo-password-checkin"
    ),
)


def ensure_account(account: DemoAccount, instance_path: Path) -> str:
    """Create or repair the account so that it logs in with the password in its file; return it.

    The file survives restarts, so the login printed by one `chamber demo` keeps working; if the
    file was deleted, a new password is made and the account's hash is reset to match it.
    """
    password = demo_password(instance_path / account.password_file)
    user = staff.find_by_email(account.email)
    if user is None:
        staff.create_staff(account.email, account.name, account.role, password, by=None)
        return password
    if not user.check_password(password):
        staff.set_password(user, password)
    if user.role != account.role or not user.active:
        _restore(user, account.role)
    return password


def _restore(user: StaffUser, role: Role) -> None:
    # A demo visitor may have demoted or deactivated a demo account; the printed login must work.
    staff.update_staff(user, name=user.name, role=role, active=True, by=user)


def demo_password(path: Path) -> str:
    """The password kept at `path`, or a new random one written there readable by the owner only."""
    if path.exists():
        password = path.read_text().strip()
        if staff.password_problem(password) is None:
            path.chmod(0o600)  # in case someone loosened it
            return password
    password = secrets.token_urlsafe(18)  # 144 bits
    _write_private(path, password)
    return password


def _write_private(path: Path, text: str) -> None:
    # Created 0600 from the start (never briefly world-readable) and swapped in whole.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")
    temporary.chmod(0o600)
    os.replace(temporary, path)
