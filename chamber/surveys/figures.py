"""The figures a survey's results page shows, as plain values: shares (a count of a total, with
its percentage and bar width), distributions of ratings with their mean, the Net Promoter Score,
breakdown rows. Nothing here reads the database; each question's kind (`kinds`) fills them from
the grouped counts `results` and `breakdowns` read in SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from chamber.surveys.models import Question, QuestionKind, Survey

PROMOTER_FROM, DETRACTOR_UP_TO = 9, 6
MIN_GROUP = 5  # anonymous surveys: the smallest group a breakdown may show on its own
OTHER_GROUP = "Other (fewer than 5)"
FREE_TEXT_SHOWN = 50  # free-text answers listed per question on the overview


def too_few_to_show(anonymous: bool, responded: int) -> bool:
    """Whether an anonymous survey has too few responses for anything but counts to be shown (how
    many answered the survey and each question): with four, a figure, a free-text answer or a
    list of who answered could single a person out (docs/survey-results.md)."""
    return anonymous and responded < MIN_GROUP


BREAKDOWNS = {
    "size": "Business size",
    "sme": "SMEs and large businesses",
    "sector": "Sector",
    "member": "Chamber membership",
}

# --- what the page shows -------------------------------------------------------------------------


def whole_percent(count: int, total: int) -> int:
    """A percentage rounded half up (so 12.5 shows as 13, as people expect), 0 for no total."""
    return (count * 200 + total) // (total * 2) if total else 0


@dataclass(frozen=True)
class Share:
    """One bar: an option (or value) picked by `count` of `total` people."""

    label: str
    count: int
    total: int

    @property
    def percent(self) -> int:
        return whole_percent(self.count, self.total)

    @property
    def bar(self) -> int:
        """Bar width in whole percent; a non-zero count always shows at least a sliver."""
        return max(self.percent, 1) if self.count else 0


@dataclass(frozen=True)
class NetPromoter:
    promoters: int
    passives: int
    detractors: int

    @property
    def total(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def score(self) -> float | None:
        """% promoters (9-10) minus % detractors (0-6): from -100 to +100."""
        if not self.total:
            return None
        return (self.promoters - self.detractors) * 100 / self.total

    @property
    def whole_score(self) -> int | None:
        """The score rounded half up to a whole number, as it is usually quoted."""
        if not self.total:
            return None
        return ((self.promoters - self.detractors) * 200 + self.total) // (2 * self.total)

    @property
    def label(self) -> str:
        """ "+30", "0", "−25" (a true minus sign), or "–" with no answers."""
        score = self.whole_score
        if score is None:
            return "–"
        return f"+{score}" if score > 0 else f"−{-score}" if score < 0 else "0"

    @property
    def shares(self) -> list[Share]:
        return [
            Share("Promoters (9–10)", self.promoters, self.total),
            Share("Passives (7–8)", self.passives, self.total),
            Share("Detractors (0–6)", self.detractors, self.total),
        ]


@dataclass
class Distribution:
    """Counts per value of a rating or NPS question (or of one agenda item)."""

    values: tuple[int, ...]
    counts: dict[int, int] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return sum(self.counts.values())

    @property
    def mean(self) -> float | None:
        # The exact AVG(number): the sum of value x count over the grouped counts.
        total = self.answered
        return sum(v * n for v, n in self.counts.items()) / total if total else None

    @property
    def shares(self) -> list[Share]:
        return [Share(str(v), self.counts.get(v, 0), self.answered) for v in self.values]

    @property
    def nps(self) -> NetPromoter:
        counts = self.counts.items()
        return NetPromoter(
            promoters=sum(n for v, n in counts if v >= PROMOTER_FROM),
            passives=sum(n for v, n in counts if DETRACTOR_UP_TO < v < PROMOTER_FROM),
            detractors=sum(n for v, n in counts if v <= DETRACTOR_UP_TO),
        )


@dataclass
class AgendaItemResult:
    title: str
    starts_at: datetime | None
    distribution: Distribution


@dataclass
class TextAnswer:
    text: str
    submitted_at: datetime | None  # None for an anonymous survey: a date can name the writer


@dataclass
class BreakdownRow:
    """One group's figures for one question."""

    label: str
    respondents: int  # in the group, whatever they answered
    answered: int  # in the group, who answered this question
    shares: list[Share] = field(default_factory=list)  # choices, or values for ratings and NPS
    distribution: Distribution | None = None

    @property
    def mean(self) -> float | None:
        return self.distribution.mean if self.distribution else None

    @property
    def nps(self) -> NetPromoter | None:
        return self.distribution.nps if self.distribution else None


@dataclass
class QuestionResult:
    question: Question
    number: int
    answered: int
    shares: list[Share] = field(default_factory=list)
    distribution: Distribution | None = None
    items: list[AgendaItemResult] = field(default_factory=list)
    texts: list[TextAnswer] = field(default_factory=list)
    texts_held: int = 0  # of `answered`: the rest were blanked when retention came for them
    breakdown: list[BreakdownRow] | None = None
    nps: NetPromoter | None = None  # the NPS question's score (`kinds.NetPromoterQuestion`)

    @property
    def kind(self) -> QuestionKind:
        return self.question.kind

    @property
    def mean(self) -> float | None:
        return self.distribution.mean if self.distribution else None


@dataclass
class Group:
    key: object  # the raw value in the database (None for "not known")
    label: str
    respondents: int


@dataclass
class Breakdown:
    """The groups of one dimension, as shown (after the anonymity rule has folded small ones)."""

    dimension: str
    groups: list[Group]  # shown, in order; may end with OTHER_GROUP
    placement: dict[object, str]  # raw key -> label of the group it is shown in
    folded: int = 0  # raw groups folded into OTHER_GROUP
    hidden: bool = False  # too few respondents overall to show any group

    @property
    def label(self) -> str:
        return BREAKDOWNS[self.dimension]


@dataclass
class DayCount:
    day: date
    count: int
    total: int  # the busiest day's count: bars are scaled to it

    @property
    def bar(self) -> int:
        return max(whole_percent(self.count, self.total), 1) if self.count else 0


@dataclass
class SurveyResults:
    survey: Survey
    invited: int
    reminded: int
    responded: int
    days: list[DayCount]
    questions: list[QuestionResult]
    breakdown: Breakdown | None = None
    # An anonymous survey with fewer than MIN_GROUP responses: counts only (`too_few_to_show`).
    withheld: bool = False

    @property
    def response_rate(self) -> int | None:
        return whole_percent(self.responded, self.invited) if self.invited else None


def shares_of(options: list[str], counts: dict[str, int], total: int) -> list[Share]:
    """Every option in order, zeros included; then any answer no longer among the options."""
    known = [Share(option, counts.get(option, 0), total) for option in options]
    extra = sorted(set(counts) - set(options))
    return known + [Share(label, counts[label], total) for label in extra]
