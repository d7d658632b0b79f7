"""An import of a spreadsheet into the directory, kept with its file so that the worker can run it,
and the rows it reports on: docs/directory-import.md."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chamber.core.times import UTCDateTime, utcnow
from chamber.core.types import enum_type
from chamber.extensions import db
from chamber.members.models import SizeBand

if TYPE_CHECKING:
    from chamber.auth.models import StaffUser

MAX_FILE_BYTES = 20 * 1024 * 1024


class ImportStatus(enum.StrEnum):
    mapping = "mapping"  # uploaded: its columns are to be chosen
    queued = "queued"  # waiting for the worker
    running = "running"
    done = "done"
    cancelled = "cancelled"
    failed = "failed"

    @property
    def label(self) -> str:
        return {
            "mapping": "Choosing columns",
            "queued": "Waiting for the worker",
            "running": "Running",
            "done": "Done",
            "cancelled": "Cancelled",
            "failed": "Failed",
        }[self.value]

    @property
    def is_active(self) -> bool:
        return self in (ImportStatus.queued, ImportStatus.running)


class RowAction(enum.StrEnum):
    create = "create"
    update = "update"
    unchanged = "unchanged"
    refused = "refused"

    def label(self, dry_run: bool) -> str:
        if dry_run:
            return {"create": "Would create", "update": "Would update",
                    "unchanged": "Left alone", "refused": "Refused"}[self.value]  # fmt: skip
        return {"create": "Created", "update": "Updated",
                "unchanged": "Unchanged", "refused": "Refused"}[self.value]  # fmt: skip


class ImportJob(db.Model):
    """One uploaded file: its content (so the worker, on another host, can read it), how it is
    read and mapped, and the progress and outcome of its last run, a dry run or the import."""

    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size: Mapped[int]
    encoding: Mapped[str] = mapped_column(String(20))
    delimiter: Mapped[str] = mapped_column(String(2))
    header: Mapped[list[str]] = mapped_column(JSON)
    # One field name per column, "" for a column left out; None until staff (or the command) chose.
    mapping: Mapped[list[str] | None] = mapped_column(JSON)
    # The band a new business gets when its row has none (None: such rows are refused).
    default_size_band: Mapped[SizeBand | None] = mapped_column(enum_type(SizeBand))
    # The import's stated basis for consent (docs/directory-import.md, "Consent"): the wording the
    # people in the file agreed to, and its topics; none when `consent_topics` is empty.
    consent_wording: Mapped[str] = mapped_column(Text, default="", server_default="")
    consent_topics: Mapped[list[str] | None] = mapped_column(JSON)
    dry_run: Mapped[bool] = mapped_column(default=True)
    status: Mapped[ImportStatus] = mapped_column(
        enum_type(ImportStatus), default=ImportStatus.mapping
    )
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_done: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    refused: Mapped[int] = mapped_column(default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # A worker holds a running job by its lease; a job whose lease ran out is taken up again.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str] = mapped_column(Text, default="")
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    uploaded_by: Mapped[StaffUser | None] = relationship()

    @property
    def counts(self) -> dict[RowAction, int]:
        return {
            RowAction.create: self.created,
            RowAction.update: self.updated,
            RowAction.unchanged: self.unchanged,
            RowAction.refused: self.refused,
        }

    def progress(self, now: datetime) -> Progress:
        return Progress.of(self, now)


class ImportJobRow(db.Model):
    """What a run did (or, for a dry run, would do) with one row of the file. A dry run keeps
    every row, for the page that lists them; an import keeps its refusals, the error report."""

    __tablename__ = "import_job_row"
    __table_args__ = (UniqueConstraint("job_id", "row_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_job.id", ondelete="CASCADE"))
    row_number: Mapped[int]
    action: Mapped[RowAction] = mapped_column(enum_type(RowAction))
    organisation: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    # A refused row's cells as the file had them (each cut to REPORT_CELL characters), for the
    # error report that staff correct and import again.
    cells: Mapped[list[str] | None] = mapped_column(JSON)


class ImportJobKey(db.Model):
    """What a run has read of its file so far, for the within-file checks (a person once, a
    business described one way): each address with its first row, each business's details as
    first given. Kept here rather than in memory so that memory stays flat however long the
    file, and a run taken up by another worker goes on with the checks of the chunks done.
    Cleared when a run starts and when it ends."""

    __tablename__ = "import_job_key"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("import_job.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "email" or "org"
    key: Mapped[str] = mapped_column(String(254), primary_key=True)
    row_number: Mapped[int]
    details: Mapped[dict | None] = mapped_column(JSON)  # a business's, as first given


class Progress:
    """Rows done, rows a second and time left, for the page and the command line."""

    def __init__(self, done: int, total: int, seconds: float | None):
        self.done = done
        self.total = total
        self.seconds = seconds
        self.per_second = done / seconds if seconds and seconds > 0 and done else None
        left = max(total - done, 0)
        self.seconds_left = left / self.per_second if self.per_second else None
        self.percent = min(100, done * 100 // total) if total else 0

    @classmethod
    def of(cls, job: ImportJob, now: datetime) -> Progress:
        end = job.finished_at or now
        seconds = (end - job.started_at).total_seconds() if job.started_at else None
        return cls(job.rows_done, job.rows_total, seconds)
