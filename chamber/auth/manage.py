"""Admins manage staff accounts: list, add, change role or name, deactivate, set a password."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from chamber.auth import services, two_factor
from chamber.auth.audit import record
from chamber.auth.forms import PasswordForm, StaffCreateForm, StaffEditForm, TwoFactorPolicyForm
from chamber.auth.guard import acting_user, staff_blueprint
from chamber.auth.models import Role, StaffUser
from chamber.core.errors import form_status, on_field, refusals_shown_on
from chamber.extensions import db

bp = staff_blueprint("staff_users", __name__, roles=[Role.admin], url_prefix="/staff/users")


@bp.get("/")
def index():
    return render_template("auth/users.html", users=services.staff_users())


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = StaffCreateForm()
    if form.validate_on_submit():
        with refusals_shown_on(form, on_field("email")):
            user = services.create_staff(
                form.email.data,
                form.name.data,
                form.role.data,
                form.password.data,
                by=acting_user(),
            )
            flash(f"Added {user.name} as {user.role.label}.", "success")
            return redirect(url_for(".index"))
    return render_template("auth/user_form.html", form=form, user=None), form_status(form)


@bp.route("/<int:user_id>", methods=["GET", "POST"])
def edit(user_id: int):
    user = db.get_or_404(StaffUser, user_id)
    form = StaffEditForm(obj=user)
    if form.validate_on_submit():
        with refusals_shown_on(form):
            before = (user.role, user.active, user.name)
            services.update_staff(
                user,
                name=form.name.data,
                role=form.role.data,
                active=form.active.data,
                by=current_user,
            )
            changes = _changes(before, user)
            if changes:
                record("staff_changed", kind="staff_user", object_id=user.id, detail=changes)
            flash(f"Saved {user.name}.", "success")
            return redirect(url_for(".index"))
    return render_template(
        "auth/user_form.html", form=form, user=user, password_form=PasswordForm(formdata=None)
    ), form_status(form)


@bp.post("/<int:user_id>/password")
def set_password(user_id: int):
    user = db.get_or_404(StaffUser, user_id)
    password_form = PasswordForm()
    password_form.about = (user.email, user.name)
    if password_form.validate_on_submit():
        with refusals_shown_on(password_form, on_field("password")):
            services.set_password(user, password_form.password.data, by=current_user)
            record("staff_password_set", kind="staff_user", object_id=user.id)
            flash(f"Set a new password for {user.name}.", "success")
            return redirect(url_for(".index"))
    form = StaffEditForm(obj=user, formdata=None)
    return render_template(
        "auth/user_form.html", form=form, user=user, password_form=password_form
    ), 400


def _changes(before: tuple[Role, bool, str], user: StaffUser) -> str:
    role, active, name = before
    said = []
    if role != user.role:
        said.append(f"role {role} to {user.role}")
    if active != user.active:
        said.append("reactivated" if user.active else "deactivated")
    if name != user.name:
        said.append("name changed")
    return "; ".join(said)


@bp.route("/security", methods=["GET", "POST"])
def security():
    """Sign-in rules for every staff account: whether two-factor sign-in is required."""
    form = TwoFactorPolicyForm(data={"require": two_factor.policy().require_two_factor})
    if form.validate_on_submit():
        with refusals_shown_on(form):
            two_factor.set_required(bool(form.require.data), by=current_user)
            flash("Saved the sign-in rules.", "success")
            return redirect(url_for(".security"))
    return render_template(
        "auth/security.html", form=form, users=services.staff_users()
    ), form_status(form)
