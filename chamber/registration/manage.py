"""Staff pages for an event's registrations (organisers and admins)."""

from __future__ import annotations

from chamber.auth.guard import ORGANISERS, staff_blueprint

bp = staff_blueprint("manage_registrations", __name__, roles=ORGANISERS, url_prefix="/staff/events")
