"""The public booking form: the business, the person booking, and one or more delegates."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    HiddenField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice, enum_choices, enum_coerce
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from chamber.core.forms import (
    ChamberForm,
    ChamberSubform,
    email_field,
    no_link_in_business,
    person_name_field,
    text_field,
)
from chamber.members.models import SizeBand
from chamber.registration.services import BusinessDetails, DelegateDetails, DelegateEdit

# The opt-out the soft opt-in needs, offered when the booker's details are collected (PECR
# regulation 22(3)(c)): not ticked, we may email the booker news of our events and newsletter
# (docs/marketing.md).
OPT_OUT_WORDING = "Don't send me news of future events"
OPT_OUT_HINT = (
    "Unless you tick this, we may email you about our future events and our newsletter. "
    "Every email has a link to unsubscribe."
)
MAX_SLOTS = 10  # delegate rows shown at once, however high the per-business limit


class DelegateForm(ChamberSubform):
    name = person_name_field("Full name", render_kw={"autocomplete": "off"})
    email = email_field(
        "Email address",
        render_kw={"autocomplete": "off"},
    )
    job_title = text_field("Job title (optional)", 200)
    phone = text_field("Phone (optional)", 40, render_kw={"type": "tel", "autocomplete": "off"})
    needs = TextAreaField(
        "Access or dietary needs (optional)",
        validators=[
            Optional(),
            Length(max=1000, message="Access or dietary needs must be 1000 characters or fewer."),
        ],
        render_kw={"maxlength": 1000, "rows": 2},
    )

    @property
    def is_blank(self) -> bool:
        return not any(
            (self.name.data, self.email.data, self.job_title.data, self.phone.data, self.needs.data)
        )


class RegistrationForm(ChamberForm):
    business_name = text_field(
        "Business name",
        200,
        required="Enter your business's name.",
        render_kw={"autocomplete": "organization"},
        validators=[no_link_in_business],
    )
    size_band = RadioField(
        "How many people does your business employ?",
        choices=enum_choices(SizeBand, label=lambda band: band.label),
        coerce=enum_coerce(SizeBand),
        validators=[InputRequired("Choose how many people your business employs.")],
    )
    sector = text_field(
        "Sector (optional)", 100, description="For example: manufacturing, retail, legal, charity."
    )
    town_or_postcode = text_field(
        "Town or postcode", 100, required="Enter the business's town or postcode."
    )
    is_member = RadioField(
        "Is your business a member of the Chamber?",
        choices=[SelectChoice("yes", "Yes"), SelectChoice("no", "No")],
        validators=[InputRequired("Say whether your business is a member of the Chamber.")],
    )
    booker_name = person_name_field(
        "Your full name", required="Enter your name.", render_kw={"autocomplete": "name"}
    )
    booker_email = email_field(
        "Your email address",
        required="Enter your email address.",
        description="We send the link to change or cancel this booking here.",
        render_kw={"autocomplete": "email"},
    )
    delegates = FieldList(FormField(DelegateForm), min_entries=1, max_entries=MAX_SLOTS)
    privacy = BooleanField(
        "I have read the privacy notice and agree to my details and my delegates' details being used "
        "to run this event.",
        validators=[DataRequired("Tick the box to say you have read the privacy notice.")],
    )
    no_marketing = BooleanField(OPT_OUT_WORDING, description=OPT_OUT_HINT)
    # The campaign whose email linked here (`?campaign=<id>`): a number or nothing, never an error.
    campaign = HiddenField(
        filters=[
            lambda value: int(value) if str(value).isdigit() and len(str(value)) < 10 else None
        ]
    )
    # A field people never see; bots fill every field they find.
    website = StringField(
        "Leave this field empty", render_kw={"autocomplete": "off", "tabindex": "-1"}
    )

    def __init__(self, *args, slots: int, **kwargs):
        super().__init__(*args, **kwargs)
        while len(self.delegates) < slots:
            self.delegates.append_entry()
        self.slots = slots

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        entries = [entry.form for entry in self.delegates]
        if len(entries) > self.slots:
            self.form_errors.append(f"You can book up to {self.slots} delegates here.")
            return False
        if all(form.is_blank for form in entries):
            first = entries[0]
            first.name.errors = [*first.name.errors, "Enter the first delegate's full name."]
            first.email.errors = [*first.email.errors, "Enter the first delegate's email address."]
            return False
        for number, form in enumerate(entries, start=1):
            if form.is_blank:
                continue
            if not form.name.data:
                form.name.errors = [*form.name.errors, f"Enter delegate {number}'s full name."]
                valid = False
            if not form.email.data:
                form.email.errors = [
                    *form.email.errors,
                    f"Enter delegate {number}'s email address.",
                ]
                valid = False
        return valid

    def validate_website(self, field):
        if field.data:
            raise ValidationError("Leave this field empty.")

    def business(self) -> BusinessDetails:
        return BusinessDetails(
            name=self.business_name.data,
            size_band=self.size_band.data,
            sector=self.sector.data or "",
            town_or_postcode=self.town_or_postcode.data or "",
            is_member=self.is_member.data == "yes",
        )

    def booker(self) -> DelegateDetails:
        return DelegateDetails(name=self.booker_name.data, email=self.booker_email.data)

    def delegate_details(self) -> list[DelegateDetails]:
        return [
            DelegateDetails(
                name=f.name.data,
                email=f.email.data,
                job_title=f.job_title.data or "",
                phone=f.phone.data or "",
                needs=f.needs.data or "",
            )
            for f in (entry.form for entry in self.delegates)
            if not f.is_blank
        ]


class DelegateEditForm(ChamberForm):
    """A delegate's details on the manage page; the email (the person) does not change here."""

    name = person_name_field("Full name", required="Enter the delegate's full name.")
    job_title = text_field("Job title (optional)", 200)
    phone = text_field("Phone (optional)", 40, render_kw={"type": "tel"})
    needs = TextAreaField(
        "Access or dietary needs (optional)",
        validators=[
            Optional(),
            Length(max=1000, message="Access or dietary needs must be 1000 characters or fewer."),
        ],
        render_kw={"maxlength": 1000, "rows": 3},
    )

    def edit(self) -> DelegateEdit:
        return DelegateEdit(
            name=self.name.data,
            job_title=self.job_title.data or "",
            phone=self.phone.data or "",
            needs=self.needs.data or "",
        )


class AddDelegateForm(DelegateEditForm):
    email = email_field(
        "Email address",
        required="Enter the delegate's email address.",
    )

    def details(self) -> DelegateDetails:
        return DelegateDetails(
            name=self.name.data,
            email=self.email.data,
            job_title=self.job_title.data or "",
            phone=self.phone.data or "",
            needs=self.needs.data or "",
        )
