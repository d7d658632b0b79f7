"""Forms for logging in and for managing staff accounts."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.fields.choices import SelectChoice, enum_choices, enum_coerce
from wtforms.validators import (
    DataRequired,
    EqualTo,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from chamber.auth.audit import ACTIONS
from chamber.auth.models import Role
from chamber.auth.services import MIN_PASSWORD_LENGTH, password_problem
from chamber.core.forms import ChamberForm, email_field

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
    email = email_field(
        "Email address",
        required="Enter an email address.",
        render_kw={"autocomplete": "off"},
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


# --- password reset, two-factor sign-in, sessions -------------------------------------------------


class ForgotPasswordForm(ChamberForm):
    email = email_field(
        "Email address",
        required="Enter your email address.",
        description="The address you sign in with. We will email it a link to set a new password.",
        render_kw={"autocomplete": "username"},
    )


class CodeForm(ChamberForm):
    """The second step of signing in: the app's code, or one of the recovery codes."""

    code = StringField(
        "Code",
        validators=[
            DataRequired("Enter the code from your authenticator app."),
            Length(max=20, message="Code must be 20 characters or fewer."),
        ],
        description=(
            "The 6-digit code your authenticator app shows now. Lost your phone? Type one of "
            "your recovery codes instead."
        ),
        render_kw={
            "autocomplete": "one-time-code",
            "inputmode": "text",
            "spellcheck": "false",
            "autocapitalize": "off",
        },
    )


class EnrolForm(ChamberForm):
    code = StringField(
        "Code from your app",
        validators=[
            DataRequired("Enter the 6-digit code your authenticator app shows."),
            Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message="Enter the 6 digits your app shows."),
        ],
        description="After adding the account to your app, type the 6 digits it shows.",
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"},
    )


class DisableTwoFactorForm(ChamberForm):
    password = PasswordField(
        "Your password",
        validators=[
            DataRequired("Enter your password."),
            Length(max=200, message="Password must be 200 characters or fewer."),
        ],
        render_kw={"autocomplete": "current-password"},
    )


class EndSessionForm(ChamberForm):
    session = HiddenField(
        "Session",
        validators=[
            DataRequired("Choose a session."),
            Regexp(r"^\d{1,9}$", message="No such session."),
        ],
    )


class TwoFactorPolicyForm(ChamberForm):
    require = BooleanField("Require two-factor sign-in for every staff account")


ACTION_CHOICES = [SelectChoice("", "Any action")] + [
    SelectChoice(name, label) for name, label in sorted(ACTIONS.items(), key=lambda item: item[1])
]


class AuditFilterForm(ChamberForm):
    """The audit page's filters: sent by GET, so no CSRF token (they change nothing)."""

    class Meta:
        csrf = False

    who = StringField(
        "Staff email",
        validators=[
            Optional(),
            Length(max=254, message="Staff email must be 254 characters or fewer."),
        ],
        description="The start of the address, or all of it.",
        render_kw={"spellcheck": "false"},
    )
    action = SelectField("Action", choices=ACTION_CHOICES, validators=[Optional()])
    kind = StringField(
        "Object kind",
        validators=[
            Optional(),
            Length(max=40, message="Object kind must be 40 characters or fewer."),
        ],
        description="For example event, delegate, staff_user.",
        render_kw={"spellcheck": "false"},
    )
    object_id = StringField(
        "Object id",
        validators=[
            Optional(),
            Length(max=64, message="Object id must be 64 characters or fewer."),
        ],
        render_kw={"spellcheck": "false"},
    )
    since = DateField("From", validators=[Optional()], format="%Y-%m-%d")
    until = DateField("To", validators=[Optional()], format="%Y-%m-%d")

    def validate_until(self, field) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("To must be the same day as From or later.")
