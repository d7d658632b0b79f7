"""Reading one row of a spreadsheet for the directory: each mapped cell checked and turned into a
value, the row's shape checked (an organisation or an email, a person's details with their
email), and the row compared with the file's earlier rows, so that a file means one thing; or the
row refused, with the reason and its cells for the error report: docs/directory-import.md."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, or_, update

from chamber.core.csvimport import Record
from chamber.extensions import db
from chamber.members.import_fields import (
    CONTACT_FIELDS,
    FIELDS_BY_NAME,
    ORGANISATION_FIELDS,
    CellRefused,
    parse_cell,
)
from chamber.members.import_models import ImportJobKey, RowAction
from chamber.members.models import LegalForm, SizeBand
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


class EarlierRows:
    """What the file's earlier rows said, for the within-file checks: each address's first row,
    and each business's details as first given. This one holds them in memory (a file checked
    without a job); `StoredEarlierRows` keeps them in the database, so memory stays flat."""

    def __init__(self) -> None:
        self.emails: dict[str, int] = {}
        self.orgs: dict[str, tuple[int, dict[str, Any]]] = {}

    def load(
        self, emails: set[str], org_keys: set[str]
    ) -> tuple[dict[str, int], dict[str, tuple[int, dict[str, Any]]]]:
        """What earlier rows said of these addresses and businesses (at least those)."""
        return self.emails, self.orgs

    def save(
        self,
        emails: dict[str, int],
        orgs: dict[str, tuple[int, dict[str, Any]]],
        new_emails: list[str],
        changed_orgs: set[str],
    ) -> None:
        """Keep what this chunk added (`load`'s dictionaries, with the chunk's rows)."""


class StoredEarlierRows(EarlierRows):
    """The earlier rows' addresses and businesses in `import_job_key`, read and written a chunk
    at a time (a query to read, a statement or two to write): memory holds one chunk's."""

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self._stored_orgs: set[str] = set()  # the businesses of the chunk in hand stored before

    def load(
        self, emails: set[str], org_keys: set[str]
    ) -> tuple[dict[str, int], dict[str, tuple[int, dict[str, Any]]]]:
        found_emails: dict[str, int] = {}
        found_orgs: dict[str, tuple[int, dict[str, Any]]] = {}
        if emails or org_keys:
            rows = db.session.execute(
                db.select(
                    ImportJobKey.kind, ImportJobKey.key, ImportJobKey.row_number,
                    ImportJobKey.details,
                ).where(
                    ImportJobKey.job_id == self.job_id,
                    or_(
                        and_(ImportJobKey.kind == "email", ImportJobKey.key.in_(emails)),
                        and_(ImportJobKey.kind == "org", ImportJobKey.key.in_(org_keys)),
                    ),
                )
            )  # fmt: skip
            for kind, key, row_number, details in rows:
                if kind == "email":
                    found_emails[key] = row_number
                else:
                    found_orgs[key] = (row_number, _details_in(details or {}))
        self._stored_orgs = set(found_orgs)
        return found_emails, found_orgs

    def save(
        self,
        emails: dict[str, int],
        orgs: dict[str, tuple[int, dict[str, Any]]],
        new_emails: list[str],
        changed_orgs: set[str],
    ) -> None:
        inserts = [
            {"job_id": self.job_id, "kind": "email", "key": email, "row_number": emails[email]}
            for email in new_emails
        ]
        inserts += [
            {"job_id": self.job_id, "kind": "org", "key": key, "row_number": orgs[key][0],
             "details": _details_out(orgs[key][1])}
            for key in changed_orgs - self._stored_orgs
        ]  # fmt: skip
        if inserts:
            db.session.execute(insert(ImportJobKey), inserts)
        updates = [
            {"job_id": self.job_id, "kind": "org", "key": key,
             "details": _details_out(orgs[key][1])}
            for key in changed_orgs & self._stored_orgs
        ]  # fmt: skip
        if updates:
            db.session.execute(update(ImportJobKey), updates)


def _details_out(details: dict[str, Any]) -> dict[str, Any]:
    return {name: getattr(value, "value", value) for name, value in details.items()}


def _details_in(details: dict[str, Any]) -> dict[str, Any]:
    kinds = {"size_band": SizeBand, "legal_form": LegalForm}
    return {
        name: kinds[name](value) if name in kinds and value is not None else value
        for name, value in details.items()
    }


class RowReader:
    """Reads a file's rows in order, checking each against what earlier rows said (each
    person's row, each business's details as first given), a chunk at a time: `EarlierRows`
    holds that, in the database for a job, so memory does not grow with the file."""

    def __init__(self, mapping: Sequence[str], earlier: EarlierRows | None = None):
        self.columns = [(index, FIELDS_BY_NAME[name]) for index, name in enumerate(mapping) if name]
        self.earlier = earlier or EarlierRows()

    def read_chunk(self, records: Sequence[Record]) -> list[ParsedRow | RowOutcome]:
        """The chunk's rows read, each checked against the earlier rows and the chunk's own."""
        parsed = [self.read(record) for record in records]
        rows = [row for row in parsed if isinstance(row, ParsedRow)]
        emails, orgs = self.earlier.load(
            {row.email for row in rows if row.email}, {row.org_key for row in rows if row.org_key}
        )
        new_emails: list[str] = []
        changed_orgs: set[str] = set()
        checked: list[ParsedRow | RowOutcome] = []
        for row in parsed:
            if isinstance(row, ParsedRow):
                problem = self._earlier_rows_problem(row, emails, orgs, new_emails, changed_orgs)
                if problem:
                    row = self.refused(row.number, row.cells, problem)
            checked.append(row)
        self.earlier.save(emails, orgs, new_emails, changed_orgs)
        return checked

    def read(self, record: Record) -> ParsedRow | RowOutcome:
        """One row's cells checked and its shape (not yet what earlier rows said)."""
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

    @staticmethod
    def _earlier_rows_problem(
        row: ParsedRow,
        emails: dict[str, int],
        orgs: dict[str, tuple[int, dict[str, Any]]],
        new_emails: list[str],
        changed_orgs: set[str],
    ) -> str | None:
        if row.email and row.email in emails:
            return (
                f"{row.email} is on row {emails[row.email]} already: a person can be in a file "
                "once."
            )
        if row.org_key:
            first, given = orgs.get(row.org_key, (row.number, {}))
            for name, value in row.org.items():
                if name != "tags" and name in given and given[name] != value:
                    label = FIELDS_BY_NAME[name].label
                    return (
                        f"Row {first} gives {row.organisation}'s {label.lower()} as "
                        f"“{shown(given[name])}”; this row says “{shown(value)}”. Make them agree."
                    )
            merged = {**given, **{n: v for n, v in row.org.items() if n != "tags"}}
            if row.org_key not in orgs or merged != given:
                changed_orgs.add(row.org_key)
            orgs[row.org_key] = (first, merged)
        if row.email:
            emails[row.email] = row.number
            new_emails.append(row.email)
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
