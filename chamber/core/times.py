"""Times are stored in UTC and shown in an event's own zone; these helpers cross between the two."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


class NonexistentLocalTime(ValueError):
    """A wall-clock time skipped when the clocks go forward (e.g. 01:30 on the last Sunday of March)."""


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in Python, naive UTC in the database (the same on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime; naive times are ambiguous")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@cache
def zone_names() -> list[str]:
    return sorted(
        name for name in available_timezones() if "/" in name and not name.startswith("Etc/")
    )


def local_to_utc(local: datetime, zone_name: str) -> datetime:
    """Interpret a naive wall-clock time in `zone_name` and return it in UTC.

    A time that occurs twice (clocks going back) means its first occurrence, the one a person
    reading a programme would assume; a time that never occurs (clocks going forward) is refused.
    """
    tz = zone(zone_name)
    aware = local.replace(tzinfo=tz, fold=0)
    as_utc = aware.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise NonexistentLocalTime(
            f"{local:%H:%M} on {local:%-d %B %Y} does not exist in {zone_name}: the clocks go forward."
        )
    return as_utc


def utc_to_local(moment: datetime, zone_name: str) -> datetime:
    return moment.astimezone(zone(zone_name))


def format_time(moment: datetime) -> str:
    return f"{moment:%H:%M}"


def format_date(moment: datetime) -> str:
    return f"{moment:%A %-d %B %Y}"
