"""The public subscribe form and the preferences page's form."""

from __future__ import annotations

from typing import Any

from wtforms import SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import StopValidation, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from chamber.core.forms import ChamberForm, email_field, person_name_field, text_field
from chamber.members.models import MarketingTopic
from chamber.members.subscriptions import ASKED, PREFERENCES_ASKED, SubscribeDetails

TOPIC_VALUES = frozenset(topic.value for topic in MarketingTopic)
TOPIC_CHOICES = [SelectChoice(topic.value, topic.label) for topic in MarketingTopic]


class TopicsField(SelectMultipleField):
    """Marketing topics as tick boxes (GOV.UK checkboxes)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, label: str, **kwargs):
        super().__init__(label, choices=TOPIC_CHOICES, **kwargs)

    def pre_validate(self, form) -> None:
        # WTForms' own message repeats the value sent; only our values can be chosen.
        if any(value not in TOPIC_VALUES for value in self.data or []):
            raise ValidationError("Choose from the topics listed.")

    @property
    def topics(self) -> list[MarketingTopic]:
        return [topic for topic in MarketingTopic if topic.value in (self.data or [])]


def at_least_one_topic(_form: Any, field: TopicsField) -> None:
    """One box at least: not `DataRequired`, whose flag marks every box `required`, so that a
    screen reader says each of them must be ticked."""
    if not field.data:
        raise StopValidation("Choose at least one thing to hear about.")


class SubscribeForm(ChamberForm):
    name = person_name_field(
        "Your full name", required="Enter your name.", render_kw={"autocomplete": "name"}
    )
    email = email_field(
        "Your email address",
        required="Enter your email address.",
        description="We email this address a link to confirm that it is yours.",
        render_kw={"autocomplete": "email"},
    )
    organisation = text_field(
        "Your business or organisation (optional)", 200, render_kw={"autocomplete": "organization"}
    )
    topics = TopicsField(
        ASKED,
        validators=[at_least_one_topic],
        description="Tick all that apply. Every email has a link to change this or unsubscribe.",
    )
    # A field people never see; bots fill every field they find.
    website = StringField(
        "Leave this field empty", render_kw={"autocomplete": "off", "tabindex": "-1"}
    )

    def validate_website(self, field):
        if field.data:
            raise ValidationError("Leave this field empty.")

    def details(self) -> SubscribeDetails:
        return SubscribeDetails(
            name=self.name.data,
            email=self.email.data,
            organisation=self.organisation.data or "",
            topics=self.topics.topics,
        )


class PreferencesForm(ChamberForm):
    topics = TopicsField(
        PREFERENCES_ASKED,
        description="Tick what you want and untick what you do not. Emails about places you "
        "book still come.",
    )
    save = SubmitField("Save my choices")
    unsubscribe = SubmitField("Unsubscribe from everything")
