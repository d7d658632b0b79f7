"""The door's walk-in form: someone who did not book, added and checked in in one step."""

from __future__ import annotations

from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from chamber.core.forms import (
    ChamberForm,
    email_field,
    no_link_in_business,
    person_name_field,
    text_field,
)
from chamber.members.models import SizeBand


class WalkInForm(ChamberForm):
    # The name is the greeting of the emails the chamber sends them: no link in it, as on the
    # public form (`person_name_field`).
    name = person_name_field(
        "Full name", required="Enter their full name.", render_kw={"autocomplete": "off"}
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
        validators=[no_link_in_business],
        render_kw={"autocomplete": "off"},
    )
    size_band = SelectField(
        "How many people does the business employ?",
        choices=[SelectChoice("", "Choose (a new business only)"),
                 *(SelectChoice(band.value, band.label) for band in SizeBand)],
        description="Needed only for a business new to the Chamber.",
        validate_choice=True,
    )  # fmt: skip
