"""The directory's staff pages (organisers and admins): the organisation and contact lists with
search, filters and CSV export; each record's page with its history with the chamber; adding,
editing, archiving and restoring; merging two records that are the same (docs/directory.md)."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from chamber.auth.audit import record
from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.core.csvexport import csv_bytes
from chamber.core.errors import form_status, refusals_flashed, refusals_shown_on
from chamber.core.pagination import paginate
from chamber.core.routing import id_arg
from chamber.core.text import counted
from chamber.core.times import utcnow
from chamber.directory import merging, queries
from chamber.directory.forms import (
    RECORD_ID,
    ConsentNoteForm,
    ContactForm,
    LiftBounceForm,
    MergeForm,
    OrganisationForm,
    WithdrawConsentForm,
)
from chamber.members import directory
from chamber.members.models import (
    Contact,
    ContactRole,
    LegalForm,
    MergeKind,
    Organisation,
    SizeBand,
)

bp = staff_blueprint("directory", __name__, roles=ORGANISERS, url_prefix="/staff/directory")

PER_PAGE = 50


def _organisation_or_404(organisation_id: int) -> Organisation:
    return queries.organisation_or_none(organisation_id) or abort(404)


def _contact_or_404(contact_id: int) -> Contact:
    return queries.contact_or_none(contact_id) or abort(404)


def _csv(body: bytes, name: str) -> Response:
    return Response(
        body,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{utcnow():%Y-%m-%d}.csv"'},
    )


def _list_context(filters: queries.OrganisationFilters, *, roles: bool) -> dict[str, object]:
    """The filters, and the (value, label) options of each of their lists."""
    choices = queries.filter_choices()
    options = {
        "tier": [(tier, tier) for tier in choices.tiers],
        "band": [(band.value, band.short_label) for band in SizeBand],
        "sector": [(sector, sector) for sector in choices.sectors],
        "legal": [(form.value, form.label.split(" (")[0]) for form in LegalForm],  # short
        "tag": [(tag, tag) for tag in choices.tags],
        "role": [(role.value, role.label) for role in ContactRole] if roles else [],
    }
    return {"filters": filters, "options": options}


# --- organisations --------------------------------------------------------------------------------


@bp.get("/")
def index():
    filters = queries.OrganisationFilters.from_args(request.args)
    page = paginate(queries.organisations_page_query(filters), per_page=PER_PAGE)
    return render_template(
        "directory/organisations.html",
        page=page,
        contact_counts=queries.contact_counts([o.id for o in page.items]),
        **_list_context(filters, roles=False),
    )


@bp.get("/organisations.csv")
def export_organisations():
    filters = queries.OrganisationFilters.from_args(request.args)
    body = csv_bytes(queries.ORGANISATION_HEADER, queries.organisation_rows(filters))
    record("exported", kind="directory", detail="organisations CSV")
    return _csv(body, "organisations")


@bp.route("/organisations/new", methods=["GET", "POST"])
def new_organisation():
    form = OrganisationForm()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            organisation = directory.create_organisation(form.details(), by=acting_user())
            record("record_added", kind="organisation", object_id=organisation.id)
            flash(f"Added {organisation.name} to the directory.", "success")
            return redirect(url_for(".organisation", organisation_id=organisation.id))
    return render_template(
        "directory/organisation_form.html", form=form, organisation=None
    ), form_status(form)


def _merged_away(kind: MergeKind, record_id: int) -> WerkzeugResponse:
    """A record merged into another: its old address leads to the one it lives on in (a 404 if
    it never was)."""
    kept = queries.merged_into(kind, record_id)
    if kept is None:
        abort(404)
    flash(f"That {kind.value} was merged into this one; its history is here.", "info")
    if kind is MergeKind.organisation:
        return redirect(url_for(".organisation", organisation_id=kept))
    return redirect(url_for(".contact", contact_id=kept))


@bp.get("/organisations/<int:organisation_id>")
def organisation(organisation_id: int):
    found = queries.organisation_or_none(organisation_id)
    if found is None:
        return _merged_away(MergeKind.organisation, organisation_id)
    return render_template(
        "directory/organisation.html",
        organisation=found,
        history=queries.organisation_history(found),
    )


@bp.route("/organisations/<int:organisation_id>/edit", methods=["GET", "POST"])
def edit_organisation(organisation_id: int):
    found = _organisation_or_404(organisation_id)
    form = OrganisationForm(obj=found)
    if "tags" not in request.form:  # the field holds names; the object holds rows
        form.tags.data = ", ".join(found.tag_names)
    if form.validate_on_submit():
        with refusals_shown_on(form):
            saved = directory.edit_organisation(found.id, form.details(), by=acting_user())
            record("record_changed", kind="organisation", object_id=saved.id)
            flash(f"Saved {saved.name}.", "success")
            return redirect(url_for(".organisation", organisation_id=saved.id))
        found = _organisation_or_404(organisation_id)  # read again after the refusal's rollback
    return render_template(
        "directory/organisation_form.html", form=form, organisation=found
    ), form_status(form)


@bp.post("/organisations/<int:organisation_id>/<any(archive, restore):action>")
def act_on_organisation(organisation_id: int, action: str):
    found = _organisation_or_404(organisation_id)
    with refusals_flashed():
        if action == "archive":
            saved = directory.archive_organisation(found.id, by=acting_user())
            record("record_archived", kind="organisation", object_id=saved.id)
            flash(
                f"Archived {saved.name}: it is left out of the lists unless you ask for archived "
                "records. Its history is kept.",
                "success",
            )
        else:
            saved = directory.restore_organisation(found.id, by=acting_user())
            record("record_restored", kind="organisation", object_id=saved.id)
            flash(f"Restored {saved.name}.", "success")
    return redirect(url_for(".organisation", organisation_id=organisation_id))


@bp.get("/organisations/<int:organisation_id>/merge")
def merge_organisation(organisation_id: int):
    """Find the duplicate, and preview merging it in."""
    kept = _organisation_or_404(organisation_id)
    return _merge_page(kept, queries.organisation_or_none, merging.preview_organisations)


@bp.post("/organisations/<int:organisation_id>/merge")
def confirm_organisation_merge(organisation_id: int):
    kept = _organisation_or_404(organisation_id)
    form = MergeForm()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            merged = merging.merge_organisations(kept.id, form.removed_id, by=acting_user())
            moved = merged.moved
            record("records_merged", kind="organisation", object_id=kept.id,
                   detail=f"organisation {form.removed_id} merged into {kept.id}")  # fmt: skip
            flash(
                f"Merged {merged.removed_snapshot['name']} into {kept.name}: "
                f"{counted(len(moved['contacts']), 'contact')} and "
                f"{counted(len(moved['bookings']), 'booking')} moved.",
                "success",
            )
            return redirect(url_for(".organisation", organisation_id=organisation_id))
        kept = _organisation_or_404(organisation_id)
    return _merge_page(kept, queries.organisation_or_none, merging.preview_organisations, form)


# --- contacts -------------------------------------------------------------------------------------


@bp.get("/contacts")
def contacts():
    filters = queries.ContactFilters.from_args(request.args)
    page = paginate(queries.contacts_query(filters), per_page=PER_PAGE)
    return render_template(
        "directory/contacts.html", page=page, **_list_context(filters, roles=True)
    )


@bp.get("/contacts.csv")
def export_contacts():
    filters = queries.ContactFilters.from_args(request.args)
    record("exported", kind="directory", detail="contacts CSV")
    return _csv(csv_bytes(queries.CONTACT_HEADER, queries.contact_rows(filters)), "contacts")


@bp.route("/contacts/new", methods=["GET", "POST"])
def new_contact():
    form = ContactForm()
    at = request.args.get("organisation", type=id_arg)
    if not form.is_submitted() and at and (business := queries.organisation_or_none(at)):
        form.organisation.data = business.name
    if form.validate_on_submit():
        with refusals_shown_on(form):
            contact = directory.create_contact(form.details(), by=acting_user())
            record("record_added", kind="contact", object_id=contact.id)
            flash(f"Added {contact.name} to the directory.", "success")
            return redirect(url_for(".contact", contact_id=contact.id))
    return _contact_form(form, None)


def _contact_form(form: ContactForm, contact: Contact | None) -> tuple[str, int]:
    """The contact form again, with a link to whoever already holds the address it refused."""
    clash = (
        directory.contact_with_email(form.email.data, except_id=contact.id if contact else None)
        if form.email.errors
        else None
    )
    page = render_template("directory/contact_form.html", form=form, contact=contact, clash=clash)
    return page, form_status(form)


def _contact_page(
    found: Contact,
    bounce_form: LiftBounceForm | None = None,
    consent_form: ConsentNoteForm | None = None,
    withdraw_form: WithdrawConsentForm | None = None,
) -> str:
    return render_template(
        "directory/contact.html",
        contact=found,
        history=queries.contact_history(found),
        bounce=queries.bounce_of(found),
        bounce_form=bounce_form or LiftBounceForm(formdata=None),
        consent_form=consent_form or ConsentNoteForm(formdata=None),
        withdraw_form=withdraw_form or WithdrawConsentForm(formdata=None, prefix="withdraw"),
    )


@bp.get("/contacts/<int:contact_id>")
def contact(contact_id: int):
    found = queries.contact_or_none(contact_id)
    if found is None:
        return _merged_away(MergeKind.contact, contact_id)
    return _contact_page(found)


@bp.post("/contacts/<int:contact_id>/lift-bounce")
def lift_bounce(contact_id: int):
    """Lift a hard bounce, once staff confirm the person's mailbox works again."""
    found = _contact_or_404(contact_id)
    form = LiftBounceForm()
    if form.validate_on_submit():
        with refusals_flashed():
            saved = directory.lift_bounce(found.id, by=acting_user())
            record("bounce_lifted", kind="contact", object_id=saved.id)
            flash(
                f"Lifted the bounce: marketing may reach {saved.email} again, on its lawful basis.",
                "success",
            )
        return redirect(url_for(".contact", contact_id=contact_id))
    return _contact_page(found, form), form_status(form)


@bp.post("/contacts/<int:contact_id>/consent")
def record_consent(contact_id: int):
    """Record, as a staff note, the consent the person gave (wording, topics; time and who)."""
    found = _contact_or_404(contact_id)
    form = ConsentNoteForm()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            directory.record_consent(
                found.id, form.topics.topics, form.wording.data or "", by=acting_user()
            )
            record("consent_recorded", kind="contact", object_id=found.id,
                   detail=", ".join(t.value for t in form.topics.topics))  # fmt: skip
            flash(f"Recorded {found.name}'s consent.", "success")
            return redirect(url_for(".contact", contact_id=contact_id, _anchor="consent"))
        found = _contact_or_404(contact_id)
    return _contact_page(found, consent_form=form), form_status(form)


@bp.post("/contacts/<int:contact_id>/withdraw-consent")
def withdraw_consent(contact_id: int):
    """Record that the person withdrew their consent to some topics (time and who)."""
    found = _contact_or_404(contact_id)
    form = WithdrawConsentForm(prefix="withdraw")
    if form.validate_on_submit():
        with refusals_shown_on(form):
            directory.record_withdrawal(found.id, form.topics.topics, by=acting_user())
            record("consent_withdrawn", kind="contact", object_id=found.id,
                   detail=", ".join(t.value for t in form.topics.topics))  # fmt: skip
            flash(f"Recorded that {found.name} withdrew their consent.", "success")
            return redirect(url_for(".contact", contact_id=contact_id, _anchor="consent"))
        found = _contact_or_404(contact_id)
    return _contact_page(found, withdraw_form=form), form_status(form)


@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
def edit_contact(contact_id: int):
    found = _contact_or_404(contact_id)
    form = ContactForm(obj=found)
    if "organisation" not in request.form:  # the field holds a name; the object holds a row
        form.organisation.data = found.organisation.name if found.organisation else ""
    if form.validate_on_submit():
        with refusals_shown_on(form):
            saved = directory.edit_contact(found.id, form.details(), by=acting_user())
            record("record_changed", kind="contact", object_id=saved.id)
            flash(f"Saved {saved.name}.", "success")
            return redirect(url_for(".contact", contact_id=saved.id))
        found = _contact_or_404(contact_id)
    return _contact_form(form, found)


@bp.post("/contacts/<int:contact_id>/<any(archive, restore):action>")
def act_on_contact(contact_id: int, action: str):
    found = _contact_or_404(contact_id)
    with refusals_flashed():
        if action == "archive":
            saved = directory.archive_contact(found.id, by=acting_user())
            record("record_archived", kind="contact", object_id=saved.id)
            flash(
                f"Archived {saved.name}: they are left out of the lists unless you ask for "
                "archived records. Their history is kept.",
                "success",
            )
        else:
            saved = directory.restore_contact(found.id, by=acting_user())
            record("record_restored", kind="contact", object_id=saved.id)
            flash(f"Restored {saved.name}.", "success")
    return redirect(url_for(".contact", contact_id=contact_id))


@bp.get("/contacts/<int:contact_id>/merge")
def merge_contact(contact_id: int):
    """Find the duplicate, and preview merging it in."""
    kept = _contact_or_404(contact_id)
    return _merge_page(kept, queries.contact_or_none, merging.preview_contacts)


@bp.post("/contacts/<int:contact_id>/merge")
def confirm_contact_merge(contact_id: int):
    kept = _contact_or_404(contact_id)
    form = MergeForm()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            merged = merging.merge_contacts(kept.id, form.removed_id, by=acting_user())
            moved = merged.moved
            record("records_merged", kind="contact", object_id=kept.id,
                   detail=f"contact {form.removed_id} merged into {kept.id}")  # fmt: skip
            flash(
                f"Merged {merged.removed_snapshot['name']} ({merged.removed_snapshot['email']}) "
                f"into {kept.name}: {counted(len(moved['delegates']), 'place')} moved.",
                "success",
            )
            return redirect(url_for(".contact", contact_id=contact_id))
        kept = _contact_or_404(contact_id)
    return _merge_page(kept, queries.contact_or_none, merging.preview_contacts, form)


# --- merging, for both ----------------------------------------------------------------------------


def _merge_page(kept, find, preview_of, form: MergeForm | None = None):
    """The merge page: a search for the duplicate, then the preview of merging it into `kept`;
    after a confirmation that was refused, the same page with the reason."""
    form = form or MergeForm()
    search = queries.clean_search(request.args.get("q", ""))
    chosen = request.form.get("removed") if form.is_submitted() else request.args.get("removed")
    removed = find(int(chosen)) if chosen and RECORD_ID.fullmatch(chosen) else None
    preview = None
    if removed is not None and removed.id != kept.id:
        preview = preview_of(kept, removed)
    elif chosen and not form.errors:
        form.form_errors.append(
            "That record is not in the directory any more, or is this one: search again."
        )
    return render_template(
        "directory/merge.html",
        kept=kept,
        kind="organisation" if isinstance(kept, Organisation) else "contact",
        form=form,
        search=search,
        candidates=queries.merge_candidates(type(kept), kept.id, search),
        preview=preview,
    ), form_status(form)
