"""Breakdowns of a survey's answers by the respondent's business: size band, SMEs against large
businesses, sector, Chamber membership; with the anonymity rule that keeps groups of fewer than
five out of sight in anonymous surveys. Grouped in SQL like every other figure."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func

from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.surveys.figures import (
    MIN_GROUP,
    OTHER_GROUP,
    Breakdown,
    BreakdownRow,
    Group,
    QuestionResult,
)
from chamber.surveys.kinds import kind_of
from chamber.surveys.models import Response, Survey
from chamber.surveys.tallies import Tally, tally


def group_key(dimension: str):
    """The column a breakdown groups responses by (SMEs are the size bands but large, merged
    after the query)."""
    return {
        "size": Response.size_band,
        "sme": Response.size_band,
        "sector": Response.sector,
        "member": Response.is_member,
    }[dimension]


def display_key(dimension: str, raw: object) -> object:
    """The group a raw value belongs to: itself, except micro, small and medium are SMEs."""
    if dimension == "sme" and raw is not None:
        return "large" if raw == SizeBand.large else "sme"
    return raw


def _group_order(dimension: str, key: object, respondents: int) -> tuple:
    if key is None or key == "":
        return (1, 0, "")  # "not known" goes last
    if dimension == "size":
        return (0, list(SizeBand).index(SizeBand(key)), "")
    if dimension == "sme":
        return (0, 0 if key == "sme" else 1, "")
    if dimension == "member":
        return (0, 0 if key else 1, "")
    return (0, -respondents, str(key).casefold())


def group_label(dimension: str, key: object) -> str:
    if dimension == "size":
        return SizeBand(key).short_label if key else "Size not known"
    if dimension == "sme":
        return {"sme": "SMEs (under 250 employees)", "large": "Large businesses (250+)"}.get(
            key, "Size not known"
        )
    if dimension == "member":
        return {True: "Chamber members", False: "Not members"}.get(key, "Membership not known")
    return str(key) if key else "Sector not given"


def breakdown_groups(survey: Survey, dimension: str) -> Breakdown:
    """The groups a breakdown shows, with the anonymity rule applied.

    In an anonymous survey a group of fewer than MIN_GROUP respondents is folded into "Other";
    if "Other" itself stays under MIN_GROUP, the next smallest groups join it until it does, so no
    group under five can be worked out by subtracting the others from the totals. With fewer than
    MIN_GROUP respondents in all, no breakdown is shown.
    """
    key = group_key(dimension)
    rows = db.session.execute(
        db.select(key, func.count(Response.id)).where(Response.survey_id == survey.id).group_by(key)
    ).all()
    sizes: dict[object, int] = defaultdict(int)
    members: dict[object, list[object]] = defaultdict(list)
    for raw, count in rows:
        sizes[display_key(dimension, raw)] += count
        members[display_key(dimension, raw)].append(raw)
    groups = [Group(k, group_label(dimension, k), n) for k, n in sizes.items()]
    groups.sort(key=lambda g: _group_order(dimension, g.key, g.respondents))

    def placement(shown_groups, other_groups=()):
        found = {raw: g.label for g in shown_groups for raw in members[g.key]}
        return found | {raw: OTHER_GROUP for g in other_groups for raw in members[g.key]}

    if not survey.anonymous:
        return Breakdown(dimension, groups, placement(groups))
    total = sum(g.respondents for g in groups)
    if total < MIN_GROUP:
        return Breakdown(dimension, [], {}, folded=len(groups), hidden=True)
    shown = [g for g in groups if g.respondents >= MIN_GROUP]
    other = [g for g in groups if g.respondents < MIN_GROUP]
    while other and sum(g.respondents for g in other) < MIN_GROUP:
        smallest = min(shown, key=lambda g: g.respondents)
        shown.remove(smallest)
        other.append(smallest)
    placed = placement(shown, other)
    if other:
        shown.append(Group(OTHER_GROUP, OTHER_GROUP, sum(g.respondents for g in other)))
    return Breakdown(dimension, shown, placed, folded=len(other))


def fill_breakdown(survey: Survey, shown: Breakdown, results: list[QuestionResult]) -> None:
    """Each question's figures per shown group, shaped by its kind from the same tallies as the
    overview, grouped by the dimension too: at most three grouped queries in all."""
    wanted: dict[Tally, list[int]] = defaultdict(list)
    for result in results:
        for which in kind_of(result.question).tallies:
            wanted[which].append(result.question.id)
    found = tally(
        survey,
        wanted,
        by=group_key(shown.dimension),
        group=lambda raw: shown.placement.get(raw, OTHER_GROUP),
    )
    for result in results:
        kind = kind_of(result.question)
        result.breakdown = []
        for group in shown.groups:
            counts = found[result.question.id, group.label]
            row = BreakdownRow(group.label, group.respondents, counts.respondents)
            kind.shape(row, result.question, counts)
            result.breakdown.append(row)
