"""Importing a spreadsheet into the directory: every format Excel and LibreOffice save, columns that
map themselves, the dry run, matching and updating, a second import changing nothing, hostile
files refused clearly, the worker (progress, cancelling, one job at a time) and the command."""

from __future__ import annotations

import csv
import io

import pytest

from chamber.core.csvexport import BOM
from chamber.core.transactions import unit_of_work
from chamber.extensions import db
from chamber.members import import_jobs
from chamber.members.import_fields import auto_mapping
from chamber.members.import_models import ImportJob, ImportJobKey, ImportStatus, RowAction
from chamber.members.importing import ImportRefused
from chamber.members.models import Contact, LegalForm, Organisation, SizeBand
from chamber.worker import Worker

HEADER = "Organisation,Name,Email,Job title,Phone,Member,Size band,Sector,Town,Postcode,Tags,Notes"


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def run(content: bytes, *, dry_run: bool = False, band: SizeBand | None = None, mapping=None):
    """Upload, map automatically (or as given) and run, in one committed transaction."""
    with unit_of_work():
        job = import_jobs.create_job("members.csv", content)
        import_jobs.save_mapping(job, mapping or import_jobs.suggested_mapping(job), band)
        import_jobs.start(job, dry_run=dry_run)
    return job


def outcomes(job: ImportJob) -> dict[int, tuple[RowAction, str]]:
    return {
        r.row_number: (r.action, r.detail) for r in db.session.scalars(import_jobs.job_rows(job))
    }


def organisations() -> dict[str, Organisation]:
    return {o.name: o for o in db.session.scalars(db.select(Organisation))}


def contacts() -> dict[str, Contact]:
    return {c.email: c for c in db.session.scalars(db.select(Contact))}


OCTREE_ROW = (
    "Octree Ltd,Tony Richardson,Tony@Octree.co.uk,Director,01438 000000,yes,12,IT services,"
    'Stevenage,sg1 1hs,"board, sponsor",Speaker at the seminar'
)


# --- formats --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "delimiter", "expected"),
    [
        ("utf-8", ",", ("utf-8", ",")),
        ("utf-8-sig", ",", ("utf-8-sig", ",")),  # Excel's "CSV UTF-8"
        ("utf-8-sig", ";", ("utf-8-sig", ";")),  # Excel where the decimal mark is a comma
        ("cp1252", ",", ("cp1252", ",")),  # Excel's plain "CSV" on Windows
        ("cp1252", ";", ("cp1252", ";")),
        ("utf-8", "\t", ("utf-8", "\t")),
        ("utf-16", "\t", ("utf-16", "\t")),  # Excel's "Unicode text"
    ],
)
def test_every_format_spreadsheets_save_is_read(app, encoding, delimiter, expected):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["Company", "Contact name", "E-mail address", "Employees", "Notes"])
    writer.writerow(["Café £ Ltd", "Zoë Brontë", "zoe@cafe.example", "7", "Owes £20;\nsee é"])
    writer.writerow(["Deli, Bakery & Co", "Ann", "ann@deli.example", "60", ""])
    job = run(buffer.getvalue().encode(encoding))

    assert (job.encoding, job.delimiter) == expected
    assert job.counts[RowAction.create] == 2
    cafe = organisations()["Café £ Ltd"]
    assert (cafe.size_band, cafe.notes) == (SizeBand.micro, "Owes £20;\nsee é")
    assert organisations()["Deli, Bakery & Co"].size_band == SizeBand.medium
    assert contacts()["zoe@cafe.example"].name == "Zoë Brontë"


def test_a_quoted_line_break_is_kept_in_notes_but_refused_in_a_one_line_field(app):
    job = run(csv_text(
        'Octree Ltd,,,,,,small,,,,,"Line one\nLine two"',
        'Bad Ltd,"Jo\nBloggs",jo@bad.example,,,,small,,,,,',
    ).encode())  # fmt: skip

    assert organisations()["Octree Ltd"].notes == "Line one\nLine two"
    assert outcomes(job)[3] == (RowAction.refused, "Name must be on one line.")
    assert "Bad Ltd" not in organisations()


@pytest.mark.parametrize(
    ("heading", "field"),
    [
        ("Organisation", "organisation"), ("ORGANIZATION NAME", "organisation"),
        ("Company", "organisation"), ("Business name", "organisation"),
        ("Full name", "name"), ("contact_name", "name"), ("First name", "first_name"),
        ("Surname", "last_name"), ("E-mail", "email"), (" Email Address ", "email"),
        ("Position", "job_title"), ("Role", "job_title"), ("Tel.", "phone"), ("Mobile", "phone"),
        ("Member?", "is_member"), ("Membership", "is_member"), ("Tier", "membership_tier"),
        ("Size", "size_band"), ("No. of employees", ""), ("Employees", "size_band"),
        ("Industry", "sector"), ("City", "town_or_postcode"), ("Post code", "postcode"),
        ("ZIP", "postcode"), ("Web", "website"), ("Company type", "legal_form"),
        ("Tags", "tags"), ("Notes", "notes"), ("Favourite colour", ""),
    ],
)  # fmt: skip
def test_columns_whose_heading_names_a_field_map_themselves(heading, field):
    assert auto_mapping([heading]) == [field]


def test_a_field_is_mapped_from_its_first_column_only():
    assert auto_mapping(["Email", "E-mail", "Company"]) == ["email", "", "organisation"]


def test_first_and_last_names_are_joined(app):
    content = "Company,First name,Last name,Email,Size\r\nOctree,Tony,Richardson,t@o.example,5\r\n"
    run(content.encode())
    assert contacts()["t@o.example"].name == "Tony Richardson"


# --- what an import does --------------------------------------------------------------------------


def test_a_dry_run_lists_each_row_and_writes_nothing(app):
    job = run(
        csv_text(OCTREE_ROW, "Nobody,,,,,,,,,,,", ",,,,,,,,,,,Just a note").encode(), dry_run=True
    )

    assert organisations() == {} and contacts() == {}
    assert job.status == ImportStatus.done and job.dry_run
    rows = outcomes(job)
    assert rows[2][0] == RowAction.create
    assert "New business “Octree Ltd” (small, limited company by its name)" in rows[2][1]
    assert "new contact Tony Richardson <tony@octree.co.uk>" in rows[2][1]
    assert rows[3] == (
        RowAction.refused,
        "Nobody is new to the directory, and a new business needs a size band: this row's Size "
        "band is empty, so fill it in, or choose a band for new businesses.",
    )
    assert rows[4] == (
        RowAction.refused,
        "The row has neither an organisation nor an email address: it needs one or both.",
    )


def test_an_import_creates_businesses_and_contacts_with_every_field(app):
    job = run(csv_text(OCTREE_ROW).encode())

    octree = organisations()["Octree Ltd"]
    assert (octree.name_normalised, octree.is_member, octree.size_band) == (
        "octree",
        True,
        SizeBand.small,
    )
    assert (octree.sector, octree.town_or_postcode, octree.postcode) == (
        "IT services",
        "Stevenage",
        "SG1 1HS",
    )
    assert octree.tag_names == ["board", "sponsor"]
    assert octree.notes == "Speaker at the seminar"
    tony = contacts()["tony@octree.co.uk"]
    assert (tony.name, tony.job_title, tony.phone, tony.organisation_id) == (
        "Tony Richardson", "Director", "01438 000000", octree.id,
    )  # fmt: skip
    assert job.counts == {RowAction.create: 1, RowAction.update: 0, RowAction.unchanged: 0,
                          RowAction.refused: 0}  # fmt: skip


def test_importing_the_same_file_twice_changes_nothing(app):
    content = csv_text(
        OCTREE_ROW,
        "OCTREE LIMITED,Jo Bloggs,jo@octree.co.uk,,,,,,,,sponsor,",  # the same business
        ",Solo Person,solo@example.com,,,,,,,,,",
        "The Bakery & Co,,,,,no,250+,Food,Hitchin,,,",
    ).encode()
    first = run(content)
    before = {name: (o.updated_at, o.tag_names) for name, o in organisations().items()}

    second = run(content)

    assert first.counts[RowAction.create] == 4
    assert second.counts == {RowAction.create: 0, RowAction.update: 0, RowAction.unchanged: 4,
                             RowAction.refused: 0}  # fmt: skip
    db.session.expire_all()
    assert {name: (o.updated_at, o.tag_names) for name, o in organisations().items()} == before
    assert len(contacts()) == 3


def test_an_import_updates_what_the_file_says_and_never_blanks_a_value(app):
    run(csv_text(OCTREE_ROW).encode())
    job = run(csv_text(
        "Octree,Tony R.,TONY@octree.co.uk,,,no,,Cyber security,,,new-tag,",
    ).encode())  # fmt: skip

    octree = organisations()["Octree Ltd"]  # the directory's spelling of the name is kept
    assert (octree.sector, octree.is_member, octree.town_or_postcode, octree.postcode) == (
        "Cyber security", False, "Stevenage", "SG1 1HS",
    )  # fmt: skip
    assert octree.tag_names == ["board", "new-tag", "sponsor"]  # added, never removed
    assert octree.notes == "Speaker at the seminar"
    tony = contacts()["tony@octree.co.uk"]
    assert (tony.name, tony.job_title, tony.phone) == ("Tony R.", "Director", "01438 000000")
    assert job.counts[RowAction.update] == 1
    assert outcomes(job) == {}  # an import keeps only its refusals; a dry run lists every row


def test_the_dry_run_says_what_would_change(app):
    run(csv_text(OCTREE_ROW).encode())
    job = run(csv_text("Octree,,tony@octree.co.uk,,,,,Cyber security,,,,").encode(), dry_run=True)
    assert outcomes(job)[2] == (
        RowAction.update,
        "Matched “Octree Ltd” in the directory; sector: “IT services” → “Cyber security”",
    )


def test_a_contact_named_at_another_business_moves_to_it(app):
    run(csv_text(OCTREE_ROW).encode())
    job = run(
        csv_text("Richardson Consulting,,tony@octree.co.uk,,,,micro,,,,,").encode(), dry_run=True
    )
    assert outcomes(job)[2] == (
        RowAction.update,  # it moves someone the directory holds
        "New business “Richardson Consulting” (micro); tony@octree.co.uk: now at Richardson Consulting",
    )
    run(csv_text("Richardson Consulting,,tony@octree.co.uk,,,,micro,,,,,").encode())
    assert contacts()["tony@octree.co.uk"].organisation.name == "Richardson Consulting"


def test_a_default_size_band_lets_new_businesses_in(app):
    run(csv_text("Nobody Ltd,,,,,,,,,,,").encode(), band=SizeBand.small)
    assert organisations()["Nobody Ltd"].size_band == SizeBand.small


@pytest.mark.parametrize(
    ("cell", "band"),
    [("Micro", SizeBand.micro), ("0", SizeBand.micro), ("9", SizeBand.micro), ("10", SizeBand.small),
     ("10-49", SizeBand.small), ("1,200", SizeBand.large), ("250+", SizeBand.large),
     ("Medium (50 to 249 employees)", SizeBand.medium)],
)  # fmt: skip
def test_a_size_band_is_read_by_name_or_number_of_employees(app, cell, band):
    run(csv_text(f'Octree,,,,,,"{cell}",,,,,').encode())
    assert organisations()["Octree"].size_band == band


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("Octree,,not-an-email,,,,small,,,,,", "Email “not-an-email” is not an email address"),
        ("Octree,,,,,,SME,,,,,", "Size band “SME” is not a size band"),
        ("Octree,,,,,,1-100,,,,,", "spans more than one band"),
        ("Octree,,,,,,-5,,,,,", "cannot be a negative number"),
        ("Octree,,,,,maybe,small,,,,,", "Member “maybe” must be yes or no"),
        ("Octree,Jo,,,,,small,,,,,", "Jo has no email address"),
        (",,a@b.example,,,,small,Retail,,,,", "gives a business's details (Size band, Sector) but no organisation"),
        ("Octree,,,,,,small,\x07bell,,,,", "Sector contains a character that is not allowed"),
        ("Octree,,,,,,small,=?utf-8?q?x?=,,,,", "Sector must not contain “=?…?”"),
        ("Octree,,,,,,small," + "s" * 101 + ",,,,", "Sector is 101 characters long; at most 100 fit"),
        ("Octree,,,,,,small,,,," + "t" * 41 + ",", "longer than 40 characters"),
    ],
)  # fmt: skip
def test_a_row_that_cannot_be_imported_is_refused_with_its_reason(app, row, reason):
    job = run(csv_text(row).encode())
    action, detail = outcomes(job)[2]
    assert action == RowAction.refused
    assert reason in detail
    assert organisations() == {}


def test_a_person_twice_in_a_file_or_a_business_described_two_ways_is_refused(app):
    job = run(csv_text(
        "Octree,,a@octree.example,,,,small,IT,,,,",
        "Octree,,b@octree.example,,,,small,Retail,,,,",
        "Elsewhere,,a@octree.example,,,,small,,,,,",
    ).encode())  # fmt: skip
    rows = outcomes(job)
    assert rows[3] == (
        RowAction.refused,
        "Row 2 gives Octree's sector as “IT”; this row says “Retail”. Make them agree.",
    )
    assert rows[4] == (
        RowAction.refused,
        "a@octree.example is on row 2 already: a person can be in a file once.",
    )
    assert organisations()["Octree"].sector == "IT"


# --- hostile files --------------------------------------------------------------------------------


def test_formulas_and_markup_are_stored_as_data_and_the_report_neutralises_them(app):
    formula = '=HYPERLINK("http://evil.example","Click")'
    quoted = formula.replace('"', '""')
    content = csv_text(
        f'"{quoted}",,,,,,small,,,,,',
        "<script>alert(1)</script> Ltd,{{ 7*7 }},x@y.example,,,,small,,,,,",
        f'"{quoted}",,,,,,tiny,"@SUM(A1)",,,,',
        "'; DROP TABLE contact; --,,,,,,small,,,,,",
    ).encode()
    job = run(content)

    assert formula in organisations()
    assert "'; DROP TABLE contact; --" in organisations()
    assert (
        organisations()["<script>alert(1)</script> Ltd"].name_normalised == "script alert 1 script"
    )
    assert contacts()["x@y.example"].name == "{{ 7*7 }}"
    report = csv_bytes_of(job)
    assert report.startswith(BOM)
    lines = list(csv.reader(io.StringIO(report[1:])))
    assert lines[0][:3] == ["Row", "Why it was refused", "Organisation"]
    assert lines[1][0] == "4"
    assert lines[1][2] == "'" + formula  # the file's cells, each made inert for a spreadsheet
    assert lines[1][9] == "'@SUM(A1)"
    assert len(lines) == 2


def csv_bytes_of(job: ImportJob) -> str:
    from chamber.core.csvexport import csv_bytes

    return csv_bytes(import_jobs.report_header(job), import_jobs.report_rows(job)).decode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"  \r\n\r\n", "The file is empty."),
        (b"PK\x03\x04\x14\x00\x06\x00 rest of a workbook", "an Excel or LibreOffice workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel workbook (.xls)"),
        (bytes(range(256)) * 8, "binary data, not text"),
        (b"Company,Email\r\nCaf\x81\x8d Ltd,a@b.example\r\n", "neither UTF-8 nor Windows-1252"),
        (b"Company,Email\r\n", "no rows under it"),
        (b"Company," + b"x" * (10 * 1024 * 1024) + b"\r\nOctree,a@b.example\r\n", "not a header"),
    ],
    ids=["empty", "blank", "xlsx", "xls", "binary", "encoding", "header only", "10 MB header"],
)
def test_a_file_that_cannot_be_read_is_refused_with_the_reason(app, content, message):
    with pytest.raises(ImportRefused) as refused, unit_of_work():
        import_jobs.create_job("members.csv", content)
    assert message in refused.value.message
    assert refused.value.field == "file"
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportJob)) == 0


def test_ten_megabytes_on_one_line_refuses_that_row_and_imports_the_rest(app):
    content = csv_text(
        "Octree,,a@octree.example,,,,small,,,,,",
        "Giant," + "x" * (10 * 1024 * 1024) + ",,,,,small,,,,,",
        "Bakery,,b@bakery.example,,,,small,,,,,",
    ).encode()
    job = run(content)

    assert outcomes(job)[3] == (
        RowAction.refused,
        "The row could not be read: a cell is longer than 131,072 characters.",
    )
    assert set(organisations()) == {"Octree", "Bakery"}
    report_cells = db.session.scalars(import_jobs.job_rows(job)).one().cells
    assert report_cells == []  # nothing of the giant row is kept


def test_a_mapping_without_organisation_or_email_is_refused(app):
    with (
        pytest.raises(ImportRefused, match="Choose the column with the organisation"),
        unit_of_work(),
    ):
        job = import_jobs.create_job("m.csv", csv_text(OCTREE_ROW).encode())
        import_jobs.save_mapping(job, [""] * len(job.header), None)


def test_a_mapping_that_uses_a_field_twice_is_refused(app):
    with pytest.raises(ImportRefused, match="Email is chosen for two columns"), unit_of_work():
        job = import_jobs.create_job("m.csv", b"Email,Other\r\na@b.example,c@d.example\r\n")
        import_jobs.save_mapping(job, ["email", "email"], None)


# --- the worker -----------------------------------------------------------------------------------


def big_file(rows: int, *, start: int = 0) -> bytes:
    lines = [
        f"Business {n},Person {n},p{n}@example.com,,,,small,,,,,"
        for n in range(start, start + rows)
    ]
    return csv_text(*lines).encode()


def queue(content: bytes, *, dry_run: bool = False) -> int:
    with unit_of_work():
        job = import_jobs.create_job("big.csv", content)
        import_jobs.save_mapping(job, import_jobs.suggested_mapping(job), None)
        import_jobs.start(job, dry_run=dry_run)
        return job.id


def job_now(job_id: int) -> ImportJob:
    db.session.expire_all()
    return db.session.get(ImportJob, job_id)


def test_a_large_file_waits_for_the_worker_which_imports_it_with_progress(app):
    lines: list[str] = []
    job_id = queue(big_file(2500))
    assert job_now(job_id).status == ImportStatus.queued
    assert contacts() == {}

    Worker(app, worker_id="test", echo=lines.append).run_once()

    job = job_now(job_id)
    assert (job.status, job.rows_done, job.rows_total, job.created) == (
        ImportStatus.done,
        2500,
        2500,
        2500,
    )
    assert job.claimed_by is None and job.started_at <= job.finished_at
    progress = job.progress(job.finished_at)
    assert progress.per_second > 0 and progress.seconds_left == 0 and progress.percent == 100
    assert len(contacts()) == 2500
    assert "Import " in "\n".join(lines) and "2500 created" in "\n".join(lines)


def test_progress_figures_say_rows_done_rate_and_time_left(app):
    from datetime import timedelta

    job_id = queue(big_file(1500))
    job = job_now(job_id)
    job.rows_done = 500
    job.started_at = job.created_at
    figures = job.progress(job.created_at + timedelta(seconds=10))
    assert (figures.done, figures.total, figures.per_second, figures.seconds_left, figures.percent) == (
        500, 1500, 50.0, 20.0, 33,
    )  # fmt: skip


def test_cancelling_stops_at_the_next_chunk_and_keeps_whole_rows(app):
    job_id = queue(big_file(3500))
    claim = import_jobs.claim(job_id, "test")
    chunks_seen = []

    def cancel_after_the_first_chunk(job):
        chunks_seen.append(job.rows_done)
        if len(chunks_seen) == 1:
            with unit_of_work():
                import_jobs.cancel(job_now(job_id))

    job = import_jobs.run_claimed(job_id, claim, on_progress=cancel_after_the_first_chunk)

    assert job.status == ImportStatus.cancelled
    assert chunks_seen == [1000]
    assert job.rows_done == 1000 and job.created == 1000
    assert len(contacts()) == 1000 and len(organisations()) == 1000
    assert all(c.organisation_id is not None for c in contacts().values())  # no half rows


def test_a_waiting_import_is_cancelled_at_once(app):
    job_id = queue(big_file(1200))
    with unit_of_work():
        import_jobs.cancel(job_now(job_id))
    assert job_now(job_id).status == ImportStatus.cancelled
    assert import_jobs.claim_next("test") is None


def test_two_workers_never_take_the_same_job_and_a_dead_ones_job_is_taken_up(app):
    from datetime import timedelta

    from chamber.core.times import utcnow

    job_id = queue(big_file(1100))
    first = import_jobs.claim_next("one")
    assert first is not None and first[0] == job_id
    assert import_jobs.claim_next("two") is None
    # The first worker dies after its lease: another takes the job and finishes it.
    later = import_jobs.claim_next("two", now=utcnow() + timedelta(minutes=6))
    assert later is not None and later[0] == job_id
    job = import_jobs.run_claimed(*later)
    assert job.status == ImportStatus.done and job.created == 1100


def test_a_stopping_worker_hands_the_job_back_and_the_next_goes_on_from_there(app):
    job_id = queue(big_file(2200))
    claim = import_jobs.claim(job_id, "one")
    stops = iter([False, True])
    job = import_jobs.run_claimed(job_id, claim, should_stop=lambda: next(stops, True))
    assert (job.status, job.rows_done) == (ImportStatus.queued, 1000)

    job = import_jobs.run_claimed(*import_jobs.claim_next("two"))
    assert (job.status, job.rows_done, job.created) == (ImportStatus.done, 2200, 2200)
    assert len(contacts()) == 2200


def test_a_file_that_fails_mid_way_fails_its_job_and_not_the_worker(app):
    job_id = queue(big_file(1500))
    with unit_of_work():  # damaged after it was checked: the worker meets bytes it cannot decode
        job = job_now(job_id)
        job.content = job.content[:40_000] + b"\xff\xfe\xfa" * 10 + job.content[40_000:]
    lines: list[str] = []

    Worker(app, worker_id="test", echo=lines.append).run_once()

    job = job_now(job_id)
    assert job.status == ImportStatus.failed
    assert "UnicodeDecodeError" in job.error
    assert job.claimed_by is None
    assert any("Import: failed" in line for line in lines)


# --- the command ----------------------------------------------------------------------------------


def test_the_command_maps_columns_itself_and_prints_the_counts_and_refusals(app, runner, tmp_path):
    path = tmp_path / "members.csv"
    path.write_bytes(("\ufeff" + csv_text(OCTREE_ROW, "Bad,,nope,,,,small,,,,,")).encode())

    result = runner.invoke(args=["members", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert "Company" not in result.output
    assert "Organisation -> organisation" in result.output and "Email -> email" in result.output
    assert "Done: 1 created, 0 updated, 0 unchanged, 1 refused." in result.output
    assert "row 3: Email “nope” is not an email address" in result.output
    assert "tony@octree.co.uk" in contacts()


def test_the_command_dry_run_writes_nothing(app, runner, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text(csv_text(OCTREE_ROW))
    result = runner.invoke(args=["members", "import", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Dry run, nothing written: 1 would be created" in result.output
    assert organisations() == {}


def test_the_command_takes_a_mapping_and_a_size_band(app, runner, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("Firm;Who;Address\r\nOctree;Tony;tony@octree.co.uk\r\n", encoding="cp1252")
    result = runner.invoke(args=[
        "members", "import", str(path), "--map", "Firm=organisation", "--map", "2=name",
        "--map", "address=Email", "--size-band", "micro",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Firm -> organisation" in result.output
    assert contacts()["tony@octree.co.uk"].organisation.size_band == SizeBand.micro


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--map", "Nope=email"], "The file has no column “Nope”"),
        (["--map", "Firm=favourite"], "“favourite” is not a field"),
        (["--map", "Firm"], "is not COLUMN=FIELD"),
        (["--map", "Firm=ignore"], "Choose the column with the organisation"),
    ],
)
def test_the_command_refuses_a_bad_mapping_clearly(app, runner, tmp_path, options, message):
    path = tmp_path / "members.csv"
    path.write_text("Firm,Size\r\nOctree,small\r\n")
    result = runner.invoke(
        args=["members", "import", str(path), "--map", "Firm=organisation", *options]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert organisations() == {}


def test_the_command_refuses_a_binary_file(app, runner, tmp_path):
    path = tmp_path / "members.xlsx"
    path.write_bytes(b"PK\x03\x04" + bytes(1000))
    result = runner.invoke(args=["members", "import", str(path)])
    assert result.exit_code == 1
    assert "This file is an Excel or LibreOffice workbook" in result.output


def test_the_command_shows_progress_for_a_large_file(app, runner, tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(big_file(2100))
    result = runner.invoke(args=["members", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "Importing rows" in result.output  # click draws the bar itself only on a terminal
    assert "Done: 2,100 created" in result.output


def test_legal_forms_are_read_in_the_words_people_use(app):
    content = (
        "Company,Company type,Size\r\nA,Ltd,5\r\nB,LLP,5\r\nC,Sole trader,5\r\nD,Council,5\r\n"
    )
    run(content.encode())
    assert {name: o.legal_form for name, o in organisations().items()} == {
        "A": LegalForm.limited_company, "B": LegalForm.llp, "C": LegalForm.sole_trader,
        "D": LegalForm.public_body,
    }  # fmt: skip


def test_a_person_added_by_a_booking_meanwhile_is_matched_not_duplicated(app):
    """The chunk's bulk INSERT meets a contact another transaction committed after the chunk
    looked (a booking, say): the chunk is rolled back to its savepoint and done again row by row,
    and that row becomes an update of the booking's contact."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing can commit inside an import's chunk")
    import sqlalchemy as sa

    raced = []

    def book_first(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO contact") and not raced:
            raced.append(True)
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as other:
                other.execute(
                    sa.insert(Contact).values(
                        email="tony@octree.co.uk", name="Tony (booked)", created_at=sa.func.now()
                    )
                )

    sa.event.listen(db.engine, "before_cursor_execute", book_first)
    try:
        job = run(csv_text(OCTREE_ROW, "Bakery,,ann@bakery.example,,,,small,,,,,").encode())
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", book_first)

    assert raced
    assert job.counts[RowAction.refused] == 0
    # Tony was matched, not made twice: his row made a business and changed his record (an
    # update), the other made a business and a person.
    assert (job.created, job.updated) == (1, 1)
    tony = contacts()["tony@octree.co.uk"]
    assert (tony.name, tony.organisation.name) == ("Tony Richardson", "Octree Ltd")
    assert len(contacts()) == 2


def test_rows_changing_different_fields_are_written_together(app):
    run(
        csv_text(
            OCTREE_ROW, "Bakery,Ann,ann@bakery.example,Owner,,no,small,Food,Hitchin,,,"
        ).encode()
    )
    job = run(csv_text(
        "Octree,,tony@octree.co.uk,CTO,,,,,,,,",  # the contact's job title only
        "Bakery,,,,,yes,,,Letchworth,,,",  # the business's membership and town only
    ).encode())  # fmt: skip

    assert job.counts[RowAction.update] == 2
    bakery = organisations()["Bakery"]
    assert (bakery.is_member, bakery.town_or_postcode, bakery.sector) == (
        True,
        "Letchworth",
        "Food",
    )
    assert contacts()["tony@octree.co.uk"].job_title == "CTO"
    assert contacts()["ann@bakery.example"].job_title == "Owner"


def test_a_large_hostile_file_is_refused_row_by_row_in_the_worker_which_carries_on(app):
    hostile = [
        '"=HYPERLINK(""http://evil.example"")",,,,,,small,,,,,',  # stored as data
        "Bell\x07 Ltd,,,,,,small,,,,,",  # a control character
        "<img src=x onerror=alert(1)>,,,,,,small,,,,,",  # stored as data
        "Giant," + "x" * (10 * 1024 * 1024) + ",,,,,small,,,,,",  # 10 MB on one line
        "Octree,,\x00@example.com,,,,small,,,,,",  # NUL mid-file
        "Broken,,a\u2028b@example.com,,,,small,,,,,",  # a Unicode line separator
    ]
    lines = [f"Business {n},,p{n}@example.com,,,,small,,,,," for n in range(1100)]
    job_id = queue(csv_text(*hostile, *lines).encode())
    echoed: list[str] = []

    Worker(app, worker_id="test", echo=echoed.append).run_once()

    job = job_now(job_id)
    assert job.status == ImportStatus.done, job.error
    assert (job.created, job.refused) == (1102, 4)
    refused = {row.row_number: row.detail for row in import_jobs.refused_rows(job)}
    assert refused[3] == "Organisation contains a character that is not allowed."
    assert refused[5] == "The row could not be read: a cell is longer than 131,072 characters."
    assert "Email" in refused[6] and "Email" in refused[7]
    assert '=HYPERLINK("http://evil.example")' in organisations()


# --- memory: the file and the within-file checks are not held --------------------------------------


def test_a_person_repeated_after_a_worker_handed_the_job_back_is_still_refused(app):
    """The within-file checks are kept in the database (import_job_key), so the next worker
    knows the rows done before the break."""
    first = "Business 5,Person 5,p5@example.com,,,,small,,,,,"
    repeated = "Business 5,Someone else,p5@example.com,,,,small,,,,,"
    other_band = "Business 7,Person X,px@example.com,,,,large,,,,,"
    lines = [f"Business {n},Person {n},p{n}@example.com,,,,small,,,,," for n in range(1000)]
    job_id = queue(csv_text(*lines, repeated, other_band, first.replace("p5@", "p5b@")).encode())
    claim = import_jobs.claim(job_id, "one")
    stops = iter([False, True])
    job = import_jobs.run_claimed(job_id, claim, should_stop=lambda: next(stops, True))
    assert job.rows_done == 1000
    assert db.session.scalar(
        db.select(db.func.count()).select_from(ImportJobKey).where(ImportJobKey.job_id == job_id)
    ) == 2000  # fmt: skip
    job = import_jobs.run_claimed(*import_jobs.claim_next("two"))
    assert (job.status, job.created, job.refused) == (ImportStatus.done, 1001, 2)
    reasons = [row.detail for row in import_jobs.refused_rows(job)]
    assert "p5@example.com is on row 7 already" in reasons[0]
    assert "Row 9 gives Business 7's size band as “small”" in reasons[1]
    assert contacts()["p5@example.com"].name == "Person 5"
    # The keys go once the run ends.
    assert not db.session.scalars(
        db.select(ImportJobKey).where(ImportJobKey.job_id == job_id)
    ).all()


def test_the_worker_reads_the_file_from_the_database_a_piece_at_a_time(app, monkeypatch):
    monkeypatch.setattr(import_jobs, "PIECE_BYTES", 4096)
    content = big_file(1500)
    queue(content)
    pieces = []
    real = import_jobs.StoredFile.readinto

    def counted(self, buffer):
        read = real(self, buffer)
        pieces.append(read)
        return read

    monkeypatch.setattr(import_jobs.StoredFile, "readinto", counted)
    job = import_jobs.run_claimed(*import_jobs.claim_next("one"))
    assert job.created == 1500
    assert max(pieces) <= 4096 and sum(pieces) == len(content)


def test_a_dry_run_remembers_what_earlier_chunks_would_have_written(app):
    """A business the first chunk would create is found, not created again, by a later chunk;
    its would-be state is kept in the database between chunks, not in memory."""
    lines = [f"Business {n},Person {n},p{n}@example.com,,,,small,,,,," for n in range(1100)]
    lines.append("Business 3,Late Person,late@example.com,,,,small,IT,,,,")
    job_id = queue(csv_text(*lines).encode(), dry_run=True)
    job = import_jobs.run_claimed(*import_jobs.claim_next("one"))
    assert (job.status, job.created, job.updated, job.refused) == (ImportStatus.done, 1100, 1, 0)
    action, detail = outcomes(job)[1102]
    assert action == RowAction.update  # it changes what an earlier row made
    assert detail == "New contact Late Person <late@example.com>; sector: “IT” added"
    assert organisations() == {} and contacts() == {}
    assert not db.session.scalars(
        db.select(ImportJobKey).where(ImportJobKey.job_id == job_id)
    ).all()


def test_a_name_spelled_without_its_accents_or_in_capitals_is_the_same_business(app):
    """Exported from another system, "CAFE BON APPETIT LIMITED" is the directory's "Café Bon
    Appétit Ltd": the row is matched to it, never a second business."""
    run(csv_text("Café Bon Appétit Ltd,Anna Müller,anna@cafe.example,,,no,5,,Hitchin,,,").encode())
    job = run(
        csv_text("CAFE BON APPETIT LIMITED,Ben Cole,ben@cafe.example,,,no,5,,,,,").encode(),
        dry_run=True,
    )
    assert outcomes(job) == {
        2: (
            RowAction.create,
            "Matched “Café Bon Appétit Ltd” in the directory; new contact Ben Cole <ben@cafe.example>",
        )
    }
    run(csv_text("CAFE BON APPETIT LIMITED,Ben Cole,ben@cafe.example,,,no,5,,,,,").encode())
    assert list(organisations()) == ["Café Bon Appétit Ltd"]
    assert contacts()["ben@cafe.example"].organisation.name == "Café Bon Appétit Ltd"


def test_lines_inside_an_over_long_quoted_cell_never_become_rows_of_their_own(app):
    """A quoted Notes cell of more than 131,072 characters with line breaks in it, one of its lines
    reading like a row: the whole row is refused, and nothing in the cell is imported."""
    filler = ("z" * 1000 + "\r\n") * 140
    content = csv_text(
        f'Octree,,a@octree.example,,,,small,,,,,"{filler}Injected Ltd,,injected@example.com,,,,'
        'small,,,,,ok\r\ntail"',
        "Bakery,,b@bakery.example,,,,small,,,,,",
    ).encode()
    job = run(content)
    assert outcomes(job)[2] == (
        RowAction.refused,
        "The row could not be read: a cell is longer than 131,072 characters.",
    )
    assert set(contacts()) == {"b@bakery.example"}


@pytest.mark.parametrize(
    "website", ["http://[", "acme.co.uk [closed]", "https://[::1", "http://]x["]
)
def test_a_website_that_cannot_be_split_refuses_its_row_not_the_import(app, website):
    """`urlsplit` raises on a stray bracket: the row is refused with the reason, the rest go in."""
    content = csv_text(
        f'Octree,a@octree.example,small,"{website}"',
        "Bakery,b@bakery.example,small,",
        header="Organisation,Email,Size band,Website",
    )
    job = run(content.encode())
    action, detail = outcomes(job)[2]
    assert action == RowAction.refused and "must be a web address" in detail
    assert set(organisations()) == {"Bakery"}


def test_a_new_business_without_a_size_band_is_told_what_to_fill_in(app):
    """The file has the column and this row left it empty: the reason says so, not "add a
    column"; a file without the column is told to add one (or choose a band for all)."""
    with_column = run(csv_text("Octree,,a@octree.example,,,,,,,,,").encode())
    assert "this row's Size band is empty" in outcomes(with_column)[2][1]
    without = run(csv_text("Octree,a@octree.example", header="Organisation,Email").encode())
    assert "add a Size band column" in outcomes(without)[2][1]


@pytest.mark.parametrize(
    ("name", "form"),
    [("Octree Ltd", LegalForm.limited_company), ("OCTREE LIMITED", LegalForm.limited_company),
     ("Octree plc", LegalForm.limited_company), ("Cwmni Cyf", LegalForm.limited_company),
     ("Hart & Co LLP", LegalForm.llp), ("Hart Limited Liability Partnership", LegalForm.llp),
     ("Octree Trading", LegalForm.unknown), ("Ltd", LegalForm.unknown),
     ("Limited Editions Books", LegalForm.unknown)],
)  # fmt: skip
def test_a_new_business_takes_the_legal_form_its_name_says(app, name, form):
    """A company's or LLP's name must end so, and nobody else's may: an imported business (and
    one a booking makes) is no longer "not known" when its name says, so its people are not left
    out of every segment; a column that says otherwise wins."""
    run(csv_text(f"{name},,a@octree.example,,,,small,,,,,").encode())
    assert organisations()[name].legal_form is form


def test_a_legal_form_column_wins_over_the_name(app):
    content = csv_text(
        "Octree Ltd,a@octree.example,small,charitable company",
        header="Organisation,Email,Size band,Legal form",
    )
    assert "by its name" not in outcomes(run(content.encode(), dry_run=True))[2][1]
    run(content.encode())
    assert organisations()["Octree Ltd"].legal_form is LegalForm.other_corporate
