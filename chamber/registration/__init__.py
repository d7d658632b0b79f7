"""Bookings, delegates, the waiting list, manage links and check-in."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The booking pages, staff registrations and check-in; the `booking_state` template global;
    the manage, place and check-in links; the renderer of its emails rendered when sent; and the
    receivers of `events.signals`: the emails a change of an event's time, place or status owes
    its delegates, and the waiting list's share of any seat a change to the event makes."""
    from chamber.events import signals
    from chamber.mail import links, rendering
    from chamber.registration import (
        checkin,
        checkin_code,
        checkin_services,
        communications,
        manage,
        notifications,
        places,
        views,
        waitlist,
    )

    app.register_blueprint(views.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(checkin.bp)
    app.register_blueprint(checkin_code.bp)
    app.register_blueprint(communications.bp)
    app.jinja_env.globals["booking_state"] = views.booking_state
    links.register_link_minter("manage", notifications._mint_manage_link)
    links.register_link_minter("place", places._mint_place_link)
    links.register_link_minter("checkin", checkin_services._mint_checkin_link)
    rendering.register_renderer(notifications.RENDERER, notifications.render)
    signals.calendar_changed.connect(notifications.event_changed, sender=app)
    # After the update emails, so that someone given a seat gets the one email saying so.
    signals.calendar_changed.connect(waitlist.calendar_changed, sender=app)
    signals.seats_changed.connect(waitlist.seats_changed, sender=app)
    signals.calendar_audience.connect(notifications.confirmed_count, sender=app)
