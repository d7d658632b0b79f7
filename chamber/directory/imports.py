"""Staff pages for importing a spreadsheet into the directory: upload, choose the columns, a dry run
that says row by row what would happen, the import itself (in the request for a small file, in
the worker with progress for a large one), cancelling, and the error report: docs/directory-import.md."""

from __future__ import annotations

import io
from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_wtf.file import FileField, FileRequired
from wtforms import FieldList, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from chamber.auth.audit import record
from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.core.csvexport import csv_bytes
from chamber.core.errors import form_status, refusals_flashed, refusals_shown_on
from chamber.core.forms import ChamberForm, text_field
from chamber.core.pagination import paginate
from chamber.core.times import utc_to_local, utcnow
from chamber.directory.forms import TopicList
from chamber.extensions import db
from chamber.members import import_jobs
from chamber.members.import_fields import FIELDS
from chamber.members.import_jobs import CONSENT_WORDING_MAX
from chamber.members.import_models import MAX_FILE_BYTES, ImportJob, ImportStatus, RowAction
from chamber.members.models import SizeBand

bp = staff_blueprint(
    "directory_imports", __name__, roles=ORGANISERS, url_prefix="/staff/directory/imports"
)
ROWS_PER_PAGE = 50
FILE_TYPES = (".csv", ".txt", ".tsv")
# The upload's form fields and multipart framing on top of the file itself.
UPLOAD_OVERHEAD = 64 * 1024


@bp.url_value_preprocessor
def allow_the_upload(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A file of up to MAX_FILE_BYTES on the upload, against the site's smaller limit for every
    other request. Set before any hook reads the form (the CSRF check does)."""
    if endpoint == "directory_imports.upload":
        request.max_content_length = MAX_FILE_BYTES + UPLOAD_OVERHEAD


@bp.errorhandler(413)
def too_large(error):
    if request.endpoint != "directory_imports.upload":
        return render_template(
            "errors/error.html",
            code=413,
            title="That was too much to send",
            advice="Send less at once and try again.",
        ), 413
    form = UploadForm(formdata=None)
    form.file.errors = [_too_large_message()]
    return _index(form, 413)


def _too_large_message() -> str:
    return (
        f"The file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB, the most that can be "
        "imported at once. Split it into smaller files."
    )


class UploadForm(ChamberForm):
    file = FileField(
        "CSV file",
        validators=[FileRequired("Choose a CSV file to upload.")],
        description=(
            "Save your spreadsheet as “CSV UTF-8” (or plain CSV) first. Commas, semicolons or "
            f"tabs between cells; up to {MAX_FILE_BYTES // 1024 // 1024} MB."
        ),
        render_kw={"accept": ".csv,.txt,.tsv,text/csv"},
    )

    def validate_file(self, field: FileField) -> None:
        name = (field.data.filename or "").lower() if field.data else ""
        if name and not name.endswith(FILE_TYPES):
            raise ValidationError(
                "The file must be a CSV file (.csv): open it in your spreadsheet and save it as "
                "“CSV UTF-8”."
            )


FIELD_CHOICES = [
    SelectChoice("", "Ignore this column"),
    *(SelectChoice(field.name, field.label) for field in FIELDS),
]
BAND_CHOICES = [
    SelectChoice("", "None: refuse the row"),
    *(SelectChoice(band.value, band.label) for band in SizeBand),
]


class MappingForm(ChamberForm):
    """A select per column of the file (labelled with its heading), and the default size band."""

    columns = FieldList(SelectField("Field", choices=FIELD_CHOICES))
    default_size_band = SelectField(
        "Size band for a new business whose row has none",
        choices=BAND_CHOICES,
        description="A business new to the directory needs a size band.",
    )

    consent_topics = TopicList("Topics they agreed to hear about", required=False)
    consent_wording = text_field(
        "What they agreed to",
        CONSENT_WORDING_MAX,
        area=True,
        description="Only if the people in this file gave consent to marketing: the words they "
        "said yes to, where and when (“Ticked ‘Email me about events’ on our 2026 expo sign-up "
        "sheet”). Recorded for each of them (or, with a Consent column, for those whose cell "
        "says yes), source “import”. Leave empty to record no consent.",
        render_kw={"rows": 3},
    )

    def label_columns(self, header: list[str]) -> None:
        for index, entry in enumerate(self.columns):
            heading = header[index] if index < len(header) else ""
            entry.label.text = heading or f"Column {index + 1} (no heading)"

    @property
    def mapping(self) -> list[str]:
        return [entry.data or "" for entry in self.columns]


def _index(form: UploadForm, status: int = 200):
    return render_template(
        "directory/imports/index.html",
        form=form,
        jobs=import_jobs.recent_jobs(),
        local=_local,
    ), status


def _local(moment):
    return utc_to_local(moment, current_app.config["TIMEZONE"]) if moment else None


@bp.get("/")
def index():
    return _index(UploadForm(formdata=None))


@bp.post("/")
def upload():
    form = UploadForm()
    if not form.validate_on_submit():
        return _index(form, 400)
    with refusals_shown_on(form):
        job = import_jobs.create_job(
            form.file.data.filename or "", form.file.data.read(), by=acting_user()
        )
        return redirect(url_for(".columns", job_id=job.id))
    return _index(form, form_status(form))


def _job_or_404(job_id: int) -> ImportJob:
    return db.get_or_404(ImportJob, job_id)


@bp.route("/<int:job_id>/columns", methods=["GET", "POST"])
def columns(job_id: int):
    job = _job_or_404(job_id)
    if request.method == "GET":
        band = job.default_size_band.value if job.default_size_band else ""
        form = MappingForm(
            formdata=None,
            columns=import_jobs.suggested_mapping(job),
            default_size_band=band,
            consent_wording=job.consent_wording,
            consent_topics=job.consent_topics or [],
        )
    else:
        form = MappingForm()
        if form.validate_on_submit():
            dry_run = request.form.get("run") != "import"
            band = SizeBand(form.default_size_band.data) if form.default_size_band.data else None
            with refusals_shown_on(form):
                import_jobs.save_mapping(
                    job,
                    form.mapping,
                    band,
                    consent_wording=form.consent_wording.data or "",
                    consent_topics=form.consent_topics.topics,
                )
                import_jobs.start(job, dry_run=dry_run)
                return redirect(url_for(".show", job_id=job.id))
    form.label_columns(job.header)
    return render_template(
        "directory/imports/columns.html",
        job=job,
        form=form,
        fields=FIELDS,
        preview=import_jobs.preview(job),
        sheet_format=import_jobs.sheet_format(job).description,
    ), form_status(form)


@bp.get("/<int:job_id>")
def show(job_id: int):
    job = _job_or_404(job_id)
    shown = request.args.get("show", "")
    action = RowAction(shown) if shown in RowAction.__members__ else None
    rows = paginate(import_jobs.job_rows(job, action), ROWS_PER_PAGE)
    return render_template(
        "directory/imports/show.html",
        job=job,
        rows=rows,
        action=action,
        progress=job.progress(utcnow()),
        running=job.status.is_active,
        in_worker=job.rows_total > import_jobs.RUN_IN_REQUEST_ROWS,
        local=_local,
        RowAction=RowAction,
        ImportStatus=ImportStatus,
    )


@bp.post("/<int:job_id>/import")
def start_import(job_id: int):
    job = _job_or_404(job_id)
    if not ChamberForm().validate_on_submit():
        abort(400)
    with refusals_flashed():
        import_jobs.start(job, dry_run=False)
        record("directory_imported", kind="import_job", object_id=job.id,
               detail=f"{job.rows_total} rows" if job.status == ImportStatus.done else "queued")  # fmt: skip
        if job.status == ImportStatus.done:
            flash("Imported.", "success")
        else:
            flash("The import is queued; the worker starts it within a few seconds.", "success")
    return redirect(url_for(".show", job_id=job.id))


@bp.post("/<int:job_id>/cancel")
def cancel(job_id: int):
    job = _job_or_404(job_id)
    if not ChamberForm().validate_on_submit():
        abort(400)
    with refusals_flashed():
        import_jobs.cancel(job)
        flash("Cancelled. Rows already imported stay; no row was left half-written.", "success")
    return redirect(url_for(".show", job_id=job.id))


@bp.get("/<int:job_id>/refused.csv")
def report(job_id: int):
    job = _job_or_404(job_id)
    body = csv_bytes(import_jobs.report_header(job), import_jobs.report_rows(job))
    record("exported", kind="import_job", object_id=job.id, detail="refused rows CSV")
    stem = job.file_name.rsplit(".", 1)[0] or "import"
    safe = "".join(ch if ch.isalnum() or ch in "-_ " else "-" for ch in stem)[:60]
    # Werkzeug writes the name as RFC 6266 wants it: an ASCII `filename` and, for a name in
    # another script ("会員リスト"), the UTF-8 `filename*` beside it.
    return send_file(
        io.BytesIO(body),
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"{safe}-refused-rows.csv",
        etag=False,
        max_age=0,
    )
