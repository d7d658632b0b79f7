"""Staff pages for privacy: a person's data, erasure, retention (organisers and admins)."""

from __future__ import annotations

from chamber.auth.guard import ORGANISERS, staff_blueprint

bp = staff_blueprint("privacy_staff", __name__, roles=ORGANISERS, url_prefix="/staff/privacy")
