"""Admins manage staff accounts: list, add, change role or name, deactivate, set a password."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from chamber.auth import services
from chamber.auth.forms import PasswordForm, StaffCreateForm, StaffEditForm
from chamber.auth.guard import staff_blueprint
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
                form.email.data, form.name.data, form.role.data, form.password.data
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
            services.update_staff(
                user,
                name=form.name.data,
                role=form.role.data,
                active=form.active.data,
                by=current_user,
            )
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
            flash(f"Set a new password for {user.name}.", "success")
            return redirect(url_for(".index"))
    form = StaffEditForm(obj=user, formdata=None)
    return render_template(
        "auth/user_form.html", form=form, user=user, password_form=password_form
    ), 400
