"""The directory's staff pages: the organisation and contact lists (search, filters, sorting,
paging, CSV), each record's page with its history in a fixed number of queries, adding, editing,
archiving and restoring, who may do it, and what bad or forged input gets."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date, timedelta

import pytest

from chamber.core.times import utcnow
from chamber.core.tokens import hash_token, new_token
from chamber.extensions import db
from chamber.members import directory
from chamber.members.models import (
    Contact,
    ContactRole,
    LegalForm,
    LinkPurpose,
    MarketingToken,
    Organisation,
    OrganisationTag,
    SizeBand,
)
from chamber.members.services import normalise_organisation_name
from chamber.registration.services import BusinessDetails, DelegateDetails
from chamber.surveys import services as surveys
from chamber.surveys.models import Invitation, Survey
from tests.factories import acting_staff, at, make_booking
from tests.support import count_queries, csrf_token, post_form
from tests.test_access import committed_rows

BASE = "/staff/directory"


# --- helpers --------------------------------------------------------------------------------------


def add_organisation(name: str = "Octree Ltd", **fields) -> Organisation:
    tags = fields.pop("tags", [])
    organisation = Organisation(
        name=name,
        name_normalised=normalise_organisation_name(name),
        size_band=fields.pop("size_band", SizeBand.small),
        **fields,
    )
    organisation.tags = [OrganisationTag(tag=tag) for tag in tags]
    db.session.add(organisation)
    db.session.commit()
    return organisation


def add_contact(email: str, name: str | None = None, organisation=None, **fields) -> Contact:
    contact = Contact(
        email=email,
        name=name or email.split("@")[0].replace(".", " ").title(),
        organisation_id=organisation.id if organisation else None,
        **fields,
    )
    db.session.add(contact)
    db.session.commit()
    return contact


def page_text(response) -> str:
    """The page's text without tags, with runs of white space made single spaces."""
    text = re.sub(r"<[^>]+>", " ", response.text)
    return " ".join(text.replace("&#39;", "'").replace("&amp;", "&").split())


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def listed_names(response) -> list[str]:
    """The names in the list's first column, in order."""
    return re.findall(
        r'<tr[^>]*>\s*<td><a href="/staff/directory/[a-z]+/\d+">([^<]+)</a>', response.text
    )


ORGANISATION_FORM = {
    "name": "Garden City Bakery",
    "legal_form": "limited_company",
    "size_band": "micro",
    "sector": "Food",
    "town_or_postcode": "Letchworth",
    "postcode": "sg6 3ab",
    "website": "www.gardencitybakery.example",
    "tags": " Board,  sponsor 2027 , board",
    "notes": "Met at the summer fair.\r\nKeen on cyber training.",
    "is_member": "y",
    "membership_tier": "Patron",
    "member_since": "2024-04-01",
    "renews_on": "2027-04-01",
    "lapsed_on": "",
}

CONTACT_FORM = {
    "name": "Priya Shah",
    "email": "Priya.Shah@Example.com",
    "job_title": "Director",
    "phone": "01438 000000",
    "organisation": "",
    "role": "main",
}


# --- who may see it ------------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get(f"{BASE}/contacts")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login?next=")


def test_the_door_role_is_refused_and_sees_no_directory_link(checkin_client):
    assert checkin_client.get(f"{BASE}/").status_code == 403
    assert checkin_client.get(f"{BASE}/organisations.csv").status_code == 403
    assert f'href="{BASE}/"' not in checkin_client.get("/staff/").text


@pytest.mark.parametrize("who", ["organiser_client", "admin_client"])
def test_organisers_and_admins_see_the_directory_in_the_staff_navigation(request, who):
    client = request.getfixturevalue(who)
    response = client.get("/staff/")
    assert f'<a href="{BASE}/">Directory</a>' in response.text
    assert client.get(f"{BASE}/").status_code == 200


def test_directory_pages_are_never_kept_by_a_browser(organiser_client):
    organisation = add_organisation()
    for path in (f"{BASE}/", f"{BASE}/organisations/{organisation.id}", f"{BASE}/contacts.csv"):
        assert organiser_client.get(path).headers["Cache-Control"] == "no-store"


# --- the organisation list -----------------------------------------------------------------------


def test_the_organisation_list_searches_name_town_postcode_and_contact_email(organiser_client):
    octree = add_organisation("Octree Ltd", town_or_postcode="Stevenage", postcode="SG1 1HS")
    add_organisation("Ashbourne Insurance", town_or_postcode="Hitchin", postcode="SG5 1AA")
    add_contact("tony@octree.example", organisation=octree)

    def names(query: str) -> list[str]:
        return listed_names(organiser_client.get(f"{BASE}/", query_string={"q": query}))

    assert names("octree") == ["Octree Ltd"]
    assert names("HITCHIN") == ["Ashbourne Insurance"]
    assert names("sg1") == ["Octree Ltd"]
    assert names("tony@") == ["Octree Ltd"]
    assert names("sg") == ["Ashbourne Insurance", "Octree Ltd"]
    assert names("100%_") == []  # taken literally, not as a pattern


def test_the_organisation_list_filters_by_membership_tier_size_sector_legal_form_tag_and_archive(
    organiser_client,
):
    add_organisation(
        "Octree Ltd", is_member=True, membership_tier="Patron", size_band=SizeBand.small,
        sector="IT", legal_form=LegalForm.limited_company, tags=["board"],
    )  # fmt: skip
    add_organisation("Ashbourne Insurance", size_band=SizeBand.large, sector="Insurance")
    add_organisation("Old Mill", archived_at=utcnow(), sector="IT")

    def names(**args) -> list[str]:
        return listed_names(organiser_client.get(f"{BASE}/", query_string=args))

    assert names() == ["Ashbourne Insurance", "Octree Ltd"]
    assert names(member="yes") == ["Octree Ltd"]
    assert names(member="no") == ["Ashbourne Insurance"]
    assert names(tier="patron") == ["Octree Ltd"]
    assert names(band="large") == ["Ashbourne Insurance"]
    assert names(sector="it") == ["Octree Ltd"]
    assert names(legal="limited_company") == ["Octree Ltd"]
    assert names(tag="board") == ["Octree Ltd"]
    assert names(archived="archived") == ["Old Mill"]
    assert names(archived="all", sector="IT") == ["Octree Ltd", "Old Mill"]
    # Unknown values mean no filter, never an error.
    assert names(member="maybe", band="huge", legal="<b>", archived="x", sort="'; drop") == [
        "Ashbourne Insurance",
        "Octree Ltd",
    ]


def test_the_organisation_list_sorts_and_pages_keeping_its_filters(organiser_client):
    for n in range(55):
        add_organisation(f"Business {n:02d}", town_or_postcode=f"Town {54 - n:02d}", sector="IT")
    first = organiser_client.get(f"{BASE}/", query_string={"sector": "IT"})
    assert listed_names(first)[:2] == ["Business 00", "Business 01"]
    assert "Showing 1 to 50 of 55" in page_text(first)
    assert "page=2" in first.text and "sector=IT" in first.text
    second = organiser_client.get(f"{BASE}/", query_string={"sector": "IT", "page": 2})
    assert listed_names(second) == [f"Business {n}" for n in range(50, 55)]
    by_town = organiser_client.get(f"{BASE}/", query_string={"sort": "town"})
    assert listed_names(by_town)[0] == "Business 54"
    for page in ("0", "-1", "abc", "99999999999999999999"):
        assert organiser_client.get(f"{BASE}/", query_string={"page": page}).status_code == 200


def test_the_list_costs_the_same_number_of_queries_however_many_rows(organiser_client):
    def add(n: int) -> None:
        for i in range(n):
            o = add_organisation(f"Counted {utcnow().timestamp()}-{i}", tags=["a", "b"])
            add_contact(f"p{o.id}@example.com", organisation=o)

    add(3)
    organiser_client.get(f"{BASE}/")
    with count_queries() as few:
        organiser_client.get(f"{BASE}/")
        organiser_client.get(f"{BASE}/contacts")
    add(30)
    with count_queries() as many:
        organiser_client.get(f"{BASE}/")
        organiser_client.get(f"{BASE}/contacts")
    assert len(many) == len(few)


# --- the contact list ----------------------------------------------------------------------------


def test_the_contact_list_searches_and_filters_by_the_persons_organisation(organiser_client):
    octree = add_organisation("Octree Ltd", is_member=True, town_or_postcode="Stevenage")
    other = add_organisation("Ashbourne Insurance", size_band=SizeBand.large)
    add_contact("tony@octree.example", "Tony Richardson", octree, role=ContactRole.main)
    add_contact("bill@ashbourne.example", "Bill Payer", other, role=ContactRole.billing)
    add_contact("solo@example.com", "Sam Solo")
    add_contact("gone@example.com", "Gone Person", archived_at=utcnow())

    def names(**args) -> list[str]:
        return listed_names(organiser_client.get(f"{BASE}/contacts", query_string=args))

    assert names() == ["Bill Payer", "Sam Solo", "Tony Richardson"]
    assert names(q="stevenage") == ["Tony Richardson"]
    assert names(q="ASHBOURNE") == ["Bill Payer"]
    assert names(q="solo@") == ["Sam Solo"]
    assert names(member="yes") == ["Tony Richardson"]
    assert names(member="no") == ["Bill Payer"]
    assert names(band="large") == ["Bill Payer"]
    assert names(role="billing") == ["Bill Payer"]
    assert names(archived="archived") == ["Gone Person"]
    assert names(sort="organisation")[:2] == ["Bill Payer", "Tony Richardson"]


# --- CSV -------------------------------------------------------------------------------------------


def test_the_csv_exports_hold_the_filtered_lists_with_formulas_made_harmless(organiser_client):
    octree = add_organisation(
        '=HYPERLINK("http://evil")', is_member=True, tags=["board"], sector="IT"
    )
    add_organisation("Ashbourne Insurance", sector="Insurance")
    add_contact("tony@octree.example", "+Tony", octree)
    add_contact("other@example.com", "Other Person")

    rows = read_csv(
        organiser_client.get(f"{BASE}/organisations.csv", query_string={"sector": "IT"})
    )
    assert rows[0][:3] == ["Name", "Legal form", "Size band"]
    assert len(rows) == 2
    assert rows[1][0] == '\'=HYPERLINK("http://evil")'
    assert rows[1][rows[0].index("Tags")] == "board"
    assert rows[1][rows[0].index("Contacts")] == "1"

    contacts = read_csv(
        organiser_client.get(f"{BASE}/contacts.csv", query_string={"member": "yes"})
    )
    assert [row[:2] for row in contacts[1:]] == [["'+Tony", "tony@octree.example"]]


def test_the_csv_costs_a_fixed_number_of_queries(organiser_client):
    for n in range(3):
        add_contact(f"c{n}@example.com", organisation=add_organisation(f"Few {n}", tags=["x"]))
    organiser_client.get(f"{BASE}/organisations.csv")
    with count_queries() as few:
        organiser_client.get(f"{BASE}/organisations.csv")
        organiser_client.get(f"{BASE}/contacts.csv")
    for n in range(40):
        add_contact(f"m{n}@example.com", organisation=add_organisation(f"More {n}", tags=["y"]))
    with count_queries() as many:
        rows = read_csv(organiser_client.get(f"{BASE}/organisations.csv"))
        organiser_client.get(f"{BASE}/contacts.csv")
    assert len(rows) == 44
    assert len(many) == len(few)


# --- an organisation's page and history ----------------------------------------------------------


def history_fixture(make_event, people: int):
    """An organisation with a past event (some came, some did not, a survey some answered) and an
    upcoming one, with `people` delegates at each."""
    business = BusinessDetails("Octree Ltd", SizeBand.small, "IT", "Stevenage", is_member=True)
    past = make_event(starts_at=at(-10, 9), title="Cyber seminar 2025")
    upcoming = make_event(title="Cyber seminar 2027")
    for n in range(people):
        make_booking(
            past, f"past{n}-{people}@octree.example", business=business, checked_in=n % 2 == 0
        )
        make_booking(upcoming, f"next{n}-{people}@octree.example", business=business)
    survey = surveys.create_survey(past, by=acting_staff())
    survey.recipients = survey.recipients.__class__("confirmed")
    db.session.flush()
    from chamber.registration.models import Delegate

    for n, delegate in enumerate(
        db.session.scalars(db.select(Delegate).where(Delegate.event_id == past.id))
    ):
        db.session.add(
            Invitation(
                survey_id=survey.id,
                delegate_id=delegate.id,
                email=delegate.email_normalised,
                responded_at=utcnow() if n % 3 == 0 else None,
            )
        )
    db.session.commit()
    return db.session.scalar(db.select(Organisation).where(Organisation.name == "Octree Ltd"))


def test_an_organisations_page_shows_its_contacts_bookings_attendance_no_shows_and_surveys(
    organiser_client, make_event
):
    organisation = history_fixture(make_event, 3)
    text = page_text(organiser_client.get(f"{BASE}/organisations/{organisation.id}"))
    assert "Octree Ltd" in text
    assert "2 events booked 6 places confirmed 2 attended 1 no-show 1 survey answered" in text
    assert "Cyber seminar 2025" in text and "Cyber seminar 2027" in text
    assert "1 of 3 invited answered" in text
    assert "past0-3@octree.example" in text  # a contact, made by the booking


def test_an_organisations_page_costs_a_fixed_number_of_queries(organiser_client, make_event):
    small = history_fixture(make_event, 1)
    organiser_client.get(f"{BASE}/organisations/{small.id}")
    with count_queries() as few:
        assert organiser_client.get(f"{BASE}/organisations/{small.id}").status_code == 200
    for n in range(2, 8):
        make_booking(
            make_event(starts_at=at(-n, 9)),
            *(f"more{n}-{i}@octree.example" for i in range(3)),
            business="Octree Ltd",
            checked_in=True,
        )
    with count_queries() as many:
        response = organiser_client.get(f"{BASE}/organisations/{small.id}")
    assert response.status_code == 200
    assert "8 events booked" in page_text(response)
    assert len(many) == len(few)


def test_a_contacts_page_shows_their_places_and_whether_they_answered_never_what(
    organiser_client, make_event
):
    organisation = history_fixture(make_event, 1)
    contact = db.session.scalar(db.select(Contact).where(Contact.email == "past0-1@octree.example"))
    path = f"{BASE}/contacts/{contact.id}"
    # An anonymous survey with fewer than five responses does not say who answered (docs/surveys.md).
    assert "Answered" not in page_text(organiser_client.get(path))
    assert "who answered is shown from 5 answers" in page_text(organiser_client.get(path))
    db.session.execute(db.update(Survey).values(anonymous=False))
    db.session.commit()
    response = organiser_client.get(path)
    text = page_text(response)
    assert "Cyber seminar 2025" in text
    assert "Answered" in text
    assert organisation.name in text


def test_a_contacts_page_costs_a_fixed_number_of_queries(organiser_client, make_event):
    history_fixture(make_event, 1)
    contact = db.session.scalar(db.select(Contact).where(Contact.email == "past0-1@octree.example"))
    path = f"{BASE}/contacts/{contact.id}"
    organiser_client.get(path)
    with count_queries() as few:
        organiser_client.get(path)
    for n in range(6):
        make_booking(make_event(starts_at=at(-n - 2, 9)), "past0-1@octree.example", checked_in=True)
    with count_queries() as many:
        assert organiser_client.get(path).status_code == 200
    assert len(many) == len(few)


def test_another_objects_id_is_a_plain_404(organiser_client):
    for path in (
        f"{BASE}/organisations/999999", f"{BASE}/organisations/999999/edit",
        f"{BASE}/contacts/999999", f"{BASE}/contacts/999999/merge",
    ):  # fmt: skip
        assert organiser_client.get(path).status_code == 404
    token = csrf_token(organiser_client, f"{BASE}/organisations/new")
    response = organiser_client.post(
        f"{BASE}/organisations/999999/archive", data={"csrf_token": token}
    )
    assert response.status_code == 404


# --- adding and editing --------------------------------------------------------------------------


def test_staff_add_an_organisation_with_tags_trimmed_lower_cased_and_once(organiser_client):
    response = post_form(organiser_client, f"{BASE}/organisations/new", ORGANISATION_FORM)
    assert response.status_code == 302
    organisation = db.session.scalar(db.select(Organisation))
    assert response.headers["Location"] == f"{BASE}/organisations/{organisation.id}"
    assert organisation.name_normalised == "garden city bakery"
    assert organisation.tag_names == ["board", "sponsor 2027"]
    assert organisation.postcode == "SG6 3AB"
    assert organisation.is_member and organisation.membership_tier == "Patron"
    assert organisation.member_since == date(2024, 4, 1)
    assert organisation.legal_form == LegalForm.limited_company
    assert organisation.notes == "Met at the summer fair.\r\nKeen on cyber training."


def test_a_name_that_matches_another_organisation_is_refused_on_the_name(organiser_client):
    add_organisation("Octree Ltd")
    before = committed_rows()
    response = post_form(
        organiser_client,
        f"{BASE}/organisations/new",
        {**ORGANISATION_FORM, "name": "OCTREE LIMITED"},
    )
    assert response.status_code == 400
    assert "Octree Ltd is already in the directory" in page_text(response)
    assert 'id="name-error"' in response.text
    assert committed_rows() == before


def test_editing_keeps_the_tags_it_still_has_and_recomputes_the_matching_name(organiser_client):
    organisation = add_organisation("Octree Ltd", tags=["board", "old"])
    response = post_form(
        organiser_client,
        f"{BASE}/organisations/{organisation.id}/edit",
        {**ORGANISATION_FORM, "name": "The Octree Group", "tags": "BOARD, new"},
    )
    assert response.status_code == 302, page_text(response)
    db.session.expire_all()
    organisation = db.session.get(Organisation, organisation.id)
    assert organisation.name == "The Octree Group"
    assert organisation.name_normalised == "octree"
    assert organisation.tag_names == ["board", "new"]


def test_the_edit_form_is_filled_with_the_record(organiser_client):
    organisation = add_organisation("Octree Ltd", tags=["board", "sponsor"], postcode="SG1 1HS")
    response = organiser_client.get(f"{BASE}/organisations/{organisation.id}/edit")
    assert 'value="board, sponsor"' in response.text
    assert 'value="SG1 1HS"' in response.text


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"lapsed_on": "2026-01-01"}, "lapsed_on", "A current member has no lapsed date"),
        ({"renews_on": "2020-01-01"}, "renews_on", "“Renews on” must be after “Member since”"),
        ({"member_since": "2026-02-30"}, "member_since", "Member since must be a real date"),
        ({"member_since": "0001-01-01"}, "member_since", "must be between 1900 and 2100"),
        ({"tags": "x" * 41}, "tags", "Each tag must be 40 characters or fewer"),
        ({"tags": ",".join(f"t{n}" for n in range(21))}, "tags", "at most 20 tags"),
        ({"website": "not a website"}, "website", "Website must be a web address"),
        ({"postcode": "SG1 <1HS>"}, "postcode", "Postcode must be letters and numbers only"),
        ({"name": ""}, "name", "Enter the organisation's name."),
        ({"size_band": "huge"}, "size_band", "Choose the size from the list."),
    ],
)
def test_organisation_rules_are_refused_on_their_field(organiser_client, changes, field, message):
    before = committed_rows()
    response = post_form(
        organiser_client, f"{BASE}/organisations/new", {**ORGANISATION_FORM, **changes}
    )
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert message in page_text(response).replace("&#34;", '"')
    assert committed_rows() == before


def test_staff_add_a_contact_at_an_organisation_named_as_in_the_directory(organiser_client):
    octree = add_organisation("Octree Ltd")
    response = post_form(
        organiser_client, f"{BASE}/contacts/new", {**CONTACT_FORM, "organisation": "octree limited"}
    )
    assert response.status_code == 302
    contact = db.session.scalar(db.select(Contact))
    assert (contact.email, contact.organisation_id, contact.role) == (
        "priya.shah@example.com", octree.id, ContactRole.main,
    )  # fmt: skip


def test_the_new_contact_form_is_filled_with_the_organisation_it_was_opened_from(
    organiser_client,
):
    octree = add_organisation("Octree Ltd")
    response = organiser_client.get(f"{BASE}/contacts/new?organisation={octree.id}")
    assert 'value="Octree Ltd"' in response.text


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "PRIYA@example.com"}, "email", "Priya Existing already has this email address"),
        ({"email": "not-an-address"}, "email", "Enter an email address in the right format"),
        (
            {"organisation": "Nobody Ltd"},
            "organisation",
            "No organisation in the directory matches",
        ),
        ({"organisation": "Old Mill"}, "organisation", "Old Mill is archived"),
        ({"role": "boss"}, "role", "Choose the role from the list."),
        ({"name": "  "}, "name", "Enter the person's full name."),
    ],
)
def test_contact_rules_are_refused_on_their_field(organiser_client, changes, field, message):
    add_contact("priya@example.com", "Priya Existing")
    add_organisation("Old Mill", archived_at=utcnow())
    before = committed_rows()
    response = post_form(organiser_client, f"{BASE}/contacts/new", {**CONTACT_FORM, **changes})
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.text
    assert message in page_text(response)
    assert committed_rows() == before


def test_editing_a_contact_may_keep_its_own_address_but_not_take_anothers(organiser_client):
    add_contact("taken@example.com", "Taken Person")
    contact = add_contact("priya@example.com", "Priya")
    path = f"{BASE}/contacts/{contact.id}/edit"
    same = post_form(organiser_client, path, {**CONTACT_FORM, "email": "PRIYA@example.com"})
    assert same.status_code == 302
    clash = post_form(organiser_client, path, {**CONTACT_FORM, "email": "taken@example.com"})
    assert clash.status_code == 400
    assert "Taken Person already has this email address" in page_text(clash)
    taken = db.session.scalar(db.select(Contact.id).where(Contact.email == "taken@example.com"))
    # Linked: their record, and the merge of this one into it.
    assert f'href="{BASE}/contacts/{taken}">Taken Person\'s record</a>' in clash.text
    assert f"{BASE}/contacts/{taken}/merge?removed={contact.id}" in clash.text
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).email == "priya@example.com"
    added = post_form(
        organiser_client, f"{BASE}/contacts/new", {**CONTACT_FORM, "email": "TAKEN@example.com"}
    )
    assert added.status_code == 400 and f'href="{BASE}/contacts/{taken}"' in added.text
    assert "/merge?" not in added.text  # nothing to merge yet: the new contact is not made


def test_a_new_address_ends_the_preferences_links_sent_to_the_old_one(client, organiser_client):
    """A preferences link shows the address and chooses what is sent to it: once staff change
    the contact's address, a link sent to the old mailbox (a job left, say) no longer opens."""
    contact = add_contact("priya@oldjob.example", "Priya")
    token = new_token()
    db.session.add(
        MarketingToken(
            contact_id=contact.id, token_hash=hash_token(token), purpose=LinkPurpose.preferences
        )
    )
    db.session.commit()
    path = f"{BASE}/contacts/{contact.id}/edit"
    form = {**CONTACT_FORM, "name": "Priya S", "email": "PRIYA@oldjob.example"}
    assert post_form(organiser_client, path, form).status_code == 302  # the same address
    assert "priya@oldjob.example" in client.get(f"/preferences/{token}").text
    moved = {**CONTACT_FORM, "email": "priya@newjob.example"}
    assert post_form(organiser_client, path, moved).status_code == 302
    page = client.get(f"/preferences/{token}")
    assert page.status_code == 404 and "newjob" not in page.text
    assert db.session.scalar(db.select(db.func.count(MarketingToken.id))) == 0


def test_an_edit_that_leaves_out_the_organisation_and_tags_keeps_them(organiser_client):
    """WTForms fills a field missing from the post from the record, which holds rows, not names."""
    business = add_organisation("Octree Ltd", tags=["board"])
    contact = add_contact("priya@example.com", "Priya", organisation=business)
    edited = post_form(
        organiser_client,
        f"{BASE}/contacts/{contact.id}/edit",
        {k: v for k, v in CONTACT_FORM.items() if k != "organisation"},
    )
    assert edited.status_code == 302
    organisation_form = {k: v for k, v in ORGANISATION_FORM.items() if k != "tags"}
    saved = post_form(
        organiser_client, f"{BASE}/organisations/{business.id}/edit", organisation_form
    )
    assert saved.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).organisation_id == business.id
    assert db.session.get(Organisation, business.id).tag_names == ["board"]


# --- archiving -----------------------------------------------------------------------------------


def test_archiving_hides_a_record_from_the_lists_and_restoring_brings_it_back(organiser_client):
    organisation = add_organisation("Octree Ltd")
    page = f"{BASE}/organisations/{organisation.id}"
    archived = post_form(organiser_client, f"{page}/archive", {}, token_from=page)
    assert archived.status_code == 302
    assert listed_names(organiser_client.get(f"{BASE}/")) == []
    assert "Archived on" in page_text(organiser_client.get(page))
    again = post_form(
        organiser_client, f"{page}/archive", {}, token_from=page, follow_redirects=True
    )
    assert "Octree Ltd is already archived." in page_text(again)
    post_form(organiser_client, f"{page}/restore", {}, token_from=page)
    assert listed_names(organiser_client.get(f"{BASE}/")) == ["Octree Ltd"]

    contact = add_contact("a@example.com", "Ann Archive")
    contact_page = f"{BASE}/contacts/{contact.id}"
    post_form(organiser_client, f"{contact_page}/archive", {}, token_from=contact_page)
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).archived_at is not None


# --- forged and hostile input --------------------------------------------------------------------


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
    organiser_client,
):
    organisation = add_organisation("Octree Ltd")
    before = committed_rows()
    for token in (None, "forged"):
        data = {**ORGANISATION_FORM} | ({"csrf_token": token} if token else {})
        for path in (
            f"{BASE}/organisations/new",
            f"{BASE}/organisations/{organisation.id}/edit",
            f"{BASE}/organisations/{organisation.id}/archive",
            f"{BASE}/organisations/{organisation.id}/merge",
            f"{BASE}/contacts/new",
        ):
            response = organiser_client.post(path, data=data)
            assert response.status_code == 400, path
    assert committed_rows() == before


HOSTILE = [
    "<script>alert(1)</script>",
    "line one\r\nBcc: victim@example.com",
    "bell\x07 and nul\x00",
    "{{ 7*7 }} {% raw %}",
    "[[link:unsubscribe]]",
    "'; DROP TABLE organisation; --",
    "=?utf-8?b?SGk=?=",
    "x" * 20_001,
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("field", [*ORGANISATION_FORM])
def test_hostile_input_in_any_organisation_field_is_stored_as_text_or_refused_clearly(
    organiser_client, field, value
):
    before = committed_rows()
    response = post_form(
        organiser_client, f"{BASE}/organisations/new", {**ORGANISATION_FORM, field: value}
    )
    assert response.status_code in (302, 400), response.status_code
    assert "<script>alert(1)</script>" not in response.text
    if response.status_code == 400:
        assert "There is a problem" in response.text
        assert committed_rows() == before
        return
    page = page_text(organiser_client.get(response.headers["Location"]))
    assert "49" not in page.replace("2027", "")  # no template ran
    stored = db.session.scalar(db.select(Organisation))
    assert "\x00" not in stored.name + stored.notes + stored.sector


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("field", [*CONTACT_FORM])
def test_hostile_input_in_any_contact_field_is_stored_as_text_or_refused_clearly(
    organiser_client, field, value
):
    before = committed_rows()
    response = post_form(organiser_client, f"{BASE}/contacts/new", {**CONTACT_FORM, field: value})
    assert response.status_code in (302, 400), response.status_code
    assert "<script>alert(1)</script>" not in response.text
    if response.status_code == 400:
        assert "There is a problem" in response.text
        assert committed_rows() == before
        return
    shown = organiser_client.get(response.headers["Location"])
    assert "<script>alert(1)</script>" not in shown.text
    assert "49" not in page_text(shown)  # no template ran
    contact = db.session.scalar(db.select(Contact))
    if field in ("job_title", "phone"):
        assert getattr(contact, field) == value.strip()  # kept as typed, as text


def test_hostile_text_in_the_search_and_filters_never_breaks_a_list(organiser_client):
    add_organisation("Octree Ltd")
    for path in (f"{BASE}/", f"{BASE}/contacts", f"{BASE}/organisations.csv"):
        for value in [*HOSTILE, "%", "_", "\\"]:
            args = {"q": value, "tier": value, "sector": value, "tag": value}
            response = organiser_client.get(path, query_string=args)
            assert response.status_code == 200, (path, value)
            assert "<script>alert(1)</script>" not in response.text
        # Bytes that are not UTF-8 at all, as a hand-made address could carry.
        assert organiser_client.get(f"{path}?q=%FF%FE%ED%A0%80&tag=%C0").status_code == 200


def test_unicode_names_are_kept_and_matched(organiser_client):
    response = post_form(
        organiser_client,
        f"{BASE}/organisations/new",
        {**ORGANISATION_FORM, "name": "Café Zoë & Søn Ltd", "tags": "ÉCOLE"},
    )
    assert response.status_code == 302
    organisation = db.session.scalar(db.select(Organisation))
    assert organisation.name == "Café Zoë & Søn Ltd"
    assert organisation.tag_names == ["école"]
    assert listed_names(organiser_client.get(f"{BASE}/", query_string={"q": "zoë"})) == [
        "Café Zoë &amp; Søn Ltd"
    ]


# --- the services, called directly (as an import would) -------------------------------------------


def test_the_services_refuse_what_the_form_would_for_any_caller(app):
    by = acting_staff()
    details = directory.OrganisationInput(name="Octree Ltd", size_band=SizeBand.small)
    with pytest.raises(directory.DirectoryRefused) as refused:
        directory.create_organisation(
            directory.OrganisationInput(name="x" * 201, size_band=SizeBand.small), by=by
        )
    assert refused.value.field == "name"
    with pytest.raises(directory.DirectoryRefused) as refused:
        directory.create_organisation(
            directory.OrganisationInput(name="Octree", size_band=SizeBand.small, sector="a\nb"),
            by=by,
        )
    assert refused.value.field == "sector"
    db.session.rollback()
    directory.create_organisation(details, by=by)
    with pytest.raises(directory.DirectoryRefused) as refused:
        directory.create_organisation(details, by=by)
    assert refused.value.field == "name"


def test_an_edit_of_a_record_merged_meanwhile_is_refused_clearly(app):
    by = acting_staff()
    with pytest.raises(directory.DirectoryRefused) as refused:
        directory.edit_contact(
            123456, directory.ContactInput(name="A", email="a@example.com"), by=by
        )
    assert "no longer in the directory" in refused.value.message


def test_staff_confirmed_details_are_never_overwritten_by_a_public_booking(app, make_event):
    organisation = add_organisation(
        "Octree Ltd", size_band=SizeBand.medium, sector="IT services", is_member=True
    )
    contact = add_contact("tony@octree.example", "Tony Richardson", organisation)
    event = make_event(registration_opens_at=utcnow() - timedelta(days=1))
    make_booking(
        event,
        DelegateDetails("Anthony R", "TONY@octree.example", job_title="Intern"),
        business=BusinessDetails("OCTREE LIMITED", SizeBand.micro, "Bakery", "Luton"),
        source="web",
    )
    db.session.expire_all()
    organisation = db.session.get(Organisation, organisation.id)
    contact = db.session.get(Contact, contact.id)
    assert (organisation.size_band, organisation.sector, organisation.is_member) == (
        SizeBand.medium, "IT services", True,
    )  # fmt: skip
    assert (contact.name, contact.job_title) == ("Tony Richardson", "")


def test_the_lists_and_the_merge_finder_find_names_without_their_accents(organiser_client):
    """A keyboard or a spreadsheet without accents: "Muller" finds "Müller", "cafe bon" finds
    "Café Bon Appétit Ltd" and "sjoberg" finds "Sjöberg", in the organisation list, the contact
    list and the merge page's finder; "Müller" typed with its accent finds itself still."""
    cafe = add_organisation("Café Bon Appétit Ltd", town_or_postcode="Hôtel-de-Ville")
    add_organisation("Octree Ltd")
    add_contact("anna@cafe.example", "Anna Müller", cafe, job_title="Pâtissière")
    add_contact("lars@example.com", "Lars Sjöberg")
    kept = add_contact("tony@octree.example", "Tony Richardson")

    def organisations(query: str) -> list[str]:
        return listed_names(organiser_client.get(f"{BASE}/", query_string={"q": query}))

    def contacts(query: str) -> list[str]:
        return listed_names(organiser_client.get(f"{BASE}/contacts", query_string={"q": query}))

    assert organisations("cafe bon") == organisations("CAFÉ BON") == ["Café Bon Appétit Ltd"]
    assert organisations("hotel-de") == ["Café Bon Appétit Ltd"]
    assert contacts("muller") == contacts("Müller") == ["Anna Müller"]
    assert contacts("patissiere") == ["Anna Müller"]
    assert contacts("sjoberg") == ["Lars Sjöberg"]
    finder = organiser_client.get(
        f"{BASE}/contacts/{kept.id}/merge", query_string={"q": "muller"}
    ).text
    assert "Anna Müller" in finder and "Lars Sjöberg" not in finder


@pytest.mark.parametrize("value", ["9" * 30, str(2**31), "-1", "0", "1e3", "abc", "%00"])
def test_an_absurd_id_in_the_query_string_is_taken_as_none_never_a_500(organiser_client, value):
    """The segment export's `?segment=` and the new contact's `?organisation=`: an id no column
    can hold overflowed inside the database driver."""
    export = organiser_client.get(f"{BASE}/segments/people.csv?segment={value}")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    form = organiser_client.get(f"{BASE}/contacts/new?organisation={value}")
    assert form.status_code == 200


def test_a_search_that_finds_nothing_offers_the_archived_records(organiser_client):
    add_contact("gone@example.com", "Gone Person", archived_at=utcnow())
    page = organiser_client.get(f"{BASE}/contacts", query_string={"q": "gone"}).text
    assert "No contacts match." in page and "Archived records are not searched" in page
    link = re.search(r'href="([^"]+)">search them too', page).group(1)
    assert "Gone Person" in organiser_client.get(html.unescape(link)).text
