"""Staff pages for an event's registrations (organisers and admins): counts, the delegate list,
promote, cancel, resend a confirmation, book by hand, and the CSV export."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from wtforms import StringField
from wtforms.validators import Length, Optional

from chamber.auth.audit import record
from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.core.csvexport import csv_bytes
from chamber.core.errors import (
    Refusal,
    form_status,
    refusals_flashed,
    refusals_shown_on,
    show_on_form,
)
from chamber.core.forms import email_field
from chamber.core.pagination import paginate
from chamber.events.models import Event
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.registration import services, staff
from chamber.registration.forms import MAX_SLOTS, RegistrationForm
from chamber.registration.models import Delegate, DelegateStatus
from chamber.registration.services import DelegateDetails

bp = staff_blueprint("manage_registrations", __name__, roles=ORGANISERS, url_prefix="/staff/events")

PER_PAGE = 50
# The list's query-string values an action carries back, so staff return to the page they were on.
LIST_ARGS = ("q", "status", "band", "member", "sort", "page")


class StaffBookingForm(RegistrationForm):
    """The public booking form for staff taking a booking by phone or email: no honeypot, and no
    privacy box or marketing opt-out (those are for the booker to tick themselves). The booker may
    be left out when the first delegate made the booking."""

    privacy = None
    no_marketing = None
    website = None
    booker_name = StringField(
        "Booker's full name (optional)",
        validators=[
            Optional(),
            Length(max=120, message="Booker's full name must be 120 characters or fewer."),
        ],
        render_kw={"maxlength": 120, "autocomplete": "off"},
    )
    booker_email = email_field(
        "Booker's email address (optional)",
        description="They get the link to change or cancel the booking. Leave both booker "
        "fields empty if the first delegate made the booking: the link goes to them.",
        render_kw={"autocomplete": "off"},
    )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.booker_email.data and not self.booker_name.data:
            self.booker_name.errors = [*self.booker_name.errors, "Enter the booker's name."]
            valid = False
        if self.booker_name.data and not self.booker_email.data:
            self.booker_email.errors = [
                *self.booker_email.errors,
                "Enter the booker's email address, or leave both booker fields empty.",
            ]
            valid = False
        return valid

    def booker(self) -> DelegateDetails:
        if self.booker_email.data:
            return DelegateDetails(name=self.booker_name.data, email=self.booker_email.data)
        first = self.delegate_details()[0]
        return DelegateDetails(
            name=first.name, email=first.email, job_title=first.job_title, phone=first.phone
        )


def _event_or_404(event_id: int) -> Event:
    return db.get_or_404(Event, event_id)


def _delegate_or_404(event: Event, delegate_id: int) -> Delegate:
    delegate = staff.delegate_in_event(event, delegate_id)
    if delegate is None:
        abort(404)  # another event's delegate is not found through this event
    return delegate


def _back_to_list(event_id: int):
    """Back to the list as it was (the filters and page come with the action's form), at the
    top, where the message saying what happened is."""
    args = {name: request.form[name] for name in LIST_ARGS if request.form.get(name)}
    return redirect(url_for(".index", event_id=event_id, **args))


@bp.app_template_global("registration_totals")
def registration_totals(event: Event) -> staff.Tally:
    """For the staff event page (a template global, so events need not import registration)."""
    return staff.event_totals(event.id)


# --- the list ------------------------------------------------------------------------------------


@bp.get("/<int:event_id>/registrations")
def index(event_id: int):
    event = _event_or_404(event_id)
    filters = staff.DelegateFilters.from_args(request.args)
    counts = staff.registration_counts(event.id)
    everyone = counts.total.confirmed + counts.total.waitlisted + counts.total.cancelled
    page = paginate(  # unfiltered, the list is every delegate: counted already
        staff.delegates_query(event.id, filters),
        per_page=PER_PAGE,
        total=None if filters.active else everyone,
    )
    positions = staff.waitlist_positions(event.id, [d.id for d in page.items])
    list_args = filters.as_args()
    if page.page > 1:
        list_args["page"] = str(page.page)
    return render_template(
        "registration/staff/index.html",
        event=event,
        over=event.is_past(),  # its places are a record: no actions (`staff.may_change`)
        counts=counts,
        page=page,
        positions=positions,
        filters=filters,
        list_args=list_args,
        size_bands=list(SizeBand),
        statuses=list(DelegateStatus),
    )


@bp.get("/<int:event_id>/registrations.csv")
def export(event_id: int):
    event = _event_or_404(event_id)
    body = csv_bytes(staff.export_header(event), staff.export_rows(event))
    record("exported", kind="event", object_id=event.id, detail="registrations CSV")
    return Response(
        body,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{event.slug}-delegates.csv"'},
    )


# --- actions on one delegate ---------------------------------------------------------------------


@bp.post("/<int:event_id>/registrations/<int:delegate_id>/promote")
def promote(event_id: int, delegate_id: int):
    event = _event_or_404(event_id)
    delegate = _delegate_or_404(event, delegate_id)
    with refusals_flashed(), services.seats_locked(event):
        staff.promote(event, delegate, by=acting_user())
        record("place_promoted", kind="delegate", object_id=delegate.id, detail=f"event {event.id}")
        flash(
            f"Promoted {delegate.name} from the waiting list: they now have a place, and we "
            "have emailed them.",
            "success",
        )
    return _back_to_list(event_id)


@bp.get("/<int:event_id>/registrations/<int:delegate_id>/cancel")
def confirm_cancel(event_id: int, delegate_id: int):
    event = _event_or_404(event_id)
    delegate = _delegate_or_404(event, delegate_id)
    if (reason := staff.may_change(event, delegate)) is not None:
        flash(reason, "error")
        return _back_to_list(event_id)
    next_in_line = (
        staff.first_waiting(event.id) if delegate.status == DelegateStatus.confirmed else None
    )
    return render_template(
        "registration/staff/cancel.html",
        event=event,
        delegate=delegate,
        next_in_line=next_in_line,
        list_args={name: request.args[name] for name in LIST_ARGS if request.args.get(name)},
    )


@bp.post("/<int:event_id>/registrations/<int:delegate_id>/cancel")
def cancel(event_id: int, delegate_id: int):
    event = _event_or_404(event_id)
    delegate = _delegate_or_404(event, delegate_id)
    with refusals_flashed(), services.seats_locked(event):
        promoted = staff.cancel(event, delegate, by=acting_user())
        record(
            "place_cancelled",
            kind="delegate",
            object_id=delegate.id,
            detail=f"event {event.id}; {len(promoted)} promoted from the waiting list",
        )
        message = f"Cancelled {delegate.name}'s place."
        if promoted:
            names = ", ".join(person.name for person in promoted)
            message += (
                f" Their seat went to {names}, first on the waiting list, who has been emailed."
            )
        flash(message, "success")
    return _back_to_list(event_id)


@bp.post("/<int:event_id>/registrations/<int:delegate_id>/resend")
def resend(event_id: int, delegate_id: int):
    event = _event_or_404(event_id)
    delegate = _delegate_or_404(event, delegate_id)
    with refusals_flashed():
        staff.resend_confirmation(event, delegate, by=acting_user())
        flash(
            f"A fresh confirmation email is on its way to {delegate.name} "
            f"({delegate.email_normalised}).",
            "success",
        )
    return _back_to_list(event_id)


# --- booking by hand -----------------------------------------------------------------------------


def _show_on_booking_form(form: StaffBookingForm, refusal: Refusal) -> None:
    """Someone already booked is marked on their own email field; other refusals as usual."""
    if not isinstance(refusal, services.AlreadyRegistered):
        return show_on_form(form, refusal)
    for entry in form.delegates:
        if (entry.form.email.data or "").strip().lower() in refusal.emails:
            entry.form.email.errors = [
                *entry.form.email.errors,
                "This person already has a place (or a place on the waiting list) at this "
                "event. Find them in the list of delegates.",
            ]


@bp.route("/<int:event_id>/registrations/new", methods=["GET", "POST"])
def add_booking(event_id: int):
    event = _event_or_404(event_id)
    if event.is_past():
        flash(staff.OVER_NO_BOOKINGS, "error")
        return redirect(url_for(".index", event_id=event_id))
    form = StaffBookingForm(slots=max(1, min(event.business_limit, MAX_SLOTS)))
    if form.validate_on_submit():
        with refusals_shown_on(form, _show_on_booking_form), services.seats_locked(event):
            result = staff.book_by_hand(
                event, form.business(), form.booker(), form.delegate_details(), by=acting_user()
            )
            confirmed, waiting = len(result.confirmed), len(result.waitlisted)
            record(
                "booking_added",
                kind="booking",
                object_id=result.booking.id,
                detail=f"event {event.id}; {confirmed} confirmed, {waiting} waiting",
            )
            summary = f"{confirmed} with a place" if confirmed else ""
            if waiting:
                summary += (", " if summary else "") + f"{waiting} on the waiting list"
            flash(
                f"Booked {confirmed + waiting} delegate{'s' if confirmed + waiting != 1 else ''} "
                f"for {result.booking.organisation.name} ({summary}). Everyone has been emailed.",
                "success",
            )
            return redirect(url_for(".index", event_id=event.id))
    return render_template(
        "registration/staff/new.html",
        event=event,
        form=form,
        seats_left=services.seats_left(event),
    ), form_status(form)
