"""Staff "Send now" asks first, saying how many people will be emailed; the invitation links to
the event's resource pack only when the pack has something in it."""

from __future__ import annotations

import pytest

from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.mail.services import suppress
from chamber.resources.models import ResourceStatus
from chamber.surveys import services
from chamber.surveys.models import Survey, SurveyStatus
from tests.factories import acting_staff
from tests.support import csrf_token
from tests.surveys_support import attach_pack, book, finished_seminar, sent_survey


def invitations() -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            db.select(OutboxMessage)
            .where(OutboxMessage.key.like("survey-invite:%"))
            .order_by(OutboxMessage.id)
        )
    )


def draft_survey(make_event, make_item, *, people=("ann@a.example", "bob@b.example"), **kw):
    event = finished_seminar(make_event, make_item, **kw)
    for email in people:
        book(event, email, name=email.split("@")[0].title())
    survey = services.create_survey(event, by=acting_staff())
    db.session.commit()
    return survey


def test_send_now_is_a_link_to_a_confirmation_that_says_how_many_are_emailed(
    organiser_client, make_event, make_item
):
    survey = draft_survey(make_event, make_item, people=("a@a.example", "b@b.example", "c@c.ex"))
    suppress("c@c.ex")
    db.session.commit()
    base = f"/staff/surveys/{survey.id}"
    shown = organiser_client.get(base).text
    assert f'href="{base}/send-now">Send now</a>' in shown
    page = organiser_client.get(f"{base}/send-now")
    assert page.status_code == 200
    assert "<strong>2 people</strong>" in page.text
    assert "1 person has unsubscribed from our emails and will be left out" in page.text
    assert "This cannot be undone" in page.text
    assert ">Send to 2 people now</button>" in page.text and "Go back" in page.text
    db.session.expire_all()
    assert db.session.get(Survey, survey.id).status == SurveyStatus.draft
    assert invitations() == []


def test_the_send_does_not_happen_without_the_confirmation(organiser_client, make_event, make_item):
    survey = draft_survey(make_event, make_item)
    base = f"/staff/surveys/{survey.id}"
    token = csrf_token(organiser_client, base)
    for data in ({}, {"emailed": ""}, {"emailed": "1"}, {"emailed": "{{ 2 }}"}, {"emailed": "2x"}):
        response = organiser_client.post(f"{base}/send-now", data={"csrf_token": token, **data})
        assert response.status_code == 302
        assert response.headers["Location"].endswith(f"{base}/send-now")
    db.session.expire_all()
    assert db.session.get(Survey, survey.id).status == SurveyStatus.draft
    assert invitations() == []
    assert "Check who will be emailed, then confirm." in organiser_client.get(base).text


def test_a_number_that_changed_since_the_page_asks_again(organiser_client, make_event, make_item):
    survey = draft_survey(make_event, make_item)
    base = f"/staff/surveys/{survey.id}"
    token = csrf_token(organiser_client, f"{base}/send-now")  # the page said 2
    book(survey.event, "late@c.example", name="Late")  # checked in meanwhile
    db.session.commit()
    response = organiser_client.post(f"{base}/send-now", data={"csrf_token": token, "emailed": "2"})
    assert response.headers["Location"].endswith(f"{base}/send-now")
    assert invitations() == []
    assert "<strong>3 people</strong>" in organiser_client.get(f"{base}/send-now").text


def test_confirmed_it_sends_once(organiser_client, make_event, make_item):
    survey = draft_survey(make_event, make_item)
    base = f"/staff/surveys/{survey.id}"
    token = csrf_token(organiser_client, f"{base}/send-now")
    response = organiser_client.post(f"{base}/send-now", data={"csrf_token": token, "emailed": "2"})
    assert response.status_code == 302 and response.headers["Location"].endswith(base)
    assert len(invitations()) == 2
    # Sent: the confirmation is no longer offered, and posting again sends nothing.
    again = organiser_client.get(f"{base}/send-now")
    assert again.status_code == 302
    organiser_client.post(f"{base}/send-now", data={"csrf_token": token, "emailed": "2"})
    assert len(invitations()) == 2


def test_no_csrf_is_refused(organiser_client, make_event, make_item):
    survey = draft_survey(make_event, make_item)
    response = organiser_client.post(f"/staff/surveys/{survey.id}/send-now", data={"emailed": "2"})
    assert response.status_code == 400
    assert invitations() == []


def test_the_confirmation_is_refused_before_the_event_ends(organiser_client, make_event):
    survey = services.create_survey(make_event(), by=acting_staff())
    db.session.commit()
    base = f"/staff/surveys/{survey.id}"
    response = organiser_client.get(f"{base}/send-now")
    assert response.status_code == 302
    assert "has not ended yet" in organiser_client.get(base).text


# --- the resource pack in the invitation ---------------------------------------------------------


def pack_links(message: OutboxMessage, slug: str) -> int:
    address = f"/events/{slug}/resources"
    return message.text_body.count(address) + message.html_body.count(address)


def test_an_invitation_links_to_a_pack_with_something_in_it(make_event, make_item):
    event = finished_seminar(make_event, make_item)  # three published resources
    book(event, "ann@a.example")
    sent_survey(event)
    (message,) = invitations()
    assert pack_links(message, event.slug) == 2  # in the text and in the HTML
    assert "resource pack" in message.text_body


def test_an_invitation_has_no_pack_link_when_the_pack_is_empty(make_event, make_item):
    event = finished_seminar(make_event, make_item, pack=False)
    book(event, "ann@a.example")
    sent_survey(event)
    (message,) = invitations()
    assert pack_links(message, event.slug) == 0
    assert "resource pack" not in message.text_body and "resource pack" not in message.html_body


def test_a_pack_of_drafts_or_retired_resources_counts_as_empty(make_event, make_item):
    event = finished_seminar(make_event, make_item, pack=False)
    attach_pack(event, ("A draft",), status=ResourceStatus.draft)
    attach_pack(event, ("Gone",), status=ResourceStatus.retired)
    book(event, "ann@a.example")
    sent_survey(event)
    (message,) = invitations()
    assert pack_links(message, event.slug) == 0


@pytest.mark.browser
def test_send_now_asks_first_in_a_browser(pages, make_event, make_item, make_staff):
    """The whole flow with a keyboard, at desktop and phone widths: Send now, the count, Go back,
    then Send to 2 people now."""
    from playwright.sync_api import expect

    from tests.browser_support import DESKTOP, log_in, no_horizontal_scroll, screenshot

    survey = draft_survey(make_event, make_item)
    organiser = make_staff(email="olivia@chamber.example", name="Olivia Organiser")
    for label, viewport in (("phone-360", {"width": 360, "height": 740}), ("desktop", DESKTOP)):
        page = pages.new(viewport=viewport)
        log_in(page, organiser)
        page.goto(f"/staff/surveys/{survey.id}")
        page.get_by_role("link", name="Send now", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Send the survey now?")
        expect(page.get_by_text("2 people", exact=True)).to_be_visible()
        no_horizontal_scroll(page)
        screenshot(page, f"{label}-survey-send-now")
        page.get_by_role("link", name="Go back").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("link", name="Send now", exact=True)).to_be_visible()
    assert invitations() == []
    page.get_by_role("link", name="Send now", exact=True).click()
    page.get_by_role("button", name="Send to 2 people now").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Sent: 2 invitation(s) are on their way.")).to_be_visible()
    assert len(invitations()) == 2
