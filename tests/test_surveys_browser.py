"""A delegate answers the follow-up survey on a phone (375x740) in Debian's Chromium: every input
found by its label, the error summary, no sideways scrolling, screenshots for a person to look at."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chamber.auth.models import Role
from chamber.extensions import db
from chamber.surveys import dispatch, services
from chamber.surveys.models import Answer, QuestionKind, Response
from tests.browser_support import log_in, screenshot
from tests.surveys_support import book, finished_seminar, invitation_of, token_for

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}


def no_sideways_scrolling(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide on a {PHONE['width']}px phone"


def test_a_delegate_answers_the_survey_on_a_phone(pages, make_event, make_item):
    event = finished_seminar(make_event, make_item, title="Cybercrime: protect your business")
    book(event, "ann@alpha.example", name="Ann")
    survey = services.create_survey(event)
    services.add_question(
        survey, services.QuestionDetails(QuestionKind.agenda_rating, "How useful was each talk?")
    )
    services.prepare_to_send_now(survey)
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

    staff.get_by_role("button", name="Send now").click()
    expect(staff.get_by_role("status")).to_contain_text("Sent: 1 invitation(s)")
    staff.get_by_role("link", name="Recipients").first.click()
    expect(staff.get_by_role("cell", name="ann@alpha.example")).to_be_visible()
    screenshot(staff, "survey-staff-recipients")
