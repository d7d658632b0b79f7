"""The campaign's forms: compose (text, blocks, audience) and schedule (a local date and time)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from wtforms import RadioField, SelectField, SelectMultipleField, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import CheckboxInput, ListWidget

from chamber.campaigns import services
from chamber.core.forms import ChamberForm, LocalDateTimeField, text_field, to_utc
from chamber.core.times import zone_names
from chamber.members.models import MarketingTopic


def _optional_id(value: Any) -> int | None:
    if value in (None, "", "None"):
        return None
    text = str(value)
    if not text.isdigit() or len(text) > 9:
        raise ValueError("Choose from the list.")
    return int(text)


def _id(value: Any) -> int:
    text = str(value)
    if not text.isdigit() or len(text) > 9:
        raise ValueError("Choose from the list.")
    return int(text)


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CampaignForm(ChamberForm):
    subject = text_field(
        "Subject", services.SUBJECT_MAX, required="Enter a subject.",
        description="What the inbox shows. Say what it is about: “Cyber crime seminar, 9 March: book your places”.",
    )  # fmt: skip
    preview_text = text_field(
        "Preview text", services.PREVIEW_MAX,
        description="Shown after the subject in most inboxes. Optional.",
    )  # fmt: skip
    body = text_field(
        "Message", services.BODY_MAX, area=True,
        description="Markdown: **bold**, *italic*, [a link](https://example.com), lists with “- ”. "
        "The greeting (“Dear …”) and the blocks below are added for you.",
        render_kw={"rows": 12},
    )  # fmt: skip
    event_id = SelectField(
        "Event card", coerce=_optional_id,
        description="An event to invite people to: its date, venue, places left, “Book places” and “Add to calendar”.",
    )  # fmt: skip
    resource_ids = CheckboxList(
        "Resources from the library", coerce=_id,
        description="Listed under the message, linked to their page in the library.",
    )  # fmt: skip
    survey_url = text_field(
        "Survey link", services.SURVEY_URL_MAX,
        description="A web address starting https://, shown as “Answer our short survey”. Optional.",
    )  # fmt: skip
    segment_id = SelectField(
        "Who it goes to", coerce=_optional_id,
        description="A saved segment, worked out afresh when the campaign is sent.",
    )  # fmt: skip
    topic = RadioField(
        "What it is about",
        choices=[SelectChoice(topic.value, topic.label) for topic in MarketingTopic],
        default=MarketingTopic.events.value,
        description="Who may receive it depends on the topic (consent, corporate subscriber, soft opt-in).",
    )

    def __init__(
        self,
        *args: Any,
        events: list[tuple[int, str]],
        resources: list[tuple[int, str]],
        segments: list[tuple[int, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.event_id.choices = [SelectChoice("", "No event")] + [
            SelectChoice(value, label) for value, label in events
        ]
        self.resource_ids.choices = [SelectChoice(value, label) for value, label in resources]
        self.segment_id.choices = [SelectChoice("", "Choose later")] + [
            SelectChoice(value, label) for value, label in segments
        ]

    def details(self) -> services.CampaignDetails:
        return services.CampaignDetails(
            subject=self.subject.data or "",
            preview_text=self.preview_text.data or "",
            body=self.body.data or "",
            event_id=self.event_id.data,
            resource_ids=tuple(self.resource_ids.data or ()),
            survey_url=self.survey_url.data or "",
            segment_id=self.segment_id.data,
            topic=MarketingTopic(self.topic.data),
        )


class ScheduleForm(ChamberForm):
    send_at = LocalDateTimeField(
        "Send at", description="A date and time in the zone below, e.g. 2027-02-01 09:00."
    )
    zone = SelectField("Time zone")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone.choices = zone_names()
        if not self.zone.data:
            self.zone.data = current_app.config["TIMEZONE"]

    def validate_send_at(self, field: LocalDateTimeField) -> None:
        if field.data is None:
            raise ValidationError("Enter the date and time to send it.")

    def when(self) -> Any:
        """The time typed, in UTC (a time the clocks skip is an error on the field)."""
        try:
            return to_utc(self.send_at, self.zone.data)
        except ValidationError as error:
            self.send_at.errors = [*self.send_at.errors, str(error)]
            return None
