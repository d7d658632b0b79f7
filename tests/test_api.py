"""The read-only JSON API (/api/v1) and the schema.org JSON-LD on event pages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from chamber.api.jsonld import event_jsonld, event_jsonld_tag
from chamber.events.models import EventStatus
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.registration.services import BusinessDetails, DelegateDetails
from tests.factories import at, make_booking
from tests.support import count_queries

OPENAPI = json.loads((Path(__file__).parent.parent / "docs" / "openapi.json").read_text())
SPEC_URI = "urn:chamber:openapi"
REGISTRY = Registry().with_resource(SPEC_URI, Resource(contents=OPENAPI, specification=DRAFT202012))
SCRIPT = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.S)


def response_schema(path: str, status: str = "200") -> Draft202012Validator:
    content = OPENAPI["paths"][path]["get"]["responses"][status]["content"]["application/json"]
    ref = content["schema"]["$ref"]  # "#/components/schemas/..."
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}{ref}"}, registry=REGISTRY, format_checker=FormatChecker()
    )


def assert_valid(path: str, body, status: str = "200") -> None:
    errors = list(response_schema(path, status).iter_errors(body))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


@pytest.fixture
def seminar(make_event, make_speaker, make_item):
    event = make_event(
        slug="cyber",
        title="Cyber crime seminar",
        supporters="Police and Crime Commissioner\nCommunity Fund",
        starts_at=datetime(2030, 3, 12, 8, 0, tzinfo=UTC),
        ends_at=datetime(2030, 3, 12, 12, 0, tzinfo=UTC),
    )
    tony = make_speaker(
        "Tony Richardson", "Octree", job_title="Director", email="tony@secret.example"
    )
    sam = make_speaker("Sam Second", "Police", email="sam@secret.example")
    make_item(event, title="Welcome", length=15, speakers=[])
    make_item(event, minutes_in=15, length=45, title="Phishing", speakers=[tony, sam])
    return event


def confirm(event, n: int) -> None:
    """`n` confirmed delegates, each from a different business, booked as the public would."""
    for i in range(n):
        business = BusinessDetails(f"Business {i}", SizeBand.small, "IT", "Stevenage")
        someone = DelegateDetails(name=f"Person {i}", email=f"person{i}@example.com")
        make_booking(event, someone, business=business, source="web", commit=False)
    db.session.commit()


# --- detail --------------------------------------------------------------------------------------


def test_event_detail_shape(client, app, seminar):
    response = client.get("/api/v1/events/cyber")
    assert response.status_code == 200
    body = response.json
    assert_valid("/api/v1/events/{slug}", body)
    base = app.config["BASE_URL"]
    assert body["slug"] == "cyber"
    assert body["status"] == "scheduled"
    # March 2030 in London is GMT; the offset is written out either way.
    assert body["start"] == "2030-03-12T08:00:00+00:00"
    assert body["end"] == "2030-03-12T12:00:00+00:00"
    assert body["timezone"] == "Europe/London"
    assert body["venue"] == {
        "name": "Holiday Inn Stevenage",
        "address": "St George's Way, Stevenage SG1 1HS",
    }
    assert body["supporters"] == ["Police and Crime Commissioner", "Community Fund"]
    assert body["links"] == {
        "html": f"{base}/events/cyber",
        "ics": f"{base}/events/cyber.ics",
        "register": f"{base}/events/cyber/register",
    }
    assert body["registration"]["open"] is True
    assert body["seats_left"] == 80
    assert [item["title"] for item in body["agenda"]] == ["Welcome", "Phishing"]
    phishing = body["agenda"][1]
    assert phishing["kind"] == "talk"
    assert phishing["start"] == "2030-03-12T08:15:00+00:00"
    assert phishing["speakers"] == [
        {"name": "Tony Richardson", "job_title": "Director", "organisation": "Octree"},
        {"name": "Sam Second", "job_title": "", "organisation": "Police"},
    ]


def test_summer_times_carry_the_summer_offset(client, make_event):
    make_event(slug="june", starts_at=datetime(2030, 6, 12, 8, 0, tzinfo=UTC))
    make_event(
        slug="ny", timezone="America/New_York", starts_at=datetime(2030, 1, 9, 15, tzinfo=UTC)
    )
    assert client.get("/api/v1/events/june").json["start"] == "2030-06-12T09:00:00+01:00"
    assert client.get("/api/v1/events/ny").json["start"] == "2030-01-09T10:00:00-05:00"


def test_no_speaker_email_anywhere(client, seminar):
    for path in ("/api/v1/events", "/api/v1/events/cyber"):
        text = client.get(path).get_data(as_text=True)
        assert "secret.example" not in text
        assert "email" not in text


def test_seats_left_counts_confirmed_and_is_null_when_closed(client, make_event, seminar):
    confirm(seminar, 5)
    assert client.get("/api/v1/events/cyber").json["seats_left"] == 75
    make_event(slug="later", registration_opens_at=at(7), starts_at=at(30))
    later = client.get("/api/v1/events/later").json
    assert later["seats_left"] is None
    assert later["registration"]["open"] is False
    assert later["registration"]["opens_at"].endswith(("+00:00", "+01:00"))


def test_drafts_and_unknown_slugs_are_json_404s(client, make_event):
    make_event(slug="draft", status=EventStatus.draft)
    for path in (
        "/api/v1/events/draft",
        "/api/v1/events/nope",
        "/api/v1/events/a%00b",
        "/api/v1/x",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.is_json and "error" in response.json, path
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/api/v1/events").json["total"] == 0


def test_writes_are_refused_as_json(client, seminar):
    response = client.post("/api/v1/events")
    assert response.status_code == 405
    assert response.is_json


def test_cancelled_events_are_listed_with_their_status(client, make_event):
    make_event(slug="off", status=EventStatus.cancelled)
    body = client.get("/api/v1/events").json
    assert [e["status"] for e in body["events"]] == ["cancelled"]
    assert body["events"][0]["seats_left"] is None
    assert client.get("/api/v1/events/off").json["status"] == "cancelled"


# --- list ----------------------------------------------------------------------------------------


def test_upcoming_and_past(client, make_event):
    make_event(slug="soon", starts_at=at(3))
    make_event(slug="later", starts_at=at(10))
    make_event(slug="old", starts_at=at(-30))
    make_event(slug="older", starts_at=at(-60))
    upcoming = client.get("/api/v1/events").json
    assert [e["slug"] for e in upcoming["events"]] == ["soon", "later"]
    assert_valid("/api/v1/events", upcoming)
    past = client.get("/api/v1/events?when=past").json
    assert [e["slug"] for e in past["events"]] == ["old", "older"]
    assert all(e["registration"]["open"] is False for e in past["events"])
    assert_valid("/api/v1/events", past)


def test_pagination_and_links(client, app, make_event):
    for days in range(1, 6):
        make_event(slug=f"e{days}", starts_at=at(days))
    base = app.config["BASE_URL"]
    first = client.get("/api/v1/events?per_page=2").json
    assert (first["page"], first["per_page"], first["total"]) == (1, 2, 5)
    assert [e["slug"] for e in first["events"]] == ["e1", "e2"]
    assert first["links"] == {
        "self": f"{base}/api/v1/events?page=1&per_page=2",
        "next": f"{base}/api/v1/events?page=2&per_page=2",
        "prev": None,
    }
    last = client.get(first["links"]["next"].removeprefix(base)).json
    assert [e["slug"] for e in last["events"]] == ["e3", "e4"]
    last = client.get("/api/v1/events?per_page=2&page=3").json
    assert [e["slug"] for e in last["events"]] == ["e5"]
    assert last["links"]["next"] is None
    assert last["links"]["prev"] == f"{base}/api/v1/events?page=2&per_page=2"
    past = client.get("/api/v1/events?when=past&per_page=1").json
    assert past["links"]["self"].endswith("when=past")


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-5",
        "page=abc",
        "page=99999999999999999999999",
        "per_page=0",
        "per_page=1000",
        "per_page=x",
        "page=1.5",
        "when=%00",
    ],
)
def test_silly_numbers_are_clamped(client, make_event, query):
    make_event()
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 200
    body = response.json
    assert 1 <= body["per_page"] <= 50
    assert body["page"] >= 1
    assert_valid("/api/v1/events", body)


def test_per_page_is_capped_at_50(client, make_event):
    assert client.get("/api/v1/events?per_page=500").json["per_page"] == 50


def test_query_count_does_not_grow(client, make_event, make_speaker, make_item):
    def fill(n: int) -> None:
        speaker = make_speaker(f"Speaker {n}")
        for i in range(n):
            event = make_event(starts_at=at(1 + i))
            make_item(event, speakers=[speaker])
            make_item(event, minutes_in=30, speakers=[speaker, make_speaker(f"S{n}-{i}")])

    fill(1)
    with count_queries() as one:
        assert client.get("/api/v1/events").status_code == 200
    fill(20)
    with count_queries() as many:
        body = client.get("/api/v1/events?per_page=50").json
    assert body["total"] == 21
    assert len(many) == len(one), many


# --- HTTP ----------------------------------------------------------------------------------------


def test_cors_and_caching_headers(client, seminar):
    for path in ("/api/v1/events", "/api/v1/events/cyber"):
        response = client.get(path, headers={"Origin": "https://elsewhere.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert response.headers["Cache-Control"] == "public, max-age=60"
        assert "Set-Cookie" not in response.headers


def test_preflight_is_answered(client, seminar):
    response = client.options(
        "/api/v1/events/cyber",
        headers={
            "Origin": "https://elsewhere.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Accept",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "Accept" in response.headers["Access-Control-Allow-Headers"]


def test_openapi_document_is_a_valid_schema():
    assert OPENAPI["openapi"].startswith("3.1")
    for name in OPENAPI["components"]["schemas"]:
        Draft202012Validator.check_schema(OPENAPI["components"]["schemas"][name])
    assert set(OPENAPI["paths"]) == {"/api/v1/events", "/api/v1/events/{slug}"}


def test_openapi_schema_would_catch_a_leak(client, seminar):
    body = client.get("/api/v1/events/cyber").json
    body["agenda"][1]["speakers"][0]["email"] = "tony@secret.example"
    assert list(response_schema("/api/v1/events/{slug}").iter_errors(body))


def test_error_bodies_match_the_schema(client):
    response = client.get("/api/v1/events/nope")
    assert_valid("/api/v1/events/{slug}", response.json, "404")


# --- JSON-LD -------------------------------------------------------------------------------------


def test_event_jsonld(app, seminar, make_event):
    data = event_jsonld(seminar)
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "Event"
    assert data["name"] == "Cyber crime seminar"
    assert data["startDate"] == "2030-03-12T08:00:00+00:00"
    assert data["endDate"] == "2030-03-12T12:00:00+00:00"
    assert data["eventStatus"] == "https://schema.org/EventScheduled"
    assert data["eventAttendanceMode"] == "https://schema.org/OfflineEventAttendanceMode"
    assert data["location"]["@type"] == "Place"
    assert data["location"]["name"] == "Holiday Inn Stevenage"
    assert "Stevenage SG1 1HS" in data["location"]["address"]["streetAddress"]
    assert data["organizer"] == {
        "@type": "Organization",
        "name": "Hertfordshire Chamber of Commerce",
        "url": app.config["BASE_URL"],
    }
    assert [p["name"] for p in data["performer"]] == ["Tony Richardson", "Sam Second"]
    assert data["performer"][0]["affiliation"] == {"@type": "Organization", "name": "Octree"}
    assert data["url"] == f"{app.config['BASE_URL']}/events/cyber"
    assert data["description"] == seminar.summary
    assert "secret.example" not in json.dumps(data)

    cancelled = make_event(status=EventStatus.cancelled, host="")
    data = event_jsonld(cancelled)
    assert data["eventStatus"] == "https://schema.org/EventCancelled"
    assert data["organizer"]["name"] == app.config["CHAMBER_NAME"]


def test_jsonld_tag_parses_and_cannot_be_broken_out_of(app, make_event):
    title = "</script><script>alert(1)</script> & <!-- Q&A"
    event = make_event(title=title, summary="a\u2028b")
    tag = str(event_jsonld_tag(event))
    assert tag.startswith('<script type="application/ld+json">')
    assert tag.endswith("</script>")
    assert tag.count("</script") == 1
    assert "<" not in tag[len('<script type="application/ld+json">') : -len("</script>")]
    data = json.loads(SCRIPT.fullmatch(tag).group(1))
    assert data["name"] == title
    assert data["description"] == "a\u2028b"


def test_jsonld_tag_is_a_template_global(app, make_event):
    event = make_event()
    html = app.jinja_env.from_string("{{ event_jsonld_tag(event) }}").render(event=event)
    assert json.loads(SCRIPT.fullmatch(html).group(1))["@type"] == "Event"
