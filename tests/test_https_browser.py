"""Chromium books a place, cancels it through the private link and answers a survey with Chamber
served over real TLS (a self-signed certificate made here), as the outside security test did: no
form may fail for want of a Referer, and every post carries this site's Origin."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from chamber import create_app
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.registration import services as registration
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.surveys.models import Response
from tests.browser_support import Pages, screenshot
from tests.factories import FAST_SCRYPT, make_booking
from tests.support import bodies_whole
from tests.surveys_support import book, finished_seminar, invitation_of, sent_survey, token_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, valid for a day."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make the test certificate (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture
def https_live_server(app, database_url, tmp_path, certificate):
    """Chamber over HTTPS on a loopback port, configured with that https:// address as
    CHAMBER_BASE_URL (so its cookies are Secure), on the test's database."""
    served = {}
    server = make_server(
        "127.0.0.1",
        0,
        bodies_whole(lambda environ, start_response: served["app"](environ, start_response)),
        threaded=True,
        ssl_context=certificate,
    )
    url = f"https://127.0.0.1:{server.server_port}"
    served["app"] = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "PASSWORD_HASH_METHOD": FAST_SCRYPT,
            "BASE_URL": url,
        }
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        with served["app"].app_context():
            db.session.remove()
            db.engine.dispose()


class AcceptingTestCertificate:
    """The browser, whose new contexts accept the test's self-signed certificate."""

    def __init__(self, browser):
        self.browser = browser

    def new_context(self, **options):
        return self.browser.new_context(ignore_https_errors=True, **options)


@pytest.fixture
def https_pages(browser, https_live_server):
    opened = Pages(AcceptingTestCertificate(browser), https_live_server)
    yield opened
    opened.close()
    assert not opened.problems, "the browser reported errors:\n" + "\n".join(opened.problems)


def watch_posts(page) -> list:
    """The form posts the page sends, for their headers."""
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)
    return posts


def assert_sent_from_this_site(posts, site: str) -> None:
    assert posts, "the browser sent no form"
    for post in posts:
        headers = post.all_headers()
        assert headers.get("origin") == site, (post.url, headers.get("origin"))
        assert headers.get("referer", site).startswith(f"{site}/"), post.url


def test_a_visitor_books_a_place_over_https(https_pages, https_live_server, make_event):
    event = make_event(title="Cyber security for small firms")
    page = https_pages.new()
    posts = watch_posts(page)
    page.goto(f"/events/{event.slug}/register")
    page.get_by_label("Business name").fill("Octree Ltd")
    page.get_by_label(SizeBand.small.label).check()
    page.get_by_label("Sector").fill("IT")
    page.get_by_label("Town or postcode").fill("Stevenage")
    page.get_by_role("group", name="Is your business a member of the Chamber?").get_by_label(
        "Yes", exact=True
    ).check()
    page.get_by_label("Your full name").fill("Tony Richardson")
    page.get_by_label("Your email address").fill("tony@octree.example")
    page.locator("#delegates-0-name").fill("Zoë O'Brien")
    page.locator("#delegates-0-email").fill("zoe@octree.example")
    page.get_by_label("I have read the privacy notice").check()
    page.get_by_role("button", name="Book", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Booking received")
    screenshot(page, "https-booking-received")
    assert_sent_from_this_site(posts, https_live_server)
    session = next(c for c in page.context.cookies() if c["name"] == "session")
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax"
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(Booking.id))) == 1


def test_the_booker_cancels_through_the_private_link_over_https(
    https_pages, https_live_server, make_event
):
    event = make_event()
    person = registration.DelegateDetails("Zoë O'Brien", "zoe@octree.example")
    business = registration.BusinessDetails("Octree Ltd", SizeBand.small)
    booked = make_booking(event, person, business=business, source="web", commit=False)
    delegate = booked.confirmed[0]
    token = registration.new_manage_token(db.session.get(Booking, delegate.booking_id))
    db.session.commit()

    page = https_pages.new()
    posts = watch_posts(page)
    response = page.goto(f"/r/{token}")
    assert response.headers["referrer-policy"] == "same-origin"
    page.get_by_role("link", name="Cancel this place").click()
    confirm = page.get_by_role("button", name="Cancel my place")  # Zoë booked her own place
    expect(confirm).to_be_visible()
    confirm.click()
    expect(page.get_by_role("status")).to_contain_text("Cancelled Zoë O'Brien's place.")
    screenshot(page, "https-manage-cancelled")
    assert_sent_from_this_site(posts, https_live_server)
    db.session.expire_all()
    assert db.session.get(Delegate, delegate.id).status == DelegateStatus.cancelled


def test_a_delegate_answers_the_survey_over_https(
    https_pages, https_live_server, make_event, make_item
):
    """The finding: this page sent `Referrer-Policy: no-referrer`, so the browser posted it with
    no Referer (refused by the strict Referer check) and `Origin: null`. Now both name the site."""
    event = finished_seminar(make_event, make_item, title="Cybercrime: protect your business")
    book(event, "ann@alpha.example", name="Ann")
    survey = sent_survey(event)
    token = token_for(invitation_of(survey, "ann@alpha.example"))

    page = https_pages.new()
    posts = watch_posts(page)
    page.goto(f"/s/{token}")
    expect(page.get_by_role("heading", level=1)).to_have_text(survey.title)
    page.get_by_role("group", name="Overall, how would you rate the seminar?").get_by_label(
        "5", exact=True
    ).check()
    page.get_by_role("group", name="How likely are you to recommend").get_by_label(
        "9", exact=True
    ).check()
    page.get_by_role("button", name="Send my answers").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    screenshot(page, "https-survey-thanks")
    assert_sent_from_this_site(posts, https_live_server)
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(Response.id))) == 1
