"""The member directory's staff pages (docs/directory.md): organisations and contacts, their
history with the chamber, import and export, and segments. The rows are `members`'; this package
sits above registration and surveys because the history and the segments read them."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The directory's staff pages: organisations and contacts, imports, and segments."""
    from chamber.directory import imports, manage, segment_pages

    app.register_blueprint(manage.bp)
    app.register_blueprint(segment_pages.bp)
    app.register_blueprint(imports.bp)
