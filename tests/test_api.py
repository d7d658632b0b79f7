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
from chamber.extensions import db, limiter
from chamber.members.models import SizeBand
from chamber.registration.services import BusinessDetails, DelegateDetails
from tests.factories import at, make_booking
from tests.support import count_queries

OPENAPI_FILE = Path(__file__).parent.parent / "chamber" / "api" / "openapi.json"
OPENAPI = json.loads(OPENAPI_FILE.read_text())
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
        assert response.is_json, path
        assert response.json["error"]["code"] == "not_found", path
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert_valid("/api/v1/events/{slug}", response.json, "404")
    assert client.get("/api/v1/events").json["total"] == 0


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/v2/events", "/api/v1/", "/api/v1/x/y"])
def test_any_unknown_address_under_api_is_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.is_json
    assert response.json["error"] == {"code": "not_found", "message": "Not found.", "field": None}


def test_the_rest_of_the_site_keeps_its_html_error_pages(client):
    for path in ("/nowhere", "/apix", "/events/nowhere"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/html", path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/events"),
        ("PUT", "/api/v1/events/cyber"),
        ("DELETE", "/api/v1/events/cyber"),
        ("PATCH", "/api/v1/openapi.json"),
    ],
)
def test_writes_are_refused_as_json_405s_with_allow(client, seminar, method, path):
    response = client.open(path, method=method, data={"title": "changed"})
    assert response.status_code == 405
    assert response.is_json
    assert response.json["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert client.get("/api/v1/events/cyber").json["title"] == "Cyber crime seminar"


def test_a_write_to_an_unknown_address_is_a_json_404(client):
    response = client.post("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.is_json


def test_a_server_error_is_json(app, client, seminar, monkeypatch):
    def broken(**_kwargs):
        raise RuntimeError("the database went away")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as production does, not raise to the test
    monkeypatch.setattr("chamber.api.queries.public_events_page", broken)
    response = client.get("/api/v1/events")
    assert response.status_code == 500
    assert response.is_json
    assert response.json["error"]["code"] == "server_error"
    assert "database" not in response.json["error"]["message"]  # no internals leak
    assert response.headers["Cache-Control"] == "no-store"


def test_the_rate_limit_answers_json_429_with_retry_after(app, client, seminar):
    app.config["RATELIMIT_ENABLED"] = True
    limiter.reset()
    try:
        statuses = [client.get("/api/v1/events/cyber").status_code for _ in range(120)]
        response = client.get("/api/v1/events/cyber")
    finally:
        limiter.reset()
    assert statuses == [200] * 120
    assert response.status_code == 429
    assert response.is_json
    assert response.json["error"]["code"] == "too_many_requests"
    assert int(response.headers["Retry-After"]) > 0
    assert_valid("/api/v1/events/{slug}", response.json, "429")


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
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=-5", "page"),
        ("page=abc", "page"),
        ("page=", "page"),
        ("page=1.5", "page"),
        ("page=+2", "page"),
        ("page=%EF%BC%92", "page"),  # a full-width digit: int() would take it
        ("page=1000001", "page"),
        ("page=99999999999999999999999", "page"),
        ("per_page=0", "per_page"),
        ("per_page=51", "per_page"),
        ("per_page=x", "per_page"),
        ("per_page=%00", "per_page"),
        ("when=%00", "when"),
        ("when=future", "when"),
        ("when=", "when"),
        ("when=<script>", "when"),
        ("page=2&when=PAST", "when"),
        ("when=%7B%7B7*7%7D%7D", "when"),  # template syntax
        ("when=past%27%20OR%201%3D1%20--", "when"),  # SQL-looking text
        ("when=past%0D%0ASet-Cookie:%20x=1", "when"),  # CR/LF
        ("page=%D9%A3", "page"),  # an Arabic-Indic digit three
        ("per_page=1%00", "per_page"),
    ],
)
def test_bad_query_parameters_are_json_400s_naming_the_field(client, make_event, query, field):
    make_event()
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 400
    assert response.is_json
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    error = response.json["error"]
    assert (error["code"], error["field"]) == ("bad_request", field)
    assert field in error["message"]
    assert "<script>" not in error["message"]  # what was sent is not echoed back
    assert "Set-Cookie" not in response.headers and "{{" not in response.text
    assert_valid("/api/v1/events", response.json, "400")


@pytest.mark.parametrize(
    "query", ["page=1000000", "per_page=1", "per_page=50", "when=upcoming", "when=past&page=3"]
)
def test_the_edges_of_each_range_are_accepted(client, make_event, query):
    make_event()
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 200
    assert_valid("/api/v1/events", response.json)


def test_a_page_past_the_last_is_empty_and_points_back(client, app, make_event):
    make_event()
    body = client.get("/api/v1/events?page=7").json
    assert (body["events"], body["total"]) == ([], 1)
    assert body["links"]["prev"] == f"{app.config['BASE_URL']}/api/v1/events?page=1&per_page=20"


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


def test_openapi_document_describes_every_api_route(app):
    """A route added to the API without its description here fails this test."""
    routes = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule): rule.methods - {"HEAD", "OPTIONS"}
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
    }
    documented = {path: {m.upper() for m in item} for path, item in OPENAPI["paths"].items()}
    assert routes == documented


def test_the_openapi_document_is_served_from_the_package(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == OPENAPI
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert (Path(__file__).parent.parent / "docs" / "openapi.json").resolve() == OPENAPI_FILE


def test_openapi_schema_would_catch_a_leak(client, seminar):
    body = client.get("/api/v1/events/cyber").json
    body["agenda"][1]["speakers"][0]["email"] = "tony@secret.example"
    assert list(response_schema("/api/v1/events/{slug}").iter_errors(body))


def test_error_bodies_match_the_schema(client):
    response = client.get("/api/v1/events/nope")
    assert_valid("/api/v1/events/{slug}", response.json, "404")
    body = response.json
    body["error"]["stack"] = "Traceback"
    assert list(response_schema("/api/v1/events/{slug}", "404").iter_errors(body))


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


def test_the_api_limit_is_a_setting(app, client, seminar):
    app.config.update(RATELIMIT_ENABLED=True, API_LIMIT_PER_ADDRESS="3 per minute")
    limiter.reset()
    try:
        statuses = [client.get("/api/v1/events").status_code for _ in range(4)]
    finally:
        limiter.reset()
    assert statuses == [200, 200, 200, 429]


# --- the rate limit, counted in front of the page cache ------------------------------------------


@pytest.fixture
def limited(app):
    app.config.update(API_LIMIT_PER_ADDRESS="3 per minute")
    limiter.reset()
    yield app
    limiter.reset()


def test_kept_answers_and_304s_count_and_say_where_the_client_stands(limited, client, seminar):
    first = client.get("/api/v1/events/cyber")
    kept = client.get("/api/v1/events/cyber")  # from the page cache, before Flask
    conditional = client.get(
        "/api/v1/events/cyber", headers={"If-None-Match": kept.headers["ETag"]}
    )
    over = client.get("/api/v1/events/cyber", headers={"If-None-Match": kept.headers["ETag"]})
    assert [first.status_code, kept.status_code, conditional.status_code] == [200, 200, 304]
    assert kept.json == first.json
    assert [r.headers["X-RateLimit-Remaining"] for r in (first, kept, conditional)] == [
        "2", "1", "0",
    ]  # fmt: skip
    assert all(r.headers["X-RateLimit-Limit"] == "3" for r in (first, kept, conditional, over))
    assert int(kept.headers["X-RateLimit-Reset"]) >= int(first.headers["X-RateLimit-Reset"]) > 0
    # Over the limit even a copy the client holds is refused: the JSON 429, never a kept page.
    assert over.status_code == 429
    assert over.json["error"]["code"] == "too_many_requests"
    assert "3 per 1 minute" in over.json["error"]["message"]
    assert 0 < int(over.headers["Retry-After"]) <= 60
    assert over.headers["Cache-Control"] == "no-store"
    assert over.headers["Access-Control-Allow-Origin"] == "*"
    assert over.headers.get_all("X-RateLimit-Remaining") == ["0"]  # once, not kept from before
    assert_valid("/api/v1/events/{slug}", over.json, "429")


def test_every_request_under_the_api_counts_unknown_addresses_and_preflights_too(
    limited, client, seminar
):
    assert client.get("/api/v1/no-such-thing").status_code == 404
    assert client.options("/api/v1/events").status_code == 204
    assert client.get("/api/v1/events").status_code == 200
    assert client.get("/api/v1/events").status_code == 429
    # Over the limit, every address under the API is refused alike, preflights too.
    for refused in (client.get("/api/v1/no-such-thing"), client.options("/api/v1/events")):
        assert refused.status_code == 429
        assert refused.json["error"]["code"] == "too_many_requests"
        assert int(refused.headers["Retry-After"]) > 0
    assert client.get("/events/cyber").status_code == 200  # the site's pages are not the API's


def test_the_api_limit_counts_the_client_behind_a_trusted_proxy_not_a_forged_header(
    limited, make_app, seminar
):
    direct = limited.test_client()
    for n in range(3):  # X-Forwarded-For is the client's own words without a trusted proxy
        forged = {"X-Forwarded-For": f"192.0.2.{n}"}
        assert direct.get("/api/v1/events", headers=forged).status_code == 200
    assert direct.get("/api/v1/events", headers={"X-Forwarded-For": "192.0.2.9"}).status_code == 429

    proxied = make_app(PROXY_COUNT=1, API_LIMIT_PER_ADDRESS="3 per minute").test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for client_address in ("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"):
        answer = proxied.get(
            "/api/v1/events",
            headers={"X-Forwarded-For": client_address},
            environ_overrides=proxy,
        )
        assert answer.status_code == 200  # each a client of its own, all through one proxy
    for _ in range(3):
        proxied.get("/api/v1/events", headers={"X-Forwarded-For": "198.51.100.9"},
                    environ_overrides=proxy)  # fmt: skip
    assert proxied.get("/api/v1/events", headers={"X-Forwarded-For": "198.51.100.9"},
                       environ_overrides=proxy).status_code == 429  # fmt: skip


def test_when_the_limits_store_fails_api_requests_pass_and_it_is_logged(
    limited, client, seminar, monkeypatch, caplog
):
    def broken(*_args, **_kwargs):
        raise ConnectionError("the rate limit store is away")

    monkeypatch.setattr(limiter.limiter, "hit", broken)
    statuses = [client.get("/api/v1/events").status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert "rate limit could not be counted" in caplog.text
