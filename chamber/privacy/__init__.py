"""Privacy and accountability (docs/privacy.md): the privacy notice, retention that runs itself, a
person's data (see, export, erase) and what the chamber keeps after. It reads and anonymises the
rows of every domain below it, so it sits above them all."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The staff pages of privacy."""
    from chamber.privacy import manage

    app.register_blueprint(manage.bp)
