"""Reading one row of a spreadsheet for the directory: each mapped cell checked and turned into a
value, the row's shape checked (an organisation or an email, a person's details with their
email), and the row compared with the file's earlier rows, so that a file means one thing; or the
row refused, with the reason and its cells for the error report: docs/directory-import.md."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chamber.core.csvimport import Record
from chamber.members.import_fields import (
    CONTACT_FIELDS,
    FIELDS_BY_NAME,
    ORGANISATION_FIELDS,
    CellRefused,
    parse_cell,
)
from chamber.members.import_models import RowAction
from chamber.members.models import SizeBand
from chamber.members.services import normalise_organisation_name

REPORT_CELL = 2000  # a refused row's cells are kept for the error report up to this length
SHOWN_VALUE = 60  # a value quoted in a row's detail is cut to this length


@dataclass
class RowOutcome:
    """What happened (or, in a dry run, would happen) to one row, and why."""

    number: int
    action: RowAction
    organisation: str = ""
    email: str = ""
    detail: str = ""
    cells: list[str] | None = None  # a refused row's cells, for the error report


@dataclass
class ParsedRow:
    """A row whose cells all passed: the business's and the person's values (non-blank only)."""

    number: int
    cells: list[str]
    organisation: str
    org_key: str
    org: dict[str, Any]
    email: str
    contact: dict[str, Any]
    consent: bool | None = None  # the Consent column's yes or no; None: no column, or blank


def shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, SizeBand):
        return value.short_label.lower()
    text = getattr(value, "label", None) or str(value)
    text = " ".join(str(text).split())
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 1] + "…"


def storable(text: str) -> str:
    """A refused cell as the report keeps it: a NUL, which PostgreSQL cannot store in text, shown
    as the replacement character; everything else as the file had it."""
    return text.replace("\x00", "\ufffd")


class RowReader:
    """Reads a file's rows in order, remembering what earlier rows said: each person's row, and
    each business's details as first given (about 225 bytes a contact, the one thing that grows
    with the file)."""

    def __init__(self, mapping: Sequence[str]):
        self.columns = [(index, FIELDS_BY_NAME[name]) for index, name in enumerate(mapping) if name]
        self._org_given: dict[str, tuple[int, dict[str, Any]]] = {}
        self._email_row: dict[str, int] = {}

    def read(self, record: Record) -> ParsedRow | RowOutcome:
        if record.problem:
            return self.refused(
                record.number, record.cells, f"The row could not be read: {record.problem}."
            )
        values: dict[str, Any] = {}
        problems = []
        for index, import_field in self.columns:
            text = record.cells[index].strip() if index < len(record.cells) else ""
            if not text:
                continue
            try:
                values[import_field.name] = parse_cell(import_field, text)
            except CellRefused as refused:
                problems.append(str(refused))
        if problems:
            return self.refused(record.number, record.cells, "; ".join(problems) + ".")
        if "name" not in values and ("first_name" in values or "last_name" in values):
            values["name"] = " ".join(
                values[part] for part in ("first_name", "last_name") if part in values
            )
        organisation = values.get("organisation", "")
        email = values.get("email", "")
        org = {name: values[name] for name in ORGANISATION_FIELDS if name in values}
        contact = {
            name: values[name] for name in CONTACT_FIELDS if name in values and name != "email"
        }
        if len(values.get("name", "")) > FIELDS_BY_NAME["name"].max_length:  # first + last, joined
            return self.refused(record.number, record.cells, "Name is longer than 120 characters.")
        problem = self._row_problem(organisation, email, org, contact)
        if problem is None and values.get("consent") and not email:
            problem = (
                "The row says the person consented but gives no email address: consent is "
                "recorded for a person, known by their address."
            )
        if problem:
            return self.refused(record.number, record.cells, problem)
        key = normalise_organisation_name(organisation) if organisation else ""
        problem = self._earlier_rows_problem(record.number, organisation, key, email, org)
        if problem:
            return self.refused(record.number, record.cells, problem)
        return ParsedRow(
            record.number, record.cells, organisation, key, org, email, contact,
            consent=values.get("consent"),
        )  # fmt: skip

    @staticmethod
    def _row_problem(
        organisation: str, email: str, org: dict[str, Any], contact: dict[str, Any]
    ) -> str | None:
        if not organisation and not email:
            return "The row has neither an organisation nor an email address: it needs one or both."
        if not email and contact:
            who = contact.get("name") or "The contact"
            return (
                f"{who} has no email address, and a person is known by theirs: add it, or leave "
                "the person's details out to import the business alone."
            )
        if not organisation and org:
            names = ", ".join(FIELDS_BY_NAME[name].label for name in org)
            return f"The row gives a business's details ({names}) but no organisation name."
        return None

    def _earlier_rows_problem(
        self, number: int, organisation: str, key: str, email: str, org: dict[str, Any]
    ) -> str | None:
        if email and email in self._email_row:
            return (
                f"{email} is on row {self._email_row[email]} already: a person can be in a file "
                "once."
            )
        if key:
            first, given = self._org_given.get(key, (number, {}))
            for name, value in org.items():
                if name != "tags" and name in given and given[name] != value:
                    label = FIELDS_BY_NAME[name].label
                    return (
                        f"Row {first} gives {organisation}'s {label.lower()} as “{shown(given[name])}”; "
                        f"this row says “{shown(value)}”. Make them agree."
                    )
            merged = {**given, **{n: v for n, v in org.items() if n != "tags"}}
            self._org_given[key] = (first, merged)
        if email:
            self._email_row[email] = number
        return None

    def refused(self, number: int, cells: list[str], reason: str) -> RowOutcome:
        values = dict(self._cells_by_field(cells))
        return RowOutcome(
            number,
            RowAction.refused,
            organisation=storable(values.get("organisation", ""))[:200],
            email=storable(values.get("email", ""))[:254],
            detail=storable(reason),
            cells=[storable(cell[:REPORT_CELL]) for cell in cells],
        )

    def _cells_by_field(self, cells: list[str]) -> Iterator[tuple[str, str]]:
        for index, import_field in self.columns:
            if index < len(cells):
                yield import_field.name, " ".join(cells[index].split())
