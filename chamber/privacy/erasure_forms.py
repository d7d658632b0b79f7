"""Forms for erasing a person: the address (typed here, or posted from a person's data page),
then the confirmation that carries it on. The address travels in the form, never in the URL."""

from __future__ import annotations

from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from chamber.core.forms import ChamberForm
from chamber.privacy.erasure import MAX_ADDRESS

ADDRESS_TOO_LONG = f"Email address must be {MAX_ADDRESS} characters or fewer."


class ErasureForm(ChamberForm):
    email = StringField(
        "Email address of the person to erase",
        validators=[
            DataRequired("Enter the email address of the person to erase."),
            Length(max=MAX_ADDRESS, message=ADDRESS_TOO_LONG),
        ],
        description="You will see what erasing them would do before anything changes.",
        render_kw={"autocomplete": "off", "spellcheck": "false", "inputmode": "email"},
    )


class ConfirmErasureForm(ChamberForm):
    email = HiddenField(
        "Email address",
        validators=[
            DataRequired("The address to erase is missing: start again."),
            Length(max=MAX_ADDRESS, message=ADDRESS_TOO_LONG),
        ],
    )
