"""The directory in a real browser: its lists, a record's page with its history, the forms with
their errors and the merge preview fit a desktop and a 320 px phone, labels and descriptions point
somewhere, and a merge can be done with the keyboard and mouse as staff would."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.extensions import db
from chamber.members.models import Contact, Organisation
from tests.browser_support import log_in, no_horizontal_scroll, screenshot
from tests.test_directory import BASE, add_contact, add_organisation, history_fixture

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 320, "height": 740}}


def test_the_directory_pages_fit_a_desktop_and_a_phone(pages, make_staff, make_event):
    octree = history_fixture(make_event, 3)
    octree.tags = []
    db.session.commit()
    twin = add_organisation(
        "Octree Services (a much longer trading name than anyone would type twice)",
        sector="Information technology", website="www.octree-services.example",
    )  # fmt: skip
    contact = db.session.scalar(db.select(Contact).where(Contact.organisation_id == octree.id))
    add_contact(
        "someone.with.a.very.long.address@subdomain.octree-services.example", organisation=twin
    )
    organiser = make_staff(Role.organiser, email="org@example.com", name="Olive Organiser")
    page = pages.new(WIDTHS["desktop"])
    log_in(page, organiser)
    walk = {
        "organisations": f"{BASE}/",
        "contacts": f"{BASE}/contacts",
        "organisation": f"{BASE}/organisations/{octree.id}",
        "contact": f"{BASE}/contacts/{contact.id}",
        "organisation-form": f"{BASE}/organisations/{octree.id}/edit",
        "merge": f"{BASE}/organisations/{octree.id}/merge?q=octree&removed={twin.id}",
    }
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        for name, path in walk.items():
            page.goto(path)
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            no_horizontal_scroll(page)
            screenshot(page, f"directory-{name}-{width}")
    # A form sent back with errors, each tied to its field.
    page.goto(f"{BASE}/organisations/new")
    page.get_by_label("Name", exact=True).fill("")
    page.get_by_label("Tags").fill("x" * 41)
    page.get_by_role("button", name="Add the organisation").click()
    expect(page.locator(".error-summary")).to_contain_text("Enter the organisation's name.")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    no_horizontal_scroll(page)
    screenshot(page, "directory-organisation-form-errors-phone")


def test_staff_find_a_duplicate_preview_and_merge_it(pages, make_staff, make_event):
    octree = history_fixture(make_event, 1)
    twin = add_organisation("Octree Services", sector="IT")
    add_contact("ana@octree-services.example", "Ana Twin", twin)
    twin_id = twin.id
    organiser = make_staff(Role.organiser, email="org@example.com", name="Olive Organiser")
    page = pages.new(WIDTHS["phone"])
    log_in(page, organiser)
    page.goto(f"{BASE}/organisations/{octree.id}")
    page.get_by_role("link", name="Merge a duplicate into this").click()
    page.get_by_label("Find the duplicate").fill("octree serv")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Octree Services").click()
    expect(page.locator(".merge-moves")).to_contain_text("Contacts")
    page.get_by_role("button", name="Merge Octree Services into Octree Ltd").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "Merged Octree Services into Octree Ltd"
    )
    expect(page.get_by_role("heading", name="Merged into this record")).to_be_visible()
    db.session.expire_all()
    assert db.session.get(Organisation, twin_id) is None
