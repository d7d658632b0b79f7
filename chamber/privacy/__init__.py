"""Privacy and accountability (docs/privacy.md): the privacy notice, retention that runs itself, a
person's data (see, export, erase) and what the chamber keeps after. It reads and anonymises the
rows of every domain below it, so it sits above them all."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The staff pages of privacy; the public notice (a cached public page); and the answer to
    `core.notice.notice_version_asked`, which the booking and subscribe forms ask to record the
    version a person saw."""
    from chamber.core import notice as core_notice
    from chamber.core import pagecache
    from chamber.privacy import manage, notice, views

    app.register_blueprint(manage.bp)
    app.register_blueprint(views.bp)
    pagecache.public_pages(app, "privacy.show_notice")
    core_notice.notice_version_asked.connect(notice.notice_version_asked, sender=app)
