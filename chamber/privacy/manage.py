"""Staff pages for privacy: a person's data, erasure, retention (organisers and admins)."""

from __future__ import annotations

from chamber.auth.guard import ORGANISERS, staff_blueprint

bp = staff_blueprint("privacy_staff", __name__, roles=ORGANISERS, url_prefix="/staff/privacy")


# --- the privacy notice and a person's data (admins only) ---------------------------------------

from functools import wraps  # noqa: E402  (this section's imports: kept apart to merge easily)

from flask import (  # noqa: E402
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user  # noqa: E402

from chamber.auth.guard import acting_user  # noqa: E402
from chamber.auth.models import Role  # noqa: E402
from chamber.core.errors import form_status, refusals_shown_on  # noqa: E402
from chamber.core.markdown import render_markdown  # noqa: E402
from chamber.core.times import utcnow  # noqa: E402
from chamber.privacy import export, notice, people  # noqa: E402
from chamber.privacy.forms import NoticeForm, PersonForm  # noqa: E402

ERASE_ENDPOINT = (
    "privacy_staff.erase"  # built with erasure; the person page links it when it exists
)


def admins_only(view):
    """The notice and a person's data are for admins; the blueprint lets organisers in."""

    @wraps(view)
    def guarded(*args, **kwargs):
        if current_user.role != Role.admin:
            abort(403)
        return view(*args, **kwargs)

    return guarded


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/notice")
@admins_only
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
@admins_only
def edit_notice():
    form = NoticeForm()
    if request.method == "GET":
        form.body.data = notice.current_notice().body
    if form.validate_on_submit():
        with refusals_shown_on(form):
            saved = notice.save_notice(form.body.data, form.summary.data or "", by=acting_user())
            flash(
                f"Saved version {saved.version} of the privacy notice: it is public now.", "success"
            )
            return redirect(url_for(".notice_history"))
    preview = render_markdown(form.body.data) if form.body.data else None
    return render_template(
        "privacy/manage/edit.html", form=form, preview=preview, contact=notice.chamber_contact()
    ), form_status(form)


@bp.route("/people", methods=["GET", "POST"])
@admins_only
def person():
    """Look a person up by email (in the POST body, never the URL) and show all that is held."""
    form = PersonForm()
    data, status = None, 200
    if request.method == "POST":
        if form.validate_on_submit():
            data = people.person_data(form.email.data)
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
@admins_only
def export_zip():
    return _download(PersonForm(), "zip")


@bp.post("/people/export.html")
@admins_only
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
    if extension == "zip":
        body, content_type = export.zip_bytes(data, now), "application/zip"
    else:
        body, content_type = export.html_page(data, now).encode(), "text/html; charset=utf-8"
    response = Response(body, content_type=content_type)
    name = export.download_name(extension, now)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return _private(response)
