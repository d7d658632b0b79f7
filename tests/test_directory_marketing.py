"""The directory's contact page and marketing: each contact's marketing status per topic with the
reason (members.marketing's rule), in a fixed number of queries; consent recorded by staff as a
note and withdrawn, with its wording, source, time and who, shown in the contact's history."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail.models import Suppression
from chamber.members.models import Consent, LegalForm, TopicOptOut
from tests.support import count_queries, csrf_token, post_form
from tests.test_access import committed_rows
from tests.test_directory import add_contact, add_organisation

BASE = "/staff/directory"


def marketing_rows(response) -> str:
    """The text of the page's marketing status table."""
    html = response.text
    start = html.index('id="marketing"')
    table = html[start : html.index("</table>", start)]
    return " ".join(re.sub(r"<[^>]+>", " ", table).replace("&#39;", "'").split())


# --- 1. the status and its reason -----------------------------------------------------------------


def test_a_corporate_subscribers_page_says_so_for_every_topic(organiser_client):
    ltd = add_organisation("Octree Ltd", legal_form=LegalForm.limited_company)
    contact = add_contact("ann@octree.example", organisation=ltd)
    text = marketing_rows(organiser_client.get(f"{BASE}/contacts/{contact.id}"))
    assert text.count("Corporate subscriber") == 3
    assert "Works at a corporate subscriber (Limited company (Ltd, plc, CIC))" in text
    assert "May be sent marketing" in text


def test_an_individual_with_consent_shows_its_wording_and_source_and_no_basis_elsewhere(
    organiser_client,
):
    sole = add_organisation("Bea's Bakes", legal_form=LegalForm.sole_trader)
    contact = add_contact("bea@bakes.example", organisation=sole)
    now = utcnow()
    db.session.add(
        Consent(
            contact_id=contact.id, purpose="events", wording="Yes, <b>tell me</b> about events",
            source="subscribe form", given_at=now, confirmed_at=now,
        )
    )  # fmt: skip
    db.session.commit()
    response = organiser_client.get(f"{BASE}/contacts/{contact.id}")
    text = marketing_rows(response)
    # What was typed is shown as text, never markup.
    assert (
        "Consented on the subscribe form to “Yes, &lt;b&gt;tell me&lt;/b&gt; about events”" in text
    )
    assert "<b>tell me" not in response.text
    # The newsletter and surveys have no consent: an individual subscriber with no basis.
    assert text.count("No lawful basis") == 2
    assert "An individual subscriber (sole trader) with no consent or soft opt-in" in text


def test_the_soft_opt_in_covers_events_and_the_newsletter_not_surveys(organiser_client):
    contact = add_contact("cat@gmail.com", soft_opt_in_at=utcnow() - timedelta(days=3))
    text = marketing_rows(organiser_client.get(f"{BASE}/contacts/{contact.id}"))
    assert text.count("Soft opt-in") >= 2
    assert "Booked one of our events and did not take the opt-out offered" in text
    assert "soft opt-in covers events and the newsletter, not surveys" in text


@pytest.mark.parametrize(
    ("reason", "label", "why"),
    [
        ("unsubscribe", "Suppressed", "Unsubscribed from all marketing"),
        ("bounce", "Email bounced", "Hard bounce: the address does not take mail"),
    ],
)
def test_a_suppressed_contact_shows_why_for_every_topic_whatever_their_basis(
    organiser_client, reason, label, why
):
    ltd = add_organisation("Octree Ltd", legal_form=LegalForm.limited_company)
    contact = add_contact("dan@octree.example", organisation=ltd)
    db.session.add(Suppression(email="dan@octree.example", reason=reason))
    db.session.commit()
    text = marketing_rows(organiser_client.get(f"{BASE}/contacts/{contact.id}"))
    assert text.count(label) == 3 and text.count(why) == 3
    assert "Corporate subscriber" not in text and "May be sent" not in text


def test_an_opt_out_of_one_topic_shows_for_that_topic_only(organiser_client):
    ltd = add_organisation("Octree Ltd", legal_form=LegalForm.limited_company)
    contact = add_contact("eve@octree.example", organisation=ltd)
    db.session.add(TopicOptOut(contact_id=contact.id, topic="newsletter"))
    db.session.commit()
    text = marketing_rows(organiser_client.get(f"{BASE}/contacts/{contact.id}"))
    assert "Asked not to hear about the newsletter" in text
    assert text.count("Corporate subscriber") == 2


def test_the_marketing_status_costs_a_fixed_number_of_queries(organiser_client):
    ltd = add_organisation("Octree Ltd", legal_form=LegalForm.limited_company)
    contact = add_contact("fay@octree.example", organisation=ltd)
    path = f"{BASE}/contacts/{contact.id}"
    organiser_client.get(path)
    with count_queries() as few:
        organiser_client.get(path)
    now = utcnow()
    for n in range(12):
        topic = ("events", "newsletter", "surveys")[n % 3]
        db.session.add(
            Consent(
                contact_id=contact.id, purpose=topic, wording=f"w{n}", source="staff note",
                given_at=now, confirmed_at=now, withdrawn_at=now if n % 2 else None,
            )
        )  # fmt: skip
        if n < 2:
            db.session.add(TopicOptOut(contact_id=contact.id, topic=("events", "surveys")[n]))
    db.session.commit()
    with count_queries() as many:
        response = organiser_client.get(path)
    assert response.status_code == 200
    assert len(many) == len(few)
    assert "Asked not to hear about events and seminars" in marketing_rows(response)


def test_the_contact_page_with_its_status_is_not_stored(organiser_client):
    contact = add_contact("gil@example.com")
    response = organiser_client.get(f"{BASE}/contacts/{contact.id}")
    assert "no-store" in response.headers["Cache-Control"]
    assert "Not linked to a business, so treated as an individual subscriber" in marketing_rows(
        response
    )


# --- 2. consent recorded by staff, and withdrawn ----------------------------------------------------


def consent_of(contact, topic="events") -> list[Consent]:
    return list(
        db.session.scalars(
            db.select(Consent)
            .where(Consent.contact_id == contact.id, Consent.purpose == topic)
            .order_by(Consent.id)
        )
    )


def test_staff_record_consent_as_a_note_with_wording_source_time_and_who(organiser_client):
    sole = add_organisation("Bea's Bakes", legal_form=LegalForm.sole_trader)
    contact = add_contact("bea@bakes.example", organisation=sole)
    db.session.add(TopicOptOut(contact_id=contact.id, topic="events"))
    db.session.commit()
    path = f"{BASE}/contacts/{contact.id}"
    before = utcnow()
    response = post_form(
        organiser_client, f"{path}/consent",
        {"topics": ["events", "newsletter"], "wording": "Asked on the phone: may we email you "
         "about seminars?\r\nShe said yes."},
        token_from=path,
    )  # fmt: skip
    assert response.status_code == 302
    assert response.headers["Location"] == f"{path}#consent"
    (events,) = consent_of(contact)
    assert events.source == "staff note" and events.recorded_by == "org@example.com"
    assert events.wording == "Asked on the phone: may we email you about seminars?\r\nShe said yes."
    assert events.confirmed_at is not None and events.confirmed_at >= before
    assert events.withdrawn_at is None
    assert len(consent_of(contact, "newsletter")) == 1 and not consent_of(contact, "surveys")
    # The person chose events again: their opt-out of it ended, and they may be sent it now.
    assert (
        db.session.scalar(db.select(TopicOptOut).where(TopicOptOut.contact_id == contact.id))
        is None
    )
    page = organiser_client.get(path)
    text = marketing_rows(page)
    assert text.count("Consented on the staff note to") == 2
    assert "from the staff note (recorded by org@example.com)" in page.text


def test_staff_record_a_withdrawal_with_its_time_and_who_and_it_shows_in_the_history(
    organiser_client,
):
    contact = add_contact("cal@gmail.com")
    now = utcnow()
    for topic in ("events", "surveys"):
        db.session.add(
            Consent(contact_id=contact.id, purpose=topic, wording="yes", source="subscribe form",
                    given_at=now, confirmed_at=now)
        )  # fmt: skip
    db.session.commit()
    path = f"{BASE}/contacts/{contact.id}"
    response = organiser_client.post(
        f"{path}/withdraw-consent",
        data={
            "withdraw-csrf_token": csrf_token(organiser_client, path),
            "withdraw-topics": "events",
        },
    )
    assert response.status_code == 302
    (events,) = consent_of(contact)
    assert events.withdrawn_at is not None and events.withdrawn_by == "org@example.com"
    assert consent_of(contact, "surveys")[0].withdrawn_at is None
    page = organiser_client.get(path)
    rows = marketing_rows(page)
    assert "Withdrew consent to events and seminars" in rows
    assert "Consented on the subscribe form" in rows  # surveys
    assert "withdrawn" in page_text_of(page) and "(recorded by org@example.com)" in page.text
    # Nothing left to withdraw for events: said so on the field, nothing changed.
    before = committed_rows()
    again = organiser_client.post(
        f"{path}/withdraw-consent",
        data={
            "withdraw-csrf_token": csrf_token(organiser_client, path),
            "withdraw-topics": "events",
        },
    )
    assert again.status_code == 400
    assert "has no consent to withdraw for those topics" in again.text
    assert committed_rows() == before


def page_text_of(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.text).split())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"topics": "events", "wording": ""}, "Enter what the person agreed to"),
        ({"topics": "events", "wording": "x" * 1001}, "1000 characters or fewer"),
        (
            {"topics": "events", "wording": "yes\x00\x1b"},
            "contains a character that is not allowed",
        ),
        ({"wording": "Said yes"}, "Choose at least one topic"),
        ({"topics": "marketing-everything", "wording": "Said yes"}, "Choose"),
    ],
)
def test_bad_consent_notes_are_refused_with_the_reason_and_store_nothing(
    organiser_client, data, message
):
    contact = add_contact("dee@example.com")
    path = f"{BASE}/contacts/{contact.id}"
    before = committed_rows()
    response = post_form(organiser_client, f"{path}/consent", data, token_from=path)
    assert response.status_code == 400
    assert message in response.text
    assert committed_rows() == before


def test_hostile_wording_is_kept_as_text_and_shown_escaped(organiser_client):
    contact = add_contact("eli@example.com")
    path = f"{BASE}/contacts/{contact.id}"
    wording = "{{ 7*7 }} <script>alert(1)</script> '; DROP TABLE consent; -- Zoë 李"
    post_form(organiser_client, f"{path}/consent", {"topics": "surveys", "wording": wording},
              token_from=path)  # fmt: skip
    assert consent_of(contact, "surveys")[0].wording == wording
    page = organiser_client.get(path).text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "{{ 7*7 }}" in consent_list(page) and "49" not in consent_list(page)


def consent_list(html: str) -> str:
    start = html.index('id="consent"')
    return html[start : html.index("</ul>", start)]


def test_forged_consent_posts_are_refused(organiser_client, app):
    contact = add_contact("fin@example.com")
    path = f"{BASE}/contacts/{contact.id}"
    before = committed_rows()
    no_token = organiser_client.post(f"{path}/consent", data={"topics": "events", "wording": "x"})
    assert no_token.status_code == 400
    other = post_form(organiser_client, f"{BASE}/contacts/999999/consent",
                      {"topics": "events", "wording": "x"}, token_from=path)  # fmt: skip
    assert other.status_code == 404
    anonymous = app.test_client().post(f"{path}/consent", data={"topics": "events"})
    assert anonymous.status_code in (302, 400)
    assert committed_rows() == before
