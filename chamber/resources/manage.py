"""Staff pages for the resource library (organisers and admins): list and search, create and edit
links and guides, publish, retire, mark replaced, and put resources on events and talks in order."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.core.errors import form_status, on_field, refusals_shown_on
from chamber.core.pagination import paginate
from chamber.core.times import utc_to_local, utcnow
from chamber.events.models import AgendaItem, Event
from chamber.extensions import db
from chamber.resources import attachments, health, queries, services
from chamber.resources.forms import AttachForm, ResourceForm, SupersedeForm
from chamber.resources.models import (
    Resource,
    ResourceKind,
    ResourceStatus,
)

bp = staff_blueprint("manage_resources", __name__, roles=ORGANISERS, url_prefix="/staff/resources")

SHOW_FILTERS = {"all", "draft", "published", "retired", "superseded"}
MAX_QUERY = 200  # a search box needs no more; longer is cut, not an error


def _arg(name: str, limit: int = 120) -> str:
    value = request.args.get(name, "", type=str) or ""
    return value.replace("\x00", "").strip()[:limit]


@bp.get("/")
def index():
    shown = _arg("show")
    shown = shown if shown in SHOW_FILTERS else "all"
    q, category = _arg("q", MAX_QUERY), _arg("category")
    statuses = None if shown in ("all", "superseded") else (ResourceStatus(shown),)
    query = services.search_query(q, category=category, statuses=statuses)
    if shown == "superseded":
        query = query.where(Resource.superseded_by_id.is_not(None))
    page = paginate(query, per_page=50)
    categories, _publishers = services.filter_choices(tuple(ResourceStatus))
    return render_template(
        "resources/manage/index.html",
        page=page,
        shown=shown,
        q=q,
        category=category,
        categories=categories,
        counts=services.status_counts(),
    )


def _resource_or_404(resource_id: int) -> Resource:
    return db.get_or_404(Resource, resource_id)


def _save_or_explain(form: ResourceForm, resource: Resource | None) -> Resource | None:
    """Save through the service; on a refusal, say why on the form."""
    with refusals_shown_on(form):
        return services.save_resource(resource, form.details(), by=acting_user())
    return None


def _check_unique(form: ResourceForm, exclude_id: int | None) -> bool:
    ok = True
    if form.slug.data and services.slug_taken(form.slug.data, exclude_id=exclude_id):
        form.slug.errors = [*form.slug.errors, "Another resource already uses this address."]
        ok = False
    if form.kind == ResourceKind.link and form.url.data:
        other = services.same_address(form.url.data, exclude_id=exclude_id)
        if other is not None:
            form.url.errors = [
                *form.url.errors,
                f"“{other.title}” already links to this address: edit that one instead.",
            ]
            ok = False
    return ok


def _form_page(form: ResourceForm, resource: Resource | None):
    categories, _publishers = services.filter_choices(tuple(ResourceStatus))
    return render_template(
        "resources/manage/form.html", form=form, resource=resource, categories=categories
    ), form_status(form)


@bp.route("/new/<any(link, guide):kind>", methods=["GET", "POST"])
def create(kind: str):
    form = ResourceForm(kind=ResourceKind(kind))
    if (
        form.validate_on_submit()
        and _check_unique(form, None)
        and (resource := _save_or_explain(form, None)) is not None
    ):
        flash(f"Added “{resource.title}” as a draft. Publish it when it is ready.", "success")
        return redirect(url_for(".show", resource_id=resource.id))
    return _form_page(form, None)


@bp.route("/<int:resource_id>/edit", methods=["GET", "POST"])
def edit(resource_id: int):
    resource = _resource_or_404(resource_id)
    form = ResourceForm(obj=resource, kind=resource.kind)
    if not form.is_submitted():
        form.tags.data = ", ".join(resource.tag_list)
        form.audience.data = resource.audience_list
    if (
        form.validate_on_submit()
        and _check_unique(form, resource.id)
        and _save_or_explain(form, resource) is not None
    ):
        flash(f"Saved “{resource.title}”.", "success")
        return redirect(url_for(".show", resource_id=resource.id))
    return _form_page(form, resource)


def _supersede_form(resource: Resource) -> SupersedeForm:
    choices = [
        SelectChoice(
            other.id, f"{other.title} ({other.publisher})" if other.publisher else other.title
        )
        for other in services.successor_choices(resource)
    ]
    form = SupersedeForm(choices=choices)
    if not form.is_submitted():
        form.successor.data = resource.superseded_by_id or 0
    return form


def _show_page(resource: Resource, form: SupersedeForm, status: int = 200):
    zone = current_app.config["TIMEZONE"]
    checks = health.histories([resource.id]).get(resource.id, []) if resource.is_link else []
    return render_template(
        "resources/manage/show.html",
        resource=resource,
        form=form,
        successor=services.current_successor(resource),
        uses=attachments.uses_of(resource),
        audience=services.audience_labels(resource),
        checks=checks,
        local=lambda moment: utc_to_local(moment, zone),
        zone=zone,
    ), status


@bp.get("/<int:resource_id>")
def show(resource_id: int):
    resource = _resource_or_404(resource_id)
    return _show_page(resource, _supersede_form(resource))


STATUS_ACTIONS = {
    "publish": (services.publish, "Published “{}”: it is in the library and in event packs."),
    "unpublish": (services.unpublish, "“{}” is a draft again and hidden from the public."),
    "retire": (services.retire, "Retired “{}”: it is hidden from the library and event packs."),
}


@bp.post("/<int:resource_id>/<any(publish, unpublish, retire):action>")
def change_status(resource_id: int, action: str):
    resource = _resource_or_404(resource_id)
    operation, message = STATUS_ACTIONS[action]
    operation(resource, by=acting_user())
    flash(message.format(resource.title), "success")
    return redirect(url_for(".show", resource_id=resource.id))


@bp.post("/<int:resource_id>/supersede")
def supersede(resource_id: int):
    resource = _resource_or_404(resource_id)
    form = _supersede_form(resource)
    if form.validate_on_submit():
        successor = db.session.get(Resource, form.successor.data) if form.successor.data else None
        with refusals_shown_on(form, on_field("successor")):
            services.supersede(resource, successor, by=acting_user())
            if successor is None:
                flash(f"“{resource.title}” is no longer marked as replaced.", "success")
            else:
                flash(f"“{resource.title}” now points to “{successor.title}”.", "success")
            return redirect(url_for(".show", resource_id=resource.id))
    return _show_page(resource, form, 400)


# --- resources on an event and its talks --------------------------------------------------------


@bp.get("/events")
def events():
    """Events to choose from, newest first, with how many resources each has."""
    page = paginate(queries.events_newest_first(), per_page=25)
    on_event, on_items = queries.resource_counts([event.id for event in page.items])
    return render_template(
        "resources/manage/events.html",
        page=page,
        on_event=on_event,
        on_items=on_items,
        now=utcnow(),
    )


def _event_or_404(event_id: int) -> Event:
    return queries.event_with_items(event_id) or abort(404)


def _attach_form(event: Event) -> AttachForm:
    resources = [
        SelectChoice(r.id, r.title + ("" if r.is_published else " (draft)"))
        for r in services.attachable()
    ]
    targets = [SelectChoice("event", "The whole event")] + [
        SelectChoice(f"item-{item.id}", f"{item.local_start:%H:%M} {item.title}")
        for item in event.agenda_items
    ]
    return AttachForm(resources=resources, targets=targets)


def _event_page(event: Event, form: AttachForm, status: int = 200):
    return render_template(
        "resources/manage/event.html",
        event=event,
        form=form,
        attached=attachments.staff_attachments(event),
    ), status


@bp.get("/events/<int:event_id>")
def event_resources(event_id: int):
    event = _event_or_404(event_id)
    return _event_page(event, _attach_form(event))


@bp.post("/events/<int:event_id>/attach")
def attach(event_id: int):
    event = _event_or_404(event_id)
    form = _attach_form(event)
    if form.validate_on_submit():
        resource = db.session.get(Resource, form.resource.data)
        items = {f"item-{item.id}": item for item in event.agenda_items}
        item = items.get(form.target.data)
        with refusals_shown_on(form, on_field("resource")):
            if resource is None:
                raise services.ResourceError("That resource no longer exists.")
            if item is not None:
                attachments.attach_to_item(item, resource, by=acting_user())
            else:
                attachments.attach_to_event(event, resource, by=acting_user())
            where = f"“{item.title}”" if item else "the whole event"
            flash(f"Added “{resource.title}” to {where}.", "success")
            anchor = f"item-{item.id}" if item else "event-wide"
            return redirect(url_for(".event_resources", event_id=event.id, _anchor=anchor))
    return _event_page(event, form, 400)


def _item_or_404(item_id: int) -> AgendaItem:
    return db.get_or_404(AgendaItem, item_id)


@bp.post("/events/<int:event_id>/<int:resource_id>/remove")
def detach_from_event(event_id: int, resource_id: int):
    event = _event_or_404(event_id)
    resource = _resource_or_404(resource_id)
    if not attachments.detach_from_event(event, resource, by=acting_user()):
        abort(404)
    flash(f"Removed “{resource.title}” from the event.", "success")
    return redirect(url_for(".event_resources", event_id=event.id, _anchor="event-wide"))


@bp.post("/events/<int:event_id>/<int:resource_id>/<any(earlier, later):direction>")
def move_on_event(event_id: int, resource_id: int, direction: str):
    event = _event_or_404(event_id)
    resource = _resource_or_404(resource_id)
    if not attachments.is_on_event(event, resource):
        abort(404)
    if attachments.move_on_event(
        event, resource, -1 if direction == "earlier" else 1, by=acting_user()
    ):
        flash(f"Moved “{resource.title}” {direction}.", "success")
    return redirect(url_for(".event_resources", event_id=event.id, _anchor="event-wide"))


@bp.post("/items/<int:item_id>/<int:resource_id>/remove")
def detach_from_item(item_id: int, resource_id: int):
    item = _item_or_404(item_id)
    resource = _resource_or_404(resource_id)
    if not attachments.detach_from_item(item, resource, by=acting_user()):
        abort(404)
    flash(f"Removed “{resource.title}” from “{item.title}”.", "success")
    return redirect(url_for(".event_resources", event_id=item.event_id, _anchor=f"item-{item.id}"))


@bp.post("/items/<int:item_id>/<int:resource_id>/<any(earlier, later):direction>")
def move_on_item(item_id: int, resource_id: int, direction: str):
    item = _item_or_404(item_id)
    resource = _resource_or_404(resource_id)
    if not attachments.is_on_item(item, resource):
        abort(404)
    if attachments.move_on_item(
        item, resource, -1 if direction == "earlier" else 1, by=acting_user()
    ):
        flash(f"Moved “{resource.title}” {direction}.", "success")
    return redirect(url_for(".event_resources", event_id=item.event_id, _anchor=f"item-{item.id}"))
