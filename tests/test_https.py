"""Every public form works over HTTPS, directly and behind a proxy, with no Referer; and a form
posted from another site is refused even with a valid form token (`chamber.core.origin`)."""

from __future__ import annotations

import pytest

from chamber.core.origin import origin_of
from chamber.core.tokens import hash_token, new_token
from chamber.extensions import db
from chamber.mail.models import Suppression, UnsubscribeToken
from chamber.members.models import SizeBand
from chamber.registration import services as registration
from chamber.registration.models import Booking, Delegate, DelegateStatus
from chamber.surveys.models import QuestionKind, Response
from tests.factories import PASSWORD, make_booking
from tests.support import CSRF_PATTERN
from tests.surveys_support import book, finished_seminar, invitation_of, sent_survey, token_for

SITE = "https://events.example.org"
EVIL = "https://evil.example"
REFUSED = "The form could not be sent"


@pytest.fixture
def https_client(make_app):
    """A browser talking to Chamber served directly over HTTPS at SITE."""
    return make_app(BASE_URL=SITE).test_client()


@pytest.fixture
def proxied_app(make_app):
    """Chamber behind one TLS-terminating proxy: it sees http plus X-Forwarded-Proto."""
    return make_app(BASE_URL=SITE, PROXY_COUNT=1)


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


def form_token(client, path: str, base_url: str = SITE, page_headers: dict | None = None) -> str:
    """The form token from the form's own page, as the browser got it."""
    page = client.get(path, base_url=base_url, headers=page_headers or {})
    assert page.status_code == 200, page.text
    match = CSRF_PATTERN.search(page.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def booking_form(**changes) -> dict:
    return {
        "business_name": "Octree Ltd",
        "size_band": "small",
        "sector": "IT",
        "town_or_postcode": "Stevenage",
        "is_member": "yes",
        "booker_name": "Tony Richardson",
        "booker_email": "tony@octree.example",
        "delegates-0-name": "Zoë O'Brien",
        "delegates-0-email": "zoe@octree.example",
        "privacy": "y",
        **changes,
    }


def post_booking(client, event, headers: dict, base_url: str = SITE, page_headers=None):
    path = f"/events/{event.slug}/register"
    token = form_token(client, path, base_url, page_headers)
    return client.post(
        path, base_url=base_url, headers=headers, data={"csrf_token": token, **booking_form()}
    )


def bookings() -> int:
    db.session.expire_all()
    return db.session.scalar(db.select(db.func.count(Booking.id)))


@pytest.fixture
def survey_link(make_event, make_item):
    """A sent survey's link for one delegate, and the answers its required questions need."""
    event = finished_seminar(make_event, make_item)
    book(event, "ann@alpha.example", name="Ann")
    survey = sent_survey(event)
    required = {QuestionKind.rating: "4", QuestionKind.nps: "9"}
    answers = {f"q{q.id}": required[q.kind] for q in survey.questions if q.kind in required}
    return token_for(invitation_of(survey, "ann@alpha.example")), answers


def post_answers(client, survey_link, headers: dict, base_url: str = SITE, page_headers=None):
    token, answers = survey_link
    path = f"/s/{token}"
    csrf = form_token(client, path, base_url, page_headers)
    return client.post(
        path, base_url=base_url, headers=headers, data={"csrf_token": csrf, **answers}
    )


def responses() -> int:
    db.session.expire_all()
    return db.session.scalar(db.select(db.func.count(Response.id)))


# --- over HTTPS, with no Referer ------------------------------------------------------------------


def test_a_booking_over_https_is_accepted_without_a_referer(https_client, make_event):
    event = make_event()
    response = post_booking(https_client, event, {"Origin": SITE})
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == f"/events/{event.slug}/register/done"
    done = https_client.get(response.headers["Location"], base_url=SITE)
    assert "Booking received" in done.text
    assert bookings() == 1


def test_a_survey_answer_over_https_is_accepted_without_a_referer(https_client, survey_link):
    response = post_answers(https_client, survey_link, {"Origin": SITE})
    assert response.status_code == 303, response.text
    assert "Thank you" in https_client.get(response.headers["Location"], base_url=SITE).text
    assert responses() == 1


def test_staff_log_in_over_https_without_a_referer(https_client, make_staff):
    user = make_staff(email="olu@example.com")
    token = form_token(https_client, "/staff/login")
    response = https_client.post(
        "/staff/login",
        base_url=SITE,
        headers={"Origin": SITE},
        data={"csrf_token": token, "email": user.email, "password": PASSWORD},
    )
    assert response.status_code == 302, response.text
    assert https_client.get("/staff/", base_url=SITE).status_code == 200


def test_the_session_cookie_is_secure_when_the_site_is_https(https_client, make_event):
    page = https_client.get(f"/events/{make_event().slug}/register", base_url=SITE)
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_post_with_neither_origin_nor_referer_is_judged_by_its_form_token(
    https_client, make_event
):
    """Not a browser (every browser sends Origin on a POST), so not a cross-site forgery: the
    token decides, where Flask-WTF's strict mode refused it for want of a Referer."""
    assert post_booking(https_client, make_event(), {}).status_code == 302
    assert bookings() == 1


def test_a_same_site_referer_is_enough_when_origin_is_missing(https_client, make_event):
    event = make_event()
    referer = {"Referer": f"{SITE}/events/{event.slug}/register"}
    assert post_booking(https_client, event, referer).status_code == 302


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},  # a sandboxed frame, or a page sending Referrer-Policy: no-referrer
        {"Origin": "http://events.example.org"},  # plain http: whoever can tamper with it
        {"Origin": "https://events.example.org.evil.example"},
        {"Origin": "https://events.example.org:8443"},
        {"Referer": f"{EVIL}/steal"},
        {"Origin": EVIL, "Referer": f"{SITE}/"},  # Origin is the witness, when there is one
    ],
    ids=["foreign", "null", "http", "suffix", "port", "foreign-referer", "origin-wins"],
)
def test_a_booking_posted_from_another_site_is_refused_even_with_a_valid_token(
    https_client, make_event, headers
):
    response = post_booking(https_client, make_event(), headers)
    assert response.status_code == 400
    assert REFUSED in response.text
    assert bookings() == 0


def test_a_survey_answer_posted_from_another_site_is_refused_even_with_a_valid_token(
    https_client, survey_link
):
    response = post_answers(https_client, survey_link, {"Origin": EVIL})
    assert response.status_code == 400
    assert REFUSED in response.text
    assert responses() == 0


def test_a_cross_site_post_is_refused_over_plain_http_too(client, make_event):
    response = post_booking(client, make_event(), {"Origin": EVIL}, base_url="http://localhost")
    assert response.status_code == 400
    assert bookings() == 0


# --- the private booking page /r/<token> and unsubscribe ----------------------------------------


@pytest.fixture
def manage_link(make_event):
    event = make_event()
    person = registration.DelegateDetails("Zoë O'Brien", "zoe@octree.example")
    business = registration.BusinessDetails("Octree Ltd", SizeBand.small)
    result = make_booking(event, person, business=business, source="web", commit=False)
    token = registration.new_manage_token(db.session.get(Booking, result.confirmed[0].booking_id))
    db.session.commit()
    return token, result.confirmed[0].id


def test_the_manage_link_cancels_a_place_over_https(https_client, manage_link):
    token, delegate_id = manage_link
    csrf = form_token(https_client, f"/r/{token}/cancel")
    refused = https_client.post(
        f"/r/{token}/cancel", base_url=SITE, headers={"Origin": EVIL}, data={"csrf_token": csrf}
    )
    assert refused.status_code == 400
    assert db.session.get(Delegate, delegate_id).status == DelegateStatus.confirmed

    response = https_client.post(
        f"/r/{token}/cancel", base_url=SITE, headers={"Origin": SITE}, data={"csrf_token": csrf}
    )
    assert response.status_code == 302, response.text
    db.session.expire_all()
    assert db.session.get(Delegate, delegate_id).status == DelegateStatus.cancelled


def test_the_manage_link_edits_a_delegate_over_https(https_client, manage_link):
    token, delegate_id = manage_link
    path = f"/r/{token}/delegates/{delegate_id}"
    csrf = form_token(https_client, path)
    response = https_client.post(
        path,
        base_url=SITE,
        headers={"Origin": SITE},
        data={"csrf_token": csrf, "name": "Zoë Smith", "job_title": "CEO"},
    )
    assert response.status_code == 302, response.text
    db.session.expire_all()
    assert db.session.get(Delegate, delegate_id).name == "Zoë Smith"


def test_one_click_unsubscribe_still_takes_a_post_from_anywhere(https_client):
    """RFC 8058: a mail provider posts with no cookie and no form token, maybe from its own
    origin; the view is exempt from CSRF, so from the origin check too."""
    token = new_token()
    db.session.add(UnsubscribeToken(token_hash=hash_token(token), email="ann@alpha.example"))
    db.session.commit()
    response = https_client.post(
        f"/unsubscribe/{token}",
        base_url=SITE,
        headers={"Origin": "https://mail.example"},
        data={"List-Unsubscribe": "One-Click"},
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(Suppression.email))) == 1


# --- secret links never travel to another site ----------------------------------------------------


def test_pages_behind_a_secret_link_send_no_referer_to_other_sites(
    https_client, manage_link, survey_link, make_event
):
    """`same-origin`, not `no-referrer`: with `no-referrer` a browser posts the page's own form
    with `Origin: null`, which must be refused (tests/test_https_browser.py sees it happen)."""
    token, delegate_id = manage_link
    for path in (
        f"/s/{survey_link[0]}",
        f"/r/{token}",
        f"/r/{token}/add",
        f"/r/{token}/delegates/{delegate_id}",
    ):
        page = https_client.get(path, base_url=SITE)
        assert page.status_code == 200, path
        assert page.headers["Referrer-Policy"] == "same-origin", path
    public = https_client.get(f"/events/{make_event().slug}/register", base_url=SITE)
    assert public.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


# --- behind a proxy -------------------------------------------------------------------------------


def test_behind_a_proxy_a_forwarded_https_booking_and_survey_answer_work(
    proxied_app, make_event, survey_link
):
    client = proxied_app.test_client()
    headers = {**FORWARDED, "Origin": SITE}
    before = bookings()  # the survey's delegate has one
    booked = post_booking(
        client, make_event(), headers, "http://events.example.org", page_headers=FORWARDED
    )
    assert booked.status_code == 302, booked.text
    assert bookings() == before + 1

    answered = post_answers(
        client, survey_link, headers, "http://events.example.org", page_headers=FORWARDED
    )
    assert answered.status_code == 303, answered.text
    assert responses() == 1


def test_behind_a_proxy_the_forwarded_scheme_and_host_are_the_sites_origin(proxied_app, make_event):
    """An alias host the proxy forwards is this site too; plain http from the browser is not."""
    client = proxied_app.test_client()
    alias = {**FORWARDED, "X-Forwarded-Host": "booking.example.org"}
    event = make_event()
    http_origin = {**alias, "Origin": "http://booking.example.org"}
    refused = post_booking(client, event, http_origin, "http://127.0.0.1", page_headers=alias)
    assert refused.status_code == 400
    https_origin = {**alias, "Origin": "https://booking.example.org"}
    assert (
        post_booking(
            client, event, https_origin, "http://127.0.0.1", page_headers=alias
        ).status_code
        == 302
    )


def test_without_a_trusted_proxy_forged_forwarded_headers_change_nothing(make_app, make_event):
    client = make_app(BASE_URL=SITE, PROXY_COUNT=0).test_client()
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    event = make_event()

    page = client.get(f"/events/{event.slug}/register", base_url="http://localhost", headers=forged)
    assert "evil.example" not in page.text
    for origin in (EVIL, "https://localhost"):  # neither the forged host nor the forged scheme
        response = post_booking(client, event, {**forged, "Origin": origin}, "http://localhost")
        assert response.status_code == 400, origin
    assert bookings() == 0

    ok = post_booking(client, event, {**forged, "Origin": "http://localhost"}, "http://localhost")
    assert ok.status_code == 302
    assert ok.headers["Location"] == f"/events/{event.slug}/register/done"


# --- origins -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Events.Example.org", "https://events.example.org"),
        ("https://events.example.org:443/s/abc?x=1", "https://events.example.org"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("http://[::1]:8080/x", "http://[::1]:8080"),
        ("null", None),
        ("ftp://events.example.org", None),
        ("https://", None),
        ("https://events.example.org:99999", None),
    ],
)
def test_origin_of_normalises_an_address_to_scheme_host_and_port(url, origin):
    assert origin_of(url) == origin
