"""One VTIMEZONE per zone, derived from Python's zoneinfo: the same bytes in every file we write.

Clients cache a zone by its TZID (vobject does, for the whole process), so a file must never carry
a definition of a TZID that differs from another file's. Each zone is written once, for a fixed
span (every clock change from 1970 to 2037, then the rule in force at the end left open, so it
also holds for any later year), in the form calendar clients write themselves: STANDARD and
DAYLIGHT subcomponents, each a DTSTART with a yearly RRULE (`FREQ=YEARLY;BYMONTH=..;BYDAY=..`),
and a subcomponent of its own wherever the rule changed over the years. Never an RDATE list: ical.js
(Thunderbird) and vobject read only its first value.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard

FIRST_YEAR = 1970
LAST_YEAR = 2037  # the rule in force at its end is written without UNTIL: it goes on

_START = int(datetime(FIRST_YEAR, 1, 1, tzinfo=UTC).timestamp())
_END = int(datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC).timestamp())
_STEP = 6 * 3600  # no zone changes its clocks twice within six hours
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# A parser that reads UNTIL as local time (dateutil, and so vobject) would drop the last
# change of a rule east of Greenwich if UNTIL were that change's exact UTC instant; a day later is
# past it in any reading, and a year before the rule's next change would have been.
_UNTIL_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class _State:
    offset: timedelta
    daylight: bool
    name: str


@dataclass(frozen=True)
class _Change:
    """The clocks change at `at` (UTC) from `before` to `after`."""

    at: datetime
    before: _State
    after: _State

    @property
    def onset(self) -> datetime:
        """The wall-clock time of the change, in the time that was in force (as DTSTART is)."""
        return (self.at + self.before.offset).replace(tzinfo=None)


@dataclass
class _Rule:
    """Changes in consecutive years that one yearly RRULE gives: the same month, weekday, time
    and offsets, and a week of the month (`1`..`5`, or `-1` for the last) that fits them all."""

    changes: list[_Change]
    weeks: set[int] = field(default_factory=set)


def _state(moment: datetime) -> _State:
    return _State(moment.utcoffset() or timedelta(0), bool(moment.dst()), moment.tzname() or "")


def _state_at(zone: ZoneInfo, timestamp: int) -> _State:
    return _state(datetime.fromtimestamp(timestamp, zone))


def _changes(zone: ZoneInfo) -> list[_Change]:
    """Every change of offset, name or daylight saving in the span, to the second."""
    changes = []
    before, last = _state_at(zone, _START), _START
    for timestamp in range(_START + _STEP, _END + 1, _STEP):
        after = _state_at(zone, timestamp)
        if after != before:
            low, high = last, timestamp  # the state changes after `low` and by `high`
            while high - low > 1:
                middle = (low + high) // 2
                if _state_at(zone, middle) == before:
                    low = middle
                else:
                    high = middle
            changes.append(_Change(datetime.fromtimestamp(high, UTC), before, after))
            before = after
        last = timestamp
    return changes


def _weeks(day: datetime) -> set[int]:
    """The BYDAY week numbers that name this day of its month: the n-th such weekday, and -1 if
    it is the last."""
    weeks = {(day.day - 1) // 7 + 1}
    if day.day + 7 > calendar.monthrange(day.year, day.month)[1]:
        weeks.add(-1)
    return weeks


def _rules(changes: list[_Change]) -> list[_Rule]:
    """The changes gathered into yearly rules, each as long as one RRULE can describe it."""
    rules: list[_Rule] = []
    open_rules: dict[tuple, _Rule] = {}
    for change in changes:
        onset = change.onset
        key = (change.before, change.after, onset.month, onset.weekday(), onset.time())
        weeks = _weeks(onset)
        rule = open_rules.get(key)
        if rule and rule.changes[-1].onset.year == onset.year - 1 and rule.weeks & weeks:
            rule.changes.append(change)
            rule.weeks &= weeks
        else:
            rule = open_rules[key] = _Rule([change], weeks)
            rules.append(rule)
    return rules


def _observance(state: _State, before: timedelta, onset: datetime, *, daylight: bool):
    observance = TimezoneDaylight() if daylight else TimezoneStandard()
    observance.add("dtstart", onset)
    observance.add("tzoffsetfrom", before)
    observance.add("tzoffsetto", state.offset)
    if state.name:
        observance.add("tzname", state.name)
    return observance


def vtimezone_component(tzid: str) -> Timezone:
    """The zone's VTIMEZONE as an icalendar component. Raises ZoneInfoNotFoundError (a KeyError)
    or ValueError for a name zoneinfo does not know."""
    zone = ZoneInfo(tzid)
    changes = _changes(zone)
    first = _state_at(zone, _START)
    timezone = Timezone()
    timezone.add("tzid", tzid)
    # What was in force when the span begins: a zone that never changes has only this.
    start = datetime(FIRST_YEAR, 1, 1)
    timezone.add_component(
        _observance(first, first.offset, start, daylight=first.daylight and bool(changes))
    )
    for rule in _rules(changes):
        head, tail = rule.changes[0], rule.changes[-1]
        observance = _observance(
            head.after, head.before.offset, head.onset, daylight=head.after.daylight
        )
        if len(rule.changes) > 1:
            week = -1 if -1 in rule.weeks else min(rule.weeks)
            recurrence = {
                "freq": "yearly",
                "bymonth": head.onset.month,
                "byday": f"{week}{_WEEKDAYS[head.onset.weekday()]}",
            }
            if tail.onset.year < LAST_YEAR:  # a rule still in force at the end goes on
                recurrence["until"] = tail.at + _UNTIL_MARGIN
            observance.add("rrule", recurrence)
        timezone.add_component(observance)
    return timezone


@lru_cache(maxsize=64)
def known_zone(tzid: str) -> bool:
    try:
        ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
