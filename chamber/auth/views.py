"""Logging in and out of the staff area."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from itsdangerous import BadData, URLSafeTimedSerializer

from chamber.auth import audit, password_reset, services, sessions, two_factor
from chamber.auth.forms import CodeForm, EnrolForm, ForgotPasswordForm, LoginForm, PasswordForm
from chamber.auth.models import StaffUser
from chamber.core import transactions
from chamber.core.errors import form_status, on_field, refusals_shown_on
from chamber.core.text import is_safe_redirect
from chamber.core.times import utcnow
from chamber.extensions import client_address, limiter

bp = Blueprint("auth", __name__, url_prefix="/staff")

LOGIN_FAILED = "The email address or password is not right."


def _account() -> str:
    return services.normalise_email(request.form.get("email", ""))[:254]


def _account_key() -> str:
    """Failures against one account from one client address: a stranger's wrong passwords use up
    the stranger's allowance, not the owner's, who logs in from another address."""
    return f"login-account:{_account()}|from:{client_address()}"


def _account_everywhere_key() -> str:
    return "login-account-all:" + _account()


DEVICE_COOKIE = "chamber_device"
DEVICE_DAYS = 90


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="chamber-known-device")


def _known_device() -> bool:
    """Whether this browser has logged in to this account before (a signed cookie it was given
    then). The account's own limits do not hold it back: a stranger's failures, from anywhere or
    from a shared address, cannot lock the owner's own browser out."""
    cookie = request.cookies.get(DEVICE_COOKIE, "")
    if not cookie or len(cookie) > 500 or request.method != "POST":
        return False
    try:
        account = _devices().loads(cookie, max_age=DEVICE_DAYS * 86400)
    except BadData:
        return False
    return account == _account() != ""


def _remember_device(response, account: str):
    response.set_cookie(
        DEVICE_COOKIE,
        _devices().dumps(account),
        max_age=DEVICE_DAYS * 86400,
        path=url_for("auth.login"),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
    return response


def _first_try_from_here() -> bool:
    """Whether this address has no failure against this account in the current window. The
    ceiling on an account's failures from all addresses lets such a try through (and still counts
    it if it fails), so however many addresses a stranger fails from, the owner's right password
    from their own still logs in: the addresses that have already failed are the ones held back."""
    if request.method != "POST" or _known_device():
        return True
    config = current_app.config
    if limiter.has_counted(config["LOGIN_LIMIT_PER_ACCOUNT"], _account_key(), "auth.login"):
        return False
    ceiling = config["LOGIN_LIMIT_PER_ACCOUNT_ALL_ADDRESSES"]
    limiter.count_after(ceiling, _account_everywhere_key(), "auth.login", when=_failed)
    return True


def _failed(response) -> bool:
    # Only failed attempts count towards the limits; a successful login redirects.
    return response.status_code != 302


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    deduct_when=_failed,
    error_message="Too many attempts to log in from your address. Wait a few minutes and try again.",
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_failed,
    exempt_when=_known_device,
    error_message="Too many attempts to log in to this account. Wait a few minutes and try again.",
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT_ALL_ADDRESSES"],
    key_func=_account_everywhere_key,
    methods=["POST"],
    deduct_when=_failed,
    exempt_when=_first_try_from_here,
    error_message="Too many attempts to log in to this account. Wait a few minutes and try again.",
)
def login():
    next_url = request.values.get("next", "")
    if not is_safe_redirect(next_url):
        next_url = ""
    if current_user.is_authenticated:
        return redirect(next_url or url_for("staff.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None:
            if user.has_two_factor:
                return _ask_for_second_factor(user, next_url, PENDING_CODE, ".second_factor")
            if two_factor.policy().require_two_factor:
                return _ask_for_second_factor(user, next_url, PENDING_ENROL, ".enrol_at_sign_in")
            return _finish_sign_in(user, next_url, "password")
        _record_failed_sign_in(form.email.data)
        form.form_errors.append(LOGIN_FAILED)
        return render_template("auth/login.html", form=form, next_url=next_url), 401
    return render_template("auth/login.html", form=form, next_url=next_url), form_status(form)


def _record_failed_sign_in(email: str) -> None:
    """On a connection of its own: the request answers 401 and rolls back. Only a known account's
    address is copied: what a stranger types (perhaps a password in the wrong box) is not kept."""
    known = services.find_by_email(email)
    if known is not None:
        reason = "wrong password" if known.active else "account deactivated"
        audit.record_now(
            "sign_in_failed", kind="staff_user", object_id=known.id, detail=reason, by=known
        )
    else:
        audit.record_now("sign_in_failed", detail="no staff account with that address", email="")


# --- the second step ------------------------------------------------------------------------------
# Between the password and the code, the browser holds only a note in its signed session cookie
# (the user's id, when, and what is asked next); no StaffSession exists, so no staff page opens.

PENDING = "pending_sign_in"
PENDING_CODE = "code"
PENDING_ENROL = "enrol"
PENDING_LIFETIME = timedelta(minutes=5)
ENROL_SECRET = "enrol_secret"  # noqa: S105 - a session key, not a secret


def _ask_for_second_factor(user: StaffUser, next_url: str, step: str, endpoint: str):
    session.clear()
    session[PENDING] = {
        "user": user.id,
        "since": int(utcnow().timestamp()),
        "step": step,
        "next": next_url,
    }
    return redirect(url_for(endpoint))


def _pending_user(step: str) -> StaffUser | None:
    """The user who gave their password in the last few minutes and is asked for `step` now."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or pending.get("step") != step:
        return None
    since = pending.get("since")
    if (
        not isinstance(since, int)
        or utcnow().timestamp() - since > PENDING_LIFETIME.total_seconds()
    ):
        return None
    user_id = pending.get("user")
    user = services.by_id(user_id) if isinstance(user_id, int) else None
    return user if user is not None and user.active else None


def _pending_key() -> str:
    pending = session.get(PENDING)
    user_id = pending.get("user") if isinstance(pending, dict) else None
    return f"login-code:{user_id}"


def _finish_sign_in(user: StaffUser, next_url: str, how: str):
    session.clear()  # a fresh session on privilege change
    sessions.start(user)
    login_user(user)
    services.signed_in(user)
    audit.record("sign_in", kind="staff_user", object_id=user.id, detail=how, by=user)
    return _remember_device(redirect(next_url or url_for("staff.dashboard")), user.email)


def _back_to_login():
    session.pop(PENDING, None)
    session.pop(ENROL_SECRET, None)
    flash("Sign in again: that took too long, or the sign-in had already ended.", "info")
    return redirect(url_for(".login"))


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    deduct_when=_failed,
    error_message="Too many attempts to sign in from your address. Wait a few minutes and try again.",
)
@limiter.limit(
    lambda: current_app.config["LOGIN_CODE_LIMIT_PER_ACCOUNT"],
    key_func=_pending_key,
    methods=["POST"],
    deduct_when=_failed,
    error_message="Too many wrong codes for this account. Wait a few minutes and try again.",
)
def second_factor():
    user = _pending_user(PENDING_CODE)
    if user is None:
        return _back_to_login()
    form = CodeForm()
    if form.validate_on_submit():
        next_url = session[PENDING].get("next", "")
        if two_factor.accept_code(user, form.code.data):
            return _finish_sign_in(user, next_url, "password and authenticator code")
        if two_factor.use_recovery_code(user, form.code.data):
            audit.record("recovery_code_used", kind="staff_user", object_id=user.id, by=user)
            return _finish_sign_in(user, next_url, "password and recovery code")
        # The request answers 401 and rolls back: end its transaction now, so that on SQLite the
        # lock the code checks' UPDATEs took does not stand in the way of the entry's own.
        user_id = user.id
        transactions.abandon()
        audit.record_now(
            "second_factor_failed", kind="staff_user", object_id=user_id, by=services.by_id(user_id)
        )
        form.code.errors = [*form.code.errors, CODE_FAILED]
        return render_template("auth/second_factor.html", form=form), 401
    return render_template("auth/second_factor.html", form=form), form_status(form)


CODE_FAILED = "That code is not right, or has been used already. Type the code your app shows now."


@bp.route("/login/two-factor", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_CODE_LIMIT_PER_ACCOUNT"],
    key_func=_pending_key,
    methods=["POST"],
    deduct_when=lambda response: response.status_code >= 400,
    error_message="Too many wrong codes for this account. Wait a few minutes and try again.",
)
def enrol_at_sign_in():
    """Admins require two-factor sign-in and this account has none: set it up before going on."""
    user = _pending_user(PENDING_ENROL)
    if user is None:
        return _back_to_login()
    secret = enrolment_secret()
    form = EnrolForm()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            codes = two_factor.enable(user, secret, form.code.data)
            next_url = session[PENDING].get("next", "")
            _finish_sign_in(user, next_url, "password, then set up two-factor sign-in")
            return render_template(
                "auth/recovery_codes.html",
                codes=codes,
                next_url=next_url or url_for("staff.dashboard"),
            )
    return render_template(
        "auth/enrol.html",
        form=form,
        user=user,
        qr=two_factor.qr_svg(secret, user),
        secret=two_factor.spaced(secret),
        action=url_for(".enrol_at_sign_in"),
        required=True,
    ), form_status(form)


def enrolment_secret() -> str:
    """The secret being enrolled, kept in the signed session until the person confirms a code
    (so opening the page writes nothing)."""
    secret = session.get(ENROL_SECRET)
    if not isinstance(secret, str) or len(secret) != 32:
        secret = two_factor.new_secret()
        session[ENROL_SECRET] = secret
    return secret


# --- forgotten passwords --------------------------------------------------------------------------

RESET_SENT = (
    "If that address belongs to a staff account, we have emailed it a link to set a new "
    "password. The link works for an hour."
)


def _reset_account_key() -> str:
    return "password-reset:" + services.normalise_email(request.form.get("email", ""))[:254]


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["PASSWORD_RESET_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    error_message="Too many requests from your address. Wait a while and try again.",
)
@limiter.limit(
    lambda: current_app.config["PASSWORD_RESET_LIMIT_PER_ADDRESS"],
    key_func=_reset_account_key,
    methods=["POST"],
    error_message="Too many requests for this address. Wait a while and try again.",
)
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        password_reset.request_reset(form.email.data)
        flash(RESET_SENT, "success")
        return redirect(url_for(".login"))
    return render_template("auth/forgot_password.html", form=form), form_status(form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    deduct_when=_failed,
    error_message="Too many attempts from your address. Wait a few minutes and try again.",
)
def reset_password(token: str):
    reset = password_reset.reset_for(token)
    if reset is None:
        abort(404)
    form = PasswordForm()
    form.about = (reset.user.email, reset.user.name)
    if form.validate_on_submit():
        with refusals_shown_on(form, on_field("password")):
            password_reset.complete(reset, form.password.data)
            if current_user.is_authenticated:
                logout_user()
            session.clear()
            flash(
                "Your new password is set, and every session of your account has ended. Sign in with it.",
                "success",
            )
            return redirect(url_for(".login"))
    return render_template("auth/reset_password.html", form=form, token=token), form_status(form)


@bp.post("/logout")
@login_required
def logout():
    audit.record("sign_out", kind="staff_user", object_id=current_user.id)
    sessions.end(current_user.session_token)  # a copy of the cookie stops working too
    logout_user()
    session.clear()
    flash("You have logged out.", "success")
    return redirect(url_for("auth.login"))
