"""The survey results page in a real browser (Debian's Chromium): the demo survey broken down by
SMEs and large businesses, on a desktop, on a phone and as printed on A4. Screenshots go to
test-artifacts/screenshots/ for a person to look at."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.demo import load_demo
from chamber.extensions import db
from chamber.surveys.models import Survey
from tests.browser_support import (
    DESKTOP,
    PHONE,
    log_in,
    no_horizontal_scroll,
    screenshot,
)
from tests.surveys_support import focus_is_visible, tab_to, words_broken_mid_letter

pytestmark = pytest.mark.browser

A4_PRINTABLE = {"width": 703, "height": 1050}  # 210 mm less 12 mm margins, at 96 dpi
PHONE_375 = {"width": 375, "height": 740}


def test_demo_survey_results_with_the_sme_breakdown(app, pages, make_staff):
    load_demo(app)
    db.session.commit()
    survey = db.session.scalar(db.select(Survey))
    organiser = make_staff(Role.organiser, name="Olu Organiser")
    page = pages.new(viewport=DESKTOP)
    log_in(page, organiser)

    page.goto(f"/staff/surveys/{survey.id}/results")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Survey results")
    page.get_by_role("link", name="SMEs and large businesses", exact=True).click()
    breach = page.locator("section", has_text="cyber breach or attack")
    table = breach.get_by_role("table").filter(has_text="Group")
    expect(table.get_by_role("row", name="SMEs (under 250 employees)")).to_contain_text("74%")
    expect(table.get_by_role("row", name="Large businesses (250+)")).to_contain_text("93%")
    # The drawn bars are decoration: their numbers are read from the table cells instead.
    expect(page.locator(".bar[aria-hidden=true]").first).to_be_attached()
    screenshot(page, "survey-results-sme")

    page.set_viewport_size(PHONE)
    page.reload()
    screenshot(page, "phone-survey-results")
    no_horizontal_scroll(page)
    assert words_broken_mid_letter(page, ".breakdown-table th, .breakdown-table td") == []

    page.set_viewport_size(A4_PRINTABLE)
    page.emulate_media(media="print")
    expect(page.locator(".breakdown-chooser")).to_be_hidden()
    screenshot(page, "survey-results-print")
    clipped = page.evaluate(
        "() => [...document.querySelectorAll('table')]"
        ".filter(t => t.getBoundingClientRect().right > window.innerWidth + 1)"
        ".map(t => t.querySelector('caption')?.textContent.trim())"
    )
    assert clipped == [], f"tables wider than an A4 page: {clipped}"


def test_breakdown_tables_scroll_by_keyboard_and_never_break_a_word(app, pages, make_staff):
    load_demo(app)
    db.session.commit()
    survey = db.session.scalar(db.select(Survey))
    organiser = make_staff(Role.organiser, name="Olu Organiser")
    for label, viewport in (("phone", PHONE_375), ("desktop", DESKTOP)):
        page = pages.new(viewport=viewport)
        log_in(page, organiser)
        page.goto(f"/staff/surveys/{survey.id}/results?breakdown=sector")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Survey results")
        no_horizontal_scroll(page)
        assert words_broken_mid_letter(page, ".breakdown-table th, .breakdown-table td") == []
        resources = page.get_by_role("region", name="Sector breakdown of Q6")
        expect(resources).to_have_attribute("tabindex", "0")
        tab_to(page, resources, limit=200)
        assert focus_is_visible(resources)
        scrolls = resources.evaluate("(el) => el.scrollWidth > el.clientWidth")
        if scrolls:
            page.keyboard.press("ArrowRight")
            expect(resources).not_to_have_js_property("scrollLeft", 0)
        assert scrolls == (label == "phone")
        resources.scroll_into_view_if_needed()
        screenshot(page, f"survey-results-sector-{label}")
