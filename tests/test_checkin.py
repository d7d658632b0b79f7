"""The door: search, one-tap check-in and undo, the count of people and businesses in the room, and
the QR code in the confirmation email (minted at send time, stored only as a hash)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chamber.auth.models import Role, StaffUser
from chamber.core.tokens import hash_token
from chamber.extensions import db
from chamber.mail.delivery import deliver_due
from chamber.mail.models import OutboxMessage
from chamber.members.models import SizeBand
from chamber.registration import checkin_services, notifications, services
from chamber.registration.checkin_code import qr_png
from chamber.registration.models import Delegate, DelegateStatus
from tests.factories import at, make_booking
from tests.support import count_queries, csrf_token, post_form, render_waiting
from tests.test_registration import register

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCAN_LINK = re.compile(r"(https?://[^\s\"<>?=]+/staff/checkin/scan/([A-Za-z0-9_-]+))")


def book(event, business: str, *people: tuple[str, str], size=SizeBand.small) -> list[Delegate]:
    """Book `people` (name, email) for a business, as staff do by hand; returns their delegates."""
    details = [services.DelegateDetails(name, email) for name, email in people]
    result = make_booking(event, *details, business=business, size_band=size)
    return result.confirmed + result.waitlisted


def delegate_named(name: str) -> Delegate:
    return db.session.scalars(db.select(Delegate).where(Delegate.name == name)).one()


def door(client, event, q: str | None = None):
    return client.get(f"/staff/checkin/{event.id}", query_string={"q": q} if q else None)


def names_on(page) -> list[str]:
    return [html.unescape(n) for n in re.findall(r'<p class="door-name">([^<]*)</p>', page.text)]


def tap(client, event, delegate, action: str = "check-in", q: str = ""):
    path = f"/staff/checkin/{event.id}/delegates/{delegate.id}/{action}"
    return post_form(client, path, {"q": q}, token_from=f"/staff/checkin/{event.id}")


def soon(minutes: int = 2):
    """A start time later today, so the public can still book and the door is open."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)


@pytest.fixture
def seminar(make_event):
    """Today's event (it began an hour ago): the door is open to volunteers."""
    event = make_event(capacity=5, business_limit=5, starts_at=soon(-60))
    book(event, "Octree Ltd", ("Tony Richardson", "tony@octree.example"))
    book(event, "Octree Ltd", ("Zoë O'Brien", "zoe@octree.example"))
    book(event, "Hertfordshire Police", ("Sam Smith", "sam.smith@herts.police.example"))
    book(event, "100% Secure_IT", ("Ada Lovelace", "ada_l@secure.example"))
    book(event, "Bakery Co", ("Bea Baker", "bea@bakery.example"))
    book(event, "Late Ltd", ("Wendy Waiting", "wendy@late.example"))  # the sixth: waiting list
    return event


# --- finding people ------------------------------------------------------------------------------


def test_search_finds_delegates_by_name_email_or_business_in_any_case(checkin_client, seminar):
    assert names_on(door(checkin_client, seminar, "RICHARD")) == ["Tony Richardson"]
    assert names_on(door(checkin_client, seminar, "octree")) == ["Tony Richardson", "Zoë O'Brien"]
    assert names_on(door(checkin_client, seminar, "herts.police")) == ["Sam Smith"]
    assert names_on(door(checkin_client, seminar, "tony octree")) == ["Tony Richardson"]
    everyone = door(checkin_client, seminar)
    assert everyone.status_code == 200
    # Confirmed first, by name; the waiting list after them.
    assert names_on(everyone) == [
        "Ada Lovelace",
        "Bea Baker",
        "Sam Smith",
        "Tony Richardson",
        "Zoë O'Brien",
        "Wendy Waiting",
    ]
    none = door(checkin_client, seminar, "nobody")
    assert names_on(none) == [] and "No one matches" in none.text


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("olcer", ["Ayşe Ölçer"]),
        ("AYSE", ["Ayşe Ölçer"]),
        ("Ölçer", ["Ayşe Ölçer"]),
        ("ozturk", ["Öztürk Søren"]),
        ("soren", ["Öztürk Søren"]),
        ("zoe o'brien", ["Zoë O'Brien"]),
        ("strasse", ["Jürgen Straße"]),
        ("straße", ["Jürgen Straße"]),
        ("odysseas", []),  # another alphabet is not made Latin
        ("οδυσσεας", ["Οδυσσέας Ελύτης"]),
        ("ΟΔΥΣΣΈΑΣ", ["Οδυσσέας Ελύτης"]),
    ],
)
def test_a_name_is_found_without_its_accents_as_a_volunteer_types_it_on_a_phone(
    checkin_client, seminar, typed, found
):
    for name, email in (("Ayşe Ölçer", "ayse@example.com"), ("Öztürk Søren", "oz@example.com"),
                        ("Jürgen Straße", "jurgen@example.com"),
                        ("Οδυσσέας Ελύτης", "elytis@example.com")):  # fmt: skip
        book(seminar, "Accents Ltd", (name, email))
    db.session.commit()
    assert names_on(door(checkin_client, seminar, typed)) == found


def test_percent_and_underscore_in_a_search_match_only_themselves(checkin_client, seminar):
    assert names_on(door(checkin_client, seminar, "%")) == ["Ada Lovelace"]
    assert names_on(door(checkin_client, seminar, "_")) == ["Ada Lovelace"]
    assert names_on(door(checkin_client, seminar, "100%")) == ["Ada Lovelace"]


@pytest.mark.parametrize("q", ["\x00", "<script>alert(1)</script>", "' OR 1=1 --", "x" * 5000])
def test_strange_searches_are_answered_calmly_and_escaped(checkin_client, seminar, q):
    response = door(checkin_client, seminar, q)
    assert response.status_code == 200
    assert "<script>alert" not in response.text


def test_the_door_page_runs_the_same_number_of_queries_for_2_or_40_people(
    checkin_client, make_event
):
    small = make_event(capacity=50, starts_at=soon(-60))
    large = make_event(capacity=50, starts_at=soon(-60))
    for event, count in ((small, 2), (large, 40)):
        for n in range(count):
            booked = book(event, f"Business {n}", (f"Person {n}", f"p{n}@b{n}.example"))
            booked[0].checked_in_at = at(0)
            db.session.commit()  # before the next booking, whose seat lock is its first write
    door(checkin_client, small)  # warm up: the session's user, the CSRF token
    with count_queries() as few:
        assert len(names_on(door(checkin_client, small))) == 2
    with count_queries() as many:
        assert len(names_on(door(checkin_client, large))) == 40
    assert len(many) == len(few)


def test_the_door_shows_the_first_of_each_status_by_name_up_to_its_limit(make_event):
    """The list is read a status at a time from the index by name: where one status runs out the
    next begins, whatever the case of a name, and people with the same name keep their booking
    order."""
    event = make_event(capacity=4, business_limit=10, starts_at=soon(-60))
    names = [
        "bea Baker",
        "Ada Lovelace",
        "Carl Cole",
        "Ada Lovelace",
        "Zed Zane",
        "Ann Able",
        "Ed Ely",
    ]
    people = book(
        event, "Octree Ltd", *((name, f"p{n}@octree.example") for n, name in enumerate(names))
    )
    confirmed = sorted(people[:4], key=lambda d: (d.name.lower(), d.id))
    waiting = sorted(people[4:], key=lambda d: (d.name.lower(), d.id))
    assert [d.status for d in people] == [DelegateStatus.confirmed] * 4 + [
        DelegateStatus.waitlisted
    ] * 3
    services.cancel_delegate(event, waiting[0])  # Ann Able: cancelled, now last
    db.session.commit()
    expected = confirmed + waiting[1:] + [waiting[0]]

    def shown(limit: int, query: str = "") -> tuple[list[int], int]:
        rows, total = checkin_services.find_delegates(event.id, query, limit=limit)
        return [row.delegate.id for row in rows], total

    for limit in (1, 3, 4, 5, 6, 7, 50):
        assert shown(limit) == ([d.id for d in expected[:limit]], 7)
    assert shown(2, "ADA") == ([d.id for d in confirmed[:2]], 2)  # the two Ada Lovelaces, by id
    assert shown(50, "octree ann") == ([waiting[0].id], 1)  # the business and a cancelled name
    assert shown(50, "nobody") == ([], 0)


# --- checking in ---------------------------------------------------------------------------------


def test_one_tap_checks_in_and_undo_takes_it_back(app, checkin_client, seminar):
    tony = delegate_named("Tony Richardson")
    response = tap(checkin_client, seminar, tony, q="tony")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"/staff/checkin/{seminar.id}?q=tony")
    db.session.refresh(tony)
    volunteer = db.session.scalars(
        db.select(StaffUser).where(StaffUser.email == "door@example.com")
    ).one()
    assert tony.checked_in_at is not None and tony.checked_in_by_id == volunteer.id
    page = checkin_client.get(response.headers["Location"])
    assert "Checked in: Tony Richardson." in page.text
    assert "by Dee Door" in page.text and "Undo" in page.text

    again = tap(checkin_client, seminar, tony)  # a second volunteer taps a stale page
    assert "already checked in" in checkin_client.get(again.headers["Location"]).text
    db.session.refresh(tony)
    assert tony.checked_in_by_id == volunteer.id

    undone = tap(checkin_client, seminar, tony, "undo", q="tony")
    assert undone.status_code == 302
    db.session.refresh(tony)
    assert tony.checked_in_at is None and tony.checked_in_by_id is None
    assert "no longer checked in" in checkin_client.get(undone.headers["Location"]).text


def test_the_count_shows_people_and_distinct_businesses_in_the_room(checkin_client, seminar):
    counts = f"/staff/checkin/{seminar.id}/counts"
    assert checkin_client.get(counts).json == {"checked_in": 0, "confirmed": 5, "businesses": 0}
    tap(checkin_client, seminar, delegate_named("Tony Richardson"))
    page = door(checkin_client, seminar)
    assert re.search(r'data-count="businesses">1</strong>\s*<span><span[^>]*>business<', page.text)
    tap(checkin_client, seminar, delegate_named("Zoë O'Brien"))  # the same business
    tap(checkin_client, seminar, delegate_named("Sam Smith"))
    assert checkin_client.get(counts).json == {"checked_in": 3, "confirmed": 5, "businesses": 2}
    page = door(checkin_client, seminar)
    assert re.search(
        r'data-count="checked_in">3</strong>\s*<span>of <span[^>]*>5</span>', page.text
    )
    assert re.search(
        r'data-count="businesses">2</strong>\s*<span><span[^>]*>businesses<', page.text
    )


def test_the_count_queries_aggregate_in_the_database(checkin_client, seminar):
    checkin_client.get(f"/staff/checkin/{seminar.id}/counts")
    with count_queries() as statements:
        checkin_client.get(f"/staff/checkin/{seminar.id}/counts")
    counting = [s for s in statements if "count(" in s.lower()]
    assert len(counting) == 1 and "count(DISTINCT" in counting[0]


def test_waitlisted_and_cancelled_delegates_are_shown_but_cannot_be_checked_in(
    checkin_client, seminar
):
    bea = delegate_named("Bea Baker")
    services.cancel_delegate(seminar, bea)  # Wendy, waiting, gets Bea's seat
    db.session.commit()
    late = book(seminar, "Later Ltd", ("Walt Later", "walt@later.example"))[0]
    assert late.status == DelegateStatus.waitlisted

    page = door(checkin_client, seminar)
    assert "Their place was cancelled" in page.text and "Not confirmed" in page.text
    for person in (bea, late):
        response = tap(checkin_client, seminar, person)
        assert response.status_code == 302
        shown = checkin_client.get(response.headers["Location"]).text
        assert "cannot be checked in" in shown
        db.session.refresh(person)
        assert person.checked_in_at is None
    assert checkin_client.get(f"/staff/checkin/{seminar.id}/counts").json["checked_in"] == 0


def test_a_forged_csrf_token_is_refused_and_changes_nothing(checkin_client, seminar):
    tony = delegate_named("Tony Richardson")
    path = f"/staff/checkin/{seminar.id}/delegates/{tony.id}/check-in"
    assert checkin_client.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert checkin_client.post(path).status_code == 400
    db.session.refresh(tony)
    assert tony.checked_in_at is None


def test_another_events_delegate_is_a_404(checkin_client, seminar, make_event):
    other = make_event()
    stranger = book(other, "Elsewhere", ("Stan Ger", "stan@elsewhere.example"))[0]
    assert tap(checkin_client, seminar, stranger).status_code == 404
    assert tap(checkin_client, seminar, stranger, "undo").status_code == 404
    db.session.refresh(stranger)
    assert stranger.checked_in_at is None
    assert checkin_client.get("/staff/checkin/999999").status_code == 404


# --- choosing the event --------------------------------------------------------------------------


def test_the_only_event_today_opens_at_once_and_others_can_be_chosen(checkin_client, make_event):
    today = make_event(starts_at=at(0, 9), title="Today's seminar")
    later = make_event(starts_at=at(7), title="Next week's seminar")
    make_event(starts_at=at(3), title="A draft", status="draft")
    make_event(starts_at=at(-10), title="Long gone")

    response = checkin_client.get("/staff/checkin/")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/checkin/{today.id}"

    listing = checkin_client.get("/staff/checkin/?choose=1")
    assert "Today&#39;s seminar" in listing.text and "Next week&#39;s seminar" in listing.text
    assert "A draft" not in listing.text and "Long gone" not in listing.text
    # A volunteer's door opens on the day: next week's event is listed, not linked.
    assert f'href="/staff/checkin/{today.id}"' in listing.text
    assert f'href="/staff/checkin/{later.id}"' not in listing.text
    assert "opens on the day" in listing.text


def test_with_no_event_today_the_volunteer_chooses(checkin_client, make_event):
    make_event(starts_at=at(2), title="Soon")
    make_event(starts_at=at(5), title="Later")
    listing = checkin_client.get("/staff/checkin/")
    assert listing.status_code == 200
    assert "Soon" in listing.text and "Later" in listing.text


# --- the QR code ---------------------------------------------------------------------------------


def confirmation_links(smtp_server, address: str) -> tuple[str, str, bytes]:
    """The scan link, its token and the QR picture carried in the newest confirmation."""
    message = next(
        m
        for m in reversed(smtp_server.messages)
        if address in m["To"] and m["Subject"].startswith("Your place")
    )
    html_body = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    cid = re.search(r'<img src="cid:([^"]+)"', html_body).group(1)
    (image,) = [p for p in message.walk() if p["Content-ID"] == f"<{cid}>"]
    assert image.get_content_type() == "image/png" and image.get_content_disposition() == "inline"
    scan, token = SCAN_LINK.search(text).groups()
    assert SCAN_LINK.search(html_body).group(2) == token  # text and HTML carry one token
    return scan, token, image.get_content()


def test_the_qr_code_in_the_confirmation_opens_the_delegate_for_staff_to_check_in(
    app, client, checkin_client, make_event, smtp_server
):
    event = make_event(starts_at=soon())
    assert register(client, event).status_code == 302  # the public form, as a business would
    zoe = delegate_named("Zoë O'Brien")
    render_waiting()  # as the worker does when it claims them
    outbox = db.session.scalars(db.select(OutboxMessage)).all()
    assert any(re.search(r"\[\[link:(\w+:)?checkin:", m.html_body) for m in outbox)

    deliver_due()
    scan, token, picture = confirmation_links(smtp_server, "zoe@octree.example")
    assert scan == f"{app.config['BASE_URL']}/staff/checkin/scan/{token}"
    assert len(token) >= 43  # 256 random bits

    # Only the hash is stored: on the delegate, never in the outbox.
    db.session.refresh(zoe)
    assert zoe.checkin_token_hash == hash_token(token)
    for message in db.session.scalars(db.select(OutboxMessage)):
        assert token not in f"{message.text_body}{message.html_body}"

    # The picture travels in the email (no remote image to block) and draws the scan link.
    assert picture.startswith(PNG_SIGNATURE) and picture == qr_png(scan)
    # Emails sent before still ask the site for it: that address draws the same code.
    image = client.get("/qr/checkin.png", query_string={"link": scan})
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data == qr_png(scan)

    # Staff see who it is; a GET never checks anyone in.
    path = f"/staff/checkin/scan/{token}"
    shown = checkin_client.get(path)
    assert shown.status_code == 200
    assert "Zoë O&#39;Brien" in shown.text and "Octree Ltd" in shown.text
    assert event.title in shown.text and "not yet checked in" in shown.text
    db.session.refresh(zoe)
    assert zoe.checked_in_at is None

    done = post_form(checkin_client, path, {})
    assert done.status_code == 302 and done.headers["Location"] == path
    db.session.refresh(zoe)
    assert zoe.checked_in_at is not None and zoe.checked_in_by_id is not None
    after = checkin_client.get(path)
    assert "Checked in: Zoë O&#39;Brien." in after.text and "Undo check-in" in after.text

    undone = post_form(checkin_client, f"{path}/undo", {}, token_from=path)
    assert undone.status_code == 302
    db.session.refresh(zoe)
    assert zoe.checked_in_at is None


def test_a_wrong_or_tampered_code_is_a_plain_404(
    app, client, checkin_client, make_event, smtp_server
):
    event = make_event()
    register(client, event)
    deliver_due()
    scan, token, picture = confirmation_links(smtp_server, "zoe@octree.example")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, "x", "a" * 200, token.upper()):
        assert checkin_client.get(f"/staff/checkin/scan/{bad}").status_code == 404
        assert post_form(checkin_client, f"/staff/checkin/scan/{bad}", {},
                         token_from="/staff/").status_code == 404  # fmt: skip
        assert (
            client.get(
                "/qr/checkin.png", query_string={"link": scan.replace(token, bad)}
            ).status_code
            == 404
        )
    assert client.get("/qr/checkin.png").status_code == 404
    assert (
        client.get("/qr/checkin.png", query_string={"link": "https://evil.example/"}).status_code
        == 404
    )
    assert delegate_named("Zoë O'Brien").checked_in_at is None


def test_a_newer_confirmation_replaces_the_code(
    app, client, checkin_client, make_event, smtp_server
):
    event = make_event(starts_at=soon())
    register(client, event)
    deliver_due()
    _, first, _ = confirmation_links(smtp_server, "zoe@octree.example")
    zoe = delegate_named("Zoë O'Brien")
    notifications.confirmation(event, zoe, key_suffix=":again")  # staff resend it
    db.session.commit()
    deliver_due()
    _, second, _ = confirmation_links(smtp_server, "zoe@octree.example")
    assert second != first
    assert checkin_client.get(f"/staff/checkin/scan/{first}").status_code == 404
    assert checkin_client.get(f"/staff/checkin/scan/{second}").status_code == 200


def test_an_anonymous_scan_goes_to_log_in_and_comes_back(app, client, make_event, make_staff):
    event = make_event(starts_at=soon())
    delegate = book(event, "Octree Ltd", ("Tony Richardson", "tony@octree.example"))[0]
    token = "a-known-test-token-with-enough-characters-to-look-real"
    delegate.checkin_token_hash = hash_token(token)
    db.session.commit()
    path = f"/staff/checkin/scan/{token}"

    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login?next=")
    assert client.post(path, data={"csrf_token": csrf_token(client)}).status_code == 302
    db.session.refresh(delegate)
    assert delegate.checked_in_at is None

    volunteer = make_staff(Role.checkin, email="scanner@example.com", name="Scan Ner")
    login = client.get(response.headers["Location"])
    token_field = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login.text).group(1)
    next_field = re.search(r'name="next"[^>]*value="([^"]+)"', login.text)
    logged_in = client.post(
        response.headers["Location"],
        data={
            "csrf_token": token_field,
            "email": volunteer.email,
            "password": "a long test password",
            **({"next": next_field.group(1)} if next_field else {}),
        },
    )
    assert logged_in.status_code == 302 and logged_in.headers["Location"] == path
    assert "Tony Richardson" in client.get(path).text


# --- who may use the door ------------------------------------------------------------------------


def test_a_checkin_volunteer_uses_every_door_page_but_nothing_else(
    app, checkin_client, seminar, make_event
):
    tony = delegate_named("Tony Richardson")
    token = "another-known-test-token-long-enough-to-look-like-one"
    tony.checkin_token_hash = hash_token(token)
    db.session.commit()
    scan = f"/staff/checkin/scan/{token}"
    for path in ("/staff/checkin/?choose=1", f"/staff/checkin/{seminar.id}", scan,
                 f"/staff/checkin/{seminar.id}/counts"):  # fmt: skip
        assert checkin_client.get(path).status_code == 200, path
    assert tap(checkin_client, seminar, tony).status_code == 302
    assert tap(checkin_client, seminar, tony, "undo").status_code == 302
    assert post_form(checkin_client, scan, {}).status_code == 302
    assert post_form(checkin_client, f"{scan}/undo", {}, token_from=scan).status_code == 302
    assert checkin_client.get("/staff/events/").status_code == 403
    assert checkin_client.get(f"/staff/events/{seminar.id}").status_code == 403


def test_organisers_and_admins_use_the_door_too(organiser_client, admin_client, seminar):
    for client in (organiser_client, admin_client):
        assert client.get(f"/staff/checkin/{seminar.id}").status_code == 200
    tony = delegate_named("Tony Richardson")
    assert tap(organiser_client, seminar, tony).status_code == 302
    db.session.refresh(tony)
    assert tony.checked_in_at is not None


def test_a_past_events_door_page_opens_for_organisers_only(
    checkin_client, organiser_client, make_event
):
    event = make_event(starts_at=at(-3), capacity=3)
    book(event, "Octree Ltd", ("Tony Richardson", "tony@octree.example"))
    assert door(organiser_client, event).status_code == 200
    refused = door(checkin_client, event)
    assert refused.status_code == 403 and "Tony Richardson" not in refused.text


# --- on a phone ----------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_door_page_on_a_phone(live_server, make_event, make_staff):
    from playwright.sync_api import expect

    from tests.browser_support import chromium_browser

    event = make_event(
        starts_at=at(0, 8), title="Cybercrime: protect your business", capacity=8, business_limit=5
    )
    book(
        event,
        "Octree Ltd",
        ("Tony Richardson", "tony@octree.example"),
        ("Zoë O'Brien", "zoe@octree.example"),
    )
    book(
        event,
        "Hertfordshire Constabulary Cyber Crime Unit",
        (
            "Detective Sergeant Samantha Smith-Montgomery",
            "samantha.smith-montgomery@herts.police.example",
        ),
    )
    book(event, "Octopus Bakery", ("Olly Octavius", "olly@bakery.example"))
    book(event, "Stevenage Accountants LLP", ("Priya Patel", "priya@accountants.example"))
    arrived = book(event, "Octagon Print", ("Oscar Octagon", "oscar@print.example"))[0]
    arrived.checked_in_at = at(0, 8, 5)
    db.session.commit()
    cancelled = book(event, "Oct Consulting", ("Otto Cancel", "otto@consult.example"))[0]
    services.cancel_delegate(event, cancelled)
    db.session.commit()
    book(
        event,
        "Late Octet",
        ("Olive Later", "olive@later.example"),
        ("Owen Later", "owen@later.example"),
        ("Ona Later", "ona@later.example"),
    )
    volunteer = make_staff(Role.checkin, email="door-phone@example.com", name="Dee Door")

    problems: list[str] = []
    with chromium_browser() as browser:
        context = browser.new_context(
            base_url=live_server, viewport={"width": 390, "height": 844}, locale="en-GB"
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda error: problems.append(str(error)))

        page.goto("/staff/checkin/")  # not logged in: log in, then straight to today's event
        page.get_by_label("Email address", exact=True).fill(volunteer.email)
        page.get_by_label("Password", exact=True).fill("a long test password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(event.title)

        page.get_by_label("Find a delegate").fill("oct")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_text("8 matches.")).to_be_visible()
        page.get_by_role("button", name="Check in Olly Octavius").click()
        expect(
            page.get_by_role("status").filter(has_text="Checked in: Olly Octavius.")
        ).to_be_visible()
        expect(page.get_by_label("Find a delegate")).to_have_value("oct")
        expect(page.locator('[data-count="checked_in"]')).to_have_text("2")
        expect(page.locator('[data-count="businesses"]')).to_have_text("2")

        # Someone at the other door checks Tony in; the count catches up without a reload.
        tony = delegate_named("Tony Richardson")
        tony.checked_in_at = at(0, 8, 10)
        db.session.commit()
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        expect(page.locator('[data-count="checked_in"]')).to_have_text("3")
        expect(page.locator('[data-count="businesses"]')).to_have_text("3")

        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
        button = page.get_by_role("button", name="Check in Priya Patel", exact=False)
        assert button.count() == 0  # not in this search
        check_in = page.get_by_role("button", name="Check in Oscar Octagon")
        assert check_in.count() == 0  # already in: only Undo
        first = page.locator(".door-check-in").first.bounding_box()
        assert first["height"] >= 48 and first["width"] >= 300  # a thumb-sized target

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "checkin-door-phone.png"), full_page=True)

        priya = delegate_named("Priya Patel")
        priya.checkin_token_hash = hash_token("phone-scan-token-long-enough-to-look-like-one-1")
        db.session.commit()
        page.goto("/staff/checkin/scan/phone-scan-token-long-enough-to-look-like-one-1")
        expect(page.get_by_role("heading", level=1)).to_have_text("Priya Patel")
        page.screenshot(path=str(SCREENSHOTS / "checkin-scan-phone.png"), full_page=True)
        page.get_by_role("button", name="Check in Priya Patel").click()
        expect(
            page.get_by_role("status").filter(has_text="Checked in: Priya Patel.")
        ).to_be_visible()
        expect(page.get_by_role("button", name="Undo check-in")).to_be_visible()
        context.close()
    assert problems == []
