"""The door: finding delegates and checking them in (every staff role, check-in included).

Built for a phone held in one hand and for no JavaScript: a search, one tap to check in, undo,
and a count of people and businesses in the room. The QR code in a confirmation email opens the
scan page, which shows who it is and checks them in only when the button is pressed.
"""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from chamber.auth.audit import record
from chamber.auth.guard import EVERY_ROLE, acting_user, staff_blueprint
from chamber.auth.models import StaffUser
from chamber.core.errors import form_status, refusals_flashed, refusals_shown_on
from chamber.core.times import utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.registration import checkin_services
from chamber.registration.checkin_forms import WalkInForm
from chamber.registration.models import Delegate

bp = staff_blueprint("checkin", __name__, roles=EVERY_ROLE, url_prefix="/staff/checkin")

RESULTS_SHOWN = 50


@bp.get("/")
def index():
    today, upcoming = checkin_services.door_events()
    if len(today) == 1 and not request.args.get("choose"):
        return redirect(url_for(".door", event_id=today[0].id))
    return render_template(
        "registration/checkin/index.html",
        today=today,
        upcoming=upcoming,
        opens_on_the_day=not checkin_services.sees_every_event(current_user),
    )


def _refuse(event: Event, problem: str):
    """A clear page, not a bare 403: the volunteer learns why and what to do."""
    abort(
        make_response(
            render_template("registration/checkin/closed.html", event=event, problem=problem), 403
        )
    )


def _event_or_404(event_id: int) -> Event:
    """The event, if this user may use its door (a volunteer: only today's published events)."""
    event = db.get_or_404(Event, event_id)
    if problem := checkin_services.door_refusal(current_user, event):
        _refuse(event, problem)
    return event


def _delegate_or_404(event: Event, delegate_id: int) -> Delegate:
    delegate = db.session.get(Delegate, delegate_id)
    if delegate is None or delegate.event_id != event.id:
        abort(404)  # another event's delegate is not this page's business
    return delegate


@bp.get("/<int:event_id>")
def door(event_id: int):
    event = _event_or_404(event_id)
    query = checkin_services.clean_query(request.args.get("q"))
    rows, total = checkin_services.find_delegates(event.id, query, limit=RESULTS_SHOWN)
    return render_template(
        "registration/checkin/door.html",
        event=event,
        query=query,
        rows=rows,
        total=total,
        counts=checkin_services.door_counts(event.id),
        now=utcnow(),
        undoable={
            row.delegate.id
            for row in rows
            if checkin_services.undo_refusal(current_user, event, row.delegate) is None
        },
    )


@bp.get("/<int:event_id>/counts")
def counts(event_id: int):
    """The live count, for the door page's script to refresh every few seconds."""
    event = _event_or_404(event_id)
    found = checkin_services.door_counts(event.id)
    return {
        "checked_in": found.checked_in,
        "confirmed": found.confirmed,
        "businesses": found.businesses,
    }


def _back_to_door(event: Event):
    """Back to the top of the door page (the message, the count, the search as it was)."""
    query = checkin_services.clean_query(request.form.get("q"))
    return redirect(url_for(".door", event_id=event.id, q=query or None))


@bp.post("/<int:event_id>/delegates/<int:delegate_id>/check-in")
def check_in(event_id: int, delegate_id: int):
    event = _event_or_404(event_id)
    delegate = _delegate_or_404(event, delegate_id)
    _check_in_and_say(delegate)
    return _back_to_door(event)


@bp.post("/<int:event_id>/delegates/<int:delegate_id>/undo")
def undo(event_id: int, delegate_id: int):
    event = _event_or_404(event_id)
    delegate = _delegate_or_404(event, delegate_id)
    _undo_and_say(delegate)
    return _back_to_door(event)


def _check_in_and_say(delegate: Delegate) -> None:
    with refusals_flashed():
        if checkin_services.check_in(delegate, by=current_user):
            record("checked_in", kind="delegate", object_id=delegate.id,
                   detail=f"event {delegate.event_id}")  # fmt: skip
            flash(f"Checked in: {delegate.name}.", "success")
        else:
            arrived = db.session.get(Event, delegate.event_id).local(delegate.checked_in_at)
            flash(f"{delegate.name} was already checked in, at {arrived:%H:%M}.", "info")


def _undo_and_say(delegate: Delegate) -> None:
    event = db.session.get(Event, delegate.event_id)
    if problem := checkin_services.undo_refusal(current_user, event, delegate):
        flash(problem, "error")
        return
    if checkin_services.undo_check_in(delegate, by=acting_user()):
        flash(f"Undone: {delegate.name} is no longer checked in.", "info")
    else:
        flash(f"{delegate.name} was not checked in, so there was nothing to undo.", "info")


# --- walk-ins and the printed sheets ----------------------------------------------------------------


@bp.route("/<int:event_id>/walk-in", methods=["GET", "POST"])
def walk_in(event_id: int):
    """Someone who did not book: added to the event and checked in, in one step, if a seat is free."""
    event = _event_or_404(event_id)
    form = WalkInForm()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            delegate = checkin_services.walk_in(
                event,
                name=form.name.data,
                email=form.email.data,
                business=form.business.data,
                size_band=SizeBand(form.size_band.data) if form.size_band.data else None,
                by=current_user,
            )
            record("walk_in", kind="delegate", object_id=delegate.id, detail=f"event {event.id}")
            flash(f"Added and checked in: {delegate.name}.", "success")
            return redirect(url_for(".door", event_id=event.id, q=delegate.email_normalised))
    return render_template(
        "registration/checkin/walk_in.html",
        event=event,
        form=form,
        counts=checkin_services.door_counts(event.id),
    ), form_status(form)


@bp.get("/<int:event_id>/badges")
def badges(event_id: int):
    """A sheet of name badges (name and business) for every confirmed delegate, to print on A4."""
    event = _event_or_404(event_id)
    record("downloaded", kind="event", object_id=event.id, detail="name badges")
    return render_template(
        "registration/checkin/badges.html",
        event=event,
        rows=checkin_services.printable_delegates(event.id),
    )


@bp.get("/<int:event_id>/sign-in-sheet")
def sign_in_sheet(event_id: int):
    """A table to sign on paper (name, business, signature), for every confirmed delegate."""
    event = _event_or_404(event_id)
    record("downloaded", kind="event", object_id=event.id, detail="sign-in sheet")
    return render_template(
        "registration/checkin/sign_in_sheet.html",
        event=event,
        rows=checkin_services.printable_delegates(event.id),
    )


# --- the QR code ---------------------------------------------------------------------------------


def _scanned_or_404(token: str) -> Delegate:
    delegate = checkin_services.delegate_for_checkin_token(token)
    if delegate is None:
        abort(404)
    event = db.session.get(Event, delegate.event_id)
    if problem := checkin_services.door_refusal(current_user, event):
        _refuse(event, problem)
    return delegate


@bp.get("/scan/<token>")
def scan(token: str):
    """Who the code belongs to, with a button: a GET never checks anyone in (link previews,
    a camera app opening the page twice)."""
    delegate = _scanned_or_404(token)
    event = db.session.get(Event, delegate.event_id)
    return render_template(
        "registration/checkin/scan.html",
        delegate=delegate,
        event=event,
        business=checkin_services.business_name(delegate),
        checked_in_by=db.session.get(StaffUser, delegate.checked_in_by_id)
        if delegate.checked_in_by_id
        else None,
        problem=checkin_services.refusal(delegate),
        is_today=checkin_services.happening_today(event),
        may_undo=checkin_services.undo_refusal(current_user, event, delegate) is None,
        token=token,
    )


@bp.post("/scan/<token>")
def scan_check_in(token: str):
    delegate = _scanned_or_404(token)
    _check_in_and_say(delegate)
    return redirect(url_for(".scan", token=token))


@bp.post("/scan/<token>/undo")
def scan_undo(token: str):
    delegate = _scanned_or_404(token)
    _undo_and_say(delegate)
    return redirect(url_for(".scan", token=token))
