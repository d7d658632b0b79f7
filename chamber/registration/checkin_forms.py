"""The door's walk-in form: someone who did not book, added and checked in in one step."""

from __future__ import annotations

from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from chamber.core.forms import ChamberForm, email_field, text_field
from chamber.members.models import SizeBand


class WalkInForm(ChamberForm):
    name = text_field(
        "Full name", 120, required="Enter their full name.", render_kw={"autocomplete": "off"}
    )
    email = email_field(
        "Email address",
        required="Enter their email address: it is how they get the resources and the survey.",
        description="For the resources and the follow-up survey, as for everyone booked.",
        render_kw={"autocomplete": "off", "autocapitalize": "off"},
    )  # fmt: skip
    business = text_field(
        "Business",
        200,
        required="Enter their business's name (or “Self-employed”).",
        description="As it should read on their badge.",
        render_kw={"autocomplete": "off"},
    )
    size_band = SelectField(
        "How many people does the business employ?",
        choices=[SelectChoice("", "Choose (a new business only)"),
                 *(SelectChoice(band.value, band.label) for band in SizeBand)],
        description="Needed only for a business new to the Chamber.",
        validate_choice=True,
    )  # fmt: skip
