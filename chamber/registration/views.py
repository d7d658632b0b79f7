"""Public booking: the registration form, its result, and the booker's private manage page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import generate_csrf

from chamber.core import pagecache
from chamber.core.errors import form_status, refusals_shown_on
from chamber.core.times import utcnow
from chamber.events import services as events
from chamber.events.models import Event
from chamber.extensions import db, limiter
from chamber.registration import notifications, place_views, services, waitlist
from chamber.registration.forms import (
    MAX_SLOTS,
    AddDelegateForm,
    DelegateEditForm,
    RegistrationForm,
)
from chamber.registration.models import Booking, Delegate, DelegateStatus

bp = Blueprint("registration", __name__)
bp.register_blueprint(place_views.bp)  # a delegate's own place: /places/<token>


@bp.after_request
def _secret_links_stay_here(response):
    """A page whose address holds a secret token (`/r/<token>`) is never sent to another site as
    a Referer; `same-origin`, not `no-referrer`, so its forms still post with this site's `Origin`
    (`core.origin`)."""
    if request.view_args and "token" in request.view_args:
        response.headers["Referrer-Policy"] = "same-origin"
    return response


def _bookable_event_or_404(slug: str) -> Event:
    event = events.event_by_slug(slug)
    if event is None or event.is_draft:
        abort(404)
    return event


def booking_state(event: Event) -> dict:
    """What the event page says about booking (a template global, so events need not import us)."""
    problem = services.registration_problem(event)
    seats_left = services.seats_left(event) if problem is None else 0
    return {
        "open": problem is None,
        "problem": problem,
        "seats_left": seats_left,
        # What the booking button says: a full event's bookings join the waiting list.
        "action": "Join the waiting list" if problem is None and seats_left <= 0 else "Book places",
    }


def _slots(event: Event) -> int:
    return max(1, min(event.business_limit, MAX_SLOTS))


@bp.get("/events/<slug>/register")
def register_form(slug: str):
    """The booking form. A GET of its own, so that it pays nothing for the booking's rate limit
    (Flask-Limiter checks a decorated view's limits on every method)."""
    if pagecache.may_keep_page():
        page = _kept_blank_form(slug, request.args.get("campaign"))
        if page is not None:
            return page
    return _register(slug)


@bp.post("/events/<slug>/register")
@limiter.limit(lambda: current_app.config["BOOKING_LIMIT_PER_ADDRESS"])
def register(slug: str):
    return _register(slug)


def _register(slug: str):
    event = _bookable_event_or_404(slug)
    problem = services.registration_problem(event)
    if problem:  # drafts are already a 404; this is cancelled, past, not yet open or closed
        return render_template("registration/closed.html", event=event, problem=problem)
    if request.method == "GET" and pagecache.may_keep_page():
        return _blank_form(event, request.args.get("campaign"))
    form = RegistrationForm(slots=_slots(event), campaign=request.args.get("campaign"))
    if form.validate_on_submit():
        with refusals_shown_on(form):
            # Someone named who already has a place is set aside and emailed their own link; the
            # page after is the same either way, so the form never tells a stranger who is coming.
            # The seats are decided last, under the seat lock, with the emails already rendered.
            result = services.book(
                event,
                form.business(),
                form.booker(),
                form.delegate_details(),
                marketing_opt_out=bool(form.no_marketing.data),
                set_aside_duplicates=True,
                settle=False,
                campaign_id=form.campaign.data,
            )
            notifications.settle_and_tell(event, result, notifications.booking_emails)
            # What the next page shows is only what was typed: nothing about anyone's places.
            session["booked"] = {
                "event": event.id,
                "booker": services.members.normalise_email(form.booker_email.data),
                "emailed": [
                    services.members.normalise_email(d.email) for d in form.delegate_details()
                ],
            }
            return redirect(url_for(".booked", slug=event.slug))
    return render_template(
        "registration/form.html", event=event, form=form, seats_left=services.seats_left(event)
    ), form_status(form)


@dataclass(frozen=True)
class KeptForm:
    """The blank booking form as kept (with `pagecache.TOKEN_SLOT` for the token), and when the
    event takes bookings (`services.booking_window`)."""

    page: str
    opens: datetime | None
    closes: datetime


def _campaign_id(campaign: str | None) -> int | None:
    return int(campaign) if campaign and campaign.isdigit() and len(campaign) < 10 else None


def _blank_form(event: Event, campaign: str | None) -> str:
    """The empty booking form, the same for every anonymous visitor but for the form token: kept
    per public version (which rises with every booking, so the places left are exact), with the
    times between which the event takes bookings (`_kept_blank_form`)."""
    campaign_id = _campaign_id(campaign)

    def render() -> KeptForm:
        form = RegistrationForm(slots=_slots(event), campaign=campaign_id)
        form.csrf_token.current_token = pagecache.TOKEN_SLOT  # each visitor's own goes here
        page = render_template(
            "registration/form.html", event=event, form=form, seats_left=services.seats_left(event)
        )
        return KeptForm(page, *services.booking_window(event))

    kept = pagecache.kept_page("registration-form", (event.slug, campaign_id), render)
    return pagecache.with_token(kept.page, generate_csrf())


def _kept_blank_form(slug: str, campaign: str | None) -> str | None:
    """The kept blank form (`_blank_form`) for this address at the public version now, if there
    is one and the event still takes bookings: without reading the event (every change to it
    raises the version, which is the key) or opening a transaction. Otherwise None, and the view
    reads the event and says why it cannot be booked, or renders the form."""
    kept = pagecache.kept("registration-form", (slug, _campaign_id(campaign)))
    if not isinstance(kept, KeptForm):
        return None
    now = utcnow()
    if (kept.opens is not None and now < kept.opens) or now >= kept.closes:
        return None  # time has moved on since it was kept: the view says why
    return pagecache.with_token(kept.page, generate_csrf())


@bp.get("/events/<slug>/register/done")
def booked(slug: str):
    """After the form: the same page whether or not anyone named already had a place."""
    event = _bookable_event_or_404(slug)
    done = session.get("booked")
    if not isinstance(done, dict) or done.get("event") != event.id:
        return redirect(url_for("events.show", slug=event.slug))
    return render_template(
        "registration/booked.html", event=event, booker=done["booker"], emailed=done["emailed"]
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
        services.update_delegate(delegate, form.edit())
        services.members.confirm_addresses([booking.booker_id])  # acted through their own link
        flash(f"Saved {delegate.name}'s details.", "success")
        return redirect(url_for(".manage", token=token))
    event = db.session.get(Event, booking.event_id)
    return render_template(
        "registration/delegate_form.html",
        form=form,
        booking=booking,
        event=event,
        token=token,
        delegate=delegate,
    ), form_status(form)


@bp.route("/r/<token>/add", methods=["GET", "POST"])
def add_delegate(token: str):
    booking = _booking_or_404(token)
    event = db.session.get(Event, booking.event_id)
    form = AddDelegateForm()
    if form.validate_on_submit():
        details = form.details()
        with refusals_shown_on(form):
            # Someone already on this booking is listed on the booker's own page, so saying so
            # tells them nothing new (anyone else who holds a place is emailed, as below).
            email = services.members.normalise_email(details.email)
            if any(d.email_normalised == email for d in _active(booking.delegates)):
                raise services.BookingRefused(
                    f"{email} already has a place on this booking, so there is nobody to add.",
                    field="email",
                )
            result = services.add_delegates(
                event, booking, [details], set_aside_duplicates=True, settle=False
            )
            notifications.settle_and_tell(event, result, notifications.delegate_emails)
            services.members.confirm_addresses([booking.booker_id])  # acted through their link
            # The same words whether or not they already had a place elsewhere.
            flash(
                f"We have emailed {email} with what to do next.",
                "success",
            )
            return redirect(url_for(".manage", token=token))
    return render_template(
        "registration/delegate_form.html",
        form=form,
        booking=booking,
        event=event,
        token=token,
        delegate=None,
    ), form_status(form)


def _active(delegates: list[Delegate]) -> list[Delegate]:
    return [d for d in delegates if d.status != DelegateStatus.cancelled]


def _cancellable(booking: Booking, delegates: list[Delegate]) -> Event | None:
    """The event, if these places can still be cancelled through the link; else None, and a
    message saying why is flashed."""
    event = db.session.get(Event, booking.event_id)
    if event.is_past():
        flash("This event has taken place, so the booking can no longer be changed.", "info")
        return None
    if not _active(delegates):
        flash("Nothing to cancel: those places are already cancelled.", "info")
        return None
    return event


@bp.get("/r/<token>/cancel/<int:delegate_id>")
def confirm_cancel_delegate(token: str, delegate_id: int):
    """What cancelling one place will do, with the button: a GET never cancels (link previews)."""
    booking = _booking_or_404(token)
    delegate = _own_delegate_or_404(booking, delegate_id)
    event = _cancellable(booking, [delegate])
    if event is None:
        return redirect(url_for(".manage", token=token))
    return render_template(
        "registration/cancel.html",
        booking=booking,
        event=event,
        token=token,
        places=[delegate],
        action=url_for(".cancel_delegate", token=token, delegate_id=delegate.id),
    )


@bp.post("/r/<token>/cancel/<int:delegate_id>")
def cancel_delegate(token: str, delegate_id: int):
    booking = _booking_or_404(token)
    delegate = _own_delegate_or_404(booking, delegate_id)
    if _cancellable(booking, [delegate]) is not None:
        _cancel(booking, [delegate])
        flash(f"Cancelled {delegate.name}'s place. We have emailed you to confirm it.", "success")
    return redirect(url_for(".manage", token=token))


@bp.get("/r/<token>/cancel")
def confirm_cancel_booking(token: str):
    booking = _booking_or_404(token)
    event = _cancellable(booking, booking.delegates)
    if event is None:
        return redirect(url_for(".manage", token=token))
    return render_template(
        "registration/cancel.html",
        booking=booking,
        event=event,
        token=token,
        places=_active(booking.delegates),
        action=url_for(".cancel_booking", token=token),
        whole=True,
    )


@bp.post("/r/<token>/cancel")
def cancel_booking(token: str):
    booking = _booking_or_404(token)
    if _cancellable(booking, booking.delegates) is not None:
        _cancel(booking, list(booking.delegates))
        flash("Cancelled the whole booking. We have emailed you to confirm it.", "success")
    return redirect(url_for(".manage", token=token))


def _cancel(booking: Booking, delegates: list[Delegate]) -> None:
    event = db.session.get(Event, booking.event_id)
    with services.seats_locked(event):
        waitlist.cancel_places(event, delegates, by=waitlist.CancelledBy.booker)
    # A booking its booker called off (at once, or place by place) before showing the address
    # was theirs (someone else may have made it in their name) leaves them no soft opt-in.
    if not services.holds_places(booking.id):
        services.marketing.forget_unconfirmed_soft_opt_in(booking.booker_id)
