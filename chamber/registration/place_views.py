"""A delegate's own place page, `/places/<token>`: see it, change their details, add it to their
calendar, cancel it. It never shows or touches anyone else's place (the booker's manage link
does that). A wrong or tampered token is a plain 404."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from chamber.calendar.entries import delegate_entry
from chamber.calendar.ics import entry_to_ical
from chamber.calendar.views import ics_response
from chamber.core.errors import form_status
from chamber.core.times import utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.registration import places, services
from chamber.registration.forms import DelegateEditForm
from chamber.registration.models import Delegate, DelegateStatus

bp = Blueprint("places", __name__)


def _place_or_404(token: str) -> tuple[Delegate, Event]:
    delegate = places.delegate_for_place_token(token)
    if delegate is None:
        abort(404)
    return delegate, db.session.get(Event, delegate.event_id)


def _changeable(delegate: Delegate, event: Event) -> bool:
    return (
        delegate.status != DelegateStatus.cancelled
        and not event.is_past()
        and not event.is_cancelled
    )


def _no_changes(token: str):
    flash("This place can no longer be changed.", "info")
    return redirect(url_for(".show", token=token))


@bp.get("/places/<token>")
def show(token: str):
    delegate, event = _place_or_404(token)
    position = (
        services.waitlist_position(delegate)
        if delegate.status == DelegateStatus.waitlisted
        else None
    )
    return render_template(
        "registration/place.html",
        delegate=delegate,
        event=event,
        token=token,
        position=position,
        changeable=_changeable(delegate, event),
    )


@bp.route("/places/<token>/details", methods=["GET", "POST"])
def edit(token: str):
    delegate, event = _place_or_404(token)
    if not _changeable(delegate, event):
        return _no_changes(token)
    form = DelegateEditForm(obj=delegate)
    if form.validate_on_submit():
        services.update_delegate(delegate, form.edit(), by_the_person=True)
        flash("Saved your details.", "success")
        return redirect(url_for(".show", token=token))
    return render_template(
        "registration/place_form.html", form=form, delegate=delegate, event=event, token=token
    ), form_status(form)


@bp.get("/places/<token>/cancel")
def confirm_cancel(token: str):
    """What cancelling will do, with the button: a GET never cancels (link previews)."""
    delegate, event = _place_or_404(token)
    if not _changeable(delegate, event):
        return _no_changes(token)
    return render_template(
        "registration/place_cancel.html", delegate=delegate, event=event, token=token
    )


@bp.post("/places/<token>/cancel")
def cancel(token: str):
    delegate, event = _place_or_404(token)
    if not _changeable(delegate, event):
        return _no_changes(token)
    with services.seats_locked(event):
        places.cancel_own_place(event, delegate)
    flash("Your place is cancelled. We have emailed you to confirm it.", "success")
    return redirect(url_for(".show", token=token))


@bp.get("/places/<token>/calendar.ics")
def calendar(token: str):
    """The delegate's own calendar entry (the event's UID, them as attendee), while they have a
    confirmed place."""
    delegate, event = _place_or_404(token)
    if delegate.status != DelegateStatus.confirmed or event.is_draft:
        abort(404)
    content = entry_to_ical(
        delegate_entry(event, delegate.name, delegate.email_normalised),
        method="PUBLISH",
        stamp=utcnow(),
    )
    response = ics_response(content, f"{event.slug}.ics")
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response
