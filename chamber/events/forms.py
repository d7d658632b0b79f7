"""Forms for events, agenda items and speakers. Times are typed in the event's own zone."""

from __future__ import annotations

from typing import Any

from flask import current_app
from wtforms import BooleanField, FieldList, SelectField
from wtforms.fields.choices import SelectChoice, enum_choices, enum_coerce
from wtforms.validators import InputRequired, Optional, ValidationError

from chamber.core.forms import (
    ChamberForm,
    LocalDateTimeField,
    WholeNumberField,
    email_field,
    text_field,
    to_utc,
)
from chamber.core.text import SLUG_PATTERN
from chamber.core.times import zone_names
from chamber.events.copying import EventCopy
from chamber.events.models import AgendaKind
from chamber.events.places import COUNTRIES, default_country, uk_postcode
from chamber.events.services import AgendaItemDetails, EventDetails, SpeakerDetails

MAX_SPEAKERS_PER_ITEM = 4


class EventForm(ChamberForm):
    title = text_field("Title", 200, required="Enter the event's title.")
    slug = text_field(
        "Web address",
        80,
        description="The last part of the event's address, e.g. cybercrime-seminar-2026. "
        "Leave blank to make one from the title.",
        render_kw={"spellcheck": "false", "autocapitalize": "none"},
    )
    summary = text_field(
        "Summary", 500, area=True, description="One or two sentences for listings."
    )
    description = text_field(
        "Description",
        20000,
        area=True,
        description="Markdown: **bold**, *italic*, lists, [links](https://…).",
    )
    venue_name = text_field("Venue", 200, required="Enter the venue's name.")
    venue_address = text_field(
        "Street address", 500, area=True, description="Building and street, a line each."
    )
    venue_town = text_field("Town or city", 120)
    venue_postcode = text_field(
        "Postcode", 20, render_kw={"autocapitalize": "characters", "spellcheck": "false"}
    )
    venue_country = SelectField("Country")
    timezone = SelectField("Time zone", description="Times below are in this zone.")
    starts_at = LocalDateTimeField(
        "Starts", validators=[InputRequired("Enter when the event starts.")]
    )
    ends_at = LocalDateTimeField("Ends", validators=[InputRequired("Enter when the event ends.")])
    move_agenda = BooleanField(
        "Move the agenda with the event: each talk keeps its time from the start",
        description="Untick to leave the agenda where it is.",
    )
    capacity = WholeNumberField(
        "Capacity",
        minimum=0,
        maximum=100_000,
        validators=[InputRequired("Enter how many delegates the venue can take.")],
        description="How many delegates can have a seat.",
    )
    business_limit = WholeNumberField(
        "Delegates per business",
        minimum=1,
        maximum=100,
        validators=[InputRequired("Enter how many delegates one business may book.")],
    )
    registration_opens_at = LocalDateTimeField(
        "Registration opens", validators=[Optional()], description="Leave blank to open at once."
    )
    registration_closes_at = LocalDateTimeField(
        "Registration closes",
        validators=[Optional()],
        description="Leave blank to close when the event starts.",
    )
    parking = text_field(
        "Parking",
        2000,
        area=True,
        description="Where to park, what it costs, the nearest station. Markdown.",
    )
    access = text_field(
        "Access",
        2000,
        area=True,
        description="Step-free access, lifts, accessible toilets, a hearing loop. Markdown.",
    )
    what_to_bring = text_field(
        "What to bring",
        2000,
        area=True,
        description="For example photo ID, a laptop, business cards. Markdown.",
    )
    host = text_field("Host", 200)
    supporters = text_field("Supporters", 1000, area=True, description="One per line.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = zone_names()
        if not self.timezone.data:
            self.timezone.data = current_app.config["TIMEZONE"]
        self.venue_country.choices = list(COUNTRIES.items())
        if not self.venue_country.data:
            self.venue_country.data = default_country()
        self.utc: dict[str, Any] = {}

    def validate_slug(self, field):
        if field.data and not SLUG_PATTERN.match(field.data):
            raise ValidationError(
                "Web address can only use lower-case letters, numbers and single hyphens, like cyber-2026."
            )

    def validate_venue_postcode(self, field):
        if field.data and self.venue_country.data == "GB":
            printed = uk_postcode(field.data)
            if printed is None:
                raise ValidationError("Enter a UK postcode in the right format, like SG1 1HS.")
            field.data = printed

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.timezone.errors:
            return False  # times cannot be read in a zone that is not one of the choices
        zone_name = self.timezone.data
        for name in ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at"):
            field = self[name]
            try:
                self.utc[name] = to_utc(field, zone_name) if not field.errors else None
            except ValidationError as error:
                field.errors = [*field.errors, str(error)]
                valid = False
        starts, ends = self.utc.get("starts_at"), self.utc.get("ends_at")
        if starts and ends and ends <= starts:
            self.ends_at.errors = [*self.ends_at.errors, "The event must end after it starts."]
            valid = False
        opens, closes = (
            self.utc.get("registration_opens_at"),
            self.utc.get("registration_closes_at"),
        )
        if opens and closes and closes <= opens:
            self.registration_closes_at.errors.append("Registration must close after it opens.")
            valid = False
        if ends and closes and closes > ends:
            self.registration_closes_at.errors.append(
                "Registration must close before the event ends."
            )
            valid = False
        return valid

    def details(self) -> EventDetails:
        """What was entered, for `services.save_event` (call after `validate`)."""
        values = {
            name: self[name].data or ""
            for name in ("title", "slug", "summary", "description", "venue_name", "venue_address",
                         "venue_town", "venue_postcode", "venue_country", "host", "supporters",
                         "timezone", "parking", "access", "what_to_bring")
        }  # fmt: skip
        return EventDetails(
            **values,
            starts_at=self.utc["starts_at"],
            ends_at=self.utc["ends_at"],
            registration_opens_at=self.utc.get("registration_opens_at"),
            registration_closes_at=self.utc.get("registration_closes_at"),
            capacity=self.capacity.data,
            business_limit=self.business_limit.data,
        )


class AgendaItemForm(ChamberForm):
    title = text_field("Title", 200, required="Enter the item's title.")
    kind = SelectField(
        "Kind",
        choices=enum_choices(AgendaKind, label=lambda kind: kind.label),
        coerce=enum_coerce(AgendaKind),
        default=AgendaKind.talk,
    )
    starts_at = LocalDateTimeField(
        "Starts", validators=[InputRequired("Enter when the item starts.")]
    )
    ends_at = LocalDateTimeField("Ends", validators=[InputRequired("Enter when the item ends.")])
    description = text_field("Description", 5000, area=True, description="Markdown.")
    speakers = FieldList(
        SelectField("Speaker", coerce=int),
        min_entries=MAX_SPEAKERS_PER_ITEM,
        max_entries=MAX_SPEAKERS_PER_ITEM,
    )

    def __init__(self, *args, speaker_choices: list[SelectChoice], zone_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        for entry in self.speakers:
            entry.choices = [SelectChoice(0, "No speaker"), *speaker_choices]
        self.zone_name = zone_name
        self.utc: dict[str, Any] = {}

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for name in ("starts_at", "ends_at"):
            try:
                self.utc[name] = (
                    to_utc(self[name], self.zone_name) if not self[name].errors else None
                )
            except ValidationError as error:
                self[name].errors = [*self[name].errors, str(error)]
                valid = False
        starts, ends = self.utc.get("starts_at"), self.utc.get("ends_at")
        if starts and ends and ends <= starts:
            self.ends_at.errors = [*self.ends_at.errors, "The item must end after it starts."]
            valid = False
        return valid

    def details(self) -> AgendaItemDetails:
        """What was entered, for `services.save_agenda_item` (call after `validate`)."""
        return AgendaItemDetails(
            title=self.title.data,
            kind=self.kind.data,
            description=self.description.data or "",
            starts_at=self.utc["starts_at"],
            ends_at=self.utc["ends_at"],
        )

    @property
    def speaker_ids(self) -> list[int]:
        return [entry.data for entry in self.speakers if entry.data]


class SpeakerForm(ChamberForm):
    name = text_field("Name", 120, required="Enter the speaker's name.")
    job_title = text_field("Job title", 200)
    organisation = text_field("Organisation", 200)
    bio = text_field("Biography", 5000, area=True, description="Markdown. Shown on event pages.")
    email = email_field(
        "Email address (private)",
        description="For staff only; never shown on the site.",
    )

    def details(self) -> SpeakerDetails:
        """What was entered, for `services.save_speaker`."""
        return SpeakerDetails(
            name=self.name.data or "",
            job_title=self.job_title.data or "",
            organisation=self.organisation.data or "",
            bio=self.bio.data or "",
            email=(self.email.data or "").lower() or None,
        )


class CopyEventForm(ChamberForm):
    """A copy's title and start, typed in the source event's zone; the rest follows the source."""

    title = text_field("Title of the copy", 200, required="Enter the copy's title.")
    starts_at = LocalDateTimeField(
        "Starts",
        validators=[InputRequired("Enter when the copy starts.")],
        description="The end, the agenda and the registration window keep their times from the "
        "start.",
    )

    def __init__(self, *args, zone_name: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone_name = zone_name or current_app.config["TIMEZONE"]
        self.utc_start: Any = None

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not self.starts_at.errors:
            try:
                self.utc_start = to_utc(self.starts_at, self.zone_name)
            except ValidationError as error:
                self.starts_at.errors = [*self.starts_at.errors, str(error)]
                valid = False
        return valid

    def details(self) -> EventCopy:
        """What was entered, for `copying.copy_event` (call after `validate`)."""
        return EventCopy(title=self.title.data or "", starts_at=self.utc_start)
