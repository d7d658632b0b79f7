"""Forms for logging in and for managing staff accounts."""

from __future__ import annotations

from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import enum_choices, enum_coerce
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from chamber.auth.models import Role
from chamber.auth.services import MIN_PASSWORD_LENGTH, password_problem
from chamber.core.forms import ChamberForm

ROLE_CHOICES = enum_choices(Role, label=lambda role: role.label)
NAME_TOO_LONG = "Full name must be 120 characters or fewer."


class LoginForm(ChamberForm):
    email = EmailField(
        "Email address",
        validators=[
            DataRequired("Enter your email address."),
            Length(max=254, message="Email address must be 254 characters or fewer."),
        ],
        render_kw={"autocomplete": "username", "spellcheck": "false"},
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired("Enter your password."),
            Length(max=200, message="Password must be 200 characters or fewer."),
        ],
        render_kw={"autocomplete": "current-password"},
    )


def _password_field(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[
            DataRequired("Enter a password."),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=200,
                message=f"Password must be between {MIN_PASSWORD_LENGTH} and 200 characters.",
            ),
        ],
        description=(
            f"At least {MIN_PASSWORD_LENGTH} characters, and not a common password. "
            "A few unrelated words work well."
        ),
        render_kw={"autocomplete": "new-password"},
    )


def _refuse_a_guessable_password(field, about: tuple[str, ...]) -> None:
    if field.errors or not field.data:  # the length is already wrong, or nothing was typed
        return
    problem = password_problem(field.data, about=about)
    if problem:
        raise ValidationError(problem)


class StaffCreateForm(ChamberForm):
    name = StringField(
        "Full name",
        validators=[
            DataRequired("Enter the person's name."),
            Length(max=120, message=NAME_TOO_LONG),
        ],
        render_kw={"autocomplete": "off"},
    )
    email = EmailField(
        "Email address",
        validators=[
            DataRequired("Enter an email address."),
            Length(max=254, message="Email address must be 254 characters or fewer."),
            Email("Enter an email address in the right format, like name@example.com."),
        ],
        render_kw={"spellcheck": "false", "autocomplete": "off"},
    )
    role = SelectField(
        "Role", choices=ROLE_CHOICES, coerce=enum_coerce(Role), default=Role.organiser
    )
    password = _password_field("Password")

    def validate_password(self, field) -> None:
        _refuse_a_guessable_password(field, (self.email.data or "", self.name.data or ""))


class StaffEditForm(ChamberForm):
    name = StringField(
        "Full name",
        validators=[
            DataRequired("Enter the person's name."),
            Length(max=120, message=NAME_TOO_LONG),
        ],
    )
    role = SelectField("Role", choices=ROLE_CHOICES, coerce=enum_coerce(Role))
    active = BooleanField("Account is active (can log in)")


class PasswordForm(ChamberForm):
    password = _password_field("New password")
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Confirm the password."),
            EqualTo("password", "The passwords do not match."),
        ],
        render_kw={"autocomplete": "new-password"},
    )

    # What the password could be guessed from: the account's email and name, set by the view.
    about: tuple[str, ...] = ()

    def validate_password(self, field) -> None:
        _refuse_a_guessable_password(field, self.about)
