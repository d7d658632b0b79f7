"""Importing a spreadsheet into the directory: each row (read by `import_rows.RowReader`) planned
against what the directory holds (create, update, left alone or refused, with the reason), and
written in chunks: docs/directory-import.md.

Rows are read as a stream and handled a chunk at a time (CHUNK_ROWS): the businesses and people a
chunk names are looked up in two queries, its new rows inserted and its changes written in bulk,
all inside one savepoint. If the database refuses the chunk (a booking created the same person
meanwhile, say), the savepoint is rolled back and the chunk is done again one row at a time,
each row in its own savepoint: a refused row leaves nothing behind, and a business and its
contact are written together or not at all. The caller owns the transaction: the worker and the
command commit each chunk with its progress; a page request commits once.

Matching: a business by its normalised name (`normalise_organisation_name`), a person by their
email address, lower-cased. An import is staff input, so it may change what the directory holds;
a blank cell never blanks a value, a business's name as the directory spells it is kept, and
tags are only ever added. Within one file a person may appear once, and a business's details
must agree from row to row (`RowReader` checks), so that importing the same file again changes
nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, insert, or_, update
from sqlalchemy.exc import DataError, IntegrityError

from chamber.core.csvimport import Record
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.members.import_fields import FIELDS_BY_NAME, ORGANISATION_FIELDS, mapping_problems
from chamber.members.import_models import ImportJobKey, RowAction
from chamber.members.import_rows import (
    ParsedRow,
    RowOutcome,
    RowReader,
    StoredEarlierRows,
    shown,
)
from chamber.members.models import (
    Consent,
    Contact,
    LegalForm,
    MarketingTopic,
    Organisation,
    OrganisationTag,
    SizeBand,
    TopicOptOut,
)
from chamber.members.services import legal_form_from_name

CHUNK_ROWS = 1000
# What one row can make the database refuse (a unique key taken meanwhile, a value it will not
# store); anything else (the database away) is not the row's fault and stops the run.
ROW_ERRORS = (IntegrityError, DataError)
_ORG_COLUMNS = ("id", "name", "name_normalised", *[
    name for name in ORGANISATION_FIELDS if name != "tags"
])  # fmt: skip
_CONTACT_COLUMNS = ("id", "email", "name", "job_title", "phone", "organisation_id")


class ImportRefused(Refusal):
    """An import that cannot start (a mapping without organisation or email, say)."""


IMPORT_SOURCE = "import"


@dataclass(frozen=True)
class StatedBasis:
    """The consent an import states its people gave (docs/directory-import.md, "Consent"): the
    wording they agreed to and its topics, recorded (source "import", confirmed at the time of
    the import, with who ran it) for every person in the file, or, when the file has a Consent
    column, for those whose cell says yes."""

    wording: str
    topics: tuple[MarketingTopic, ...]
    by: str  # who imported the file: a staff email, or "command line"


@dataclass
class _Writes:
    """What a chunk's plan changes, by key; written in bulk once the chunk is planned."""

    new_orgs: list[str] = field(default_factory=list)
    changed_orgs: dict[str, set[str]] = field(default_factory=dict)
    new_tags: list[tuple[str, str]] = field(default_factory=list)
    new_contacts: list[str] = field(default_factory=list)
    changed_contacts: dict[str, set[str]] = field(default_factory=dict)
    new_consents: list[tuple[str, tuple[MarketingTopic, ...]]] = field(default_factory=list)


class DryRunState:
    """What a dry run's earlier chunks would have written (a business's or a person's state, by
    key), since it writes nothing to the directory: in `import_job_key` for a job (kinds
    "dry_org" and "dry_cont"), so that memory stays flat however long the file; in memory
    without one."""

    SETS = ("tags", "consent_had", "consent_blocked")
    ENUMS = {"size_band": SizeBand, "legal_form": LegalForm}

    def __init__(self, job_id: int | None):
        self.job_id = job_id
        self.held: dict[tuple[str, str], dict[str, Any]] = {}
        # The keys of each kind the chunk in hand found stored (not all ever stored: that would
        # grow with the file).
        self.stored: dict[str, set[str]] = {}

    def read(self, kind: str, keys: set[str]) -> dict[str, dict[str, Any]]:
        if self.job_id is None:
            return {key: self.held[kind, key] for key in keys if (kind, key) in self.held}
        found: dict[str, dict[str, Any]] = {}
        if keys:
            for key, details in db.session.execute(
                db.select(ImportJobKey.key, ImportJobKey.details).where(
                    ImportJobKey.job_id == self.job_id,
                    ImportJobKey.kind == kind,
                    ImportJobKey.key.in_(list(keys)),
                )
            ):
                found[key] = self._state_in(details or {})
        self.stored[kind] = set(found)
        return found

    def keep(self, kind: str, states: dict[str, dict[str, Any]]) -> None:
        if self.job_id is None:
            self.held.update(((kind, key), state) for key, state in states.items())
            return
        rows: list[dict[str, Any]] = [
            {"job_id": self.job_id, "kind": kind, "key": key, "row_number": 0,
             "details": self._state_out(state)}
            for key, state in states.items()
        ]  # fmt: skip
        stored = self.stored.get(kind, set())
        new = [row for row in rows if row["key"] not in stored]
        known = [row for row in rows if row["key"] in stored]
        if new:
            db.session.execute(insert(ImportJobKey), new)
        if known:
            db.session.execute(update(ImportJobKey), known)

    def _state_out(self, state: dict[str, Any]) -> dict[str, Any]:
        return {
            name: sorted(value) if name in self.SETS else getattr(value, "value", value)
            for name, value in state.items()
        }

    def _state_in(self, details: dict[str, Any]) -> dict[str, Any]:
        state = dict(details)
        for name in self.SETS:
            if name in state:
                state[name] = set(state[name])
        for name, kind in self.ENUMS.items():
            if state.get(name) not in (None, ""):
                state[name] = kind(state[name])
        return state


def chunks(records: Iterable[Record], size: int = CHUNK_ROWS) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Importer:
    """Plans and (unless a dry run) writes a file's rows, a chunk at a time, in file order."""

    def __init__(
        self,
        header: Sequence[str],
        mapping: Sequence[str],
        *,
        dry_run: bool,
        default_size_band: SizeBand | None = None,
        consent: StatedBasis | None = None,
        job_id: int | None = None,
    ):
        problems = mapping_problems(header, mapping)
        if "consent" in mapping and consent is None:
            problems.append(
                "A Consent column says who consented, not to what: state the consent the "
                "people in the file gave (its wording and topics), or ignore the column."
            )
        if problems:
            raise ImportRefused(" ".join(problems))
        # A job's within-file checks are kept in the database, so memory stays flat.
        self.reader = RowReader(mapping, StoredEarlierRows(job_id) if job_id else None)
        self.consent = consent if consent is not None and consent.topics else None
        self.consent_column = "consent" in mapping
        self.size_band_column = "size_band" in mapping
        self.dry_run = dry_run
        self.default_size_band = default_size_band
        self.counts: Counter[RowAction] = Counter()
        # A dry run writes nothing, so what its earlier chunks would have written is kept here.
        self._dry = DryRunState(job_id)

    # --- one chunk ---------------------------------------------------------------------------------

    def run_chunk(self, records: Sequence[Record]) -> list[RowOutcome]:
        """Plan the chunk's rows and, unless a dry run, write them (flushed, not committed).

        On SQLite the transaction must have written before (the job's progress does): pysqlite
        begins a transaction at the first write, and a savepoint that began one would commit
        it when released."""
        parsed = self.reader.read_chunk(records)
        if self.dry_run:
            outcomes = self._plan_chunk(parsed, write=False)
        else:
            try:
                with db.session.begin_nested():
                    outcomes = self._plan_chunk(parsed, write=True)
            except ROW_ERRORS:  # a row the database refuses; an outage fails the whole run
                outcomes = [self._row_alone(row) for row in parsed]
        self.counts.update(outcome.action for outcome in outcomes)
        return outcomes

    def _plan_chunk(self, parsed: list[ParsedRow | RowOutcome], *, write: bool) -> list[RowOutcome]:
        rows = [row for row in parsed if isinstance(row, ParsedRow)]
        orgs = self._load_orgs({row.org_key for row in rows if row.org_key})
        contacts = self._load_contacts({row.email for row in rows if row.email})
        writes = _Writes()
        outcomes = [
            row if isinstance(row, RowOutcome) else self._plan(row, orgs, contacts, writes)
            for row in parsed
        ]
        if write:
            _write(writes, orgs, contacts, self.consent)
        else:
            self._dry.keep(
                "dry_org", {key: orgs[key] for key in [*writes.new_orgs, *writes.changed_orgs]}
            )
            emails = [
                *writes.new_contacts,
                *writes.changed_contacts,
                *(email for email, _topics in writes.new_consents),
            ]
            self._dry.keep("dry_cont", {email: contacts[email] for email in emails})
        return outcomes

    def _row_alone(self, row: ParsedRow | RowOutcome) -> RowOutcome:
        """One row in a savepoint of its own, after its chunk failed as a whole."""
        if isinstance(row, RowOutcome):
            return row
        try:
            with db.session.begin_nested():
                return self._plan_chunk([row], write=True)[0]
        except ROW_ERRORS as error:
            reason = str(getattr(error, "orig", None) or error).splitlines()[0][:300]
            return self.reader.refused(row.number, row.cells, f"The database refused it: {reason}")

    # --- what the directory holds -------------------------------------------------------------------

    def _load_orgs(self, keys: set[str]) -> dict[str, dict[str, Any]]:
        found = self._dry.read("dry_org", keys) if self.dry_run else {}
        wanted = list(keys - found.keys())
        if not wanted:
            return found
        columns = [getattr(Organisation, name) for name in _ORG_COLUMNS]
        by_id = {}
        for values in db.session.execute(
            db.select(*columns).where(Organisation.name_normalised.in_(wanted))
        ).mappings():
            state = {**values, "tags": set()}
            found[values["name_normalised"]] = by_id[values["id"]] = state
        if by_id:
            for organisation_id, tag in db.session.execute(
                db.select(OrganisationTag.organisation_id, OrganisationTag.tag).where(
                    OrganisationTag.organisation_id.in_(list(by_id))
                )
            ):
                by_id[organisation_id]["tags"].add(tag)
        return found

    def _load_contacts(self, emails: set[str]) -> dict[str, dict[str, Any]]:
        found = self._dry.read("dry_cont", emails) if self.dry_run else {}
        wanted = list(emails - found.keys())
        if wanted:
            columns = [getattr(Contact, name) for name in _CONTACT_COLUMNS]
            loaded = {}
            for values in db.session.execute(
                db.select(*columns).where(Contact.email.in_(wanted))
            ).mappings():
                found[values["email"]] = loaded[values["id"]] = {
                    **values, "org_key": None, "consent_had": set(), "consent_blocked": set(),
                }  # fmt: skip
            if self.consent is not None and loaded:
                self._load_consents(loaded)
        return found

    def _load_consents(self, by_id: dict[int, dict[str, Any]]) -> None:
        """Which of the stated topics each contact needs no consent recorded for (two queries):
        they have this import's consent already (so a file imported again changes nothing), or
        they withdrew a consent for it or opted out of it, which an import never overrides."""
        assert self.consent is not None
        topics = [topic.value for topic in self.consent.topics]
        for contact_id, purpose, withdrawn_at in db.session.execute(
            db.select(Consent.contact_id, Consent.purpose, Consent.withdrawn_at).where(
                Consent.contact_id.in_(list(by_id)),
                Consent.purpose.in_(topics),
                or_(
                    Consent.withdrawn_at.is_not(None),
                    and_(
                        Consent.source == IMPORT_SOURCE,
                        Consent.wording == self.consent.wording,
                        Consent.confirmed_at.is_not(None),
                    ),
                ),
            )
        ):
            kind = "consent_blocked" if withdrawn_at is not None else "consent_had"
            by_id[contact_id][kind].add(purpose)
        for contact_id, topic in db.session.execute(
            db.select(TopicOptOut.contact_id, TopicOptOut.topic).where(
                TopicOptOut.contact_id.in_(list(by_id)), TopicOptOut.topic.in_(topics)
            )
        ):
            by_id[contact_id]["consent_blocked"].add(MarketingTopic(topic).value)

    # --- planning a row ----------------------------------------------------------------------------

    def _plan(
        self,
        row: ParsedRow,
        orgs: dict[str, dict[str, Any]],
        contacts: dict[str, dict[str, Any]],
        writes: _Writes,
    ) -> RowOutcome:
        org = orgs.get(row.org_key) if row.org_key else None
        band = row.org.get("size_band") or self.default_size_band
        if row.org_key and org is None and band is None:
            return self.reader.refused(
                row.number,
                row.cells,
                f"{row.organisation} is new to the directory, and a new business needs a size "
                + (
                    "band: this row's Size band is empty, so fill it in, or choose a band for "
                    "new businesses."
                    if self.size_band_column
                    else "band: add a Size band column, or choose a band for new businesses."
                ),
            )
        matched: list[str] = []  # the business the row was taken to be, where spelled otherwise
        made: list[str] = []
        changes: list[str] = []
        notes: list[str] = []  # what the row's consent did not change, and why
        if row.org_key:
            if org is None:
                org = _new_org(row, band)  # type: ignore[arg-type]  # None refused above
                orgs[row.org_key] = org
                writes.new_orgs.append(row.org_key)
                writes.new_tags.extend((row.org_key, tag) for tag in sorted(org["tags"]))
                said = (
                    ""
                    if row.org.get("legal_form") or not org["legal_form"]
                    else (f", {org['legal_form'].label.split(' (')[0].lower()} by its name")
                )
                made.append(f"new business “{shown(row.organisation)}” ({shown(band)}{said})")
            else:
                if org["name"] != row.organisation.strip():  # the key matched another spelling
                    matched.append(f"matched “{shown(org['name'])}” in the directory")
                changes.extend(self._changes(org, row.org, writes.changed_orgs, row.org_key))
                added = [tag for tag in row.org.get("tags", ()) if tag not in org["tags"]]
                if added:
                    org["tags"].update(added)
                    writes.new_tags.extend((row.org_key, tag) for tag in added)
                    changes.append("tags: + " + ", ".join(added))
        if row.email:
            contact = contacts.get(row.email)
            if contact is None:
                contact = _new_contact(row)
                contacts[row.email] = contact
                writes.new_contacts.append(row.email)
                who = f"{shown(contact['name'])} <{row.email}>" if contact["name"] else row.email
                made.append(f"new contact {who}")
            else:
                changes.extend(
                    f"{row.email}: {change}"
                    for change in self._changes(
                        contact, row.contact, writes.changed_contacts, row.email
                    )
                )
                if org is not None and _moves(contact, org, row.org_key):
                    contact["org_key"] = row.org_key
                    writes.changed_contacts.setdefault(row.email, set()).add("organisation_id")
                    changes.append(f"{row.email}: now at {shown(row.organisation)}")
            notes.extend(self._plan_consent(row, contact, writes, made or changes))
        # A row that changes what the directory holds is an update, even where it also adds
        # someone: the totals then count every row that would change an existing record.
        action = RowAction.update if changes else RowAction.create if made else RowAction.unchanged
        detail = (
            "; ".join(matched + made + changes) or "Already in the directory as the file has it."
        )
        if notes:
            detail = f"{detail} {' '.join(notes)}"
        detail = detail[:1].upper() + detail[1:]
        return RowOutcome(row.number, action, row.organisation[:200], row.email, detail)

    def _plan_consent(
        self, row: ParsedRow, contact: dict[str, Any], writes: _Writes, changes: list[str]
    ) -> Iterator[str]:
        """The stated consent for this row's person, if it applies to them: recorded for each
        topic they do not have it for already; never for one they withdrew or opted out of."""
        if self.consent is None or (self.consent_column and row.consent is not True):
            return
        had, blocked = contact["consent_had"], contact["consent_blocked"]
        new = tuple(t for t in self.consent.topics if t.value not in had | blocked)
        if new:
            writes.new_consents.append((row.email, new))
            had.update(topic.value for topic in new)
            changes.append(f"{row.email}: consent to {_topic_words(new)} recorded")
        refused = [t for t in self.consent.topics if t.value in blocked]
        if refused:
            yield (
                f"Consent to {_topic_words(refused)} not recorded: {row.email} withdrew it or "
                "opted out, which an import never overrides."
            )

    @staticmethod
    def _changes(
        state: dict[str, Any], given: dict[str, Any], changed: dict[str, set[str]], key: str
    ) -> Iterator[str]:
        """Each value the file gives that differs from the directory's, applied to `state`."""
        for name, value in given.items():
            if name == "tags" or state.get(name) == value:
                continue
            before = state.get(name)
            state[name] = value
            changed.setdefault(key, set()).add(name)
            label = FIELDS_BY_NAME[name].label
            if before in (None, ""):
                yield f"{label.lower()}: “{shown(value)}” added"
            else:
                yield f"{label.lower()}: “{shown(before)}” → “{shown(value)}”"


def _moves(contact: dict[str, Any], org: dict[str, Any], org_key: str) -> bool:
    if contact["org_key"] is not None:
        return bool(contact["org_key"] != org_key)
    return org["id"] is None or contact["organisation_id"] != org["id"]


def _new_org(row: ParsedRow, band: SizeBand) -> dict[str, Any]:
    values = {name: row.org.get(name) for name in ORGANISATION_FIELDS if name != "tags"}
    return {
        **{name: ("" if value is None else value) for name, value in values.items()},
        "id": None,
        "name": row.organisation,
        "name_normalised": row.org_key,
        "size_band": band,
        "legal_form": row.org.get("legal_form") or legal_form_from_name(row.organisation),
        "is_member": bool(row.org.get("is_member", False)),
        "tags": set(row.org.get("tags", ())),
    }


def _topic_words(topics: Sequence[MarketingTopic]) -> str:
    return ", ".join(topic.value for topic in topics)


def _new_contact(row: ParsedRow) -> dict[str, Any]:
    return {
        "consent_had": set(),
        "consent_blocked": set(),
        "id": None,
        "email": row.email,
        "name": row.contact.get("name", ""),
        "job_title": row.contact.get("job_title", ""),
        "phone": row.contact.get("phone", ""),
        "organisation_id": None,
        "org_key": row.org_key or None,
    }


# --- writing a chunk ------------------------------------------------------------------------------


def _write(
    writes: _Writes,
    orgs: dict[str, dict[str, Any]],
    contacts: dict[str, dict[str, Any]],
    consent: StatedBasis | None = None,
) -> None:
    """The chunk's inserts and updates, a few statements each run for many rows (executemany)."""
    now = utcnow()
    if writes.new_orgs:
        rows = [_org_insert(orgs[key], now) for key in writes.new_orgs]
        inserted = db.session.execute(
            insert(Organisation).returning(
                Organisation.id, Organisation.name_normalised, sort_by_parameter_order=True
            ),
            rows,
        )
        for organisation_id, key in inserted:
            orgs[key]["id"] = organisation_id
    if writes.changed_orgs:
        db.session.execute(
            update(Organisation),
            [
                {"id": orgs[key]["id"], "updated_at": now, **{n: orgs[key][n] for n in names}}
                for key, names in writes.changed_orgs.items()
            ],
        )
    if writes.new_tags:
        db.session.execute(
            insert(OrganisationTag),
            [{"organisation_id": orgs[key]["id"], "tag": tag} for key, tag in writes.new_tags],
        )
    for contact in (contacts[email] for email in [*writes.new_contacts, *writes.changed_contacts]):
        if contact["org_key"] is not None:
            contact["organisation_id"] = orgs[contact["org_key"]]["id"]
    if writes.new_contacts:
        inserted = db.session.execute(
            insert(Contact).returning(Contact.id, Contact.email, sort_by_parameter_order=True),
            [
                {name: contacts[email][name] for name in _CONTACT_COLUMNS if name != "id"}
                | {"created_at": now}
                for email in writes.new_contacts
            ],
        )
        for contact_id, email in inserted:
            contacts[email]["id"] = contact_id
    if writes.changed_contacts:
        db.session.execute(
            update(Contact),
            [
                {"id": contacts[email]["id"], "updated_at": now,
                 **{name: contacts[email][name] for name in names}}
                for email, names in writes.changed_contacts.items()
            ],
        )  # fmt: skip
    if writes.new_consents and consent is not None:
        db.session.execute(
            insert(Consent),
            [
                {"contact_id": contacts[email]["id"], "purpose": topic.value,
                 "wording": consent.wording, "source": IMPORT_SOURCE, "given_at": now,
                 "confirmed_at": now, "recorded_by": consent.by}
                for email, topics in writes.new_consents
                for topic in topics
            ],
        )  # fmt: skip


def _org_insert(state: dict[str, Any], now: object) -> dict[str, Any]:
    values = {name: state[name] for name in _ORG_COLUMNS if name != "id"}
    if values.get("legal_form") in (None, ""):
        values.pop("legal_form", None)  # the column's default: not known
    return values | {"created_at": now, "updated_at": now}
