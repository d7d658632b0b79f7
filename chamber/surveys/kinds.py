"""Survey question kinds, one class each, in one registry (`KINDS`, keyed by `models.QuestionKind`).

A kind knows how to read its posted answer (every rule, with a message that names the question),
which grouped counts its results need (`tallies`) and how it shapes them into the figures the page
shows, whether it can be broken down by the respondent's business, and how its answers fill the
CSV. Everything else (the answering page, `results`, `breakdowns`, `results_export`) asks the kind.
A new kind is a member of `QuestionKind` and a class here; a test checks that none is missing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from werkzeug.datastructures import MultiDict

from chamber.core.forms import text_problem
from chamber.events.models import AgendaItem
from chamber.surveys.figures import (
    AgendaItemResult,
    BreakdownRow,
    Distribution,
    QuestionResult,
    shares_of,
)
from chamber.surveys.models import RATED_AGENDA_KINDS, Question, QuestionKind
from chamber.surveys.tallies import Tallied, Tally

MAX_TEXT = 2000  # characters of a free-text answer
MULTIPLE_SEPARATOR = "; "  # between the options of a multiple-choice answer in one CSV cell

Form = MultiDict[str, str]  # the posted form
Items = Sequence[AgendaItem]  # the agenda items a "rate each agenda item" question asks about
Figure = QuestionResult | BreakdownRow  # a question's figure, or one breakdown group's row
Agenda = Callable[[], list[AgendaItem]]  # loads the event's agenda (once, when first called)
RatedItems = Callable[[], list[tuple[int, str]]]  # (id, title) of the items the CSV has columns for

# --- reading a posted answer ---------------------------------------------------------------------


def field_name(question: Question, item: AgendaItem | None = None) -> str:
    return f"q{question.id}" if item is None else f"q{question.id}-{item.id}"


@dataclass(frozen=True)
class AnswerValue:
    """One answer to store (a `survey_answer` row): a number, an option picked, or text."""

    question_id: int
    number: int | None = None
    choice: str | None = None
    text: str | None = None
    agenda_item_id: int | None = None


@dataclass(frozen=True)
class Refusal:
    summary: str  # for the error summary at the top of the page: it names the question
    beside: str  # shorter, shown beside the field


@dataclass
class Reading:
    """One form field as read: what to show again, and either the values to store or a refusal."""

    name: str
    entered: list[str]
    values: list[AnswerValue] = field(default_factory=list)
    refusal: Refusal | None = None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _label(question: Question) -> str:
    return f"“{_short(question.text)}”"


# --- the CSV -------------------------------------------------------------------------------------


class Column(NamedTuple):
    heading: str
    question_id: int
    agenda_item_id: int | None
    write: Callable[[list[object]], str]  # the cell for one response's values in this column


def _joined(values: list[object]) -> str:
    return MULTIPLE_SEPARATOR.join(str(v) for v in values)


# --- the kinds -----------------------------------------------------------------------------------


class Kind(ABC):
    """What every kind does; the defaults suit a question answered by one field."""

    member: ClassVar[QuestionKind]
    # The grouped counts (one query each, shared by every question that needs it) its figures use.
    tallies: ClassVar[frozenset[Tally]] = frozenset()
    # Broken down by the respondent's business on the results page (from the same tallies).
    breakable: ClassVar[bool] = False
    # How the templates show it: the macro that asks it (`surveys/_questions.html`: "text",
    # "agenda", "scale" or "choices") and the one that reports its figure and its breakdown
    # (`surveys/_results_macros.html`: "text", "agenda", "mean", "nps" or "shares"). The templates
    # look the macro up by these names; they never test which kind a question is.
    asked_as: ClassVar[str]
    reported_as: ClassVar[str]
    # Whether people may give more than one answer (checkboxes, and percentages over 100%).
    multiple: ClassVar[bool] = False
    # Whether the question offers the choices staff wrote (`Question.choice_list`).
    has_choices: ClassVar[bool] = False
    # Whether it asks about each talk or panel on the agenda (left out when there are none), so
    # its results count answers per item rather than respondents.
    per_agenda_item: ClassVar[bool] = False

    @abstractmethod
    def read(self, question: Question, form: Form, agenda_items: Items) -> list[Reading]:
        """Check the posted answer; stores nothing."""

    def shape(self, figure: Figure, question: Question, counts: Tallied) -> None:  # noqa: B027
        """Fill `answered`, `shares` (and `distribution`) of a question's figure or of one
        breakdown group's row from its grouped counts; nothing by default (free text has none)."""

    def figure(self, result: QuestionResult, counts: Tallied, agenda: Agenda) -> None:
        """Fill the question's figure on the results page. `agenda` loads the event's agenda
        (one query, at most once a page) for the kinds that need it."""
        self.shape(result, result.question, counts)

    def columns(self, question: Question, number: int, rated_items: RatedItems) -> list[Column]:
        """The question's CSV columns."""
        return [Column(f"Q{number} {question.text}", question.id, None, _joined)]

    def column_item(self, agenda_item_id: int | None) -> int | None:
        """Which of the question's columns an answer with this agenda item goes in."""
        return None


class ScaleKind(Kind):
    """A number from `low` to `high`, picked on a scale: ASCII digits only."""

    low: ClassVar[int]
    high: ClassVar[int]
    tallies = frozenset({Tally.numbers})
    breakable = True
    asked_as = "scale"
    reported_as = "mean"

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1))

    def number(self, raw: str) -> int | None:
        raw = raw.strip()
        if not (raw.isascii() and raw.isdecimal()) or len(raw) > 3:
            return None
        number = int(raw)
        return number if self.low <= number <= self.high else None

    def read(self, question: Question, form: Form, agenda_items: Items) -> list[Reading]:
        name, label = field_name(question), _label(question)
        missing = Refusal(f"Select an answer to {label}.", "Select an answer.")
        return [self._read(question, form, name, label, missing)]

    def _read(
        self,
        question: Question,
        form: Form,
        name: str,
        label: str,
        missing: Refusal,
        item_id: int | None = None,
    ) -> Reading:
        raw = form.get(name, "")
        reading = Reading(name, [raw])
        if raw.strip() == "":
            reading.refusal = missing if question.required else None
            return reading
        number = self.number(raw)
        if number is None:
            scale = f"a number from {self.low} to {self.high}"
            reading.refusal = Refusal(f"Choose {scale} for {label}.", f"Choose {scale}.")
        else:
            reading.values.append(AnswerValue(question.id, number=number, agenda_item_id=item_id))
        return reading

    def shape(self, figure: Figure, question: Question, counts: Tallied) -> None:
        figure.distribution = Distribution(self.values, counts.merged_numbers())
        figure.shares = figure.distribution.shares
        figure.answered = figure.distribution.answered


class Rating(ScaleKind):
    member = QuestionKind.rating
    low, high = 1, 5


class NetPromoterQuestion(ScaleKind):
    """How likely to recommend, 0 to 10; its figure adds the Net Promoter Score."""

    member = QuestionKind.nps
    reported_as = "nps"
    low, high = 0, 10

    def figure(self, result: QuestionResult, counts: Tallied, agenda: Agenda) -> None:
        super().figure(result, counts, agenda)
        result.nps = result.distribution.nps if result.distribution else None


class AgendaRating(ScaleKind):
    """1 to 5 for each talk and panel on the event's agenda: one field (and one CSV column) per
    item, answers carrying `agenda_item_id`; figures per item, never broken down."""

    member = QuestionKind.agenda_rating
    asked_as = reported_as = "agenda"
    per_agenda_item = True
    low, high = 1, 5
    breakable = False

    def read(self, question: Question, form: Form, agenda_items: Items) -> list[Reading]:
        readings = []
        for item in agenda_items:
            title = f"“{_short(item.title)}”"
            scale = f"from {self.low} to {self.high}"
            missing = Refusal(f"Rate {title} {scale}.", f"Rate this session {scale}.")
            name = field_name(question, item)
            readings.append(self._read(question, form, name, title, missing, item_id=item.id))
        return readings

    def figure(self, result: QuestionResult, counts: Tallied, agenda: Agenda) -> None:
        """The talks and panels of the event, and any other item someone rated."""
        found = counts.numbers
        items = agenda()
        for item in items:
            if item.kind in RATED_AGENDA_KINDS or item.id in found:
                distribution = Distribution(self.values, dict(found.get(item.id, {})))
                result.items.append(AgendaItemResult(item.title, item.starts_at, distribution))
        known = {item.id for item in items}
        for item_id, item_counts in found.items():
            if item_id not in known:  # an item since deleted from the agenda
                distribution = Distribution(self.values, item_counts)
                result.items.append(
                    AgendaItemResult("(removed from the agenda)", None, distribution)
                )

    def columns(self, question: Question, number: int, rated_items: RatedItems) -> list[Column]:
        return [
            Column(f"Q{number} {question.text}: {title}", question.id, item_id, _joined)
            for item_id, title in rated_items()
        ]

    def column_item(self, agenda_item_id: int | None) -> int | None:
        return agenda_item_id


class SingleChoice(Kind):
    """One of the question's options (`Question.choice_list`), stored as the option's text."""

    member = QuestionKind.single_choice
    tallies = frozenset({Tally.choices})
    breakable = True
    asked_as, reported_as = "choices", "shares"
    has_choices = True

    def read(self, question: Question, form: Form, agenda_items: Items) -> list[Reading]:
        name, label = field_name(question), _label(question)
        raw = form.get(name, "")
        reading = Reading(name, [raw])
        if raw == "":
            if question.required:
                reading.refusal = Refusal(f"Select an answer to {label}.", "Select an answer.")
        elif raw not in question.choice_list:
            reading.refusal = Refusal(
                f"Choose one of the options listed for {label}.",
                "Choose one of the options listed.",
            )
        else:
            reading.values.append(AnswerValue(question.id, choice=raw))
        return [reading]

    def shape(self, figure: Figure, question: Question, counts: Tallied) -> None:
        figure.answered = sum(counts.choices.values())  # one row per respondent
        figure.shares = shares_of(question.choice_list, counts.choices, figure.answered)


class YesNo(SingleChoice):
    """Yes, no or prefer not to say: a single choice whose options are always YES_NO_CHOICES."""

    member = QuestionKind.yes_no


class MultipleChoice(Kind):
    """Any number of the options, one answer row per option picked; its respondents are counted
    DISTINCT, and its CSV cell lists the options in the question's order."""

    member = QuestionKind.multiple_choice
    tallies = frozenset({Tally.respondents, Tally.choices})
    breakable = True
    asked_as, reported_as = "choices", "shares"
    has_choices = multiple = True

    def read(self, question: Question, form: Form, agenda_items: Items) -> list[Reading]:
        name, label = field_name(question), _label(question)
        picked = list(dict.fromkeys(v for v in form.getlist(name) if v != ""))  # "" is no pick
        reading = Reading(name, picked)
        options = question.choice_list
        if not picked:
            if question.required:
                reading.refusal = Refusal(
                    f"Select at least one answer to {label}.", "Select at least one answer."
                )
        elif any(choice not in options for choice in picked):
            reading.refusal = Refusal(
                f"Choose only from the options listed for {label}.",
                "Choose only from the options listed.",
            )
        else:
            reading.values.extend(
                AnswerValue(question.id, choice=choice)
                for choice in sorted(picked, key=options.index)
            )
        return [reading]

    def shape(self, figure: Figure, question: Question, counts: Tallied) -> None:
        figure.answered = counts.respondents
        figure.shares = shares_of(question.choice_list, counts.choices, figure.answered)

    def columns(self, question: Question, number: int, rated_items: RatedItems) -> list[Column]:
        order = {option: n for n, option in enumerate(question.choice_list)}

        def write(values: list[object]) -> str:
            return _joined(sorted(values, key=lambda v: (order.get(v, len(order)), str(v))))

        return [Column(f"Q{number} {question.text}", question.id, None, write)]


class FreeText(Kind):
    """Up to MAX_TEXT characters, line ends made LF, no control characters; stored as typed (markup
    is escaped when shown). Its figure lists answers; never broken down."""

    member = QuestionKind.free_text
    tallies = frozenset({Tally.respondents, Tally.texts})
    asked_as = reported_as = "text"

    def read(self, question: Question, form: Form, agenda_items: Items) -> list[Reading]:
        name, label = field_name(question), _label(question)
        raw = form.get(name, "")
        text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
        reading = Reading(name, [raw])
        if text_problem(text, multiline=True):  # the forms' own rule for text with lines
            reading.refusal = Refusal(
                f"Your answer to {label} contains a character that is not allowed.",
                "Your answer contains a character that is not allowed.",
            )
        elif len(text) > MAX_TEXT:
            limit = f"must be {MAX_TEXT:,} characters or fewer (it has {len(text):,})"
            reading.refusal = Refusal(f"Your answer to {label} {limit}.", f"Your answer {limit}.")
        elif not text:
            if question.required:
                reading.refusal = Refusal(f"Enter an answer to {label}.", "Enter an answer.")
        else:
            reading.values.append(AnswerValue(question.id, text=text))
        return [reading]

    def figure(self, result: QuestionResult, counts: Tallied, agenda: Agenda) -> None:
        result.answered = counts.respondents
        result.texts = counts.texts
        result.texts_held = counts.texts_held


KINDS: dict[QuestionKind, Kind] = {
    kind.member: kind()
    for kind in (
        Rating,
        NetPromoterQuestion,
        AgendaRating,
        SingleChoice,
        YesNo,
        MultipleChoice,
        FreeText,
    )
}


def kind_of(question: Question) -> Kind:
    return KINDS[question.kind]


def kind_filter(member: QuestionKind) -> Kind:
    """The `survey_kind` template filter: `question.kind|survey_kind` is the kind's class."""
    return KINDS[member]
