"""A member of staff's own account: two-factor sign-in, and the sessions signed in as them."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, session, url_for

from chamber.auth import sessions, two_factor
from chamber.auth.audit import record
from chamber.auth.forms import DisableTwoFactorForm, EndSessionForm, EnrolForm
from chamber.auth.guard import EVERY_ROLE, acting_user, staff_blueprint
from chamber.auth.views import ENROL_SECRET, enrolment_secret
from chamber.core.errors import form_status, refusals_shown_on

bp = staff_blueprint("account", __name__, roles=EVERY_ROLE, url_prefix="/staff/account")


# --- sessions ------------------------------------------------------------------------------------


def _sessions_page(form: EndSessionForm | None = None, status: int = 200):
    user = acting_user()
    return render_template(
        "auth/sessions.html",
        live=sessions.live_sessions(user),
        is_current=lambda s: sessions.is_current(s, user),
        form=form or EndSessionForm(formdata=None),
    ), status


@bp.get("/sessions")
def sessions_page():
    return _sessions_page()


@bp.post("/sessions/end")
def end_session():
    """Sign one of one's own sessions out. Another person's session, or none, is a 404."""
    form = EndSessionForm()
    if not form.validate_on_submit():
        return _sessions_page(form, 400)
    user = acting_user()
    session_id = int(form.session.data)
    if not sessions.end_own(user, session_id):
        abort(404)
    record("session_ended", kind="staff_session", object_id=session_id, by=user)
    flash("That session is signed out.", "success")
    return redirect(url_for(".sessions_page"))


@bp.post("/sessions/end-others")
def end_other_sessions():
    user = acting_user()
    sessions.end_all(user, keep=user.session_token)
    record("other_sessions_ended", kind="staff_user", object_id=user.id, by=user)
    flash("Every other session of your account is signed out.", "success")
    return redirect(url_for(".sessions_page"))


# --- two-factor sign-in --------------------------------------------------------------------------


@bp.route("/two-factor", methods=["GET", "POST"])
def two_factor_page():
    user = acting_user()
    if user.has_two_factor:
        return render_template(
            "auth/two_factor.html",
            user=user,
            left=two_factor.recovery_codes_left(user),
            required=two_factor.policy().require_two_factor,
            form=DisableTwoFactorForm(formdata=None),
        )
    secret = enrolment_secret()
    form = EnrolForm()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            codes = two_factor.enable(user, secret, form.code.data)
            session.pop(ENROL_SECRET, None)
            return render_template(
                "auth/recovery_codes.html", codes=codes, next_url=url_for(".two_factor_page")
            )
    return render_template(
        "auth/enrol.html",
        form=form,
        user=user,
        qr=two_factor.qr_svg(secret, user),
        secret=two_factor.spaced(secret),
        action=url_for(".two_factor_page"),
        required=False,
    ), form_status(form)


@bp.post("/two-factor/off")
def turn_off_two_factor():
    user = acting_user()
    if not user.has_two_factor:
        return redirect(url_for(".two_factor_page"))
    form = DisableTwoFactorForm()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            two_factor.disable(user, form.password.data)
            flash("Two-factor sign-in is off for your account.", "success")
            return redirect(url_for(".two_factor_page"))
    return render_template(
        "auth/two_factor.html",
        user=user,
        left=two_factor.recovery_codes_left(user),
        required=two_factor.policy().require_two_factor,
        form=form,
    ), 400
