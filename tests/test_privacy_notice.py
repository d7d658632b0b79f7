"""The privacy notice (docs/privacy.md, "Privacy notice"): a public page admins edit in Markdown,
each save a new version with its history; the chamber's name and contact from the settings; the
version each booking, consent and subscription saw; linked from every form that collects
personal data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from chamber.core.notice import current_notice_version
from chamber.extensions import db
from chamber.members.models import Consent, Contact, SubscriptionRequest
from chamber.privacy import notice
from chamber.privacy.models import PrivacyNotice
from chamber.registration.models import Booking
from tests.factories import make_booking
from tests.support import count_queries, csrf_token, post_form
from tests.surveys_support import book, finished_seminar, invitation_of, sent_survey, token_for
from tests.test_registration import register
from tests.test_subscribe import ANN, subscribe

EDIT = "/staff/privacy/notice/edit"
NOTICE_LINK = re.compile(r'<a href="/privacy"')


def save(client, body: str, summary: str = "", **kwargs):
    return post_form(client, EDIT, {"body": body, "summary": summary}, **kwargs)


# --- the public page ------------------------------------------------------------------------------


def test_before_any_save_the_page_shows_the_built_in_text_with_the_chamber_from_settings(
    app, client
):
    app.config.update(CHAMBER_NAME="Testshire Chamber", MAIL_REPLY_TO="dpo@testshire.example")
    page = client.get("/privacy")
    assert page.status_code == 200
    text = page.text
    assert "Testshire Chamber" in text
    assert 'href="mailto:dpo@testshire.example"' in text
    # The retention defaults, the lawful bases, the rights and the ICO.
    for words in ("24 months after the event", "1 month after the event", "90 days",
                  "Your rights", "lawful basis", "ico.org.uk", "Version 0"):  # fmt: skip
        assert words in text, words
    assert current_notice_version() == 0


def test_the_contact_falls_back_to_the_sender_address(app, client):
    app.config.update(MAIL_REPLY_TO=None, MAIL_FROM="Herts Chamber <events@herts.example>")
    assert "mailto:events@herts.example" in client.get("/privacy").text


def test_an_admin_saves_versions_and_the_public_page_shows_the_latest(admin_client, client):
    assert save(admin_client, "# Who we are\n\nVersion one text.", "First").status_code == 302
    assert save(admin_client, "# Who we are\n\nVersion two text.").status_code == 302
    page = client.get("/privacy").text
    assert "Version two text." in page and "Version one text." not in page
    assert "Version 2, last changed" in page
    assert [n.version for n in notice.versions()] == [2, 1]
    assert current_notice_version() == 2

    history = admin_client.get("/staff/privacy/notice").text
    assert "Version 2" in history and "Version 1" in history and "First" in history
    assert "Ada Admin" in history  # who saved it
    old = admin_client.get("/staff/privacy/notice?version=1").text
    assert "Version one text." in old  # an old version can be read again
    unknown = admin_client.get("/staff/privacy/notice?version=<b>9</b>")
    assert unknown.status_code == 200 and "&lt;b&gt;9" in unknown.text


def test_the_edit_form_starts_with_the_text_shown_now(admin_client):
    page = admin_client.get(EDIT).text
    assert "Who we are" in page and "24 months after the event" in page


def test_saving_the_same_text_again_or_nothing_is_refused_and_stores_nothing(admin_client):
    save(admin_client, "Our notice.")
    same = save(admin_client, "Our notice.")
    assert same.status_code == 400 and "change something" in same.text
    empty = save(admin_client, "   ")
    assert empty.status_code == 400 and "Enter the text of the privacy notice." in empty.text
    assert db.session.scalar(db.select(db.func.count(PrivacyNotice.id))) == 1


def test_markdown_is_sanitised_and_typed_template_syntax_stays_text(admin_client, client):
    hostile = (
        "<script>alert(1)</script>\n\n[click](javascript:alert(1))\n\n{{ config.SECRET_KEY }} "
        "{% raw %}x{% endraw %} <img src=x onerror=alert(1)>"
    )
    assert save(admin_client, hostile).status_code == 302
    page = client.get("/privacy").text
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # markup typed is shown as text
    assert 'href="javascript:' not in page
    assert "{{ config.SECRET_KEY }}" in page  # shown as typed, never run
    assert admin_client.application.config["SECRET_KEY"] not in page


def test_over_long_text_and_control_characters_are_refused(admin_client):
    too_long = save(admin_client, "x" * (notice.BODY_MAX + 1))
    assert too_long.status_code == 400 and "characters or fewer" in too_long.text
    control = save(admin_client, "A notice\x00 with a NUL")
    assert control.status_code == 400
    summary = save(admin_client, "Fine text", summary="two\nlines")
    assert summary.status_code == 400
    assert db.session.scalar(db.select(db.func.count(PrivacyNotice.id))) == 0


def test_unicode_is_kept(admin_client, client):
    save(admin_client, "Zoë's café — données personnelles 🙂")
    assert "Zoë's café — données personnelles 🙂" in client.get("/privacy").text


def test_only_admins_edit_the_notice_and_a_forged_post_changes_nothing(
    app, admin_client, organiser_client, checkin_client, client
):
    for who in (organiser_client, checkin_client):
        assert who.get(EDIT).status_code == 403
        assert who.get("/staff/privacy/notice").status_code == 403
        token = csrf_token(who, "/staff/")
        assert who.post(EDIT, data={"csrf_token": token, "body": "Taken over"}).status_code == 403
    assert client.get(EDIT).status_code == 302  # to the login page
    no_token = admin_client.post(EDIT, data={"body": "Forged"})
    assert no_token.status_code == 400
    assert db.session.scalar(db.select(db.func.count(PrivacyNotice.id))) == 0


def test_a_new_version_is_numbered_one_past_the_latest_saved(app, admin):
    notice.save_notice("First", "", by=admin)
    db.session.add(PrivacyNotice(version=5, body="Saved elsewhere", summary=""))
    db.session.commit()
    assert notice.save_notice("Mine", "", by=admin).version == 6


def test_the_public_page_is_cached_and_a_new_version_shows_at_once(admin_client, client):
    first = client.get("/privacy")
    with count_queries() as queries:
        again = client.get("/privacy")
    assert again.get_data() == first.get_data() and len(queries) == 1
    save(admin_client, "A brand new notice.")
    assert "A brand new notice." in client.get("/privacy").text


# --- the version each person saw ------------------------------------------------------------------


def test_a_booking_records_the_version_its_form_linked(admin_client, client, make_event):
    event = make_event()
    assert register(client, event).status_code == 302
    save(admin_client, "Second thoughts.")
    register(client, event, booker_email="ann@bakery.example", business_name="Bakery",
             **{"delegates-0-email": "ann@bakery.example"})  # fmt: skip
    versions = dict(
        db.session.execute(
            db.select(Contact.email, Booking.privacy_notice_version).join(
                Contact, Contact.id == Booking.booker_id
            )
        ).all()
    )
    assert versions == {"tony@octree.example": 0, "ann@bakery.example": 1}


def test_a_staff_booking_records_no_version(app, make_event):
    booking = make_booking(make_event(), "staff.booked@example.com").booking
    assert booking.privacy_notice_version is None


def test_a_subscription_and_its_consents_record_the_version(admin_client, client):
    save(admin_client, "Version one.")
    assert subscribe(client).status_code == 302
    request = db.session.scalars(db.select(SubscriptionRequest)).one()
    assert request.privacy_notice_version == 1
    consents = db.session.scalars(db.select(Consent)).all()
    assert consents and {c.privacy_notice_version for c in consents} == {1}
    assert request.contact.email == ANN


# --- linked from every form that collects personal data ---------------------------------------------


def test_the_booking_forms_privacy_box_links_the_notice(client, make_event):
    page = client.get(f"/events/{make_event().slug}/register").text
    label = re.search(r'<label class="label" for="privacy">(.*?)</label>', page, re.S)
    assert label and NOTICE_LINK.search(label.group(1))
    refused = register(client, make_event(), privacy=None)
    assert refused.status_code == 400 and 'id="privacy-error"' in refused.text


def test_the_subscribe_form_and_the_footer_link_the_notice(client, make_event):
    subscribe_page = client.get("/subscribe").text
    assert len(NOTICE_LINK.findall(subscribe_page)) >= 2  # in the form, and in the footer
    assert NOTICE_LINK.search(client.get("/").text)  # the footer of every page


def test_the_survey_answer_page_links_the_notice(app, client, make_event, make_item):
    event = finished_seminar(make_event, make_item)
    book(event, "sue@example.com")
    survey = sent_survey(event)
    token = token_for(invitation_of(survey, "sue@example.com"))
    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    main = page.text.split("<footer", 1)[0]
    assert NOTICE_LINK.search(main)


def test_the_walk_in_form_links_the_notice(checkin_client, make_event):
    event = make_event(starts_at=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    page = checkin_client.get(f"/staff/checkin/{event.id}/walk-in").text
    assert NOTICE_LINK.search(page.split("<footer", 1)[0])


def test_admins_see_the_privacy_link_in_the_staff_bar_and_organisers_do_not(
    admin_client, organiser_client
):
    assert 'href="/staff/privacy/"' in admin_client.get("/staff/").text
    assert 'href="/staff/privacy/' not in organiser_client.get("/staff/").text
