"""The staff pages for importing a spreadsheet: upload, columns, dry run, import, cancelling and the
error report; who may use them, forged requests, and files that must be refused with a reason."""

from __future__ import annotations

import csv
import io
import re

import pytest

from chamber.core.transactions import unit_of_work
from chamber.extensions import db
from chamber.members import import_jobs
from chamber.members.import_models import MAX_FILE_BYTES, ImportJob, ImportStatus
from chamber.members.models import Contact, Organisation
from tests.support import csrf_token

INDEX = "/staff/directory/imports/"
FILE = (
    "\ufeffCompany;Contact name;E-mail;Employees;Notes\r\n"
    "Octree Ltd;Tony Richardson;tony@octree.co.uk;12;Speaker\r\n"
    "<b>Bold</b> & Co;{{ 7*7 }};bold@example.com;huge;\r\n"
    '=HYPERLINK("http://evil.example");Eve;eve@example.com;;\r\n'
).encode()


def upload(client, content: bytes = FILE, name: str = "members.csv", token: str | None = None):
    """POST the file as a browser does (multipart/form-data), with the form's CSRF token (none if
    `token` is False). The body is built here, in memory: the test client would spool a large
    one to a temporary file it leaves open when the app refuses it unread (413)."""
    boundary = "----chamber-test-boundary"
    parts = []
    if token is not False:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{token or csrf_token(client, INDEX)}\r\n".encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return client.post(INDEX, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def latest_job() -> ImportJob:
    db.session.expire_all()
    return db.session.scalars(db.select(ImportJob).order_by(ImportJob.id.desc())).first()


def choose(client, job: ImportJob, run: str = "dry_run", **columns: str):
    mapping = import_jobs.suggested_mapping(job)
    data = {f"columns-{index}": name for index, name in enumerate(mapping)}
    data.update(columns)
    data.update(csrf_token=csrf_token(client, f"{INDEX}{job.id}/columns"), run=run)
    data.setdefault("default_size_band", "")
    return client.post(f"{INDEX}{job.id}/columns", data=data)


def counted(model) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_upload_choose_columns_dry_run_then_import(organiser_client):
    response = upload(organiser_client)
    job = latest_job()
    assert response.status_code == 302
    assert response.headers["Location"] == f"{INDEX}{job.id}/columns"

    page = organiser_client.get(f"{INDEX}{job.id}/columns")
    assert page.status_code == 200
    assert (
        "3 rows under the headings, read as UTF-8 (with a byte order mark), cells separated by semicolons"
        in page.text
    )
    # Each column's select has its field chosen from the heading; the first rows are shown, escaped.
    assert re.search(r'<option selected value="organisation">Organisation</option>', page.text)
    assert re.search(r'<option selected value="size_band">Size band</option>', page.text)
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; Co" in page.text and "<b>Bold</b>" not in page.text

    dry = choose(organiser_client, job)
    assert dry.status_code == 302
    assert counted(Organisation) == 0
    shown = organiser_client.get(dry.headers["Location"])
    assert "Nothing has been written yet" in shown.text
    assert "Would create" in shown.text and "Refused" in shown.text
    assert "Size band “huge” is not a size band" in shown.text
    assert "{{ 7*7 }}" in shown.text or "&lt;b&gt;" in shown.text
    assert "<b>Bold</b>" not in shown.text
    refused_only = organiser_client.get(f"{INDEX}{job.id}?show=refused")
    assert refused_only.text.count("tag-row-refused") == 2  # "huge", and a formula with no band

    imported = organiser_client.post(
        f"{INDEX}{job.id}/import",
        data={"csrf_token": csrf_token(organiser_client, f"{INDEX}{job.id}")},
    )
    assert imported.status_code == 302
    assert latest_job().status == ImportStatus.done and not latest_job().dry_run
    assert counted(Organisation) == 1 and counted(Contact) == 1
    after = organiser_client.get(f"{INDEX}{job.id}")
    assert "Imported" in after.text and "Download the refused rows" in after.text
    # Imported once: it cannot be imported again from the same upload.
    again = organiser_client.post(
        f"{INDEX}{job.id}/import",
        data={"csrf_token": csrf_token(organiser_client, f"{INDEX}{job.id}")},
    )
    assert again.status_code == 302
    assert (
        "This file has been imported already."
        in organiser_client.get(again.headers["Location"]).text
    )


@pytest.mark.parametrize(
    ("name", "ascii_name", "utf8_name"),
    [
        ("会員リスト.csv", "-refused-rows.csv", "%E4%BC%9A%E5%93%A1%E3%83%AA%E3%82%B9%E3%83%88"),
        ("Członkowie 2026.csv", '"Czonkowie 2026-refused-rows.csv"', "Cz%C5%82onkowie%202026"),
        ("Zoë;x=1.csv", "Zoe-x-1-refused-rows.csv", "Zo%C3%AB-x-1"),
    ],
)
def test_the_error_report_of_a_file_named_in_any_script_downloads(
    organiser_client, name, ascii_name, utf8_name
):
    """A file name outside Latin-1 broke the response's headers: the name is written as RFC 6266
    wants it, ASCII with the UTF-8 name beside it, and nothing typed escapes its quotes."""
    upload(organiser_client, name=name)
    job = latest_job()
    choose(organiser_client, job, run="import")
    response = organiser_client.get(f"{INDEX}{job.id}/refused.csv")
    assert response.status_code == 200 and response.data
    disposition = response.headers["Content-Disposition"]
    assert disposition == (
        f"attachment; filename={ascii_name}; filename*=UTF-8''{utf8_name}-refused-rows.csv"
    )


def test_the_error_report_is_a_formula_safe_csv_of_the_refused_rows(organiser_client):
    upload(organiser_client)
    job = latest_job()
    choose(organiser_client, job, run="import")

    response = organiser_client.get(f"{INDEX}{job.id}/refused.csv")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert (
        response.headers["Content-Disposition"] == "attachment; filename=members-refused-rows.csv"
    )
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0] == [
        "Row",
        "Why it was refused",
        "Company",
        "Contact name",
        "E-mail",
        "Employees",
        "Notes",
    ]
    assert [row[0] for row in rows[1:]] == ["3", "4"]
    assert rows[2][2] == '\'=HYPERLINK("http://evil.example")'


def test_a_mapping_without_organisation_or_email_comes_back_with_the_reason(organiser_client):
    upload(organiser_client)
    job = latest_job()
    response = choose(organiser_client, job, **{"columns-0": "", "columns-2": ""})
    assert response.status_code == 400
    assert "Choose the column with the organisation, the email address, or both" in response.text
    assert latest_job().status == ImportStatus.mapping


def test_a_forged_field_name_is_refused(organiser_client):
    upload(organiser_client)
    job = latest_job()
    response = choose(organiser_client, job, **{"columns-1": "password_hash"})
    assert response.status_code == 400
    assert "Not a valid choice" in response.text


def test_a_file_that_cannot_be_read_comes_back_with_the_reason(organiser_client):
    for content, name, message in [
        (
            b"PK\x03\x04" + bytes(200),
            "members.csv",
            "This file is an Excel or LibreOffice workbook",
        ),
        (
            b"Company,Email\r\nCaf\x81 Ltd,a@b.example\r\n",
            "members.csv",
            "neither UTF-8 nor Windows-1252",
        ),
        (b"", "members.csv", "The file is empty."),
        (FILE, "members.xlsx", "The file must be a CSV file (.csv)"),
        (bytes(range(256)) * 4, "junk.csv", "binary data, not text"),
    ]:
        response = upload(organiser_client, content, name)
        assert response.status_code == 400, name
        assert message in response.text
        assert 'class="error-summary"' in response.text
    assert counted(ImportJob) == 0


def test_no_file_is_asked_for(organiser_client):
    response = organiser_client.post(
        INDEX,
        data={"csrf_token": csrf_token(organiser_client, INDEX)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "Choose a CSV file to upload." in response.text


def test_a_file_over_the_limit_is_refused_with_a_clear_message(organiser_client):
    too_big = b"Company\r\n" + b"x" * (MAX_FILE_BYTES + 100 * 1024)
    response = upload(organiser_client, too_big)
    assert response.status_code == 413
    assert "The file is larger than 20 MB" in response.text
    assert counted(ImportJob) == 0
    # Just under the site's limit for other forms, but within the upload's: read, then refused.
    assert (
        upload(organiser_client, b"Company,Size\r\n" + b"Octree,small\r\n" * 200_000).status_code
        == 302
    )


def test_forms_without_or_with_a_wrong_csrf_token_are_refused(organiser_client):
    assert upload(organiser_client, token=False).status_code == 400
    assert upload(organiser_client, token="forged").status_code == 400
    assert counted(ImportJob) == 0
    with unit_of_work():
        job = import_jobs.create_job("m.csv", FILE)
    for path in (f"{INDEX}{job.id}/columns", f"{INDEX}{job.id}/import", f"{INDEX}{job.id}/cancel"):
        assert organiser_client.post(path, data={"run": "import"}).status_code == 400, path
    assert latest_job().status == ImportStatus.mapping


def test_the_door_role_and_visitors_may_not_import(app, checkin_client, client):
    with unit_of_work():
        job = import_jobs.create_job("m.csv", FILE)
    paths = [INDEX, f"{INDEX}{job.id}", f"{INDEX}{job.id}/columns", f"{INDEX}{job.id}/refused.csv"]
    for path in paths:
        assert checkin_client.get(path).status_code == 403, path
        assert client.get(path).headers["Location"].startswith("/staff/login?next=")
    token = csrf_token(checkin_client, "/staff/")
    assert upload(checkin_client, token=token).status_code == 403
    assert (
        checkin_client.post(f"{INDEX}{job.id}/columns", data={"csrf_token": token}).status_code
        == 403
    )
    assert counted(ImportJob) == 1 and latest_job().mapping is None


def test_an_unknown_import_is_a_404(organiser_client):
    assert organiser_client.get(f"{INDEX}999999").status_code == 404
    assert organiser_client.get(f"{INDEX}999999/columns").status_code == 404


def test_a_large_file_goes_to_the_worker_and_its_page_shows_progress_and_can_cancel(
    app, organiser_client
):
    rows = "".join(f"Business {n},p{n}@example.com,small\r\n" for n in range(1500))
    upload(organiser_client, ("Company,Email,Size\r\n" + rows).encode())
    job = latest_job()
    choose(organiser_client, job, run="import")
    assert latest_job().status == ImportStatus.queued

    page = organiser_client.get(f"{INDEX}{job.id}")
    assert "Waiting for the worker" in page.text
    assert '<meta http-equiv="refresh" content="3">' in page.text
    assert "0 of 1,500" in page.text

    cancelled = organiser_client.post(
        f"{INDEX}{job.id}/cancel",
        data={"csrf_token": csrf_token(organiser_client, f"{INDEX}{job.id}")},
    )
    assert cancelled.status_code == 302
    after = organiser_client.get(f"{INDEX}{job.id}")
    assert "Cancelled after 0 of 1,500 rows" in after.text
    assert 'http-equiv="refresh"' not in after.text
    assert counted(Organisation) == 0


def test_a_running_import_shows_rows_done_rate_and_time_left(app, organiser_client):
    rows = "".join(f"Business {n},p{n}@example.com,small\r\n" for n in range(2500))
    upload(organiser_client, ("Company,Email,Size\r\n" + rows).encode())
    job = latest_job()
    choose(organiser_client, job, run="import")
    claim = import_jobs.claim(job.id, "test")
    pages = []

    def look(job):
        if not pages:
            pages.append(organiser_client.get(f"{INDEX}{job.id}").text)

    import_jobs.run_claimed(job.id, claim, on_progress=look)

    assert "Importing now" in pages[0]
    assert "1,000 of 2,500" in pages[0]
    assert re.search(r"<dt>Rows a second</dt><dd>[\d,]+</dd>", pages[0])
    assert re.search(r"<dt>Time left</dt><dd>\d+ (s|min)", pages[0])
    assert "Cancel" in pages[0]


def test_the_list_shows_recent_imports(organiser_client):
    upload(organiser_client)
    page = organiser_client.get(INDEX)
    assert page.status_code == 200
    assert "members.csv" in page.text and "Choosing columns" in page.text


def test_an_import_started_twice_runs_once(app, organiser_client):
    rows = "".join(f"Business {n},p{n}@example.com,small\r\n" for n in range(1200))
    upload(organiser_client, ("Company,Email,Size\r\n" + rows).encode())
    job = latest_job()
    choose(organiser_client, job, run="import")
    token = csrf_token(organiser_client, f"{INDEX}{job.id}")

    again = organiser_client.post(f"{INDEX}{job.id}/import", data={"csrf_token": token})

    assert (
        "This file is being imported already"
        in organiser_client.get(again.headers["Location"]).text
    )
    assert import_jobs.claim_next("worker") is not None
    assert import_jobs.claim_next("worker") is None


def test_too_much_sent_to_another_page_is_a_plain_413(organiser_client):
    upload(organiser_client)
    job = latest_job()
    response = organiser_client.post(
        f"{INDEX}{job.id}/columns",
        data={"csrf_token": csrf_token(organiser_client, INDEX), "notes": "x" * (3 * 1024 * 1024)},
    )
    assert response.status_code == 413
    assert "That was too much to send" in response.text
    assert "larger than 20 MB" not in response.text


def test_a_file_name_with_control_characters_is_shown_without_them(organiser_client):
    assert upload(organiser_client, name="mem\x00bers\x1b[31m.csv").status_code == 302
    assert latest_job().file_name == "members[31m.csv"
