"""Staff sessions live on the server: logging out, a new password and deactivation end them, they
run out, the cookie holds only an opaque token, and no forged cookie or header gets past them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chamber.auth import sessions
from chamber.auth.models import StaffSession, StaffUser
from chamber.core.times import utcnow
from chamber.core.tokens import hash_token
from chamber.extensions import db, login_manager
from tests.support import csrf_token, log_in, post_form

NEW_PASSWORD = "gravel orchid lantern mosaic"


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def decoded_session(app, client) -> dict:
    """The session as the app reads it from the signed cookie."""
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.loads(session_cookie(client))


def copy_of(app, client):
    """Another browser holding the same cookie, as a thief who copied it would."""
    other = app.test_client()
    other.set_cookie("session", session_cookie(client))
    return other


def forged(app, contents: dict):
    """A browser with a correctly signed cookie holding whatever we like (the worst case: the
    secret key leaked, or a bug let someone write to the session)."""
    client = app.test_client()
    serializer = app.session_interface.get_signing_serializer(app)
    client.set_cookie("session", serializer.dumps(contents))
    return client


def sessions_of(user: StaffUser) -> list[StaffSession]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(StaffSession).where(StaffSession.user_id == user.id)))


def is_refused(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


def logout(client):
    return client.post("/staff/logout", data={"csrf_token": csrf_token(client, "/staff/")})


# --- what the cookie and the table hold ----------------------------------------------------------


def test_the_cookie_holds_an_opaque_token_and_no_part_of_the_password_hash(app, client, admin):
    log_in(client, admin)
    contents = decoded_session(app, client)
    token = contents["_user_id"]
    assert len(token) == 43 and ":" not in token  # secrets.token_urlsafe(32)
    password_hash = db.session.get(StaffUser, admin.id).password_hash
    everything = repr(contents)
    for start in range(len(password_hash) - 8):
        assert password_hash[start : start + 8] not in everything
    assert admin.email not in everything
    # The table keeps only the token's SHA-256, so a copy of the database cannot log anyone in.
    [row] = sessions_of(admin)
    assert row.token_hash == hash_token(token) and token not in row.token_hash


def test_each_login_is_its_own_session(app, admin):
    first, second = app.test_client(), app.test_client()
    log_in(first, admin)
    log_in(second, admin)
    assert len(sessions_of(admin)) == 2
    assert decoded_session(app, first)["_user_id"] != decoded_session(app, second)["_user_id"]


# --- ending sessions -----------------------------------------------------------------------------


def test_a_copied_cookie_stops_working_when_its_owner_logs_out(app, client, admin):
    log_in(client, admin)
    thief = copy_of(app, client)
    assert thief.get("/staff/").status_code == 200  # a copy works while the session lives
    assert logout(client).status_code == 302
    assert sessions_of(admin) == []
    refused = thief.get("/staff/")
    assert is_refused(refused)
    assert is_refused(thief.get("/staff/users/"))


def test_logging_out_ends_only_that_session(app, admin):
    office, phone = app.test_client(), app.test_client()
    log_in(office, admin)
    log_in(phone, admin)
    logout(office)
    assert is_refused(office.get("/staff/"))
    assert phone.get("/staff/").status_code == 200
    assert len(sessions_of(admin)) == 1


def test_a_new_password_set_by_an_admin_ends_every_session_of_that_user(
    app, admin_client, organiser
):
    laptop, phone = app.test_client(), app.test_client()
    log_in(laptop, organiser)
    log_in(phone, organiser)
    response = post_form(
        admin_client,
        f"/staff/users/{organiser.id}/password",
        {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        token_from=f"/staff/users/{organiser.id}",
    )
    assert response.status_code == 302
    assert is_refused(laptop.get("/staff/events/"))
    assert is_refused(phone.get("/staff/events/"))
    assert sessions_of(organiser) == []
    assert admin_client.get("/staff/").status_code == 200  # the admin's own session is untouched


def test_changing_your_own_password_keeps_this_session_and_ends_the_others(app, admin):
    here, elsewhere = app.test_client(), app.test_client()
    log_in(here, admin)
    log_in(elsewhere, admin)
    response = post_form(
        here,
        f"/staff/users/{admin.id}/password",
        {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        token_from=f"/staff/users/{admin.id}",
    )
    assert response.status_code == 302
    assert here.get("/staff/users/").status_code == 200
    assert is_refused(elsewhere.get("/staff/"))
    [kept] = sessions_of(admin)
    assert kept.token_hash == hash_token(decoded_session(app, here)["_user_id"])


def test_deactivating_a_user_ends_all_their_sessions_for_good(app, admin_client, organiser):
    laptop, phone = app.test_client(), app.test_client()
    log_in(laptop, organiser)
    log_in(phone, organiser)
    path = f"/staff/users/{organiser.id}"
    response = post_form(admin_client, path, {"name": "Olu Organiser", "role": "organiser"})
    assert response.status_code == 302
    assert sessions_of(organiser) == []
    assert is_refused(laptop.get("/staff/events/"))
    assert is_refused(phone.get("/staff/"))

    # Made active again, the old sessions do not come back: they have to log in afresh.
    post_form(admin_client, path, {"name": "Olu Organiser", "role": "organiser", "active": "y"})
    assert is_refused(laptop.get("/staff/"))
    log_in(laptop, organiser)
    assert laptop.get("/staff/events/").status_code == 200


def test_an_inactive_user_is_refused_even_if_a_session_row_remains(app, client, organiser):
    log_in(client, organiser)
    organiser.active = False  # not through the service, so the row stays
    db.session.commit()
    assert len(sessions_of(organiser)) == 1
    assert is_refused(client.get("/staff/"))


def test_removing_a_user_removes_their_sessions(app, client, organiser):
    log_in(client, organiser)
    db.session.execute(db.delete(StaffUser).where(StaffUser.id == organiser.id))
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count()).select_from(StaffSession)) == 0
    assert is_refused(client.get("/staff/"))


# --- lifetimes -----------------------------------------------------------------------------------


def age(user: StaffUser, *, created: timedelta = timedelta(0), seen: timedelta) -> None:
    now = utcnow()
    for row in sessions_of(user):
        row.created_at = now - created
        row.last_seen_at = now - seen
    db.session.commit()


def test_a_session_ends_twelve_hours_after_login_however_busy(app, client, admin):
    assert sessions.ABSOLUTE_LIFETIME.total_seconds() == 12 * 3600
    log_in(client, admin)
    age(admin, created=timedelta(hours=11, minutes=59), seen=timedelta(seconds=1))
    assert client.get("/staff/").status_code == 200
    age(admin, created=timedelta(hours=12, minutes=1), seen=timedelta(seconds=1))
    assert is_refused(client.get("/staff/"))


def test_a_session_ends_after_two_idle_hours(app, client, admin):
    assert sessions.IDLE_LIFETIME.total_seconds() == 2 * 3600
    log_in(client, admin)
    age(admin, seen=timedelta(hours=1, minutes=59))
    assert client.get("/staff/").status_code == 200
    age(admin, seen=timedelta(hours=2, minutes=1))
    assert is_refused(client.get("/staff/"))


def test_using_a_session_keeps_it_alive_without_a_write_on_every_request(app, client, admin):
    log_in(client, admin)
    age(admin, seen=timedelta(minutes=1))
    before = sessions_of(admin)[0].last_seen_at
    client.get("/staff/")
    assert sessions_of(admin)[0].last_seen_at == before  # seen a minute ago: not written again
    age(admin, seen=timedelta(minutes=90))
    client.get("/staff/")
    assert utcnow() - sessions_of(admin)[0].last_seen_at < timedelta(minutes=1)


def test_a_login_clears_out_sessions_that_have_run_out(app, admin, organiser):
    old = app.test_client()
    log_in(old, organiser)
    age(organiser, created=timedelta(hours=13), seen=timedelta(hours=3))
    log_in(app.test_client(), admin)
    assert sessions_of(organiser) == []


# --- forged cookies and headers ------------------------------------------------------------------


GARBAGE_IDS = [
    "x" * 10_000,
    "é" * 43,
    "\x00" * 43,
    "' OR '1'='1",
    "1; DROP TABLE staff_session; --",
    "1",
    "1:0123456789abcdef",  # the old format: user id and the end of the password hash
    "",
    12345,
    ["a", "b"],
    {"token": "x"},
    None,
]


@pytest.mark.parametrize("value", GARBAGE_IDS, ids=range(len(GARBAGE_IDS)))
def test_a_forged_or_garbage_session_id_is_simply_logged_out(app, admin, value):
    browser = forged(app, {"_user_id": value, "_fresh": True})
    assert is_refused(browser.get("/staff/"))
    home = browser.get("/")
    assert home.status_code == 200
    assert "Log out" not in home.text
    assert browser.get("/staff/login").status_code == 200


def test_the_old_style_session_id_of_a_real_user_no_longer_logs_in(app, admin):
    password_hash = db.session.get(StaffUser, admin.id).password_hash
    browser = forged(app, {"_user_id": f"{admin.id}:{password_hash[-16:]}", "_fresh": True})
    assert is_refused(browser.get("/staff/"))


def test_a_tampered_cookie_is_ignored(app, client, admin):
    log_in(client, admin)
    value = session_cookie(client)
    tampered = app.test_client()
    tampered.set_cookie("session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert is_refused(tampered.get("/staff/"))


def test_flask_logins_address_check_is_off_and_the_server_session_protects_instead(app):
    # "strong" hashed X-Forwarded-For even with no trusted proxy, so a forged header defeated it.
    assert login_manager.session_protection is None
    assert app.config.get("SESSION_PROTECTION") is None


def test_a_forged_forwarded_for_header_neither_breaks_nor_revives_a_session(app, admin):
    browser = app.test_client()
    where = {"REMOTE_ADDR": "203.0.113.5"}
    response = post_form(
        browser,
        "/staff/login",
        {"email": admin.email, "password": "a long test password"},
        environ_base=where,
    )
    assert response.status_code == 302
    # Forged headers do not log the user out (nor does a new address: phones change networks).
    for forged_for in ("198.51.100.1", "203.0.113.5, 10.0.0.1", "garbage", "x" * 5000):
        page = browser.get("/staff/", headers={"X-Forwarded-For": forged_for}, environ_base=where)
        assert page.status_code == 200, forged_for
    assert browser.get("/staff/", environ_base={"REMOTE_ADDR": "192.0.2.44"}).status_code == 200

    # Once ended, no header brings the session back for a copied cookie.
    thief = copy_of(app, browser)
    logout(browser)
    for forged_for in ("203.0.113.5", "127.0.0.1", ""):
        refused = thief.get(
            "/staff/",
            headers={"X-Forwarded-For": forged_for, "X-Real-IP": "203.0.113.5"},
            environ_base=where,
        )
        assert is_refused(refused), forged_for
