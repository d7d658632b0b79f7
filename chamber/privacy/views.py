"""The public privacy notice (`/privacy`): the same for everyone, so the page cache keeps it."""

from __future__ import annotations

from flask import Blueprint, render_template

from chamber.privacy import notice

bp = Blueprint("privacy", __name__)


@bp.get("/privacy")
def show_notice():
    return render_template(
        "privacy/notice.html", notice=notice.current_notice(), contact=notice.chamber_contact()
    )
