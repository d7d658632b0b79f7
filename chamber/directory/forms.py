"""Forms for the directory's staff pages: an organisation, a contact, and the merge's choice."""

from __future__ import annotations

import enum
import re
from datetime import date
from typing import Any

from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectField,
    SelectMultipleField,
)
from wtforms.fields.choices import SelectChoice, enum_choices, enum_coerce
from wtforms.validators import DataRequired, InputRequired, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from chamber.core.forms import ChamberForm, email_field, text_field
from chamber.members.directory import (
    CONSENT_WORDING_MAX,
    TAG_MAX,
    TAGS_MAX,
    ContactInput,
    OrganisationInput,
)
from chamber.members.models import ContactRole, LegalForm, MarketingTopic, SizeBand

EARLIEST, LATEST = date(1900, 1, 1), date(2100, 12, 31)
RECORD_ID = re.compile(r"[0-9]{1,12}")  # ASCII digits only: int() also takes "٣" and "²" fails


class DayField(DateField):
    """A date (an HTML date input), with a clear message and a sensible range."""

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(label, format="%Y-%m-%d", **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            super().process_formdata([valuelist[0].strip()])
        except ValueError as error:
            raise ValueError(f"{self.label.text} must be a real date, like 2026-12-03.") from error

    def pre_validate(self, form: Any) -> None:
        if self.data is not None and not EARLIEST <= self.data <= LATEST:
            raise ValidationError(
                f"{self.label.text} must be between {EARLIEST.year} and {LATEST.year}."
            )


class ChoiceField(SelectField):
    """A list of choices whose value, if not one of them (a forged form), is told plainly."""

    def __init__(self, label: str, enum_class: type[enum.Enum], *, missing: str, **kwargs: Any):
        super().__init__(
            label,
            choices=enum_choices(enum_class, label=lambda member: member.label),
            coerce=enum_coerce(enum_class),
            **kwargs,
        )
        self.missing = missing

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as error:
            raise ValueError(self.missing) from error

    def pre_validate(self, form: Any) -> None:
        try:
            super().pre_validate(form)
        except ValidationError as error:
            raise ValidationError(self.missing) from error


class OrganisationForm(ChamberForm):
    name = text_field(
        "Name",
        200,
        required="Enter the organisation's name.",
        description="As the business calls itself, e.g. Octree Ltd.",
        render_kw={"autocomplete": "off"},
    )
    legal_form = ChoiceField(
        "Legal form",
        LegalForm,
        missing="Choose the legal form from the list.",
        default=LegalForm.unknown,
        description="Decides whether marketing to its people needs their consent.",
    )
    size_band = ChoiceField(
        "Size", SizeBand, missing="Choose the size from the list.", default=SizeBand.micro
    )
    sector = text_field("Sector", 100, description="For example: manufacturing, retail, legal.")
    town_or_postcode = text_field("Town", 100)
    postcode = text_field(
        "Postcode", 12, render_kw={"autocapitalize": "characters", "spellcheck": "false"}
    )
    website = text_field(
        "Website", 300, description="For example: www.example.co.uk.",
        render_kw={"spellcheck": "false", "autocapitalize": "none", "inputmode": "url"},
    )  # fmt: skip
    tags = text_field(
        "Tags",
        TAGS_MAX * (TAG_MAX + 2),
        description=f"Separated by commas, e.g. board, sponsor 2027. Up to {TAGS_MAX} tags of "
        f"{TAG_MAX} characters.",
        render_kw={"spellcheck": "false", "autocapitalize": "none"},
    )
    notes = text_field("Notes", 10000, area=True, description="Only staff see these.")
    is_member = BooleanField("Member of the chamber")
    membership_tier = text_field("Membership tier", 60, description="For example: Patron.")
    member_since = DayField("Member since", description="For example: 2024-04-01.")
    renews_on = DayField("Renews on")
    lapsed_on = DayField("Lapsed on", description="Only for a former member.")

    def details(self) -> OrganisationInput:
        return OrganisationInput(
            name=self.name.data or "",
            size_band=self.size_band.data,
            legal_form=self.legal_form.data,
            sector=self.sector.data or "",
            town_or_postcode=self.town_or_postcode.data or "",
            postcode=self.postcode.data or "",
            website=self.website.data or "",
            tags=self.tags.data or "",
            notes=self.notes.data or "",
            is_member=bool(self.is_member.data),
            membership_tier=self.membership_tier.data or "",
            member_since=self.member_since.data,
            renews_on=self.renews_on.data,
            lapsed_on=self.lapsed_on.data,
        )


class ContactForm(ChamberForm):
    name = text_field(
        "Full name", 120, required="Enter the person's full name.",
        render_kw={"autocomplete": "off"},
    )  # fmt: skip
    email = email_field(
        "Email address",
        required="Enter the person's email address.",
        render_kw={"autocomplete": "off"},
    )
    job_title = text_field("Job title", 200)
    phone = text_field("Phone", 40, render_kw={"inputmode": "tel", "autocomplete": "off"})
    organisation = text_field(
        "Organisation",
        200,
        description="Its name as in the directory. Leave empty for none.",
        render_kw={"autocomplete": "off"},
    )
    role = ChoiceField(
        "Role at the organisation",
        ContactRole,
        missing="Choose the role from the list.",
        default=ContactRole.other,
    )

    def details(self) -> ContactInput:
        return ContactInput(
            name=self.name.data or "",
            email=self.email.data or "",
            job_title=self.job_title.data or "",
            phone=self.phone.data or "",
            role=self.role.data,
            organisation=self.organisation.data or "",
        )


class MergeForm(ChamberForm):
    """The confirmation of a merge: which record goes into the one whose page it is."""

    removed = HiddenField(validators=[InputRequired("Choose the record to merge in.")])

    def validate_removed(self, field: HiddenField) -> None:
        if not RECORD_ID.fullmatch(field.data or ""):
            raise ValidationError("Choose the record to merge in.")

    @property
    def removed_id(self) -> int:
        return int(self.removed.data)


class LiftBounceForm(ChamberForm):
    """The confirmation that a bounced address takes mail again."""

    confirm = BooleanField(
        "The person has told us their mailbox works again (or gave this address again)",
        validators=[DataRequired("Tick the box to confirm that the mailbox works again.")],
    )


class TopicList(SelectMultipleField):
    """Tick boxes for marketing topics; a value that is not a topic (a forged form) is refused."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, label: str, *, required: bool = True, **kwargs: Any) -> None:
        super().__init__(
            label,
            choices=[SelectChoice(topic.value, topic.label) for topic in MarketingTopic],
            validators=[InputRequired("Choose at least one topic.")] if required else [],
            **kwargs,
        )

    def pre_validate(self, form: Any) -> None:
        if any(value not in MarketingTopic.__members__ for value in self.data or []):
            raise ValidationError("Choose topics from the list.")

    @property
    def topics(self) -> list[MarketingTopic]:
        return [MarketingTopic(value) for value in self.data or []]


class ConsentNoteForm(ChamberForm):
    """Staff record the consent a person gave them, as a note (source "staff note")."""

    topics = TopicList("Topics they agreed to hear about")
    wording = text_field(
        "What they agreed to",
        CONSENT_WORDING_MAX,
        required="Enter what the person agreed to, in the words they were given.",
        area=True,
        description="The words the person was given and said yes to, and how: “Asked on the "
        "phone on 3 Dec: may we email you about our seminars? They said yes.”",
        render_kw={"rows": 3},
    )


class WithdrawConsentForm(ChamberForm):
    """Staff record that the person withdrew their consent to some topics."""

    topics = TopicList("Topics they withdrew consent for")
