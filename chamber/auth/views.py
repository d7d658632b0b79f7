"""Logging in and out of the staff area."""

from __future__ import annotations

from flask import (
    Blueprint,
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

from chamber.auth import services, sessions
from chamber.auth.forms import LoginForm
from chamber.core.errors import form_status
from chamber.core.text import is_safe_redirect
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
            session.clear()  # a fresh session on privilege change
            sessions.start(user)
            login_user(user)
            return _remember_device(redirect(next_url or url_for("staff.dashboard")), user.email)
        form.form_errors.append(LOGIN_FAILED)
        return render_template("auth/login.html", form=form, next_url=next_url), 401
    return render_template("auth/login.html", form=form, next_url=next_url), form_status(form)


@bp.post("/logout")
@login_required
def logout():
    sessions.end(current_user.session_token)  # a copy of the cookie stops working too
    logout_user()
    session.clear()
    flash("You have logged out.", "success")
    return redirect(url_for("auth.login"))
