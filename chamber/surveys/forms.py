"""Staff forms for surveys: creating one, its settings, and one question. Respondents' answers are
read by `responses.read_answers`, since the questions differ per survey."""

from __future__ import annotations

from wtforms import BooleanField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from chamber.core.forms import ChamberForm, LocalDateTimeField, WholeNumberField, to_utc
from chamber.surveys.models import QuestionDetails, QuestionKind, Recipients
from chamber.surveys.services import CHOICE_KINDS, Settings


class NewSurveyForm(ChamberForm):
    event_id = SelectField("Event", coerce=int, validators=[InputRequired("Choose the event.")])
    start = RadioField(
        "Start from",
        choices=[
            SelectChoice(
                "template",
                "The seminar template (up to six questions, filled from the agenda and the "
                "resource pack)",
            ),
            SelectChoice("blank", "A blank survey"),
        ],
        default="template",
        validators=[InputRequired("Choose how to start.")],
    )


class SettingsForm(ChamberForm):
    title = StringField(
        "Title",
        validators=[
            DataRequired("Enter the survey's title."),
            Length(max=200, message="Title must be 200 characters or fewer."),
        ],
        render_kw={"maxlength": 200},
        description="The email's subject and the page's heading.",
    )
    intro = TextAreaField(
        "Introduction",
        validators=[Optional(), Length(max=2000, message="Introduction is too long.")],
        render_kw={"maxlength": 2000, "rows": 3},
        description="A sentence or two above the questions.",
    )
    send_at = LocalDateTimeField(
        "Send at",
        validators=[InputRequired("Enter when to send the survey.")],
        description="In the event's time zone. The default is 10:00 the morning after the event.",
    )
    recipients = RadioField(
        "Who is asked",
        choices=[
            SelectChoice(Recipients.checked_in.value, "Delegates who were checked in at the door"),
            SelectChoice(Recipients.confirmed.value, "Every confirmed delegate"),
        ],
        validators=[InputRequired("Choose who is asked.")],
    )
    reminder_enabled = BooleanField("Send one reminder to those who have not answered")
    reminder_after_days = WholeNumberField(
        "Days before the reminder",
        minimum=1,
        maximum=60,
        validators=[Optional()],
        description="Counted from when the survey is sent.",
    )
    closes_at = LocalDateTimeField(
        "Closes at",
        validators=[Optional()],
        description="In the event's time zone. Leave blank to keep it open.",
    )
    anonymous = BooleanField(
        "Anonymous results",
        description="No names or email addresses in the results or the CSV download, and "
        "breakdowns (by business size, sector or membership) only show groups of 5 or more "
        "respondents: smaller groups are counted together as “Other”. Untick it to see each "
        "respondent's name and email beside their answers.",
    )

    def settings(self, zone_name: str) -> Settings:
        """The form's values for the service; a skipped local time is a field error."""
        try:
            send_at = to_utc(self.send_at, zone_name)
        except ValidationError as error:
            self.send_at.errors = [*self.send_at.errors, str(error)]
            raise
        try:
            closes_at = to_utc(self.closes_at, zone_name)
        except ValidationError as error:
            self.closes_at.errors = [*self.closes_at.errors, str(error)]
            raise
        return Settings(
            title=self.title.data or "",
            intro=self.intro.data or "",
            send_at=send_at,
            recipients=Recipients(self.recipients.data),
            reminder_enabled=bool(self.reminder_enabled.data),
            reminder_after_days=self.reminder_after_days.data or 4,
            closes_at=closes_at,
            anonymous=bool(self.anonymous.data),
        )


class QuestionForm(ChamberForm):
    kind = SelectField(
        "Kind of question",
        choices=[SelectChoice(kind.value, kind.label) for kind in QuestionKind],
        validators=[InputRequired("Choose the kind of question.")],
    )
    text = StringField(
        "Question",
        validators=[
            DataRequired("Enter the question."),
            Length(max=300, message="Question must be 300 characters or fewer."),
        ],
        render_kw={"maxlength": 300},
    )
    help_text = StringField(
        "Hint",
        validators=[Optional(), Length(max=500, message="Hint must be 500 characters or fewer.")],
        render_kw={"maxlength": 500},
        description="Optional help shown under the question, e.g. “1 is poor, 5 is excellent”.",
    )
    choices = TextAreaField(
        "Options",
        validators=[Optional()],
        render_kw={"rows": 6},
        description="For single and multiple choice: one option per line. "
        "Yes or no questions always offer Yes, No and Prefer not to say.",
    )
    required = BooleanField("An answer is required")

    def validate_choices(self, field) -> None:
        if self.kind.data in {k.value for k in CHOICE_KINDS}:
            options = [line for line in (field.data or "").splitlines() if line.strip()]
            if len(options) < 2:
                raise ValidationError("Give at least two options, one per line.")

    def details(self) -> QuestionDetails:
        return QuestionDetails(
            kind=QuestionKind(self.kind.data),
            text=self.text.data or "",
            help_text=self.help_text.data or "",
            required=bool(self.required.data),
            choices=self.choices.data or "",
        )
