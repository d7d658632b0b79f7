"""A person's data (docs/privacy.md, "A person's data"): admins look a person up by email (in a
POST, never the URL) and see everything held about them, in a fixed number of queries; they
download it as a zip of JSON and as a readable page; nobody else can."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from chamber.auth.audit import AuditEntry
from chamber.campaigns.models import Campaign, CampaignRecipient
from chamber.directory.models import Segment
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.members import subscriptions
from chamber.members.models import (
    Contact,
    MarketingTopic,
    MergeKind,
    MergeRecord,
)
from chamber.registration.services import BusinessDetails, DelegateDetails
from chamber.surveys.models import Answer, Response
from tests.factories import make_booking
from tests.support import count_queries, csrf_token, post_form
from tests.surveys_support import book, finished_seminar, invitation_of, sent_survey

PEOPLE = "/staff/privacy/people"
ZIP = "/staff/privacy/people/export.zip"
HTML = "/staff/privacy/people/export.html"
SUE = "sue@octree.example"
HOSTILE_NAME = "<script>alert('x')</script> {{ 7*7 }} Sue"


def look_up(client, email: str):
    return post_form(client, PEOPLE, {"email": email})


def download(client, path: str, email: str):
    return post_form(client, path, {"email": email}, token_from=PEOPLE)


def everything_for(email: str, make_event, make_item, *, copies: int = 1, name: str = "Sue Smith"):
    """A person with `copies` of every kind of row: bookings and places, a subscription with its
    consents, a topic opt-out, emails, a survey invitation and answer, a campaign, a merge."""
    for n in range(copies):
        event = make_event(title=f"Seminar {n}")
        business = BusinessDetails(f"Octree {n} Ltd", "small", "IT", "Stevenage", is_member=True)
        person = DelegateDetails(name, email, needs="Vegetarian", phone="01438 000000")
        make_booking(event, person, business=business, source="web")
        # A place someone else booked for them: the other booker is not theirs to see.
        other = DelegateDetails("Bob Booker", f"bob{n}@other.example")
        make_booking(
            make_event(title=f"Workshop {n}"), other, DelegateDetails(name, email), booker=other,
            business=f"Other {n} Ltd",
        )  # fmt: skip
        seminar = finished_seminar(make_event, make_item, pack=False, title=f"Past {n}")
        book(seminar, email, name=name)
        survey = sent_survey(seminar, anonymous=False)
        invitation = invitation_of(survey, email)
        response = Response(survey_id=survey.id, invitation_id=invitation.id)
        response.answers.append(Answer(question_id=survey.questions[-1].id, text=f"Answer {n}"))
        db.session.add(response)
        db.session.flush()
        invitation.responded_at = response.submitted_at
        segment = Segment(name=f"Segment {email} {n}", filters={})
        db.session.add(segment)
        db.session.flush()
        campaign = Campaign(subject=f"Campaign {n}", segment_id=segment.id)
        db.session.add(campaign)
        db.session.flush()
        contact = db.session.scalar(db.select(Contact).where(Contact.email == email))
        db.session.add(CampaignRecipient(campaign_id=campaign.id, contact_id=contact.id))
        db.session.add(
            MergeRecord(kind=MergeKind.contact, kept_id=contact.id, removed_id=10_000 + n,
                        removed_snapshot={"name": "Old Sue", "email": f"old{n}@x.example"},
                        moved={}, by_email="admin@example.com")
        )  # fmt: skip
        subscriptions.subscribe(
            subscriptions.SubscribeDetails(name, email, "Octree", [MarketingTopic.events])
        )
        db.session.commit()
    subscriptions.save_preferences(contact, [MarketingTopic.events])
    mail.suppress(email)
    db.session.commit()


def kinds_on(page: str) -> dict[str, int]:
    return {
        name: int(count)
        for name, count in re.findall(r'id="kind-(\w+)">[^<]*<span class="h1-sub">\((\d+)\)', page)
    }


def test_the_page_finds_everything_held_about_the_person(admin_client, make_event, make_item):
    everything_for(SUE, make_event, make_item)
    response = look_up(admin_client, "  SUE@Octree.Example ")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.text
    counts = kinds_on(page)
    assert counts == {
        "contacts": 1, "organisations": 3, "bookings": 2, "places": 3, "consents": 2,
        "subscriptions": 1, "topic_preferences": 2, "suppression": 1, "emails": counts["emails"],
        "survey_invitations": 1, "survey_answers": 1, "campaign_recipients": 1,
        "merged_records": 1,
    }  # fmt: skip
    assert counts["emails"] >= 2  # a booking confirmation, the subscription's confirmation
    for seen in ("Sue Smith", "Vegetarian", "01438 000000", "Octree 0 Ltd", "Workshop 0",
                 "Answer 0", "Campaign 0", "Old Sue", "Confirm that you want our emails"):  # fmt: skip
        assert seen in page, seen
    assert "not linked to anyone" in page  # what the page says about anonymous surveys
    # Read by a person, not a database: times in words, ids named, no identifiers' underscores.
    assert "+00:00" not in page and "organisation (record number)" in page
    assert "organisation_id" not in page and "soft opt in at" in page


def test_another_persons_data_is_not_shown(admin_client, make_event, make_item):
    everything_for(SUE, make_event, make_item)
    everything_for("tom@elsewhere.example", make_event, make_item, name="Tom Other")
    page = look_up(admin_client, SUE).text
    assert "Tom Other" not in page and "tom@elsewhere.example" not in page
    assert "Bob Booker" not in page and "bob0@other.example" not in page  # who booked her place


def test_the_number_of_queries_does_not_grow_with_what_the_person_has(
    admin_client, make_event, make_item
):
    everything_for(SUE, make_event, make_item, copies=1)
    everything_for("many@octree.example", make_event, make_item, copies=3)
    token = csrf_token(admin_client, PEOPLE)
    counts = []
    for email in (SUE, "many@octree.example", "nobody@nowhere.example"):
        with count_queries() as queries:
            response = admin_client.post(PEOPLE, data={"csrf_token": token, "email": email})
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2], counts


def test_an_unknown_address_says_clearly_that_nothing_is_held(admin_client):
    page = look_up(admin_client, "nobody@nowhere.example").text
    assert "We hold nothing under nobody@nowhere.example." in page
    assert "Download" not in page


def test_the_address_is_never_in_a_url(admin_client, make_event, make_item):
    everything_for(SUE, make_event, make_item)
    page = look_up(admin_client, SUE).text
    for url in re.findall(r'(?:href|action)="([^"]*)"', page):
        assert "sue" not in url.lower() and "%40" not in url, url
    assert admin_client.get(f"{PEOPLE}?email={SUE}").text.count(SUE) == 0


def test_the_erase_button_appears_only_when_erasure_exists(
    app, admin_client, make_event, make_item
):
    everything_for(SUE, make_event, make_item)
    page = look_up(admin_client, SUE).text
    if "privacy_staff.erase" in app.view_functions:
        assert "Erase this person…" in page and 'action="/staff/privacy/erase' in page
    else:
        assert "Erase this person" not in page


# --- the downloads --------------------------------------------------------------------------------


def test_the_zip_holds_one_json_file_per_kind_and_a_readme(admin_client, make_event, make_item):
    everything_for(SUE, make_event, make_item)
    response = download(admin_client, ZIP, SUE)
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert (
        disposition.startswith('attachment; filename="personal-data-') and "sue" not in disposition
    )
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = set(archive.namelist())
    assert {"README.txt", "person.html", "contacts.json", "places.json", "consents.json",
            "emails.json", "survey_invitations.json", "campaign_recipients.json"} <= names  # fmt: skip
    contacts = json.loads(archive.read("contacts.json"))
    assert contacts[0]["email"] == SUE and contacts[0]["name"] == "Sue Smith"
    places = json.loads(archive.read("places.json"))
    assert {p["needs"] for p in places} == {"Vegetarian", ""}
    assert all("T" in p["created_at"] for p in places)  # times in ISO 8601
    readme = archive.read("README.txt").decode()
    assert SUE in readme and "anonymous surveys" in readme
    # Each download is in the audit trail: which file, by whom; not whose data it was.
    (entry,) = db.session.scalars(
        db.select(AuditEntry).where(AuditEntry.action == "person_exported")
    ).all()
    assert entry.detail == "as zip" and "sue" not in (entry.detail + entry.object_id).lower()


def test_the_html_page_is_self_contained_and_escapes_hostile_names(
    admin_client, make_event, make_item
):
    everything_for(SUE, make_event, make_item, name=HOSTILE_NAME)
    response = download(admin_client, HTML, SUE)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    page = response.text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; {{ 7*7 }} Sue" in page
    assert "49" not in page.split("<body>", 1)[1].split("Sue", 1)[0]  # never run as a template
    assert 'src="http' not in page and 'href="/static' not in page  # nothing fetched from elsewhere
    staff_page = look_up(admin_client, SUE).text
    assert "<script>alert" not in staff_page


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [PEOPLE, ZIP, HTML])
def test_organisers_and_the_door_are_refused(organiser_client, checkin_client, path):
    for who in (organiser_client, checkin_client):
        token = csrf_token(who, "/staff/")
        assert who.post(path, data={"csrf_token": token, "email": SUE}).status_code == 403
    assert organiser_client.get(PEOPLE).status_code == 403


@pytest.mark.parametrize("path", [PEOPLE, ZIP, HTML])
def test_a_post_without_the_form_token_is_refused(admin_client, make_event, make_item, path):
    everything_for(SUE, make_event, make_item)
    response = admin_client.post(path, data={"email": SUE})
    assert response.status_code == 400
    assert "Sue Smith" not in response.text


def test_no_one_logged_out_gets_anything(client):
    response = client.post(PEOPLE, data={"email": SUE})
    assert response.status_code in (302, 400) and "Sue" not in response.text


@pytest.mark.parametrize(
    "email, message",
    [
        ("", "Enter the person"),
        ("not an address", "right format"),
        ("a" * 250 + "@example.com", "254 characters or fewer"),
        ("sue@octree.example\r\nBcc: x@evil.example", ""),
        ("sue@octree.example\x00", ""),
        ("<script>@x.example", ""),
    ],
)
def test_bad_addresses_come_back_with_the_reason(admin_client, email, message):
    for path in (PEOPLE, ZIP, HTML):
        response = download(admin_client, path, email)
        assert response.status_code == 400, path
        assert "There is a problem" in response.text
        assert message in response.text
        assert "<script>@" not in response.text
