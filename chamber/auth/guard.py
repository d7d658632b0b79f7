"""The guard in front of every staff page: logged in, and a role the blueprint allows."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Blueprint, abort
from flask_login import current_user

from chamber.auth.models import Role, StaffUser
from chamber.extensions import login_manager

ORGANISERS = (Role.admin, Role.organiser)
EVERY_ROLE = tuple(Role)


def staff_blueprint(
    name: str, import_name: str, *, roles: Iterable[Role], url_prefix: str
) -> Blueprint:
    """A blueprint whose every route requires a logged-in staff user with one of `roles`.

    The check runs before any view, so a route added later cannot forget it.
    """
    allowed = tuple(roles)
    bp = Blueprint(name, import_name, url_prefix=url_prefix)

    @bp.before_request
    def require_staff_role():
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.role not in allowed:
            abort(403)
        return None

    return bp


def acting_user() -> StaffUser:
    """The staff user behind this request, to pass to a service as `by=` (the real object, not
    the proxy, so it can be kept and compared)."""
    return current_user._get_current_object()  # type: ignore[attr-defined]
