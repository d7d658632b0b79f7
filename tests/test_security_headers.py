"""Every response carries the security headers, and every page keeps to its own Content Security
Policy: no inline scripts, event handlers or style attributes, which the policy would block (and
which would let injected markup run if the policy were loosened to allow them). The health check
tells a load balancer whether the database answers."""

from __future__ import annotations

import re
from collections import deque
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest
from werkzeug.exceptions import HTTPException

from chamber import create_app
from chamber.auth.models import Role
from chamber.events.models import EventStatus
from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.mail.services import enqueue
from tests.factories import at
from tests.support import csrf_token, post_form

SAFE_REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data"}
SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:")
EMAIL_PREVIEW = re.compile(r"^/staff/outbox/\d+/html$")


# --- what a page may contain ---------------------------------------------------------------------


class _LiveMarkupFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        where = self.get_starttag_text()
        if tag == "script" and attributes.get("type") == "application/ld+json":
            # A data block for search engines: never executed, so the CSP has nothing to say.
            # Its content is checked in tests/test_api.py (no way out of the tag).
            return
        if tag == "script":
            src = attributes.get("src") or ""
            if not src.startswith("/static/"):
                self.problems.append(f"a script not from /static/: {where}")
            self._in_script = True
        if tag == "style":
            self.problems.append("an inline <style> block")
        if tag in {"frame", "object", "embed", "applet", "base"}:
            self.problems.append(f"an embedding tag: {where}")
        if tag == "iframe" and not self._sandboxed_frame_of_ours(attributes):
            self.problems.append(f"a frame that is not a sandboxed page of ours: {where}")
        if tag == "img" and not (attributes.get("src") or "").startswith("/static/"):
            self.problems.append(f"an image not from /static/: {where}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"an inline event handler: {where}")
            if name == "style":
                self.problems.append(f"a style attribute: {where}")
            if name in URL_ATTRIBUTES and value:
                cleaned = "".join(ch for ch in value if ch > " ").lower()
                if cleaned.startswith(SCRIPT_SCHEMES):
                    self.problems.append(f"a script URL: {where}")

    @staticmethod
    def _sandboxed_frame_of_ours(attributes: dict) -> bool:
        # The outbox shows an email's HTML in a frame with every sandbox restriction on.
        src = attributes.get("src") or ""
        return (
            src.startswith("/")
            and not src.startswith("//")
            and attributes.get("sandbox", "x") in ("", None)
        )

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append(f"an inline script body: {data.strip()[:60]}")


def live_markup(html: str) -> list[str]:
    """What in `html` would run or style itself inline: empty for a page that keeps to the CSP."""
    finder = _LiveMarkupFinder()
    finder.feed(html)
    finder.close()
    return finder.problems


def csp_directives(header: str) -> dict[str, list[str]]:
    return {
        parts[0].lower(): parts[1:] for parts in (d.split() for d in header.split(";")) if parts
    }


def email_preview_problems(response, path: str) -> list[str]:
    """An email's own HTML, shown to admins inside the outbox page: it keeps its inline styles, so
    it is served under a policy of its own: a sandbox with nothing allowed, framed only by us."""
    directives = csp_directives(response.headers.get("Content-Security-Policy", ""))
    problems = []
    if "sandbox" not in directives or directives["sandbox"]:
        problems.append(f"{path}: the preview is not fully sandboxed: {directives.get('sandbox')}")
    if directives.get("default-src") != ["'none'"] or "script-src" in directives:
        problems.append(f"{path}: the preview may load or run something")
    if directives.get("frame-ancestors") != ["'self'"]:
        problems.append(f"{path}: the preview may be framed by {directives.get('frame-ancestors')}")
    if response.headers.get("X-Content-Type-Options") != "nosniff":
        problems.append(f"{path}: no nosniff")
    return problems


def header_problems(response, path: str) -> list[str]:
    headers = response.headers
    problems = []
    if EMAIL_PREVIEW.match(path):
        return email_preview_problems(response, path)
    policy = headers.get("Content-Security-Policy")
    if not policy:
        return [f"{path}: no Content-Security-Policy"]
    directives = csp_directives(policy)
    scripts = directives.get("script-src", directives.get("default-src"))
    if scripts is None:
        problems.append(f"{path}: the policy does not restrict scripts")
    elif "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts or "*" in scripts:
        problems.append(f"{path}: script-src allows {scripts}")
    if "'unsafe-inline'" in directives.get("style-src", directives.get("default-src", [])):
        problems.append(f"{path}: style-src allows inline styles")
    if directives.get("frame-ancestors") != ["'none'"]:
        problems.append(f"{path}: frame-ancestors is {directives.get('frame-ancestors')}")
    if directives.get("object-src") != ["'none'"]:
        problems.append(f"{path}: object-src is {directives.get('object-src')}")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append(
            f"{path}: X-Content-Type-Options is {headers.get('X-Content-Type-Options')}"
        )
    if headers.get("Referrer-Policy") not in SAFE_REFERRER_POLICIES:
        problems.append(f"{path}: Referrer-Policy is {headers.get('Referrer-Policy')}")
    if path.startswith("/staff") and "no-store" not in headers.get("Cache-Control", ""):
        problems.append(f"{path}: a staff page may be cached")
    return problems


def page_problems(response, path: str) -> list[str]:
    problems = header_problems(response, path)
    if response.mimetype == "text/html" and not EMAIL_PREVIEW.match(path):
        problems += [f"{path}: {problem}" for problem in live_markup(response.text)]
    return problems


# --- a site with something on every page ---------------------------------------------------------


@pytest.fixture
def full_site(make_event, make_item, make_speaker, make_staff):
    speaker = make_speaker(bio="Runs **Octree**. See [the NCSC](https://www.ncsc.gov.uk/).")
    event = make_event(
        title="Cybercrime seminar",
        slug="cyber",
        description="## Why\n\n- Audit\n- Plan\n\n[Cyber Essentials](https://www.ncsc.gov.uk/)",
        supporters="Police and Crime Commissioner\nOctree",
    )
    make_item(event, title="Welcome", minutes_in=0)
    make_item(event, title="Ransomware", minutes_in=30, speakers=[speaker])
    make_event(title="Draft one", slug="draft-one", status=EventStatus.draft)
    make_event(title="Called off", slug="called-off", status=EventStatus.cancelled)
    for days in range(1, 23):
        make_event(title=f"Old seminar {days}", starts_at=at(-days) - timedelta(hours=6))
    make_staff(Role.checkin, email="door-two@example.com", name="Dee Door")
    enqueue(
        key="crawl:1",
        to="delegate@example.com",
        subject="Your place",
        template="test_message",
        context={"note": "<script>alert(1)</script>"},
    )
    db.session.commit()
    return event


def crawl(app, client, starts: list[str], per_endpoint: int = 6) -> dict[str, object]:
    """Every same-site page reachable by following links (GET only, so nothing changes).

    A few pages per route are enough to see each template's branches; the rest are the same page
    with other data."""
    adapter = app.url_map.bind("localhost")
    seen: dict[str, object] = {}
    per_route: dict[str, int] = {}
    queue = deque(starts)
    while queue:
        path = queue.popleft()
        if path in seen:
            continue
        try:
            endpoint, _values = adapter.match(urlsplit(path).path)
        except HTTPException:
            endpoint = "not found"
        if per_route.get(endpoint, 0) >= per_endpoint and path not in starts:
            continue
        per_route[endpoint] = per_route.get(endpoint, 0) + 1
        response = client.get(path)
        response.get_data()
        response.close()  # static files are streamed from an open file
        seen[path] = response
        if response.mimetype != "text/html":
            continue
        for link in LinkFinder.links(response.text):
            target, _fragment = urldefrag(link)
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not target.startswith("/"):
                continue
            if target not in seen:
                queue.append(target)
    return seen


class LinkFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in {"a", "link"} and attributes.get("href"):
            self.found.append(attributes["href"])
        if tag in {"script", "iframe"} and attributes.get("src"):
            self.found.append(attributes["src"])

    @classmethod
    def links(cls, html: str) -> list[str]:
        finder = cls()
        finder.feed(html)
        return finder.found


# --- headers and pages ---------------------------------------------------------------------------


def test_every_page_an_admin_can_reach_has_the_headers_and_keeps_to_the_policy(
    app, admin_client, full_site
):
    pages = crawl(
        app,
        admin_client,
        [
            "/",
            "/staff/",
            "/staff/events/?show=all",
            "/events/past",
            "/events/cyber",
            "/events/draft-one",
            "/events/called-off",
            "/events/cyber?print=1",
        ],
    )
    visited = set(pages)
    message_id = db.session.scalar(db.select(OutboxMessage.id))
    # The crawl really went everywhere: public, staff, static and the pages behind each event.
    for expected in [
        "/",
        "/events/cyber",
        "/events/draft-one",
        "/events/past?page=2",
        "/staff/",
        f"/staff/events/{full_site.id}",
        f"/staff/events/{full_site.id}/edit",
        f"/staff/events/{full_site.id}/cancel",
        "/staff/users/",
        "/staff/users/new",
        "/staff/speakers/",
        "/staff/speakers/new",
        "/static/chamber.css",
        "/staff/outbox/",
        f"/staff/outbox/{message_id}",
        f"/staff/outbox/{message_id}/html",
        "/static/chamber.js",
        "/theme.css",
    ]:
        assert expected in visited, f"the crawl never reached {expected}"
    problems = []
    for path, response in pages.items():
        if response.status_code != 200:
            problems.append(f"{path}: {response.status_code}")
        problems += page_problems(response, path)
    assert problems == []


def test_public_pages_seen_by_a_visitor_have_the_headers_and_keep_to_the_policy(
    app, client, full_site
):
    pages = crawl(app, client, ["/", "/events/past", "/staff/login", "/events/called-off"])
    assert "/events/cyber" in pages and "/events/called-off" in pages
    problems = [
        problem for path, response in pages.items() for problem in page_problems(response, path)
    ]
    assert problems == []


def test_error_pages_have_the_headers_and_keep_to_the_policy(
    app, client, admin_client, checkin_client, make_event
):
    draft = make_event(status=EventStatus.draft)
    responses = {
        "404": client.get("/no-such-page"),
        "404 event": client.get("/events/no-such-event"),
        "404 static": client.get("/static/no-such-file.js"),
        "405": client.get("/staff/logout"),
        "400 csrf": client.post("/staff/login", data={"email": "a@example.com", "password": "x"}),
        "401 login": post_form(
            app.test_client(), "/staff/login", {"email": "a@example.com", "password": "x"}
        ),
        "302 staff": client.get("/staff/events/"),
        "403": checkin_client.get("/staff/events/"),
        "413": admin_client.post(
            "/staff/events/new",
            data={
                "csrf_token": csrf_token(admin_client, "/staff/"),
                "description": "x" * 3_000_000,
            },
        ),
        "staff 404": admin_client.get("/staff/events/999999"),
        "draft to the public": client.get(f"/events/{draft.slug}"),
    }
    assert responses["404"].status_code == 404
    assert responses["405"].status_code == 405
    assert responses["400 csrf"].status_code == 400
    assert responses["403"].status_code == 403
    assert responses["413"].status_code == 413
    problems = [
        problem for name, response in responses.items() for problem in page_problems(response, name)
    ]
    assert problems == []


def test_forms_showing_their_errors_keep_to_the_policy(
    admin_client, organiser, make_event, make_speaker
):
    event = make_event(status=EventStatus.draft)
    make_speaker()
    forms = {
        "/staff/events/new": {"title": "", "capacity": "many", "starts_at": "2026-13-45T25:00"},
        f"/staff/events/{event.id}/edit": {"title": "", "slug": "Bad Slug"},
        f"/staff/events/{event.id}/agenda/new": {"title": "", "speakers-0": "abc"},
        "/staff/speakers/new": {"name": "", "email": "nope"},
        "/staff/users/new": {"name": "", "email": "nope", "password": "short"},
        f"/staff/users/{organiser.id}": {"name": "", "role": "nobody"},
    }
    problems = []
    for path, data in forms.items():
        response = post_form(admin_client, path, data)
        assert response.status_code == 400, path
        assert "There is a problem" in response.text, path
        problems += page_problems(response, path)
    password = post_form(
        admin_client,
        f"/staff/users/{organiser.id}/password",
        {"password": "a long new password", "confirm": "another long password"},
        token_from=f"/staff/users/{organiser.id}",
    )
    assert password.status_code == 400
    problems += page_problems(password, "password form")
    assert problems == []


def test_a_checkin_volunteers_pages_keep_to_the_policy(app, checkin_client, full_site):
    pages = crawl(app, checkin_client, ["/staff/", "/"])
    problems = [
        problem for path, response in pages.items() for problem in page_problems(response, path)
    ]
    assert problems == []


def test_the_policy_names_no_other_origins(client):
    directives = csp_directives(client.get("/").headers["Content-Security-Policy"])
    for name, sources in directives.items():
        foreign = [s for s in sources if s not in ("'self'", "'none'", "data:")]
        assert foreign == [], f"{name} allows {foreign}"
    assert directives["form-action"] == ["'self'"]
    assert directives["base-uri"] in (["'self'"], ["'none'"])


def test_the_live_markup_finder_sees_what_the_policy_would_block():
    # The checks above are only as good as this finder: it must flag each of these.
    for html in [
        "<script>alert(1)</script>",
        '<script src="https://cdn.example/x.js"></script>',
        '<p onclick="x()">',
        '<div style="color:red">',
        "<style>p{}</style>",
        '<a href=" JaVaScRiPt:alert(1)">',
        '<a href="&#106;avascript:alert(1)">',
        '<iframe src="/"></iframe>',
        '<iframe sandbox="allow-scripts" src="/x"></iframe>',
        '<iframe sandbox src="https://evil.example/"></iframe>',
        '<img src="x" onerror="alert(1)">',
    ]:
        assert live_markup(html), html
    assert (
        live_markup('<script src="/static/chamber.js" defer></script><a href="/events/x">x</a>')
        == []
    )
    assert live_markup("<p>&lt;script&gt;alert(1)&lt;/script&gt; and onclick=alert(1)</p>") == []


# --- the health check ----------------------------------------------------------------------------


def test_healthz_is_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"  # the worker's and the mail's parts: test_health.py
    assert header_problems(response, "/healthz") == []


@pytest.mark.parametrize(
    "database_url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/chamber",
        "sqlite:////nonexistent-chamber-directory/deeper/chamber.sqlite",
    ],
    ids=["postgresql-closed-port", "sqlite-missing-directory"],
)
def test_healthz_is_503_when_the_database_is_unreachable(tmp_path, database_url):
    broken = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    try:
        response = broken.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.json == {"status": "unavailable", "database": "unreachable"}
        assert header_problems(response, "/healthz") == []
        assert (
            "Cache-Control" not in response.headers
            or "public" not in response.headers["Cache-Control"]
        )
    finally:
        with broken.app_context():
            db.engine.dispose()


def test_healthz_is_not_rate_limited(app, client):
    for _ in range(60):
        assert client.get("/healthz").status_code == 200


# --- HSTS and no-store on pages with personal data -----------------------------------------------


def test_hsts_is_sent_on_every_response_when_the_site_is_https(app, tmp_path):
    secure = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "INSTANCE_PATH": str(tmp_path / "secure"),
            "BASE_URL": "https://chamber.example",
        }
    )
    try:
        client = secure.test_client()
        for path in ("/", "/staff/login", "/no-such-page", "/static/chamber.css", "/healthz"):
            response = client.get(path, base_url="https://chamber.example")
            response.close()
            hsts = response.headers.get("Strict-Transport-Security", "")
            assert "max-age=31536000" in hsts and "includeSubDomains" in hsts, path
    finally:
        with secure.app_context():
            db.session.remove()
            db.engine.dispose()


def test_no_hsts_when_the_site_is_plain_http(client):
    assert client.application.config["BASE_URL"].startswith("http://")
    for path in ("/", "/staff/login", "/no-such-page"):
        assert "Strict-Transport-Security" not in client.get(path).headers, path


@pytest.fixture
def private_links(make_event, admin):
    """Real links of every kind that shows a person's details, as their emails would carry."""
    from chamber.core.tokens import hash_token, new_token
    from chamber.mail.models import UnsubscribeToken
    from chamber.registration.models import Booking
    from chamber.registration.services import new_manage_token
    from tests.surveys_support import book, invitation_of, sent_survey, token_for

    ended = make_event(slug="ended", starts_at=at(-2, 8))
    delegate = book(ended, "zoe@octree.example", name="Zoe Delegate")
    survey_token = token_for(invitation_of(sent_survey(ended), "zoe@octree.example"))

    coming = make_event(slug="coming")
    person = book(coming, "yan@octree.example", name="Yan Delegate", checked_in=False)
    manage = new_manage_token(db.session.get(Booking, person.booking_id))
    checkin = new_token()
    person.checkin_token_hash = hash_token(checkin)
    unsubscribe = new_token()
    db.session.add(UnsubscribeToken(token_hash=hash_token(unsubscribe), email="zoe@octree.example"))
    db.session.commit()
    return {
        "manage": manage,
        "delegate": person.id,
        "survey": survey_token,
        "unsubscribe": unsubscribe,
        "checkin": checkin,
        "booked": delegate.id,
    }


def assert_no_store(response, what: str) -> None:
    assert response.headers.get("Cache-Control") == "no-store", (
        what,
        response.status_code,
        response.headers.get("Cache-Control"),
    )


def test_every_page_with_personal_data_is_no_store(app, client, checkin_client, private_links):
    links = private_links
    scan = f"{app.config['BASE_URL']}/staff/checkin/scan/{links['checkin']}"
    pages = {
        "manage link": f"/r/{links['manage']}",
        "add a delegate": f"/r/{links['manage']}/add",
        "edit a delegate": f"/r/{links['manage']}/delegates/{links['delegate']}",
        "survey": f"/s/{links['survey']}",
        "survey thanks": f"/s/{links['survey']}/thanks",
        "unsubscribe": f"/unsubscribe/{links['unsubscribe']}",
        "check-in QR picture": f"/qr/checkin.png?link={scan}",
        "booking form": "/events/coming/register",
    }
    for what, path in pages.items():
        response = client.get(path)
        assert response.status_code in (200, 302), (what, response.status_code)
        assert_no_store(response, what)
    assert client.get(pages["manage link"]).status_code == 200  # the real page, not an error
    assert client.get(pages["survey"]).status_code == 200
    assert client.get(pages["unsubscribe"]).status_code == 200
    qr = client.get(pages["check-in QR picture"])
    assert qr.status_code == 200 and qr.mimetype == "image/png"

    # The scan page the QR code opens is a staff page (whatever it answers for this event).
    assert_no_store(checkin_client.get(f"/staff/checkin/scan/{links['checkin']}"), "scan page")


def test_the_booking_done_page_is_no_store(client, make_event):
    event = make_event(slug="coming")
    page = client.get(f"/events/{event.slug}/register")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    fields = dict(re.findall(r'name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    fields.update(
        {
            "csrf_token": token,
            "business_name": "Octree Ltd",
            "size_band": "small",
            "sector": "IT",
            "booker-name": "Zoe Delegate",
            "booker-email": "zoe@octree.example",
            "delegates-0-name": "Zoe Delegate",
            "delegates-0-email": "zoe@octree.example",
            "privacy": "y",
        }
    )
    response = client.post(f"/events/{event.slug}/register", data=fields)
    assert_no_store(response, "the booking form's answer")
    done = client.get(f"/events/{event.slug}/register/done")
    assert_no_store(done, "the done page")


@pytest.mark.parametrize(
    "path",
    [
        "/r/not-a-real-token",
        "/r/not-a-real-token/cancel/1",
        "/places/not-a-real-token",
        "/places/not-a-real-token/details",
        "/places/not-a-real-token/calendar.ics",
        "/s/not-a-real-token",
        "/unsubscribe/not-a-real-token",
        "/subscribe",
        "/subscribe/check-your-email",
        "/subscribe/confirm/not-a-real-token",
        "/preferences/not-a-real-token",
        "/qr/checkin.png?link=x",
        "/events/coming/register/done",
        "/staff/",
        "/staff/login",
    ],
)
def test_private_addresses_are_no_store_even_when_the_link_is_wrong(client, make_event, path):
    make_event(slug="coming")
    assert_no_store(client.get(path), path)


def test_public_pages_without_personal_data_may_be_cached(client, make_event):
    make_event(slug="coming")
    for path in ("/", "/events/coming", "/events/past", "/events/coming/resources"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" not in response.headers.get("Cache-Control", ""), path
