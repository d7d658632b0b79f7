"""Staff pages for privacy (admins only): the privacy notice and its versions, a person's data
(looked up by an address sent in a POST, never a URL; exported as a zip or a page), erasing a
person, and retention (what the next run will anonymise, and when)."""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, render_template, request, url_for

from chamber.auth import audit
from chamber.auth.guard import acting_user, staff_blueprint
from chamber.auth.models import Role
from chamber.core.errors import form_status, refusals_shown_on
from chamber.core.markdown import render_markdown
from chamber.core.times import utcnow
from chamber.privacy import erasure, export, notice, people, retention
from chamber.privacy.erasure_forms import ConfirmErasureForm, ErasureForm
from chamber.privacy.forms import NoticeForm, PersonForm

bp = staff_blueprint("privacy_staff", __name__, roles=(Role.admin,), url_prefix="/staff/privacy")


ERASE_ENDPOINT = (
    "privacy_staff.erase"  # built with erasure; the person page links it when it exists
)


@bp.get("/")
def index():
    return render_template("privacy/manage/index.html")


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/notice")
def notice_history():
    """Every saved version, and one of them (or the text shown now) in full: `?version=<n>`."""
    versions = notice.versions()
    wanted = request.args.get("version", "")
    chosen = next((v for v in versions if str(v.version) == wanted), None)
    return render_template(
        "privacy/manage/history.html",
        versions=versions,
        chosen=chosen,
        asked_for=wanted[:20] if wanted and chosen is None else None,
        shown=notice.current_notice(),
    )


@bp.route("/notice/edit", methods=["GET", "POST"])
def edit_notice():
    form = NoticeForm()
    if request.method == "GET":
        form.body.data = notice.current_notice().body
    if form.validate_on_submit():
        with refusals_shown_on(form):
            saved = notice.save_notice(form.body.data, form.summary.data or "", by=acting_user())
            audit.record("privacy_notice_changed", kind="privacy_notice", object_id=saved.version)
            flash(
                f"Saved version {saved.version} of the privacy notice: it is public now.", "success"
            )
            return redirect(url_for(".notice_history"))
    preview = render_markdown(form.body.data) if form.body.data else None
    return render_template(
        "privacy/manage/edit.html", form=form, preview=preview, contact=notice.chamber_contact()
    ), form_status(form)


@bp.route("/people", methods=["GET", "POST"])
def person():
    """Look a person up by email (in the POST body, never the URL) and show all that is held."""
    form = PersonForm()
    data, status = None, 200
    if request.method == "POST":
        if form.validate_on_submit():
            data = people.person_data(form.email.data)
            # Who looked, and when; not whom: the log would keep the address the lookup is about.
            audit.record("person_looked_up", kind="person")
        else:
            status = 400
    page = render_template(
        "privacy/manage/person.html",
        form=form,
        data=data,
        erase_endpoint=ERASE_ENDPOINT if ERASE_ENDPOINT in current_app.view_functions else None,
    )
    return _private(Response(page, status=status))


@bp.post("/people/export.zip")
def export_zip():
    return _download(PersonForm(), "zip")


@bp.post("/people/export.html")
def export_html():
    return _download(PersonForm(), "html")


def _download(form: PersonForm, extension: str) -> Response:
    if not form.validate_on_submit():
        page = render_template(
            "privacy/manage/person.html", form=form, data=None, erase_endpoint=None
        )
        return _private(Response(page, status=400))
    data = people.person_data(form.email.data)
    now = utcnow()
    # The address is personal: the trail says a person's data left, as which file, not whose.
    audit.record("person_exported", kind="person", detail=f"as {extension}")
    if extension == "zip":
        body, content_type = export.zip_bytes(data, now), "application/zip"
    else:
        body, content_type = export.html_page(data, now).encode(), "text/html; charset=utf-8"
    response = Response(body, content_type=content_type)
    name = export.download_name(extension, now)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return _private(response)


# --- retention and erasure -----------------------------------------------------------------------


@bp.get("/retention")
def retention_page():
    now = utcnow()
    next_at = retention.next_run_at(now)
    return render_template(
        "privacy/retention.html",
        kinds=retention.due_counts(next_at),
        next_at=next_at,
        last=retention.last_run(),
        now=now,
    )


@bp.route("/erase", methods=["GET", "POST"])
def erase():
    """The address, then the preview of what erasing would do, with the button that does it."""
    form = ErasureForm()
    preview = None
    if form.validate_on_submit():
        with refusals_shown_on(form):
            preview = erasure.erasure_preview(form.email.data)
    confirm = ConfirmErasureForm(email=preview.email) if preview else None
    status = 200 if preview else form_status(form)
    return render_template(
        "privacy/erase.html", form=form, preview=preview, confirm=confirm
    ), status


@bp.post("/erase/confirm")
def erase_confirmed():
    confirm = ConfirmErasureForm()
    form = ErasureForm(data={"email": confirm.email.data or ""}, meta={"csrf": False})
    if confirm.validate_on_submit():
        with refusals_shown_on(form):
            report = erasure.erase_person(confirm.email.data, by=acting_user())
            flash(
                f"Erased. {report.places_cancelled} place(s) cancelled, {report.promoted} "
                f"person(s) given a seat from the waiting list, {report.emails_cancelled} "
                f"email(s) cancelled, {report.emails_cleared} cleared; the address is kept only "
                "as a hash on the suppression list.",
                "success",
            )
            return redirect(url_for("privacy_staff.erase"))
    else:
        form.form_errors.extend(e for errors in confirm.errors.values() for e in errors)
    return render_template("privacy/erase.html", form=form, preview=None, confirm=None), 400
