"""Segments: filters that combine, resolved in SQL; nobody marketing may not reach is ever in one,
and the page says how many were left out and why; saving, changing, deleting; the CSV; bad input
and forged requests."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from werkzeug.datastructures import MultiDict

from chamber.directory import segments
from chamber.directory.models import Segment
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.members import services as members
from chamber.members.models import (
    Consent,
    Contact,
    LegalForm,
    MarketingTopic,
    Organisation,
    OrganisationTag,
    SizeBand,
    TopicOptOut,
)
from chamber.registration.services import DelegateDetails
from chamber.surveys.models import Invitation, Survey
from tests.factories import at, make_booking
from tests.support import count_queries, post_form


def organisation(name: str, **fields) -> Organisation:
    found = members.find_or_create_organisation(
        name=name, size_band=fields.pop("size_band", SizeBand.small)
    )
    for key, value in {"legal_form": LegalForm.limited_company, **fields}.items():
        if key == "tags":
            found.tags = [OrganisationTag(tag=tag) for tag in value]
        else:
            setattr(found, key, value)
    db.session.flush()
    return found


def contact(email: str, at_organisation: Organisation | None = None, **fields) -> Contact:
    person = members.find_or_create_contact(
        email=email, name=fields.pop("name", email.split("@")[0].title()),
        organisation=at_organisation, confirmed=True,  # the directory, as staff keep it
    )  # fmt: skip
    for key, value in fields.items():
        setattr(person, key, value)
    db.session.flush()
    return person


@pytest.fixture
def directory(app):
    """A small county: members and not, sizes, places, tags, and people with every basis."""
    octree = organisation(
        "Octree Ltd", is_member=True, membership_tier="Patron", sector="Technology",
        town_or_postcode="Hitchin", postcode="SG5 1AB", member_since=date(2019, 3, 1),
        renews_on=date(2027, 3, 1), tags=["cyber-essentials"],
    )  # fmt: skip
    bakery = organisation(
        "Stevenage Bakery", size_band=SizeBand.micro, legal_form=LegalForm.sole_trader,
        sector="Food and drink", town_or_postcode="Stevenage", postcode="SG1 2CD",
    )  # fmt: skip
    lapsed = organisation(
        "Ware Print Ltd", size_band=SizeBand.medium, sector="Manufacturing",
        town_or_postcode="Ware", postcode="SG12 9ZZ", member_since=date(2015, 1, 1),
        lapsed_on=date(2025, 1, 1),
    )  # fmt: skip
    large = organisation(
        "County Services", size_band=SizeBand.large, legal_form=LegalForm.public_body,
        is_member=True, membership_tier="Corporate", town_or_postcode="Hertford",
        postcode="SG13 8DQ", member_since=date(2024, 6, 1), renews_on=date(2027, 6, 1),
    )  # fmt: skip
    people = {
        "tony": contact("tony@octree.example", octree),  # corporate
        "ann": contact("ann@octree.example", octree),  # corporate, then suppressed
        "baker": contact("baker@gmail.com", bakery),  # sole trader: no basis
        "consented": contact("jo.baker@gmail.com", bakery),  # sole trader with consent
        "printer": contact("pat@wareprint.example", lapsed),  # corporate
        "officer": contact("officer@county.example", large),  # public body
        "loner": contact("loner@hotmail.com"),  # no organisation, soft opt-in
        "archived": contact("gone@octree.example", octree),
    }
    mail.suppress("ann@octree.example")
    db.session.add(
        Consent(contact=people["consented"], purpose="events", wording="Yes", source="subscribe form",
                confirmed_at=at(-30))
    )  # fmt: skip
    people["loner"].soft_opt_in_at = at(-60)
    people["archived"].archived_at = at(-1)
    db.session.add(TopicOptOut(contact_id=people["officer"].id, topic=MarketingTopic.newsletter))
    db.session.commit()
    return people


def resolve(**args) -> set[str]:
    """The addresses in the segment the query-string `args` describe."""
    filters = segments.SegmentFilters.from_args(MultiDict(args))
    return {row[0].email for row in db.session.execute(segments.people_query(filters))}


def test_each_filter_narrows_and_nobody_marketing_may_not_reach_is_in(directory):
    everyone = resolve()
    # Suppressed, no basis and archived are never in; the rest are.
    assert everyone == {"tony@octree.example", "jo.baker@gmail.com", "pat@wareprint.example",
                        "officer@county.example", "loner@hotmail.com"}  # fmt: skip
    assert resolve(membership="member") == {"tony@octree.example", "officer@county.example"}
    assert resolve(membership="lapsed") == {"pat@wareprint.example"}
    assert resolve(membership="not_member") == {
        "jo.baker@gmail.com", "pat@wareprint.example", "loner@hotmail.com",
    }  # fmt: skip
    assert resolve(membership="member", tiers="patron") == {"tony@octree.example"}
    assert resolve(size_band=["micro", "large"]) == {"jo.baker@gmail.com", "officer@county.example"}
    assert resolve(sectors="technology, Manufacturing") == {
        "tony@octree.example", "pat@wareprint.example",
    }  # fmt: skip
    assert resolve(tags="Cyber-Essentials") == {"tony@octree.example"}
    assert resolve(joined_from="2019-01-01", joined_to="2020-01-01") == {"tony@octree.example"}
    assert resolve(renews_from="2027-04-01") == {"officer@county.example"}
    assert resolve(joined_from="2020-01-01", joined_to="2019-01-01") == set()  # backwards: none
    # The topic decides the basis: the public body's officer opted out of the newsletter, and
    # the soft opt-in covers events and the newsletter, not surveys.
    assert "officer@county.example" not in resolve(topic="newsletter")
    assert "loner@hotmail.com" not in resolve(topic="surveys")


def test_a_postcode_district_is_not_a_prefix_of_another_and_an_area_covers_its_districts(directory):
    assert resolve(places="SG1") == {"jo.baker@gmail.com"}  # SG1 2CD, not SG12 or SG13
    assert resolve(places="sg12") == {"pat@wareprint.example"}
    assert resolve(places="SG") == resolve(places="SG1, SG5, SG12, SG13")
    assert resolve(places="Hitchin") == {"tony@octree.example"}
    assert resolve(places="S") == set()  # an area is letters then digits: S is not SG
    assert resolve(places="%") == set() and resolve(places="_G1") == set()


def test_history_filters_read_bookings_attendance_no_shows_and_surveys(app, directory, make_event):
    past = make_event(starts_at=at(-30))
    other = make_event(starts_at=at(-10))
    make_booking(past, DelegateDetails("Tony", "tony@octree.example"), business="Octree Ltd",
                 checked_in=True)  # fmt: skip
    make_booking(past, DelegateDetails("Pat", "pat@wareprint.example"), business="Ware Print Ltd")
    make_booking(other, DelegateDetails("Loner", "loner@hotmail.com"), business="Loner",
                 checked_in=True)  # fmt: skip
    directory["loner"].organisation = None  # booked as a business; known as a person
    survey = Survey(event_id=past.id, title="How was it?")
    db.session.add(survey)
    db.session.flush()
    tony_place = db.session.scalar(
        db.select(segments.Delegate).where(
            segments.Delegate.email_normalised == "tony@octree.example"
        )
    )
    db.session.add(Invitation(survey_id=survey.id, delegate_id=tony_place.id,
                              email="tony@octree.example", responded_at=at(-29)))  # fmt: skip
    db.session.commit()
    assert resolve(history="booked") == {
        "tony@octree.example", "pat@wareprint.example", "loner@hotmail.com",
    }  # fmt: skip
    assert resolve(history="booked", event=[str(past.id)]) == {
        "tony@octree.example", "pat@wareprint.example",
    }  # fmt: skip
    assert resolve(history="attended") == {"tony@octree.example", "loner@hotmail.com"}
    assert resolve(history="no_show") == {"pat@wareprint.example"}
    assert resolve(never_attended="yes") == {
        "jo.baker@gmail.com", "pat@wareprint.example", "officer@county.example",
    }  # fmt: skip
    assert resolve(answered_survey="yes") == {"tony@octree.example"}
    # "SME members who have never attended a seminar"
    assert resolve(membership="member", size_band=["micro", "small", "medium"],
                   never_attended="yes") == set()  # fmt: skip


def test_the_tally_counts_who_is_in_and_who_is_left_out_and_why(directory):
    tally = segments.tally(segments.SegmentFilters())
    assert tally.included == 5
    assert tally.left_out == {
        "bounced": 0, "suppressed": 1, "archived": 1, "opted_out": 0, "no_basis": 1,
    }  # fmt: skip
    newsletter = segments.tally(segments.SegmentFilters(topic=MarketingTopic.newsletter))
    assert (
        newsletter.left_out["opted_out"] == 1 and newsletter.included == 3
    )  # consent: events only


def test_unknown_or_malformed_filters_mean_no_filter_never_an_error(directory):
    hostile = MultiDict({
        "topic": "'; DROP TABLE contact; --", "membership": "<script>", "size_band": ["huge"],
        "event": ["1 OR 1=1", "99999999999"], "history": "{{ 7*7 }}", "joined_from": "2026-13-45",
        "renews_to": "yesterday", "places": "SG1\r\nBcc: x@evil.example", "tags": "\x00, ,",
    })  # fmt: skip
    filters = segments.SegmentFilters.from_args(hostile)
    # Line breaks separate values, as commas do: "SG1" and a place that matches nothing.
    assert filters == segments.SegmentFilters(places=("SG1", "Bcc: x@evil.example"))
    assert segments.tally(filters).included == 1  # the bakery in SG1; the rest match nothing


def test_the_builder_shows_the_count_saves_and_the_saved_segment_resolves_afresh(
    organiser_client, directory
):
    page = organiser_client.get("/staff/directory/segments/new?membership=member")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert '<strong data-count="included">2</strong>' in page.text
    assert "tony@octree.example" in page.text and "baker@gmail.com" not in page.text
    saved = post_form(
        organiser_client, "/staff/directory/segments/new?membership=member",
        {"name": "Members"}, token_from="/staff/directory/segments/new",
    )  # fmt: skip
    assert saved.status_code == 302
    segment = db.session.scalar(db.select(Segment))
    assert segment.name == "Members" and segment.filters == {"membership": "member"}
    # A new member appears in the saved segment without saving it again.
    contact("new@county.example", db.session.scalar(
        db.select(Organisation).where(Organisation.name == "County Services")))  # fmt: skip
    db.session.commit()
    shown = organiser_client.get(saved.headers["Location"])
    assert "new@county.example" in shown.text
    assert "Members" in organiser_client.get("/staff/directory/segments/").text


def test_saving_refuses_a_missing_duplicate_or_hostile_name_and_stores_nothing(
    organiser_client, directory
):
    path = "/staff/directory/segments/new"
    assert post_form(organiser_client, path, {"name": "Members"}).status_code == 302
    for name, message in [
        ("", "Enter a name for the segment."),
        ("members", None),  # the same name in another case is a different segment name
        ("Members", "A segment with that name exists already"),
        ("x" * 121, "Name must be 120 characters or fewer."),
        ("Bad\r\nBcc: x@evil.example", None),
    ]:
        response = post_form(organiser_client, path, {"name": name})
        if message:
            assert response.status_code == 400 and message in response.text
    assert db.session.scalar(db.select(db.func.count(Segment.id))) <= 2
    names = set(db.session.scalars(db.select(Segment.name)))
    assert all("\n" not in name and "\r" not in name for name in names)
    markup = post_form(organiser_client, path, {"name": "<b>{{ 7*7 }}</b>"})
    assert markup.status_code == 302
    listed = organiser_client.get("/staff/directory/segments/").text
    assert "&lt;b&gt;{{ 7*7 }}&lt;/b&gt;" in listed and "<b>{{" not in listed


def test_changing_and_deleting_a_segment(organiser_client, directory):
    post_form(organiser_client, "/staff/directory/segments/new?membership=member", {"name": "M"},
              token_from="/staff/directory/segments/new")  # fmt: skip
    segment = db.session.scalar(db.select(Segment))
    segment_id = segment.id
    edit = f"/staff/directory/segments/{segment_id}/edit"
    assert organiser_client.get(f"{edit}?membership=lapsed").status_code == 200
    changed = post_form(organiser_client, f"{edit}?membership=lapsed", {"name": "Lapsed"},
                        token_from=edit)  # fmt: skip
    assert changed.status_code == 302
    db.session.refresh(segment)
    assert (segment.name, segment.filters) == ("Lapsed", {"membership": "lapsed"})
    deleted = post_form(organiser_client, f"/staff/directory/segments/{segment_id}/delete", {},
                        token_from=f"/staff/directory/segments/{segment_id}")  # fmt: skip
    assert deleted.status_code == 302
    assert db.session.scalar(db.select(db.func.count(Segment.id))) == 0
    assert db.session.scalar(db.select(db.func.count(Contact.id))) == 8  # nobody in it changed
    assert organiser_client.get(f"/staff/directory/segments/{segment_id}").status_code == 404


def test_forged_and_unauthorised_requests_are_refused(app, client, checkin_client, organiser_client,
                                                      directory):  # fmt: skip
    assert client.get("/staff/directory/segments/").status_code == 302  # to the login page
    assert checkin_client.get("/staff/directory/segments/new").status_code == 403
    assert checkin_client.get("/staff/directory/segments/people.csv").status_code == 403
    no_token = organiser_client.post("/staff/directory/segments/new", data={"name": "X"})
    wrong = organiser_client.post(
        "/staff/directory/segments/new", data={"name": "X", "csrf_token": "forged"}
    )
    assert no_token.status_code == wrong.status_code == 400
    assert db.session.scalar(db.select(db.func.count(Segment.id))) == 0
    assert organiser_client.get("/staff/directory/segments/99999/edit").status_code == 404
    assert organiser_client.get("/staff/directory/segments/left-out/nope").status_code == 404


def test_left_out_names_are_shown_on_request_and_the_count_endpoint_agrees(
    organiser_client, directory
):
    page = organiser_client.get("/staff/directory/segments/left-out/suppressed")
    assert page.status_code == 200 and "ann@octree.example" in page.text
    assert "tony@octree.example" not in page.text
    counted = organiser_client.get("/staff/directory/segments/count?membership=member").get_json()
    assert counted == {"included": 2, "left_out": 2}  # Ann (suppressed) and the archived contact


def test_the_csv_is_the_segment_and_formula_safe(organiser_client, directory):
    person = db.session.scalar(db.select(Contact).where(Contact.email == "tony@octree.example"))
    person.name = '=HYPERLINK("http://evil.example")'
    db.session.commit()
    response = organiser_client.get("/staff/directory/segments/people.csv?membership=member")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["Name", "Email"]
    assert {row[1] for row in rows[1:]} == {"tony@octree.example", "officer@county.example"}
    assert all(not row[0].startswith("=") for row in rows[1:])


def test_a_page_of_the_segment_costs_the_same_queries_however_many_are_in_it(
    organiser_client, directory
):
    def queries() -> int:
        with count_queries() as statements:
            assert organiser_client.get("/staff/directory/segments/new").status_code == 200
        return len(statements)

    few = queries()
    county = db.session.scalar(
        db.select(Organisation).where(Organisation.name == "County Services")
    )
    for n in range(40):
        contact(f"person{n}@county.example", county)
    db.session.commit()
    assert queries() == few


def test_the_builders_get_form_carries_no_csrf_token_into_urls(organiser_client, directory):
    page = organiser_client.get("/staff/directory/segments/new").text
    save_form = page[page.index('id="save"') :]
    assert 'name="csrf_token"' in save_form
    get_form = page[page.index("data-live-count") : page.index("Show who matches")]
    assert "csrf_token" not in get_form


# --- the marketing status filter -------------------------------------------------------------------


def test_the_marketing_status_filter_keeps_only_the_chosen_bases_and_still_counts_who_has_none(
    directory,
):
    # For events: tony and printer and officer are corporate, jo has consent, loner a soft opt-in.
    assert resolve(status="consent") == {"jo.baker@gmail.com"}
    assert resolve(status="corporate") == {
        "tony@octree.example", "pat@wareprint.example", "officer@county.example"
    }  # fmt: skip
    assert resolve(status=["consent", "soft_opt_in"]) == {"jo.baker@gmail.com", "loner@hotmail.com"}
    assert resolve(status=["consent", "corporate", "soft_opt_in"]) == resolve()
    # Combined with the other filters and the topic: the officer opted out of the newsletter.
    assert resolve(status="corporate", membership="member") == {
        "tony@octree.example", "officer@county.example"
    }  # fmt: skip
    assert resolve(status="corporate", topic="newsletter", membership="member") == {
        "tony@octree.example"
    }
    # Who has no lawful basis is still counted as left out, with the reason.
    tally = segments.tally(segments.SegmentFilters.from_args(MultiDict({"status": "consent"})))
    assert tally.included == 1
    assert tally.left_out == segments.tally(segments.SegmentFilters()).left_out
    # An unknown or unlawful status (a forged query) means no filter, never an error.
    assert resolve(status="suppressed") == resolve(status="nonsense") == resolve()


def test_a_saved_segment_keeps_its_marketing_status_and_the_live_count_follows_it(
    organiser_client, directory
):
    response = post_form(
        organiser_client, "/staff/directory/segments/new?status=consent&status=soft_opt_in",
        {"name": "Consent and soft opt-in"}, token_from="/staff/directory/segments/new",
    )  # fmt: skip
    assert response.status_code == 302
    segment = db.session.scalar(db.select(Segment))
    assert segment.filters["status"] == ["consent", "soft_opt_in"]
    page = organiser_client.get(f"/staff/directory/segments/{segment.id}")
    assert "Marketing status: Consent, Soft opt-in" in page.text
    assert '<strong data-count="included">2</strong>' in page.text
    counted = organiser_client.get("/staff/directory/segments/count?status=corporate").json
    assert counted["included"] == 3
    builder = organiser_client.get("/staff/directory/segments/new?status=corporate")
    assert 'id="status-corporate" name="status" value="corporate" checked' in builder.text
