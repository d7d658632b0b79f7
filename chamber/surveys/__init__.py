"""Follow-up surveys, invitations, responses and results."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Answering, the staff survey pages and results; the `survey_kind` template filter; the survey
    link; a survey following its event's changes (a receiver of
    `events.signals.calendar_changed`); a copied event gets a draft of its survey
    (`event_copied`)."""
    from chamber.events import signals
    from chamber.mail import links
    from chamber.surveys import copies, dispatch, event_changes, kinds, manage, results_views, views

    app.register_blueprint(views.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(results_views.bp)
    app.add_template_filter(kinds.kind_filter, "survey_kind")
    links.register_link_minter("survey", dispatch._mint_survey_link)
    signals.calendar_changed.connect(event_changes.event_changed, sender=app)
    signals.event_copied.connect(copies.event_copied, sender=app)
