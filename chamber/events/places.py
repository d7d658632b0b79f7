"""Where events take place: the countries a venue may be in, and UK postcodes."""

from __future__ import annotations

import re

from flask import current_app, has_app_context

# ISO 3166-1 alpha-2 codes a chamber's venues are likely to be in; the form offers these.
COUNTRIES = {
    "GB": "United Kingdom", "IE": "Ireland", "FR": "France", "BE": "Belgium",
    "NL": "Netherlands", "DE": "Germany", "ES": "Spain", "PT": "Portugal", "IT": "Italy",
    "CH": "Switzerland", "AT": "Austria", "DK": "Denmark", "SE": "Sweden", "NO": "Norway",
    "FI": "Finland", "PL": "Poland", "CZ": "Czechia", "LU": "Luxembourg", "US": "United States",
    "CA": "Canada",
}  # fmt: skip

# The UK's postcode shape (outward code, a space, inward code), as Royal Mail prints it.
UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")


def default_country() -> str:
    """The chamber's own country (`CHAMBER_COUNTRY`, GB unless set)."""
    return str(current_app.config.get("COUNTRY", "GB")) if has_app_context() else "GB"


def country_name(code: str) -> str:
    return COUNTRIES.get(code, code)


def uk_postcode(text: str) -> str | None:
    """`text` as a UK postcode in its printed form (`SG1 1HS`), or None if it is not one."""
    match = UK_POSTCODE.match(" ".join(text.upper().split()))
    return f"{match[1]} {match[2]}" if match else None


def one_line(venue_name: str, lines: list[str]) -> str:
    """The venue's name and its address lines on one line, as calendars show a LOCATION (a line
    that already ends in a comma is not given another)."""
    parts = [part.strip().rstrip(",").strip() for part in (venue_name, *lines)]
    return ", ".join(part for part in parts if part)


def address_lines(street: str, town: str, postcode: str, country: str) -> list[str]:
    """A postal address, a line each: the street's lines, town and postcode, and the country
    when it is not the chamber's own."""
    lines = [line.strip() for line in street.splitlines() if line.strip()]
    if town_line := " ".join(part.strip() for part in (town, postcode) if part.strip()):
        lines.append(town_line)
    if country and country != default_country():
        lines.append(country_name(country))
    return lines
