"""Follow-up surveys: questions, one invitation (with private tokens) per recipient, responses and
their answers. Results are aggregated in SQL over Answer, grouped by the respondent snapshot kept on
each Response."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chamber.core.times import UTCDateTime, utcnow
from chamber.core.types import enum_type
from chamber.events.models import AgendaKind
from chamber.extensions import db
from chamber.members.models import SizeBand

# The agenda items a "rate each agenda item" question asks about, and its results show.
RATED_AGENDA_KINDS = (AgendaKind.talk, AgendaKind.panel)
MAX_CHOICES = 30  # options on one choice question
MAX_CHOICE_LENGTH = 300  # Answer.choice
# What a yes/no question always offers, whatever its `choices` column holds.
YES_NO_CHOICES = ("Yes", "No", "Prefer not to say")


class QuestionKind(enum.StrEnum):
    rating = "rating"  # 1 to 5
    nps = "nps"  # 0 to 10: how likely to recommend
    single_choice = "single_choice"
    multiple_choice = "multiple_choice"
    yes_no = "yes_no"  # yes, no, prefer not to say
    free_text = "free_text"
    agenda_rating = "agenda_rating"  # 1 to 5 for each talk on the event's agenda

    @property
    def label(self) -> str:
        return {
            "rating": "Rating 1 to 5",
            "nps": "How likely to recommend (0 to 10)",
            "single_choice": "Single choice",
            "multiple_choice": "Multiple choice",
            "yes_no": "Yes or no",
            "free_text": "Free text",
            "agenda_rating": "Rate each agenda item",
        }[self.value]


class SurveyStatus(enum.StrEnum):
    draft = "draft"  # being built; the worker leaves it alone
    scheduled = "scheduled"  # ready: the worker sends it at send_at
    sent = "sent"  # invitations are out (reminders may follow)


class Recipients(enum.StrEnum):
    checked_in = "checked_in"  # delegates who were checked in at the door
    confirmed = "confirmed"  # every confirmed delegate


class Survey(db.Model):
    __tablename__ = "survey"
    __table_args__ = (
        CheckConstraint("reminder_after_days >= 1", name="reminder_after_positive"),
        Index("ix_survey_due", "status", "send_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    intro: Mapped[str] = mapped_column(String(2000), default="")
    status: Mapped[SurveyStatus] = mapped_column(
        enum_type(SurveyStatus), default=SurveyStatus.draft
    )
    recipients: Mapped[Recipients] = mapped_column(
        enum_type(Recipients), default=Recipients.checked_in
    )
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminder_enabled: Mapped[bool] = mapped_column(default=True)
    reminder_after_days: Mapped[int] = mapped_column(default=4)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    anonymous: Mapped[bool] = mapped_column(default=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminders_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    event = relationship("Event")
    questions: Mapped[list[Question]] = relationship(
        back_populates="survey",
        cascade="all, delete-orphan",
        order_by="(Question.position, Question.id)",
    )

    def is_closed(self, now: datetime | None = None) -> bool:
        return self.closes_at is not None and self.closes_at <= (now or utcnow())


class Question(db.Model):
    __tablename__ = "survey_question"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[QuestionKind] = mapped_column(enum_type(QuestionKind))
    text: Mapped[str] = mapped_column(String(300))
    help_text: Mapped[str] = mapped_column(String(500), default="")
    required: Mapped[bool] = mapped_column(default=False)
    # Choice questions: one option per line, in order. Answers store the option's text.
    choices: Mapped[str] = mapped_column(Text, default="")

    survey: Mapped[Survey] = relationship(back_populates="questions")

    @property
    def choice_list(self) -> list[str]:
        """The options respondents are offered, in order: the builder, the answer check, the
        results and the CSV all read them here. A yes/no question always offers YES_NO_CHOICES."""
        if self.kind == QuestionKind.yes_no:
            return list(YES_NO_CHOICES)
        return [line.strip() for line in (self.choices or "").splitlines() if line.strip()]


class Invitation(db.Model):
    """One recipient of one survey. The unique pair is what makes "never sent twice" hold."""

    __tablename__ = "survey_invitation"
    __table_args__ = (UniqueConstraint("survey_id", "delegate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    delegate_id: Mapped[int] = mapped_column(
        ForeignKey("delegate.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    survey: Mapped[Survey] = relationship()
    delegate = relationship("Delegate")


class SurveyToken(db.Model):
    """The hash of a survey link's secret; each email (invitation, reminder) mints its own."""

    __tablename__ = "survey_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("survey_invitation.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Response(db.Model):
    """One invitation's answers, with a snapshot of the respondent's business for breakdowns."""

    __tablename__ = "survey_response"
    __table_args__ = (Index("ix_survey_response_survey_time", "survey_id", "submitted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"))
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("survey_invitation.id", ondelete="CASCADE"), unique=True
    )
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    size_band: Mapped[SizeBand | None] = mapped_column(enum_type(SizeBand))
    sector: Mapped[str] = mapped_column(String(100), default="")
    is_member: Mapped[bool | None] = mapped_column()

    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan"
    )


class Answer(db.Model):
    """One answer: a number (rating, NPS), a choice (one row per option picked), or text.
    Answers to "rate each agenda item" name the item."""

    __tablename__ = "survey_answer"
    __table_args__ = (Index("ix_survey_answer_question", "question_id", "agenda_item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("survey_response.id", ondelete="CASCADE"), index=True
    )
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_question.id", ondelete="CASCADE"))
    agenda_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("agenda_item.id", ondelete="SET NULL")
    )
    number: Mapped[int | None] = mapped_column()
    choice: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str | None] = mapped_column(Text)

    response: Mapped[Response] = relationship(back_populates="answers")


@dataclass(frozen=True)
class QuestionDetails:
    kind: QuestionKind
    text: str
    help_text: str = ""
    required: bool = False
    choices: str = ""  # one option per line, for single and multiple choice
