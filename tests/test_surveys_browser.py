"""A delegate answers the follow-up survey on a phone (375x740) in Debian's Chromium: every input
found by its label, the error summary, no sideways scrolling, screenshots for a person to look at."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.surveys import dispatch, services
from chamber.surveys.models import Answer, QuestionKind, Response
from tests.browser_support import DESKTOP, log_in, screenshot
from tests.factories import acting_staff
from tests.surveys_support import (
    book,
    finished_seminar,
    focus_is_visible,
    invitation_of,
    sent_survey,
    tab_to,
    token_for,
    words_broken_mid_letter,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}
WIDER_THAN = """(width) => [...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > width + 1)
  .slice(0, 5)
  .map((el) => `${el.tagName}.${el.className}: ${el.textContent.trim().slice(0, 40)}`)"""


def no_sideways_scrolling(page, viewport=PHONE) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(WIDER_THAN, viewport["width"]) if width > viewport["width"] else []
    assert width <= viewport["width"], (
        f"{page.url} is {width}px wide on a {viewport['width']}px screen: {wide}"
    )


def test_a_delegate_answers_the_survey_on_a_phone(pages, make_event, make_item):
    event = finished_seminar(make_event, make_item, title="Cybercrime: protect your business")
    book(event, "ann@alpha.example", name="Ann")
    survey = services.create_survey(event, by=acting_staff())
    services.add_question(
        survey,
        services.QuestionDetails(QuestionKind.agenda_rating, "How useful was each talk?"),
        by=acting_staff(),
    )
    services.prepare_to_send_now(survey, by=acting_staff())
    dispatch.send_survey(survey)
    db.session.commit()
    token = token_for(invitation_of(survey, "ann@alpha.example"))

    phone = pages.new(viewport=PHONE)
    phone.goto(f"/s/{token}")
    expect(phone.get_by_role("heading", level=1)).to_have_text(survey.title)
    no_sideways_scrolling(phone)
    screenshot(phone, "survey-phone")

    phone.get_by_role("button", name="Send my answers").click()
    summary = phone.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    summary.get_by_role("link", name="Select an answer to “Overall").click()
    expect(
        phone.get_by_role("group", name="Overall, how would you rate the seminar?").get_by_label(
            "1", exact=True
        )
    ).to_be_focused()
    no_sideways_scrolling(phone)
    screenshot(phone, "survey-phone-errors")

    phone.get_by_role("group", name="Overall, how would you rate the seminar?").get_by_label(
        "5", exact=True
    ).check()
    phone.get_by_label("Phishing and passwords", exact=True).check()
    nps = phone.get_by_role("group", name="How likely are you to recommend")
    nps.get_by_label("9", exact=True).check()
    phone.get_by_label("Prefer not to say", exact=True).check()
    phone.get_by_label("Cyber Essentials certification", exact=True).check()
    phone.get_by_label("Staff awareness training", exact=True).check()
    phone.get_by_label("What should we cover next time? (optional)").fill(
        "Backups <b>and</b> ransomware"
    )
    talk = phone.get_by_role("group", name="Ransomware: a case study")
    talk.get_by_label("4", exact=True).check()
    screenshot(phone, "survey-phone-filled")
    phone.get_by_role("button", name="Send my answers").click()

    expect(phone.get_by_role("heading", level=1)).to_have_text("Thank you")
    expect(phone.get_by_role("link", name="Open the resource pack")).to_have_attribute(
        "href", f"/events/{event.slug}/resources"
    )
    no_sideways_scrolling(phone)
    screenshot(phone, "survey-phone-thanks")

    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(Response.id))) == 1
    texts = db.session.scalars(db.select(Answer.text).where(Answer.text.is_not(None))).all()
    assert texts == ["Backups <b>and</b> ransomware"]


def test_an_organiser_builds_previews_and_sends_a_survey(pages, make_event, make_item, make_staff):
    event = finished_seminar(make_event, make_item, title="Cybercrime: protect your business")
    book(event, "ann@alpha.example", name="Ann")
    staff = pages.new()
    log_in(staff, make_staff(Role.organiser, name="Olu Organiser"))

    staff.goto(f"/staff/events/{event.id}")
    staff.get_by_role("link", name="Follow-up survey").click()
    expect(staff.get_by_role("heading", level=1)).to_have_text("Create a survey")
    staff.get_by_role("button", name="Create draft survey").click()
    expect(staff.get_by_role("status")).to_contain_text("Created the survey as a draft")
    staff.get_by_role("link", name="Rate each agenda item").click()
    staff.get_by_label("Question", exact=True).fill("How useful was each talk?")
    staff.get_by_role("button", name="Add question").click()
    staff.get_by_role("button", name="Move up").last.click()
    screenshot(staff, "survey-staff")

    staff.get_by_role("link", name="Preview").click()
    expect(staff.get_by_role("note")).to_contain_text("Preview.")
    expect(staff.get_by_role("button", name="Send my answers")).to_be_disabled()
    screenshot(staff, "survey-staff-preview")
    staff.go_back()

    staff.get_by_role("link", name="Send now", exact=True).click()
    expect(staff.get_by_role("heading", level=1)).to_have_text("Send the survey now?")
    staff.get_by_role("button", name="Send to 1 person now").click()
    expect(staff.get_by_role("status")).to_contain_text("Sent: 1 invitation(s)")
    staff.get_by_role("link", name="Recipients").first.click()
    expect(staff.get_by_role("cell", name="ann@alpha.example")).to_be_visible()
    screenshot(staff, "survey-staff-recipients")


def test_staff_survey_pages_fit_a_phone_and_a_desktop(pages, make_event, make_item, make_staff):
    past = finished_seminar(
        make_event, make_item, title="Cybercrime seminar: protect your business"
    )
    for n, name in enumerate(("Ann Example", "Bob Example")):
        book(past, f"person{n}@a-rather-long-business-name.example", name=name)
    sent = sent_survey(past, title="How was the cybercrime seminar?")
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=40)
    future = make_event(title="Cybercrime seminar: the next one", starts_at=starts)  # no agenda
    draft = services.create_survey(future, by=acting_staff())
    services.schedule(draft, by=acting_staff())
    db.session.commit()
    organiser = make_staff(Role.organiser, name="Olu Organiser")

    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        staff = pages.new(viewport=viewport)
        log_in(staff, organiser)

        staff.goto("/staff/surveys/")
        no_sideways_scrolling(staff, viewport)
        assert words_broken_mid_letter(staff) == []
        region = staff.get_by_role("region", name="Surveys table")
        tab_to(staff, region)
        assert focus_is_visible(region)
        if label == "phone":  # the table is wider than the phone: the keyboard scrolls it
            staff.keyboard.press("ArrowRight")
            expect(region).not_to_have_js_property("scrollLeft", 0)
        screenshot(staff, f"survey-staff-list-{label}")

        staff.goto(f"/staff/surveys/{draft.id}")
        expect(staff.get_by_role("link", name="Send now", exact=True)).to_have_count(0)
        expect(
            staff.get_by_text("Send now becomes available once the event has ended")
        ).to_be_visible()
        notes = staff.get_by_role("note").filter(has_text="Left out of the seminar template")
        expect(notes).to_contain_text("the agenda has no talks or panels yet")
        expect(notes).to_contain_text("no published resources are attached")
        expect(staff.get_by_text("Anonymous:", exact=True)).to_be_visible()
        no_sideways_scrolling(staff, viewport)
        screenshot(staff, f"survey-staff-future-{label}")

        staff.get_by_role("link", name="Edit settings").click()
        expect(staff.get_by_role("heading", level=1)).to_contain_text(", ends ")
        expect(staff.get_by_label("Anonymous results")).to_be_checked()
        no_sideways_scrolling(staff, viewport)
        screenshot(staff, f"survey-staff-settings-{label}")

        staff.goto(f"/staff/surveys/{sent.id}/recipients")
        no_sideways_scrolling(staff, viewport)
        assert words_broken_mid_letter(staff) == []
        expect(staff.get_by_role("region", name="Recipients table")).to_have_attribute(
            "tabindex", "0"
        )
        screenshot(staff, f"survey-staff-recipients-{label}")


def test_without_a_resource_pack_the_thanks_page_offers_none(pages, make_event, make_item):
    event = finished_seminar(make_event, make_item, pack=False)
    book(event, "ann@alpha.example", name="Ann")
    survey = sent_survey(event)
    token = token_for(invitation_of(survey, "ann@alpha.example"))

    phone = pages.new(viewport=PHONE)
    phone.goto(f"/s/{token}")
    expect(phone.get_by_role("group", name="Which resources will you use?")).to_have_count(0)
    breach = phone.get_by_role("group", name="Did your business have a cyber breach")
    for option in ("Yes", "No", "Prefer not to say"):
        expect(breach.get_by_label(option, exact=True)).to_be_visible()
    phone.get_by_role("group", name="Overall, how would you rate the seminar?").get_by_label(
        "4", exact=True
    ).check()
    phone.get_by_role("group", name="How likely are you to recommend").get_by_label(
        "8", exact=True
    ).check()
    breach.get_by_label("No", exact=True).check()
    phone.get_by_role("button", name="Send my answers").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Thank you")
    expect(phone.get_by_role("link", name="Open the resource pack")).to_have_count(0)
    expect(phone.get_by_text("There are no resources")).to_have_count(0)
    screenshot(phone, "survey-phone-thanks-no-pack")
