"""Forms for an event's reminder settings and for messages to its delegates."""

from __future__ import annotations

import re
from datetime import time

from wtforms import BooleanField, RadioField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, ValidationError

from chamber.core.forms import ChamberForm, WholeNumberField, text_field
from chamber.registration.event_messages import MessageDraft
from chamber.registration.models import MessageAudience
from chamber.registration.reminders import MAX_DAYS_BEFORE

_CLOCK = re.compile(r"([01]?[0-9]|2[0-3])[:.]([0-5][0-9])")


class ReminderForm(ChamberForm):
    enabled = BooleanField("Send a reminder to every confirmed delegate before the event")
    days_before = WholeNumberField(
        "Days before the event",
        minimum=0,
        maximum=MAX_DAYS_BEFORE,
        validators=[InputRequired("Enter how many days before the event the reminder goes.")],
        description="0 sends it on the day of the event.",
    )
    at = text_field(
        "Time of day",
        5,
        required="Enter the time of day the reminder goes, like 09:00.",
        description="On the 24-hour clock, in the event's time zone, like 09:00.",
        render_kw={"inputmode": "numeric", "spellcheck": "false", "autocomplete": "off"},
    )

    def validate_at(self, field) -> None:
        if field.data and not _CLOCK.fullmatch(field.data):
            raise ValidationError("Enter the time on the 24-hour clock, like 09:00 or 17:30.")

    @property
    def clock(self) -> time:
        """The time entered (call after `validate`)."""
        match = _CLOCK.fullmatch(self.at.data)
        assert match is not None
        return time(int(match[1]), int(match[2]))


class MessageForm(ChamberForm):
    audience = RadioField(
        "Who gets it",
        choices=[SelectChoice(audience.value, audience.label) for audience in MessageAudience],
        validators=[InputRequired("Choose who gets the message.")],
    )
    subject = text_field("Subject", 150, required="Enter the subject.")
    body = text_field(
        "Message",
        10000,
        area=True,
        required="Write the message.",
        description="Markdown: **bold**, *italic*, lists, [links](https://…). Each delegate's copy "
        "starts “Dear <their name>” and ends with the event's details and their own private link.",
    )

    def set_counts(self, counts: dict[MessageAudience, int]) -> None:
        """Say in each choice how many it reaches now."""
        self.audience.choices = [
            SelectChoice(a.value, f"{a.label} ({counts[a]})") for a in MessageAudience
        ]

    def draft(self) -> MessageDraft:
        return MessageDraft(
            audience=MessageAudience(self.audience.data),
            subject=self.subject.data or "",
            body=self.body.data or "",
        )
