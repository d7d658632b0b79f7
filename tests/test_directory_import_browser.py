"""Importing a spreadsheet in a real browser (Debian's Chromium through Playwright): a file chosen
and uploaded, its columns checked, a dry run read, the import made; a large file's page following
the worker by itself (a meta refresh: the page has no script of its own), on a phone and a desktop."""

from __future__ import annotations

import threading

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.extensions import db
from chamber.members.models import Contact, Organisation
from chamber.worker import Worker
from tests.browser_support import PHONE, log_in, no_horizontal_scroll, screenshot

pytestmark = pytest.mark.browser

FILE = (
    "\ufeffCompany;Contact name;E-mail;Employees;Notes\r\n"
    "Octree Ltd;Tony Richardson;tony@octree.co.uk;12;Spoke at the seminar\r\n"
    "Café £ Ltd;Zoë Brontë;zoe@cafe.example;huge;\r\n"
).encode()


def counted(model) -> int:
    db.session.expire_all()
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_upload_check_and_import_a_file(pages, make_staff, tmp_path):
    organiser = make_staff(Role.organiser, email="org@example.com", name="Olu Organiser")
    path = tmp_path / "members.csv"
    path.write_bytes(FILE)
    page = pages.new(PHONE)
    log_in(page, organiser)

    page.goto("/staff/directory/imports/")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and choose columns").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Choose the columns")
    expect(page.get_by_label("Field for the column “Company”")).to_have_value("organisation")
    expect(page.get_by_label("Field for the column “Employees”")).to_have_value("size_band")
    expect(page.get_by_role("cell", name="Café £ Ltd")).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "directory-import-columns-phone")

    page.get_by_role("button", name="Check the rows (dry run)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dry run: members.csv")
    expect(page.get_by_text("Nothing has been written yet.")).to_be_visible()
    expect(
        page.get_by_role("cell", name="Size band “huge” is not a size band", exact=False)
    ).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "directory-import-dry-run-phone")
    assert counted(Organisation) == 0

    page.get_by_role("button", name="Import these rows").click()
    expect(page.get_by_role("status").filter(has_text="Imported.")).to_be_visible()
    assert (counted(Organisation), counted(Contact)) == (1, 1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the refused rows (CSV)").click()
    report = download.value.path().read_bytes().decode("utf-8-sig")
    assert "Size band “huge” is not a size band" in report and "Café £ Ltd" in report


def test_a_large_files_page_follows_the_worker_by_itself(app, pages, make_staff, tmp_path):
    organiser = make_staff(Role.organiser, email="org@example.com", name="Olu Organiser")
    path = tmp_path / "big.csv"
    rows = "".join(f"Business {n},p{n}@example.com,small\r\n" for n in range(3000))
    path.write_text("Company,Email,Size\r\n" + rows)
    page = pages.new()
    log_in(page, organiser)
    page.goto("/staff/directory/imports/")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and choose columns").click()
    page.get_by_role("button", name="Import without checking").click()
    expect(page.get_by_text("Waiting for the worker to start it.")).to_be_visible()

    worker = Worker(app, worker_id="browser", echo=lambda line: None)
    running = threading.Thread(target=worker.run_once)
    running.start()
    try:
        # No reload from here: the page's meta refresh brings the worker's progress, then the end.
        expect(page.get_by_text("Imported", exact=False).first).to_be_visible(timeout=60_000)
    finally:
        running.join(timeout=60)
    expect(page.locator(".import-figures")).to_contain_text("3,000 of 3,000")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    screenshot(page, "directory-import-done")
    assert counted(Contact) == 3000
