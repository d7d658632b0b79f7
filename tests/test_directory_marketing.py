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


__all__ = ["committed_rows", "csrf_token", "post_form"]
