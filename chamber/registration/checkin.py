"""The door: finding delegates and checking them in (every staff role, check-in included)."""

from __future__ import annotations

from chamber.auth.guard import EVERY_ROLE, staff_blueprint

bp = staff_blueprint("checkin", __name__, roles=EVERY_ROLE, url_prefix="/staff/checkin")
