"""Staff pages for privacy: a person's data, erasure, retention (organisers and admins)."""

from __future__ import annotations

from chamber.auth.guard import ORGANISERS, staff_blueprint

bp = staff_blueprint("privacy_staff", __name__, roles=ORGANISERS, url_prefix="/staff/privacy")


# --- retention and erasure (admins only) ----------------------------------------------------------

from flask import abort, flash, redirect, render_template, url_for  # noqa: E402
from flask_login import current_user  # noqa: E402

from chamber.auth.guard import acting_user  # noqa: E402
from chamber.auth.models import Role  # noqa: E402
from chamber.core.errors import form_status, refusals_shown_on  # noqa: E402
from chamber.core.times import utcnow  # noqa: E402
from chamber.privacy import erasure, retention  # noqa: E402
from chamber.privacy.erasure_forms import ConfirmErasureForm, ErasureForm  # noqa: E402


def _admins_only() -> None:
    """Retention and erasure are for admins; the rest of privacy's pages also for organisers."""
    if current_user.role != Role.admin:
        abort(403)


@bp.get("/retention")
def retention_page():
    _admins_only()
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
    _admins_only()
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
    _admins_only()
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
