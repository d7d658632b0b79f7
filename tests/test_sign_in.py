"""Staff sign-in beyond the password: a forgotten password reset by email (single use, expiring,
bound to its account, the same answer for any address), two-factor codes from an authenticator
app (enrolment, the code step, reuse, drift, recovery codes, the rule admins set), and one's own
sessions. Each form refuses a forged request and hostile input without a 500."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pyotp
import pytest

from chamber.auth import password_reset, sessions, two_factor
from chamber.auth.models import PasswordReset, RecoveryCode, Role, StaffSession, StaffUser
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail import links, staff_mail
from chamber.mail.models import OutboxMessage
from tests.factories import PASSWORD
from tests.support import csrf_token, log_in, post_form
from tests.test_subscribe import delivered, link_in

NEW_PASSWORD = "violet tractor sings under seven lanterns"


def outbox() -> list[OutboxMessage]:
    return list(db.session.scalars(db.select(OutboxMessage).order_by(OutboxMessage.id)))


def is_signed_in(client) -> bool:
    return client.get("/staff/").status_code == 200


# --- forgot your password ----------------------------------------------------------------------


def ask_for_reset(client, email: str):
    return post_form(client, "/staff/password/forgot", {"email": email})


def test_the_login_page_links_to_the_forgotten_password_page(client):
    page = client.get("/staff/login")
    assert 'href="/staff/password/forgot"' in page.text
    assert client.get("/staff/password/forgot").headers["Cache-Control"] == "no-store"


def test_an_unknown_address_gets_the_same_answer_and_no_email(client, organiser):
    unknown = ask_for_reset(client, "nobody@example.com")
    known = ask_for_reset(client, organiser.email)
    assert unknown.status_code == known.status_code == 302
    assert unknown.headers["Location"] == known.headers["Location"] == "/staff/login"
    first = client.get("/staff/login").text  # the flash of the second request
    assert "If that address belongs to a staff account" in first
    assert [m.to_address for m in outbox()] == [organiser.email]


def test_a_deactivated_account_is_sent_nothing(client, make_staff):
    gone = make_staff(Role.organiser, email="gone@example.com", active=False)
    assert ask_for_reset(client, gone.email).status_code == 302
    assert outbox() == []


def test_a_reset_link_sets_the_password_once_and_ends_every_session(
    app, client, organiser, smtp_server
):
    elsewhere = app.test_client()
    log_in(elsewhere, organiser)
    ask_for_reset(client, organiser.email)
    (stored,) = outbox()
    assert "/staff/password/reset/" not in stored.text_body + stored.html_body  # minted at send
    (message,) = delivered(smtp_server)
    path = link_in(message, "/staff/password/reset/")
    token = path.rsplit("/", 1)[1]
    reset = db.session.scalars(db.select(PasswordReset)).one()
    assert reset.token_hash != token and len(token) >= 43  # only the hash is kept, 256 bits

    assert client.get(path).status_code == 200
    done = post_form(client, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/staff/login"

    assert not is_signed_in(elsewhere)  # every session of the account ended
    assert db.session.scalar(db.select(db.func.count(StaffSession.id))) == 0
    db.session.refresh(organiser)
    assert organiser.check_password(NEW_PASSWORD)
    assert client.get(path).status_code == 404  # spent
    again = client.post(path, data={"password": "x", "confirm": "x"})
    assert again.status_code in (400, 404)
    log_in(client, organiser, NEW_PASSWORD)


def test_an_expired_link_is_a_404(client, organiser, smtp_server):
    password_reset.request_reset(organiser.email, now=utcnow() - timedelta(minutes=61))
    db.session.commit()
    (message,) = delivered(smtp_server)
    path = link_in(message, "/staff/password/reset/")
    assert path.endswith("/expired")
    assert client.get(path).status_code == 404

    password_reset.request_reset(organiser.email)
    db.session.commit()
    (later,) = delivered(smtp_server, seen=1)
    live = link_in(later, "/staff/password/reset/")
    assert client.get(live).status_code == 200
    reset = db.session.scalars(db.select(PasswordReset).order_by(PasswordReset.id.desc())).first()
    reset.expires_at = utcnow() - timedelta(seconds=1)  # the hour passes before it is used
    db.session.commit()
    assert client.get(live).status_code == 404


def test_a_password_an_admin_sets_spends_the_accounts_reset_links(
    client, admin_client, organiser, smtp_server
):
    """An admin resetting an account they think is taken over: the link already in the taker's
    mailbox stops working, so the new password holds."""
    password_reset.request_reset(organiser.email)
    db.session.commit()
    (message,) = delivered(smtp_server)
    path = link_in(message, "/staff/password/reset/")
    assert client.get(path).status_code == 200
    set_by_admin = post_form(
        admin_client,
        f"/staff/users/{organiser.id}/password",
        {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        token_from=f"/staff/users/{organiser.id}",
    )
    assert set_by_admin.status_code == 302
    assert client.get(path).status_code == 404
    db.session.expire_all()
    assert db.session.get(StaffUser, organiser.id).check_password(NEW_PASSWORD)


def test_a_link_belongs_to_its_own_account(client, organiser, admin, smtp_server):
    password_reset.request_reset(organiser.email)
    db.session.commit()
    reset = db.session.scalars(db.select(PasswordReset)).one()
    with pytest.raises(links.LinkRefused):  # minted only for the account's own address
        staff_mail._mint_reset_link(admin.email, str(reset.id))
    (message,) = delivered(smtp_server)
    path = link_in(message, "/staff/password/reset/")
    post_form(client, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    db.session.refresh(admin)
    db.session.refresh(organiser)
    assert organiser.check_password(NEW_PASSWORD)
    assert admin.check_password(PASSWORD) and not admin.check_password(NEW_PASSWORD)


@pytest.mark.parametrize("token", ["expired", "x" * 65, "not-a-token", "%00", "{{7*7}}"])
def test_a_wrong_or_tampered_token_is_a_plain_404(client, token):
    assert client.get(f"/staff/password/reset/{token}").status_code == 404


def test_a_weak_password_through_a_link_is_refused_and_the_link_still_works(
    client, organiser, smtp_server
):
    ask_for_reset(client, organiser.email)
    path = link_in(delivered(smtp_server)[0], "/staff/password/reset/")
    weak = post_form(client, path, {"password": "password1234", "confirm": "password1234"})
    assert weak.status_code == 400 and "too easy to guess" in weak.text
    assert client.get(path).status_code == 200


@pytest.mark.parametrize(
    "email", ["a@example.com\r\nBcc: thief@evil.example", "x" * 300 + "@example.com", "{{7*7}}"]
)
def test_hostile_addresses_on_the_forgot_page_are_refused_calmly(client, email):
    response = ask_for_reset(client, email)
    assert response.status_code == 400
    assert "Enter an email address" in html.unescape(response.text) or "must be" in response.text
    assert outbox() == []


def test_asking_for_resets_is_rate_limited(app, client, organiser):
    app.config["PASSWORD_RESET_LIMIT_PER_ADDRESS"] = "2 per hour"
    assert ask_for_reset(client, organiser.email).status_code == 302
    assert ask_for_reset(client, "someone@example.com").status_code == 302
    assert ask_for_reset(client, "another@example.com").status_code == 429


# --- two-factor sign-in ---------------------------------------------------------------------------

SECRET_ON_PAGE = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
CODES_ON_PAGE = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


def enrol(client) -> tuple[str, list[str]]:
    """Turn two-factor sign-in on from the account page, as a person would; returns the secret
    and the recovery codes the page showed once."""
    page = client.get("/staff/account/two-factor")
    assert page.status_code == 200 and "<svg" in page.text
    secret = SECRET_ON_PAGE.search(page.text).group(1).replace(" ", "")
    done = post_form(client, "/staff/account/two-factor", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200, done.text
    codes = CODES_ON_PAGE.findall(done.text)
    assert len(codes) == 10
    return secret, codes


def previous_code(secret: str, steps_back: int = 1) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(utcnow()) - steps_back)


def next_code(secret: str) -> str:
    """The code of the next time step: enrolling spent the current one, and a phone a little
    ahead shows this."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(utcnow()) + 1)


def password_step(client, user: StaffUser, password: str = PASSWORD):
    return post_form(client, "/staff/login", {"email": user.email, "password": password})


def test_enrolment_shows_a_qr_code_and_the_secret_once(organiser_client, organiser):
    secret, codes = enrol(organiser_client)
    db.session.refresh(organiser)
    assert organiser.has_two_factor and organiser.totp_secret == secret
    page = organiser_client.get("/staff/account/two-factor")
    assert secret not in page.text.replace(" ", "") and "is <strong>on</strong>" in page.text
    stored = set(db.session.scalars(db.select(RecoveryCode.code_hash)))
    assert len(stored) == 10 and not {c.replace("-", "") for c in codes} & stored


def test_a_wrong_enrolment_code_turns_nothing_on(organiser_client, organiser):
    organiser_client.get("/staff/account/two-factor")
    response = post_form(organiser_client, "/staff/account/two-factor", {"code": "000000"})
    assert response.status_code == 400 and "That code is not right" in response.text
    db.session.refresh(organiser)
    assert not organiser.has_two_factor


def test_signing_in_asks_for_the_code_after_the_password(app, organiser_client, organiser):
    secret, _codes = enrol(organiser_client)
    client = app.test_client()
    step = password_step(client, organiser)
    assert step.status_code == 302 and step.headers["Location"] == "/staff/login/code"
    assert not is_signed_in(client)  # the password alone opens nothing
    wrong = post_form(client, "/staff/login/code", {"code": "123456"})
    assert wrong.status_code == 401 and "That code is not right" in wrong.text
    assert not is_signed_in(client)
    right = post_form(client, "/staff/login/code", {"code": next_code(secret)})
    assert right.status_code == 302 and right.headers["Location"] == "/staff/"
    assert is_signed_in(client)


def test_a_code_cannot_be_used_twice(app, organiser_client, organiser):
    secret, _codes = enrol(organiser_client)  # spends the current step's code
    client = app.test_client()
    password_step(client, organiser)
    reused = post_form(client, "/staff/login/code", {"code": pyotp.TOTP(secret).now()})
    assert reused.status_code == 401
    assert not is_signed_in(client)


def test_a_phone_clock_one_step_out_is_accepted_two_steps_is_not(organiser):
    secret = two_factor.new_secret()
    now = utcnow()
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    two_factor.enable(
        organiser, secret, totp.generate_otp(step - 3), now=now - timedelta(seconds=90)
    )
    assert not two_factor.accept_code(organiser, totp.generate_otp(step - 2), now)  # too old
    assert not two_factor.accept_code(organiser, totp.generate_otp(step + 2), now)  # too new
    assert two_factor.accept_code(organiser, totp.generate_otp(step - 1), now)  # 30 s behind
    assert two_factor.accept_code(organiser, totp.generate_otp(step + 1), now)  # 30 s ahead
    assert not two_factor.accept_code(organiser, totp.generate_otp(step), now)  # before the last


def test_a_recovery_code_signs_in_once(app, organiser_client, organiser):
    _secret, codes = enrol(organiser_client)
    client = app.test_client()
    password_step(client, organiser)
    used = post_form(client, "/staff/login/code", {"code": codes[3].upper()})
    assert used.status_code == 302 and is_signed_in(client)
    other = app.test_client()
    password_step(other, organiser)
    assert post_form(other, "/staff/login/code", {"code": codes[3]}).status_code == 401
    assert two_factor.recovery_codes_left(organiser) == 9


def test_the_code_step_is_rate_limited_per_account(app, organiser_client, organiser):
    app.config["LOGIN_CODE_LIMIT_PER_ACCOUNT"] = "3 per 15 minutes"
    secret, _codes = enrol(organiser_client)
    client = app.test_client()
    password_step(client, organiser)
    for _ in range(3):
        assert post_form(client, "/staff/login/code", {"code": "111111"}).status_code == 401
    blocked = post_form(client, "/staff/login/code", {"code": pyotp.TOTP(secret).now()})
    assert blocked.status_code == 429


def test_the_code_step_needs_a_recent_password(app, client, organiser):
    assert client.get("/staff/login/code").headers["Location"] == "/staff/login"
    with client.session_transaction() as flask_session:
        flask_session["pending_sign_in"] = {
            "user": organiser.id,
            "since": int((utcnow() - timedelta(minutes=6)).timestamp()),
            "step": "code",
            "next": "",
        }
    assert client.get("/staff/login/code").headers["Location"] == "/staff/login"


def test_turning_two_factor_off_takes_the_password(organiser_client, organiser):
    enrol(organiser_client)
    wrong = post_form(
        organiser_client, "/staff/account/two-factor/off", {"password": "not it"},
        token_from="/staff/account/two-factor",
    )  # fmt: skip
    assert wrong.status_code == 400 and "The password is not right." in wrong.text
    db.session.refresh(organiser)
    assert organiser.has_two_factor
    right = post_form(
        organiser_client, "/staff/account/two-factor/off", {"password": PASSWORD},
        token_from="/staff/account/two-factor",
    )  # fmt: skip
    assert right.status_code == 302
    db.session.refresh(organiser)
    assert not organiser.has_two_factor and organiser.totp_secret is None
    assert two_factor.recovery_codes_left(organiser) == 0


# --- the rule admins set ---------------------------------------------------------------------------


def require_two_factor(admin_client, required: bool = True):
    data = {"require": "y"} if required else {}
    return post_form(admin_client, "/staff/users/security", data)


def test_an_admin_must_have_it_before_requiring_it(admin_client):
    refused = require_two_factor(admin_client)
    assert refused.status_code == 400 and "Turn on two-factor sign-in for your own" in refused.text
    assert not two_factor.policy().require_two_factor


def test_when_required_an_account_without_it_enrols_before_anything_else(
    app, admin_client, organiser_client, organiser
):
    enrol(admin_client)
    assert require_two_factor(admin_client).status_code == 302
    assert two_factor.policy().require_two_factor
    assert not is_signed_in(organiser_client)  # signed out by the rule
    assert is_signed_in(admin_client)  # who has it stays in

    client = app.test_client()
    step = password_step(client, organiser)
    assert step.headers["Location"] == "/staff/login/two-factor"
    assert not is_signed_in(client)
    assert client.get("/staff/events/").status_code == 302  # nothing else opens
    page = client.get("/staff/login/two-factor")
    assert "requires two-factor sign-in" in page.text
    secret = SECRET_ON_PAGE.search(page.text).group(1).replace(" ", "")
    done = post_form(client, "/staff/login/two-factor", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and len(CODES_ON_PAGE.findall(done.text)) == 10
    assert is_signed_in(client)
    # ... and it cannot be turned off while required
    off = post_form(
        client, "/staff/account/two-factor/off", {"password": PASSWORD},
        token_from="/staff/account/two-factor",
    )  # fmt: skip
    assert off.status_code == 400 and "required for every staff account" in off.text


def test_only_admins_set_the_rule(organiser_client, checkin_client):
    token = csrf_token(organiser_client, "/staff/")
    assert (
        organiser_client.post("/staff/users/security", data={"csrf_token": token}).status_code
        == 403
    )
    assert checkin_client.get("/staff/users/security").status_code == 403


# --- one's own sessions ------------------------------------------------------------------------


def test_the_sessions_page_lists_ones_own_and_marks_this_one(
    app, organiser_client, organiser, admin
):
    other = app.test_client()
    log_in(other, organiser)
    admins = app.test_client()
    log_in(admins, admin)
    page = organiser_client.get("/staff/account/sessions")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert page.text.count("This one") == 1
    assert page.text.count('name="session"') == 1  # the other session of the organiser only


def test_sign_out_everywhere_else_keeps_this_one(app, organiser_client, organiser):
    other = app.test_client()
    log_in(other, organiser)
    response = post_form(
        organiser_client, "/staff/account/sessions/end-others", {},
        token_from="/staff/account/sessions",
    )  # fmt: skip
    assert response.status_code == 302
    assert is_signed_in(organiser_client) and not is_signed_in(other)


def test_one_session_can_be_signed_out_but_not_another_persons(
    app, organiser_client, organiser, admin
):
    other = app.test_client()
    log_in(other, organiser)
    admins = app.test_client()
    log_in(admins, admin)
    own = [s for s in sessions.live_sessions(organiser)]
    theirs = sessions.live_sessions(admin)[0]
    forged = post_form(
        organiser_client, "/staff/account/sessions/end", {"session": str(theirs.id)},
        token_from="/staff/account/sessions",
    )  # fmt: skip
    assert forged.status_code == 404
    assert is_signed_in(admins)
    target = max(own, key=lambda s: s.id)  # the session `other` made last
    ended = post_form(
        organiser_client, "/staff/account/sessions/end", {"session": str(target.id)},
        token_from="/staff/account/sessions",
    )  # fmt: skip
    assert ended.status_code == 302
    assert not is_signed_in(other) and is_signed_in(organiser_client)


@pytest.mark.parametrize("value", ["", "abc", "1\r\n2", "9" * 12, "<script>", "{{7*7}}", "-1"])
def test_a_strange_session_id_is_refused_calmly(organiser_client, value):
    response = post_form(
        organiser_client, "/staff/account/sessions/end", {"session": value},
        token_from="/staff/account/sessions",
    )  # fmt: skip
    assert response.status_code == 400
    assert "<script>" not in response.text
    assert is_signed_in(organiser_client)


# --- forged requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, data",
    [
        ("/staff/password/forgot", {"email": "org@example.com"}),
        ("/staff/account/sessions/end-others", {}),
        ("/staff/account/sessions/end", {"session": "1"}),
        ("/staff/account/two-factor", {"code": "123456"}),
        ("/staff/account/two-factor/off", {"password": PASSWORD}),
        ("/staff/users/security", {"require": "y"}),
    ],
)
def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    app, admin_client, organiser, path, data
):
    other = app.test_client()
    log_in(other, organiser)
    before = db.session.scalar(db.select(db.func.count(StaffSession.id)))
    response = admin_client.post(path, data=data)
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count(StaffSession.id))) == before
    assert outbox() == [] and not two_factor.policy().require_two_factor


def test_the_code_and_reset_forms_refuse_a_forged_request(app, client, organiser, smtp_server):
    password_reset.request_reset(organiser.email)
    db.session.commit()
    path = link_in(delivered(smtp_server)[0], "/staff/password/reset/")
    forged = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert forged.status_code == 400
    db.session.refresh(organiser)
    assert organiser.check_password(PASSWORD)

    secret = two_factor.new_secret()
    two_factor.enable(organiser, secret, pyotp.TOTP(secret).now())
    db.session.commit()
    other = app.test_client()
    password_step(other, organiser)
    forged_code = other.post("/staff/login/code", data={"code": previous_code(secret, 0)})
    assert forged_code.status_code == 400
    assert not is_signed_in(other)


@pytest.mark.parametrize(
    "code", ["{{7*7}}", "<script>alert(1)</script>", "12345\r\n6", "x" * 30, "１２３４５６", "\x00"]
)
def test_hostile_codes_are_refused_without_an_error(app, organiser, code):
    secret = two_factor.new_secret()
    two_factor.enable(organiser, secret, pyotp.TOTP(secret).now())
    db.session.commit()
    client = app.test_client()
    password_step(client, organiser)
    response = post_form(client, "/staff/login/code", {"code": code})
    assert response.status_code in (400, 401)
    assert "<script>alert" not in response.text
    assert not is_signed_in(client)


@pytest.mark.parametrize(
    "code", ["{{7*7}}", "<b>123456</b>", "123\r\n456", "1" * 300, "１２３４５６", "12 34 56\x00"]
)
def test_hostile_enrolment_codes_turn_nothing_on(organiser_client, organiser, code):
    organiser_client.get("/staff/account/two-factor")
    response = post_form(organiser_client, "/staff/account/two-factor", {"code": code})
    assert response.status_code == 400
    assert "<b>123456</b>" not in response.text
    db.session.refresh(organiser)
    assert not organiser.has_two_factor


def test_enrolling_at_sign_in_refuses_a_forged_request(app, admin_client, organiser):
    enrol(admin_client)
    require_two_factor(admin_client)
    client = app.test_client()
    password_step(client, organiser)
    page = client.get("/staff/login/two-factor")
    secret = SECRET_ON_PAGE.search(page.text).group(1).replace(" ", "")
    forged = client.post("/staff/login/two-factor", data={"code": pyotp.TOTP(secret).now()})
    assert forged.status_code == 400
    db.session.refresh(organiser)
    assert not organiser.has_two_factor and not is_signed_in(client)


def test_each_step_is_in_the_audit_trail(app, organiser_client, organiser, smtp_server):
    from chamber.auth.audit import AuditEntry

    def actions() -> list[tuple[str, str]]:
        rows = db.session.execute(
            db.select(AuditEntry.action, AuditEntry.detail).order_by(AuditEntry.id)
        )
        return [tuple(row) for row in rows]

    secret, codes = enrol(organiser_client)
    client = app.test_client()
    password_step(client, organiser)
    post_form(client, "/staff/login/code", {"code": "000000"})
    post_form(client, "/staff/login/code", {"code": codes[0]})
    post_form(
        client, "/staff/account/sessions/end-others", {}, token_from="/staff/account/sessions"
    )
    ask_for_reset(app.test_client(), organiser.email)
    path = link_in(delivered(smtp_server)[0], "/staff/password/reset/")
    post_form(app.test_client(), path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    logged = actions()
    assert logged[1:] == [
        ("two_factor_enabled", ""),
        ("second_factor_failed", ""),
        ("recovery_code_used", ""),
        ("sign_in", "password and recovery code"),
        ("other_sessions_ended", ""),
        ("password_reset_requested", ""),
        ("password_reset", ""),
    ]
    assert secret not in repr(logged) and codes[0] not in repr(logged)
