"""Import jobs: an uploaded file checked and kept, its columns chosen, and its runs (a dry run, then
the import), in the request for a small file and in the worker for a large one, with progress,
cancelling and the report of refused rows: docs/directory-import.md.

A job runs a chunk of rows per transaction (`importing.CHUNK_ROWS`), committing the chunk's rows
with the job's progress, so that what the page shows is what was written, a cancelled job keeps
every chunk before it, and a worker that dies leaves a job another worker takes up after the
lease, from the first chunk not written. One worker holds a job at a time: the claim is a
conditional UPDATE checked by its row count, and each chunk renews it.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, Select, delete, func, insert, or_, update

from chamber.core import csvimport
from chamber.core.forms import text_problem
from chamber.core.times import utcnow
from chamber.core.transactions import rows_changed, unit_of_work
from chamber.extensions import db
from chamber.members.import_fields import auto_mapping, mapping_problems
from chamber.members.import_models import (
    MAX_FILE_BYTES,
    ImportJob,
    ImportJobKey,
    ImportJobRow,
    ImportStatus,
    RowAction,
)
from chamber.members.import_rows import RowOutcome, storable
from chamber.members.importing import Importer, ImportRefused, StatedBasis, chunks
from chamber.members.models import MarketingTopic, SizeBand

# A file with at most this many rows is run in the request that starts it; a larger one by the
# worker, with progress on its page.
RUN_IN_REQUEST_ROWS = 1000
LEASE = timedelta(minutes=5)  # renewed with every chunk
PREVIEW_ROWS = 5
PREVIEW_CELL = 80
COUNTED = {RowAction.create: "created", RowAction.update: "updated",
           RowAction.unchanged: "unchanged", RowAction.refused: "refused"}  # fmt: skip


# --- a new job ------------------------------------------------------------------------------------


def create_job(file_name: str, content: bytes, *, by: object | None = None) -> ImportJob:
    """A job for an uploaded file, its format found and its rows counted; ImportRefused (on the
    form's `file` field) for a file too big, empty or unreadable, with the reason."""
    if len(content) > MAX_FILE_BYTES:
        raise ImportRefused(
            f"The file is {len(content) / 1024 / 1024:.1f} MB; at most "
            f"{MAX_FILE_BYTES // 1024 // 1024} MB can be imported at once. Split it into smaller "
            "files.",
            field="file",
        )
    stream = io.BytesIO(content)
    try:
        sheet = csvimport.detect_format(stream)
        header = csvimport.header_of(stream, sheet)
    except csvimport.SheetUnreadable as unreadable:
        raise ImportRefused(unreadable.message, field="file") from unreadable
    rows = sum(1 for _ in csvimport.records(stream, sheet)) - 1
    if rows < 1:
        raise ImportRefused(
            "The file has a row of column names but no rows under it.", field="file"
        )
    job = ImportJob(
        file_name=_file_name(file_name),
        content=content,
        size=len(content),
        encoding=sheet.encoding,
        delimiter=sheet.delimiter,
        header=header,
        mapping=None,
        rows_total=rows,
        uploaded_by=by,
    )
    db.session.add(job)
    db.session.flush()
    return job


def _file_name(name: str) -> str:
    """The upload's name as shown on the page: no control characters, white space collapsed."""
    printable = "".join(ch for ch in name if ch.isprintable() or ch == " ")
    return " ".join(printable.split())[:255] or "upload.csv"


def sheet_format(job: ImportJob) -> csvimport.SheetFormat:
    return csvimport.SheetFormat(job.encoding, job.delimiter)


PIECE_BYTES = 1 << 20  # a stored file is read a megabyte at a time


class StoredFile(io.RawIOBase):
    """A committed job's file, read from the database a piece at a time (`substr` of the
    column, on a connection of its own, outside the run's transactions), so that a run holds
    one piece of the file, never the whole of it. Wrapped in a BufferedReader of PIECE_BYTES."""

    def __init__(self, job_id: int, size: int):
        self.job_id, self.size, self.position = job_id, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), PIECE_BYTES, self.size - self.position)
        if wanted <= 0:
            return 0
        piece = func.substr(ImportJob.content, self.position + 1, wanted, type_=LargeBinary)
        with db.engine.connect() as connection:
            data = bytes(
                connection.scalar(db.select(piece).where(ImportJob.id == self.job_id)) or b""
            )
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def data_records(
    job: ImportJob, *, skip: int = 0, stored: bool = False
) -> Iterator[csvimport.Record]:
    """The file's rows after the header, less the first `skip`, streamed from the job's content:
    from the database a piece at a time when `stored` (a committed job: the worker and the
    command), or from the content loaded whole (a small file run in its page request)."""
    stream: Any = (
        io.BufferedReader(StoredFile(job.id, job.size), buffer_size=PIECE_BYTES)
        if stored
        else io.BytesIO(job.content)
    )
    rows = csvimport.records(stream, sheet_format(job))
    next(rows, None)  # the header
    return islice(rows, skip, None)


def preview(job: ImportJob, count: int = PREVIEW_ROWS) -> list[list[str]]:
    """The first rows, each cell cut short, one cell per column of the header."""
    width = len(job.header)
    shown = []
    for record in islice(data_records(job), count):
        cells = [*record.cells[:width], *[""] * (width - len(record.cells))]
        shown.append([c if len(c) <= PREVIEW_CELL else c[: PREVIEW_CELL - 1] + "…" for c in cells])
    return shown


def suggested_mapping(job: ImportJob) -> list[str]:
    return job.mapping or auto_mapping(job.header)


CONSENT_WORDING_MAX = 1000


def _stated_basis_problem(wording: str, topics: Sequence[MarketingTopic]) -> ImportRefused | None:
    if topics and not wording:
        return ImportRefused(
            "Enter the wording the people in the file agreed to, or choose no topics.",
            field="consent_wording",
        )
    if wording and not topics:
        return ImportRefused(
            "Choose the topics the people in the file agreed to hear about.",
            field="consent_topics",
        )
    if len(wording) > CONSENT_WORDING_MAX:
        return ImportRefused(
            f"The wording can be at most {CONSENT_WORDING_MAX:,} characters.",
            field="consent_wording",
        )
    problem = text_problem(wording, multiline=True)
    if problem:
        return ImportRefused(f"The wording {problem}", field="consent_wording")
    return None


def save_mapping(
    job: ImportJob,
    mapping: Sequence[str],
    default_size_band: SizeBand | None,
    *,
    consent_wording: str = "",
    consent_topics: Sequence[MarketingTopic] = (),
) -> None:
    """The columns' fields, the size band for new businesses, and the stated basis for consent
    (the wording the file's people agreed to, and its topics; none when both are empty)."""
    if job.status.is_active:
        raise ImportRefused("The file is being imported; its columns cannot change now.")
    if job.status == ImportStatus.done and not job.dry_run:
        raise ImportRefused("This file has been imported; upload it again to import it again.")
    problems = mapping_problems(job.header, mapping)
    if problems:
        raise ImportRefused(" ".join(problems))
    wording = consent_wording.strip()
    topics = list(dict.fromkeys(consent_topics))
    refused = _stated_basis_problem(wording, topics)
    if refused is not None:
        raise refused
    if "consent" in mapping and not topics:
        raise ImportRefused(
            "A Consent column says who consented, not to what: enter the wording they agreed "
            "to and its topics below, or ignore the column.",
            field="consent_wording",
        )
    job.mapping = list(mapping)
    job.default_size_band = default_size_band
    job.consent_wording = wording
    job.consent_topics = [topic.value for topic in topics] or None
    db.session.flush()


# --- starting, cancelling -------------------------------------------------------------------------


def start(job: ImportJob, *, dry_run: bool, in_request: bool = True) -> None:
    """Queue a run of the job (a dry run, or the import); a small file is run at once, in this
    transaction, when `in_request`. Its earlier run's counts and rows are cleared.

    Two staff pressing "Import" at once: the move to queued is a conditional UPDATE, so the
    second finds the job taken and is refused rather than running the file twice."""
    if job.mapping is None:
        raise ImportRefused("Choose the columns first.")
    if job.status == ImportStatus.done and not job.dry_run:
        raise ImportRefused("This file has been imported already.")
    if job.size == 0:  # deleted by an erasure (`privacy.erasure`): nothing left to read
        raise ImportRefused(
            "This file was deleted, as it held the data of someone the Chamber erased on their "
            "request. Upload it again without them."
        )
    startable = ~ImportJob.status.in_([ImportStatus.queued, ImportStatus.running]) & ~(
        (ImportJob.status == ImportStatus.done) & ImportJob.dry_run.is_(False)
    )
    queued = rows_changed(
        update(ImportJob)
        .where(ImportJob.id == job.id, startable)
        .values(
            dry_run=dry_run, status=ImportStatus.queued, rows_done=0, created=0, updated=0,
            unchanged=0, refused=0, cancel_requested=False, error="", started_at=None,
            finished_at=None, claimed_by=None, lease_until=None,
        )
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    db.session.refresh(job)
    if not queued:
        raise ImportRefused(
            "This file has been imported already."
            if job.status == ImportStatus.done
            else "This file is being imported already; its progress is below."
        )
    db.session.execute(delete(ImportJobRow).where(ImportJobRow.job_id == job.id))
    forget_keys(job.id)
    if in_request and job.rows_total <= RUN_IN_REQUEST_ROWS:
        _run_here(job)


def _run_here(job: ImportJob) -> None:
    """Every chunk in the current transaction (a page request commits it once)."""
    job.status = ImportStatus.running
    job.started_at = utcnow()
    db.session.flush()  # the transaction's first write, before any savepoint
    importer = _importer(job)
    for chunk in chunks(data_records(job)):
        _record_chunk(job.id, importer.run_chunk(chunk), importer.dry_run, len(chunk))
    db.session.refresh(job)
    job.status = ImportStatus.done
    job.finished_at = utcnow()
    forget_keys(job.id)
    db.session.flush()


def forget_keys(job_id: int) -> None:
    """The within-file checks' addresses and businesses, once a run starts afresh or ends."""
    db.session.execute(delete(ImportJobKey).where(ImportJobKey.job_id == job_id))


def _importer(job: ImportJob) -> Importer:
    assert job.mapping is not None
    return Importer(
        job.header,
        job.mapping,
        dry_run=job.dry_run,
        default_size_band=job.default_size_band,
        consent=stated_basis(job),
        job_id=job.id,
    )


def stated_basis(job: ImportJob) -> StatedBasis | None:
    """The consent the job's file states its people gave, if any."""
    if not job.consent_topics:
        return None
    topics = tuple(MarketingTopic(t) for t in job.consent_topics if t in MarketingTopic.__members__)
    by = job.uploaded_by.email if job.uploaded_by is not None else "command line"
    return StatedBasis(job.consent_wording, topics, by)


def cancel(job: ImportJob) -> None:
    """Stop a job: one waiting stops now; a running one at its next chunk, keeping the chunks
    written (each whole)."""
    now = utcnow()
    stopped = rows_changed(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.status == ImportStatus.queued)
        .values(status=ImportStatus.cancelled, finished_at=now, cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    if not stopped:
        asked = rows_changed(
            update(ImportJob)
            .where(ImportJob.id == job.id, ImportJob.status == ImportStatus.running)
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )
        if not asked:
            raise ImportRefused("This import is not running, so there is nothing to cancel.")
    db.session.expire(job)


# --- the worker's side ----------------------------------------------------------------------------


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        ImportJob.status == ImportStatus.queued,
        (ImportJob.status == ImportStatus.running) & (ImportJob.lease_until < now),
    )


def claim_next(worker_id: str, now: datetime | None = None) -> tuple[int, str] | None:
    """For the worker: the oldest job waiting (or one whose worker's lease ran out), claimed and
    committed, as (job id, claim); None if there is none or another worker took it first."""
    now = now or utcnow()
    with unit_of_work():
        job_id = db.session.scalar(
            db.select(ImportJob.id).where(_claimable(now)).order_by(ImportJob.id).limit(1)
        )
        claim = _claim(job_id, worker_id, now) if job_id is not None else None
    return (job_id, claim) if job_id is not None and claim else None


def claim(job_id: int, worker_id: str) -> str | None:
    """For the command line: this job, claimed and committed; None if a worker has it."""
    with unit_of_work():
        return _claim(job_id, worker_id, utcnow())


def _claim(job_id: int, worker_id: str, now: datetime) -> str | None:
    """A conditional UPDATE checked by its row count: two workers never both take a job."""
    claim = f"{worker_id}:{uuid.uuid4().hex[:12]}"[:64]
    taken = rows_changed(
        update(ImportJob)
        .where(ImportJob.id == job_id, _claimable(now))
        .values(
            status=ImportStatus.running,
            claimed_by=claim,
            lease_until=now + LEASE,
            started_at=func.coalesce(ImportJob.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    return claim if taken else None


def run_claimed(
    job_id: int,
    claim: str,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[ImportJob], None] | None = None,
) -> ImportJob:
    """Run a claimed job to its end, a committed chunk at a time, from its first row not done.
    It ends done, cancelled (asked for), handed back (`should_stop`: queued again for any
    worker) or failed (an error no row explains, with its message); a lost lease ends it quietly."""
    with unit_of_work():
        job = db.session.get(ImportJob, job_id)
        assert job is not None
        importer = _importer(job)
        records = data_records(job, skip=job.rows_done, stored=True)
    try:
        for chunk in chunks(records):
            with unit_of_work():
                state = _keep_claim(job_id, claim)
                if state is None:
                    return job  # another worker took it over
                if state:  # cancel asked for
                    _finish(job_id, claim, ImportStatus.cancelled)
                    return _reread(job_id)
                if should_stop():
                    _hand_back(job_id, claim)
                    return _reread(job_id)
                _record_chunk(job_id, importer.run_chunk(chunk), importer.dry_run, len(chunk))
            if on_progress:
                on_progress(_reread(job_id))
        with unit_of_work():
            _finish(job_id, claim, ImportStatus.done)
    except Exception as error:  # one bad file must not stop the worker: the job is failed instead
        db.session.rollback()
        with unit_of_work():
            _finish(job_id, claim, ImportStatus.failed, error=f"{type(error).__name__}: {error}")
        raise
    except BaseException:  # Ctrl-C on the command line: what was written stays
        db.session.rollback()
        with unit_of_work():
            _finish(job_id, claim, ImportStatus.cancelled, error="Stopped by an interrupt.")
        raise
    return _reread(job_id)


def _reread(job_id: int) -> ImportJob:
    job = db.session.get(ImportJob, job_id, populate_existing=True)
    assert job is not None
    return job


def _keep_claim(job_id: int, claim: str) -> bool | None:
    """Renew the lease (the chunk's first write); None if the claim was lost, else whether
    staff asked for the job to stop."""
    kept = rows_changed(
        update(ImportJob)
        .where(
            ImportJob.id == job_id,
            ImportJob.claimed_by == claim,
            ImportJob.status == ImportStatus.running,
        )
        .values(lease_until=utcnow() + LEASE)
        .execution_options(synchronize_session=False)
    )
    if not kept:
        return None
    return bool(
        db.session.scalar(db.select(ImportJob.cancel_requested).where(ImportJob.id == job_id))
    )


def _record_chunk(job_id: int, outcomes: list[RowOutcome], dry_run: bool, rows: int) -> None:
    """A chunk's counts and progress, and its rows for the page (every row of a dry run, the
    refusals of an import)."""
    kept = [outcome for outcome in outcomes if dry_run or outcome.action == RowAction.refused]
    if kept:
        db.session.execute(
            insert(ImportJobRow),
            [
                {"job_id": job_id, "row_number": o.number, "action": o.action,
                 "organisation": o.organisation, "email": o.email, "detail": o.detail,
                 "cells": o.cells}
                for o in kept
            ],
        )  # fmt: skip
    counts = {name: 0 for name in COUNTED.values()}
    for outcome in outcomes:
        counts[COUNTED[outcome.action]] += 1
    db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(
            rows_done=ImportJob.rows_done + rows,
            **{name: getattr(ImportJob, name) + count for name, count in counts.items()},
        )
        .execution_options(synchronize_session=False)
    )


def _finish(job_id: int, claim: str, status: ImportStatus, *, error: str = "") -> None:
    ended = rows_changed(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.claimed_by == claim)
        .values(
            status=status,
            finished_at=utcnow(),
            claimed_by=None,
            lease_until=None,
            error=storable(error)[:2000],
        )
        .execution_options(synchronize_session=False)
    )
    if ended:  # still ours: its within-file checks are done with
        forget_keys(job_id)


def _hand_back(job_id: int, claim: str) -> None:
    db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.claimed_by == claim)
        .values(status=ImportStatus.queued, claimed_by=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


# --- what the pages read --------------------------------------------------------------------------


def recent_jobs(limit: int = 20) -> list[ImportJob]:
    return list(db.session.scalars(db.select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)))


def job_rows(job: ImportJob, action: RowAction | None = None) -> Select[Any]:
    """A select of the job's rows in file order, for `core.pagination.paginate`."""
    query: Select[Any] = db.select(ImportJobRow).where(ImportJobRow.job_id == job.id)
    if action is not None:
        query = query.where(ImportJobRow.action == action)
    return query.order_by(ImportJobRow.row_number)


def refused_rows(job: ImportJob) -> Iterator[ImportJobRow]:
    yield from db.session.scalars(job_rows(job, RowAction.refused).execution_options(yield_per=500))


def report_rows(job: ImportJob) -> Iterator[list[object]]:
    """The error report's rows: the row number, the reason, then the row's cells as the file had
    them (so that staff can correct the report and import it again)."""
    for row in refused_rows(job):
        yield [row.row_number, row.detail, *(row.cells or [])]


def report_header(job: ImportJob) -> list[str]:
    return ["Row", "Why it was refused", *job.header]
