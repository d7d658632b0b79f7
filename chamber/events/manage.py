"""Staff pages for events and their agendas (organisers and admins)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from chamber.auth.audit import record
from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.core.errors import form_status, refusals_flashed, refusals_shown_on
from chamber.core.pagination import paginate
from chamber.core.times import utc_to_local, utcnow
from chamber.events import copying, queries, services
from chamber.events.changes import zone_label
from chamber.events.forms import AgendaItemForm, CopyEventForm, EventForm
from chamber.events.models import AgendaItem, Event, EventStatus
from chamber.extensions import db

bp = staff_blueprint("manage_events", __name__, roles=ORGANISERS, url_prefix="/staff/events")

STATUS_FILTERS = {"upcoming", "past", "draft", "published", "cancelled", "all"}


@bp.get("/")
def index():
    shown = request.args.get("show", "upcoming")
    if shown not in STATUS_FILTERS:
        shown = "upcoming"
    now = utcnow()
    page = paginate(queries.events_shown(shown, now), per_page=25)
    return render_template("events/manage/index.html", page=page, shown=shown, now=now)


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = EventForm()
    if form.validate_on_submit():
        details = form.details()
        if form.slug.data and services.slug_taken(form.slug.data):
            form.slug.errors.append("Another event already uses this web address.")
        elif details.ends_at <= utcnow() and request.form.get("confirm_past") != "yes":
            # An event in the past is rarely meant: say so, and save only when confirmed.
            ended = utc_to_local(details.ends_at, details.timezone)
            return render_template(
                "events/manage/form.html",
                form=form,
                event=None,
                past_notice={"ended": ended, "zone": zone_label(details.timezone)},
            )
        else:
            with refusals_shown_on(form):
                event = services.save_event(None, details, by=acting_user())
                record("event_created", kind="event", object_id=event.id, detail=event.slug)
                flash(
                    f"Created “{event.title}” as a draft. Add its agenda, then publish it.",
                    "success",
                )
                return redirect(url_for(".show", event_id=event.id))
    return render_template("events/manage/form.html", form=form, event=None), form_status(form)


def _event_or_404(event_id: int) -> Event:
    return db.get_or_404(Event, event_id)


@bp.get("/<int:event_id>")
def show(event_id: int):
    event = services.event_with_agenda(_event_or_404(event_id).slug)
    return render_template(
        "events/manage/show.html",
        event=event,
        overlapping=services.overlapping_item_ids(event.agenda_items),
        now=utcnow(),
    )


@bp.route("/<int:event_id>/edit", methods=["GET", "POST"])
def edit(event_id: int):
    event = _event_or_404(event_id)
    form = EventForm(obj=event)
    if not form.is_submitted():
        for name in ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at"):
            moment = getattr(event, name)
            form[name].data = event.local(moment).replace(tzinfo=None) if moment else None
        form.move_agenda.data = bool(event.agenda_items)
    audience = services.calendar_audience(event)
    notice = None
    if form.validate_on_submit():
        details = form.details()
        move_agenda = bool(form.move_agenda.data)
        changes = services.calendar_change_summary(event, details)
        if form.slug.data and services.slug_taken(form.slug.data, exclude_id=event.id):
            form.slug.errors.append("Another event already uses this web address.")
        elif changes and (
            problem := services.change_problem(event, details, move_agenda=move_agenda)
        ):
            form.form_errors.append(problem)  # refused before anyone is asked to confirm
        elif changes and audience and request.form.get("notify_confirmed") != str(audience):
            # Check before telling people: the same form again, with who will be emailed and why.
            # The count must match, so a booking made meanwhile is shown before anyone is emailed.
            notice = {
                "count": audience,
                "changes": _change_names(changes),
                "agenda_moves": services.agenda_moves(event, details, move_agenda=move_agenda),
            }
            return render_template(
                "events/manage/form.html", form=form, event=event, audience=audience, notice=notice
            )
        else:
            with refusals_shown_on(form):
                services.save_event(event, details, by=acting_user(), move_agenda=move_agenda)
                record(
                    "event_changed",
                    kind="event",
                    object_id=event.id,
                    detail="; ".join(_change_names(changes)) or "details",
                )
                told = ""
                if changes and audience:
                    people = "delegate will" if audience == 1 else "delegates will"
                    told = f" {audience} confirmed {people} be emailed the new details."
                flash(f"Saved the event.{told}", "success")
                return redirect(url_for(".show", event_id=event.id))
    return render_template(
        "events/manage/form.html", form=form, event=event, audience=audience
    ), form_status(form)


def _change_names(fields: list[str]) -> list[str]:
    names = {"starts_at": "start time", "ends_at": "end time", "timezone": "time zone",
             "venue_name": "venue", "venue_address": "venue address",
             "venue_town": "venue address", "venue_postcode": "venue address",
             "venue_country": "venue address"}  # fmt: skip
    return list(dict.fromkeys(names[field] for field in fields if field in names))


STATUS_ACTIONS = {
    "publish": (EventStatus.published, "Published “{}”: it is now on the public site."),
    "unpublish": (EventStatus.draft, "“{}” is a draft again and hidden from the public."),
    "cancel": (EventStatus.cancelled, "Cancelled “{}”. Its page now says so."),
}


@bp.post("/<int:event_id>/<any(publish, unpublish, cancel):action>")
def change_status(event_id: int, action: str):
    event = _event_or_404(event_id)
    status, message = STATUS_ACTIONS[action]
    if (
        status == EventStatus.published
        and event.is_past()
        and request.form.get("confirm_past") != "yes"
    ):
        # Publishing an event that has ended is rarely meant: nothing changes until confirmed.
        return render_template("events/manage/confirm_publish.html", event=event)
    with refusals_flashed():
        services.set_status(event, status, by=acting_user())
        record(f"event_{action}ed" if action != "cancel" else "event_cancelled",
               kind="event", object_id=event.id)  # fmt: skip
        flash(message.format(event.title), "success")
    return redirect(url_for(".show", event_id=event_id))


@bp.route("/<int:event_id>/copy", methods=["GET", "POST"])
def copy(event_id: int):
    """Copy the event to a new date, as a draft: the same details, agenda, speakers, resources
    and survey questions, with none of its bookings."""
    event = services.event_with_agenda(_event_or_404(event_id).slug)
    form = CopyEventForm(zone_name=event.timezone)
    if not form.is_submitted():
        form.title.data = copying.copy_title(event)
        form.starts_at.data = event.local_start.replace(tzinfo=None)
    if form.validate_on_submit():
        with refusals_shown_on(form):
            made = copying.copy_event(event, form.details(), by=acting_user())
            record("event_copied", kind="event", object_id=made.id, detail=f"from event {event.id}")
            flash(f"Copied “{event.title}” to “{made.title}”, a draft. Check it, then publish it.",
                  "success")  # fmt: skip
            return redirect(url_for(".show", event_id=made.id))
    return render_template("events/manage/copy.html", form=form, event=event), form_status(form)


@bp.get("/<int:event_id>/cancel")
def confirm_cancel(event_id: int):
    event = _event_or_404(event_id)
    return render_template(
        "events/manage/confirm_cancel.html",
        event=event,
        audience=services.calendar_audience(event),
    )


# --- agenda --------------------------------------------------------------------------------------


def _speaker_choices() -> list[SelectChoice]:
    return [
        SelectChoice(sid, f"{name} ({org})" if org else name)
        for sid, name, org in queries.speaker_names()
    ]


def _item_or_404(event: Event, item_id: int) -> AgendaItem:
    item = db.session.get(AgendaItem, item_id)
    if item is None or item.event_id != event.id:
        abort(404)
    return item


def _item_form(event: Event, item: AgendaItem | None) -> AgendaItemForm:
    form = AgendaItemForm(obj=item, speaker_choices=_speaker_choices(), zone_name=event.timezone)
    if not form.is_submitted():
        if item is not None:
            form.starts_at.data = item.local_start.replace(tzinfo=None)
            form.ends_at.data = item.local_end.replace(tzinfo=None)
            for entry, speaker in zip(form.speakers, item.speakers, strict=False):
                entry.data = speaker.id
        else:
            last_end = max((i.ends_at for i in event.agenda_items), default=event.starts_at)
            form.starts_at.data = event.local(last_end).replace(tzinfo=None)
    return form


def _save_item(event_id: int, item_id: int | None):
    event = _event_or_404(event_id)
    item = _item_or_404(event, item_id) if item_id is not None else None
    form = _item_form(event, item)
    if form.validate_on_submit():
        with refusals_shown_on(form):
            services.save_agenda_item(
                event, item, form.details(), form.speaker_ids, by=acting_user()
            )
            flash("Saved the agenda item.", "success")
            return redirect(url_for(".show", event_id=event.id, _anchor="agenda"))
    return render_template(
        "events/manage/item_form.html", form=form, event=event, item=item
    ), form_status(form)


@bp.route("/<int:event_id>/agenda/new", methods=["GET", "POST"])
def add_item(event_id: int):
    return _save_item(event_id, None)


@bp.route("/<int:event_id>/agenda/<int:item_id>", methods=["GET", "POST"])
def edit_item(event_id: int, item_id: int):
    return _save_item(event_id, item_id)


@bp.post("/<int:event_id>/agenda/<int:item_id>/delete")
def delete_item(event_id: int, item_id: int):
    event = _event_or_404(event_id)
    item = _item_or_404(event, item_id)
    title = item.title
    services.delete_agenda_item(item, by=acting_user())
    flash(f"Removed “{title}” from the agenda.", "success")
    return redirect(url_for(".show", event_id=event.id, _anchor="agenda"))


@bp.post("/<int:event_id>/agenda/<int:item_id>/<any(earlier, later):direction>")
def move_item(event_id: int, item_id: int, direction: str):
    event = _event_or_404(event_id)
    item = _item_or_404(event, item_id)
    if services.move_agenda_item(
        event, item, -1 if direction == "earlier" else 1, by=acting_user()
    ):
        flash(f"Moved “{item.title}” {direction}.", "success")
    return redirect(url_for(".show", event_id=event.id, _anchor=f"item-{item.id}"))
