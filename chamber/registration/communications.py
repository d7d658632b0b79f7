"""Staff pages for what an event tells its delegates (organisers and admins): the reminder's
settings, and messages to one audience of its delegates (write, check with a preview and a test
to oneself, send), listed on the event's staff page."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, abort, flash, redirect, render_template, request, url_for

from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.core.errors import form_status, refusals_flashed, refusals_shown_on
from chamber.core.times import utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.registration import event_messages, reminders
from chamber.registration.communication_forms import MessageForm, ReminderForm
from chamber.registration.models import EventMessage

bp = staff_blueprint("event_comms", __name__, roles=ORGANISERS, url_prefix="/staff/events")

# The email's HTML is shown in a sandboxed frame: no scripts, no requests, no forms.
EMAIL_PREVIEW_POLICY = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)


def _event_or_404(event_id: int) -> Event:
    return db.get_or_404(Event, event_id)


def _message_or_404(event: Event, event_message_id: int) -> EventMessage:
    message = event_messages.message_in_event(event, event_message_id)
    if message is None:
        abort(404)
    return message


@dataclass(frozen=True)
class Communications:
    reminder: reminders.ReminderState
    messages: list[EventMessage]


@bp.app_template_global("event_communications")
def event_communications(event: Event) -> Communications:
    """For the staff event page (a template global, so events need not import registration):
    the reminder's time and count, and the messages sent. Two queries."""
    return Communications(reminders.reminder_state(event), event_messages.messages_for(event.id))


# --- the reminder --------------------------------------------------------------------------------


@bp.route("/<int:event_id>/reminder", methods=["GET", "POST"])
def reminder(event_id: int):
    event = _event_or_404(event_id)
    form = ReminderForm()
    if not form.is_submitted():
        form.enabled.data = event.reminder_enabled
        form.days_before.data = event.reminder_days_before
        form.at.data = f"{event.reminder_time:%H:%M}"
    if form.validate_on_submit():
        with refusals_shown_on(form):
            reminders.set_reminder(
                event,
                enabled=bool(form.enabled.data),
                days_before=form.days_before.data,
                at=form.clock,
                by=acting_user(),
            )
            state = reminders.reminder_state(event)
            if state.at is None:
                flash("The reminder is turned off for this event.", "success")
            else:
                flash(
                    f"The reminder will go on {state.at:%A %-d %B %Y at %H:%M} ({state.zone}).",
                    "success",
                )
            return redirect(url_for("manage_events.show", event_id=event.id, _anchor="reminder"))
    return render_template(
        "registration/staff/reminder.html",
        event=event,
        form=form,
        state=reminders.reminder_state(event),
    ), form_status(form)


# --- messages ------------------------------------------------------------------------------------


def _message_form(event: Event, message: EventMessage | None) -> MessageForm:
    form = MessageForm(obj=message)
    form.set_counts(event_messages.audience_counts(event.id))
    if not form.is_submitted():
        form.audience.data = message.audience.value if message else "confirmed"
    return form


def _write(event_id: int, event_message_id: int | None):
    event = _event_or_404(event_id)
    message = _message_or_404(event, event_message_id) if event_message_id is not None else None
    if message is not None and message.is_sent:
        return redirect(url_for(".message", event_id=event.id, event_message_id=message.id))
    form = _message_form(event, message)
    if form.validate_on_submit():
        with refusals_shown_on(form):
            saved = event_messages.save_draft(event, message, form.draft(), by=acting_user())
            return redirect(url_for(".message", event_id=event.id, event_message_id=saved.id))
    return render_template(
        "registration/staff/message_form.html", event=event, form=form, message=message
    ), form_status(form)


@bp.route("/<int:event_id>/messages/new", methods=["GET", "POST"])
def new_message(event_id: int):
    return _write(event_id, None)


@bp.route("/<int:event_id>/messages/<int:event_message_id>/edit", methods=["GET", "POST"])
def edit_message(event_id: int, event_message_id: int):
    return _write(event_id, event_message_id)


@bp.get("/<int:event_id>/messages/<int:event_message_id>")
def message(event_id: int, event_message_id: int, problem: str | None = None):
    """A draft's check page (the preview, who gets it and how many, send a test, send), or a sent
    message's record."""
    event = _event_or_404(event_id)
    found = _message_or_404(event, event_message_id)
    shown = None if found.is_sent else event_messages.preview(event, found)
    count = None if found.is_sent else event_messages.audience_count(event.id, found.audience)
    return render_template(
        "registration/staff/message.html",
        event=event,
        message=found,
        preview=shown,
        count=count,
        problem=problem,
        now=utcnow(),
    ), 400 if problem else 200


@bp.get("/<int:event_id>/messages/<int:event_message_id>/preview")
def message_preview(event_id: int, event_message_id: int):
    """The draft's HTML as its first recipient will see it, for the check page's frame."""
    event = _event_or_404(event_id)
    found = _message_or_404(event, event_message_id)
    if found.is_sent:
        abort(404)
    response = Response(event_messages.preview(event, found).html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_PREVIEW_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.post("/<int:event_id>/messages/<int:event_message_id>/test")
def test_message(event_id: int, event_message_id: int):
    event = _event_or_404(event_id)
    found = _message_or_404(event, event_message_id)
    me = acting_user()
    if found.is_sent:
        abort(404)
    event_messages.send_test(event, found, to=me)
    flash(f"A test is on its way to you ({me.email}).", "success")
    return redirect(url_for(".message", event_id=event.id, event_message_id=found.id))


@bp.post("/<int:event_id>/messages/<int:event_message_id>/send")
def send_message(event_id: int, event_message_id: int):
    event = _event_or_404(event_id)
    found = _message_or_404(event, event_message_id)
    expected = request.form.get("expected", "")
    if found.is_sent:
        flash("This message has already been sent.", "success")
        return redirect(url_for(".message", event_id=event.id, event_message_id=found.id))
    if not expected.isdigit() or len(expected) > 9:
        abort(400)
    try:
        queued = event_messages.send(event, found, expected=int(expected), by=acting_user())
    except event_messages.MessageRefused as refusal:  # nothing was written; a 400 undoes any
        return message(event_id, event_message_id, problem=str(refusal))
    flash(f"Sent “{found.subject}” to {queued} delegate{'' if queued == 1 else 's'}.", "success")
    return redirect(url_for("manage_events.show", event_id=event.id, _anchor="messages"))


@bp.post("/<int:event_id>/messages/<int:event_message_id>/discard")
def discard_message(event_id: int, event_message_id: int):
    event = _event_or_404(event_id)
    found = _message_or_404(event, event_message_id)
    with refusals_flashed():
        event_messages.discard_draft(found)
        flash("Discarded the draft.", "success")
    return redirect(url_for("manage_events.show", event_id=event.id, _anchor="messages"))
