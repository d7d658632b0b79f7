"""Public booking: the registration form, its result, and the booker's private manage page."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, session, url_for
from sqlalchemy.orm import selectinload

from chamber.events import services as events
from chamber.events.models import Event
from chamber.extensions import db, limiter
from chamber.registration import notifications, services
from chamber.registration.forms import (
    CONSENT_WORDING,
    MAX_SLOTS,
    AddDelegateForm,
    DelegateEditForm,
    RegistrationForm,
)
from chamber.registration.models import Booking, Delegate, DelegateStatus

bp = Blueprint("registration", __name__)


def _bookable_event_or_404(slug: str) -> Event:
    event = (
        db.session.scalar(db.select(Event).where(Event.slug == slug))
        if "\x00" not in slug
        else None
    )
    if event is None or event.is_draft:
        abort(404)
    return event


def booking_state(event: Event) -> dict:
    """What the event page says about booking (a template global, so events need not import us)."""
    problem = services.registration_problem(event)
    return {
        "open": problem is None,
        "problem": problem,
        "seats_left": services.seats_left(event) if problem is None else 0,
    }


def _slots(event: Event) -> int:
    return max(1, min(event.business_limit, MAX_SLOTS))


@bp.route("/events/<slug>/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["BOOKING_LIMIT_PER_ADDRESS"], methods=["POST"])
def register(slug: str):
    event = _bookable_event_or_404(slug)
    problem = services.registration_problem(event)
    if problem:  # drafts are already a 404; this is cancelled, past, not yet open or closed
        return render_template("registration/closed.html", event=event, problem=problem)
    form = RegistrationForm(slots=_slots(event))
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template(
            "registration/form.html", event=event, form=form, seats_left=services.seats_left(event)
        ), status
    db.session.commit()  # end the reads above: the booking must start with the seat lock
    event = db.session.get(Event, event.id)
    try:
        result = services.book(
            event,
            form.business(),
            form.booker(),
            form.delegate_details(),
            consent_wording=CONSENT_WORDING if form.consent.data else None,
        )
    except services.AlreadyRegistered as taken:
        db.session.rollback()
        _send_manage_links_again(event, taken.emails)
        for entry in form.delegates:
            if (entry.form.email.data or "").strip().lower() in taken.emails:
                entry.form.email.errors = [
                    *entry.form.email.errors,
                    "This person already has a place (or a place on the waiting list) at this event. "
                    "We have emailed them a link to their booking.",
                ]
        return render_template(
            "registration/form.html", event=event, form=form, seats_left=services.seats_left(event)
        ), 400
    except services.BookingRefused as refused:
        db.session.rollback()
        form.form_errors.append(str(refused))
        return render_template(
            "registration/form.html", event=event, form=form, seats_left=services.seats_left(event)
        ), 400
    notifications.booking_emails(event, result)
    db.session.commit()
    session["booked"] = result.booking.id
    return redirect(url_for(".booked", slug=event.slug))


def _send_manage_links_again(event: Event, emails: list[str]) -> None:
    rows = db.session.execute(
        db.select(Delegate.email_normalised, Booking)
        .join(Booking, Booking.id == Delegate.booking_id)
        .where(
            Delegate.event_id == event.id,
            Delegate.email_normalised.in_(emails),
            Delegate.status != DelegateStatus.cancelled,
        )
    ).all()
    for email, booking in rows:
        notifications.manage_link_again(event, booking, email)
    db.session.commit()


@bp.get("/events/<slug>/register/done")
def booked(slug: str):
    event = _bookable_event_or_404(slug)
    booking_id = session.get("booked")
    booking = (
        db.session.scalar(
            db.select(Booking)
            .where(Booking.id == booking_id, Booking.event_id == event.id)
            .options(selectinload(Booking.delegates), selectinload(Booking.booker))
        )
        if booking_id
        else None
    )
    if booking is None:
        return redirect(url_for("events.show", slug=event.slug))
    positions = {
        d.id: services.waitlist_position(d)
        for d in booking.delegates
        if d.status == DelegateStatus.waitlisted
    }
    return render_template(
        "registration/booked.html", event=event, booking=booking, positions=positions
    )


# --- the manage link -----------------------------------------------------------------------------


def _booking_or_404(token: str) -> Booking:
    booking = services.booking_for_token(token)
    if booking is None:
        abort(404)
    return booking


@bp.get("/r/<token>")
def manage(token: str):
    booking = _booking_or_404(token)
    event = events.event_with_agenda(db.session.get(Event, booking.event_id).slug)
    positions = {
        d.id: services.waitlist_position(d)
        for d in booking.delegates
        if d.status == DelegateStatus.waitlisted
    }
    return render_template(
        "registration/manage.html", booking=booking, event=event, token=token, positions=positions
    )


def _own_delegate_or_404(booking: Booking, delegate_id: int) -> Delegate:
    delegate = next((d for d in booking.delegates if d.id == delegate_id), None)
    if delegate is None:
        abort(404)  # another booking's delegate: not this link's business
    return delegate


@bp.route("/r/<token>/delegates/<int:delegate_id>", methods=["GET", "POST"])
def edit_delegate(token: str, delegate_id: int):
    booking = _booking_or_404(token)
    delegate = _own_delegate_or_404(booking, delegate_id)
    if delegate.status == DelegateStatus.cancelled:
        abort(404)
    form = DelegateEditForm(obj=delegate)
    if form.validate_on_submit():
        services.update_delegate(
            delegate,
            name=form.name.data,
            job_title=form.job_title.data or "",
            phone=form.phone.data or "",
            needs=form.needs.data or "",
        )
        db.session.commit()
        flash(f"Saved {delegate.name}'s details.", "success")
        return redirect(url_for(".manage", token=token))
    event = db.session.get(Event, booking.event_id)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "registration/delegate_form.html",
        form=form,
        booking=booking,
        event=event,
        token=token,
        delegate=delegate,
    ), status


@bp.route("/r/<token>/add", methods=["GET", "POST"])
def add_delegate(token: str):
    booking = _booking_or_404(token)
    event = db.session.get(Event, booking.event_id)
    form = AddDelegateForm()
    if form.validate_on_submit():
        booking_id, event_id = booking.id, event.id
        db.session.commit()  # the seat lock must be the transaction's first write
        event, booking = db.session.get(Event, event_id), db.session.get(Booking, booking_id)
        try:
            result = services.add_delegates(event, booking, [form.details()])
        except services.AlreadyRegistered:
            db.session.rollback()
            form.email.errors.append(
                "This person already has a place (or a place on the waiting list) at this event."
            )
        except services.BookingRefused as refused:
            db.session.rollback()
            form.form_errors.append(str(refused))
        else:
            notifications.delegate_emails(event, result)
            db.session.commit()
            added = (result.confirmed or result.waitlisted)[0]
            flash(
                f"Added {added.name}" + (" (on the waiting list)." if result.waitlisted else "."),
                "success",
            )
            return redirect(url_for(".manage", token=token))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "registration/delegate_form.html",
        form=form,
        booking=booking,
        event=event,
        token=token,
        delegate=None,
    ), status


@bp.post("/r/<token>/cancel/<int:delegate_id>")
def cancel_delegate(token: str, delegate_id: int):
    booking = _booking_or_404(token)
    delegate = _own_delegate_or_404(booking, delegate_id)
    _cancel(booking, [delegate])
    flash(f"Cancelled {delegate.name}'s place.", "success")
    return redirect(url_for(".manage", token=token))


@bp.post("/r/<token>/cancel")
def cancel_booking(token: str):
    booking = _booking_or_404(token)
    _cancel(booking, list(booking.delegates))
    flash("Cancelled the whole booking.", "success")
    return redirect(url_for(".manage", token=token))


def _cancel(booking: Booking, delegates: list[Delegate]) -> None:
    ids = [d.id for d in delegates]
    db.session.commit()  # the seat lock must be the transaction's first write
    event = db.session.get(Event, booking.event_id)
    promoted = []
    for delegate_id in ids:
        delegate = db.session.get(Delegate, delegate_id)
        was = delegate.status
        promoted.extend(services.cancel_delegate(event, delegate))
        notifications.seat_cancelled(event, delegate, was)
    for delegate in promoted:
        notifications.place_available(event, delegate)
    db.session.commit()
