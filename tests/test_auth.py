"""Staff login and accounts: one answer for every failed login, safe redirects after logging in,
rate limits per account and per address, hashed passwords, the create-staff command and the
admin's staff pages with their guard rails (never lock everyone out)."""

from __future__ import annotations

import re

import pytest

from chamber import create_app
from chamber.auth.models import Role, StaffUser
from chamber.extensions import db
from tests.factories import PASSWORD
from tests.support import csrf_token, log_in, post_form

LOGIN_FAILED = "The email address or password is not right."
NEW_PASSWORD = "correct horse battery staple"


def attempt(client, email: str, password: str, **kwargs):
    return post_form(client, "/staff/login", {"email": email, "password": password}, **kwargs)


def users_by_email() -> dict[str, StaffUser]:
    db.session.expire_all()
    return {user.email: user for user in db.session.scalars(db.select(StaffUser))}


def page_without_secrets(text: str) -> str:
    """A login page with its CSRF token and the typed email blanked, to compare two answers."""
    text = re.sub(r'name="csrf_token"([^>]*)value="[^"]*"', r'name="csrf_token"\1value=""', text)
    return re.sub(r'(id="email"[^>]*?)value="[^"]*"', r"\1", text)


# --- logging in ----------------------------------------------------------------------------------


def test_logging_in_goes_to_the_dashboard(client, admin):
    response = attempt(client, "admin@example.com", PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"
    dashboard = client.get("/staff/")
    assert dashboard.status_code == 200
    assert "Hello, Ada Admin" in dashboard.text


def test_the_email_address_is_not_case_sensitive(client, admin):
    response = attempt(client, "  Admin@Example.COM ", PASSWORD)
    assert response.status_code == 302


def test_wrong_email_and_wrong_password_get_the_same_answer(client, admin):
    wrong_email = attempt(client, "nobody@example.com", PASSWORD)
    wrong_password = attempt(client, "admin@example.com", "not the password at all")
    assert wrong_email.status_code == wrong_password.status_code == 401
    assert LOGIN_FAILED in wrong_email.text
    assert LOGIN_FAILED in wrong_password.text
    assert page_without_secrets(wrong_email.text) == page_without_secrets(wrong_password.text)
    assert client.get("/staff/").status_code == 302  # still not logged in


def test_a_deactivated_user_cannot_log_in_and_is_told_nothing_more(client, make_staff):
    make_staff(Role.organiser, email="gone@example.com", active=False)
    response = attempt(client, "gone@example.com", PASSWORD)
    assert response.status_code == 401
    assert LOGIN_FAILED in response.text
    assert "deactivated" not in response.text.lower()
    assert client.get("/staff/").status_code == 302


def test_an_empty_login_form_says_what_is_missing(client):
    response = attempt(client, "", "")
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "Enter your email address." in response.text
    assert "Enter your password." in response.text


def test_a_successful_login_records_when_and_starts_a_fresh_session(client, admin):
    before_token = csrf_token(client)
    attempt(client, admin.email, PASSWORD)
    assert users_by_email()["admin@example.com"].last_login_at is not None
    # The session (and so its CSRF token) is replaced when the user's privileges change.
    assert csrf_token(client, "/staff/") != before_token


# --- where to go after logging in ----------------------------------------------------------------


def test_a_staff_page_asks_for_a_login_and_comes_back_after_it(client, admin):
    refused = client.get("/staff/events/?show=all")
    assert refused.status_code == 302
    login_page = refused.headers["Location"]
    assert login_page == "/staff/login?next=%2Fstaff%2Fevents%2F%3Fshow%3Dall"
    page = client.get(login_page)
    assert "Log in to see that page." in page.text
    assert 'name="next" value="/staff/events/?show=all"' in page.text

    # The browser sends the hidden field back with the form.
    response = post_form(
        client,
        "/staff/login",
        {"email": admin.email, "password": PASSWORD, "next": "/staff/events/?show=all"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/events/?show=all"


def test_next_in_the_address_is_honoured_for_a_local_path(client, admin):
    response = post_form(
        client, "/staff/login?next=/staff/events/", {"email": admin.email, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/staff/events/"


UNSAFE_NEXT = [
    "https://evil.example",
    "https://evil.example/staff/",
    "//evil.example",
    "//evil.example/staff/",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "http:evil.example",
    "/staff/\r\nLocation: https://evil.example",
    "staff/events",
]


@pytest.mark.parametrize("target", UNSAFE_NEXT)
def test_next_pointing_off_the_site_is_ignored(client, admin, target):
    page = client.get("/staff/login", query_string={"next": target})
    assert page.status_code == 200
    assert "evil.example" not in page.text and "alert(" not in page.text
    response = post_form(
        client, "/staff/login", {"email": admin.email, "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/\\evil.example"])
def test_a_logged_in_user_visiting_login_with_a_bad_next_stays_on_the_site(admin_client, target):
    response = admin_client.get("/staff/login", query_string={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"


# --- logging out ---------------------------------------------------------------------------------


def test_logout_is_post_only(admin_client):
    assert admin_client.get("/staff/logout").status_code == 405
    assert admin_client.get("/staff/").status_code == 200


def test_logout_without_a_csrf_token_is_refused(admin_client):
    response = admin_client.post("/staff/logout")
    assert response.status_code == 400
    assert admin_client.get("/staff/").status_code == 200


def test_logout_with_the_token_ends_the_session(admin_client):
    response = admin_client.post(
        "/staff/logout", data={"csrf_token": csrf_token(admin_client, "/staff/")}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/login"
    assert "You have logged out." in admin_client.get("/staff/login").text
    assert admin_client.get("/staff/").status_code == 302


# --- rate limits ---------------------------------------------------------------------------------


def test_the_default_limits_are_as_documented(app):
    assert app.config["LOGIN_LIMIT_PER_ACCOUNT"] == "5 per 15 minutes"
    assert app.config["LOGIN_LIMIT_PER_ADDRESS"] == "20 per 15 minutes"


def test_five_failures_lock_the_account_even_for_the_right_password(app, admin, organiser):
    client = app.test_client()
    for _ in range(5):
        assert attempt(client, admin.email, "wrong password guess").status_code == 401
    response = attempt(client, admin.email, PASSWORD)
    assert response.status_code == 429
    assert "Too many attempts to log in to this account" in response.text
    assert client.get("/staff/").status_code == 302

    # The same address can still log in to another account: the lock is on the account.
    other = app.test_client()
    assert attempt(other, organiser.email, PASSWORD).status_code == 302


def test_the_account_lock_ignores_how_the_email_is_typed(app, admin):
    client = app.test_client()
    for spelling in (
        "admin@example.com",
        "ADMIN@example.com",
        " Admin@Example.com",
        "admin@EXAMPLE.com",
        "admin@example.com ",
    ):
        assert attempt(client, spelling, "wrong password guess").status_code == 401
    assert attempt(client, admin.email, PASSWORD).status_code == 429


@pytest.fixture
def limited_app(app, tmp_path):
    """The same database with low limits: 2 failures per account, 4 per address, per minute."""
    limited = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "INSTANCE_PATH": str(tmp_path / "limited"),
            "LOGIN_LIMIT_PER_ACCOUNT": "2 per minute",
            "LOGIN_LIMIT_PER_ADDRESS": "4 per minute",
        }
    )
    yield limited
    with limited.app_context():
        db.session.remove()
        db.engine.dispose()


def test_successful_logins_do_not_count_towards_the_limit(limited_app, admin):
    for _ in range(4):
        client = limited_app.test_client()
        assert attempt(client, admin.email, PASSWORD).status_code == 302
    client = limited_app.test_client()
    assert attempt(client, admin.email, "wrong password guess").status_code == 401
    assert attempt(client, admin.email, PASSWORD).status_code == 302


def test_too_many_failures_from_one_address_lock_every_account_from_it(limited_app, make_staff):
    users = [make_staff(Role.organiser, email=f"person{n}@example.com") for n in range(3)]
    client = limited_app.test_client()
    assert attempt(client, users[0].email, "wrong password guess").status_code == 401
    assert attempt(client, users[1].email, "wrong password guess").status_code == 401
    assert attempt(client, "nobody@example.com", "wrong password guess").status_code == 401
    assert attempt(client, "someone@example.com", "wrong password guess").status_code == 401

    # Four failures from this address: a fifth account, with the right password, is refused too.
    response = attempt(client, users[2].email, PASSWORD)
    assert response.status_code == 429
    assert "Too many attempts to log in from your address" in response.text

    # Another address is not affected.
    elsewhere = limited_app.test_client()
    response = attempt(
        elsewhere, users[2].email, PASSWORD, environ_base={"REMOTE_ADDR": "192.0.2.7"}
    )
    assert response.status_code == 302


# --- cookies and stored passwords ----------------------------------------------------------------


def session_cookie_header(response) -> str:
    cookies = [
        value for value in response.headers.getlist("Set-Cookie") if value.startswith("session=")
    ]
    assert cookies, "no session cookie was set"
    return cookies[-1]


def test_the_session_cookie_is_http_only_and_same_site(client, admin):
    response = attempt(client, admin.email, PASSWORD)
    cookie = session_cookie_header(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert (
        "Secure" not in cookie
    )  # BASE_URL is plain http in tests, so a Secure cookie would be lost


def test_the_session_cookie_is_secure_when_the_site_is_https(app, tmp_path):
    secure = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "INSTANCE_PATH": str(tmp_path / "secure"),
            "BASE_URL": "https://chamber.example",
        }
    )
    try:
        response = secure.test_client().get("/staff/login", base_url="https://chamber.example")
        cookie = session_cookie_header(response)
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        with secure.app_context():
            db.engine.dispose()


def test_passwords_are_stored_as_scrypt_hashes(admin):
    stored = users_by_email()["admin@example.com"].password_hash
    assert stored.startswith("scrypt:")
    assert PASSWORD not in stored


# --- the create-staff command --------------------------------------------------------------------


def create_staff(runner, email: str, password: str, role: str = "organiser"):
    return runner.invoke(
        args=[
            "create-staff",
            "--email",
            email,
            "--name",
            "Nia New",
            "--role",
            role,
            "--password-stdin",
        ],
        input=password + "\n",
    )


def test_create_staff_reads_the_password_from_stdin_and_never_prints_it(runner):
    result = create_staff(runner, "Nia@Example.com", NEW_PASSWORD)
    assert result.exit_code == 0, result.output
    assert "Added nia@example.com" in result.output
    assert NEW_PASSWORD not in result.output
    user = users_by_email()["nia@example.com"]
    assert user.role == Role.organiser and user.name == "Nia New" and user.active
    assert user.password_hash.startswith("scrypt:") and user.check_password(NEW_PASSWORD)


def test_the_created_staff_user_can_log_in(runner, client):
    assert create_staff(runner, "nia@example.com", NEW_PASSWORD).exit_code == 0
    assert attempt(client, "nia@example.com", NEW_PASSWORD).status_code == 302


def test_a_password_is_taken_exactly_as_typed_on_the_command_line_and_the_web(runner, app):
    spaced = "  spaces around my password  "
    assert create_staff(runner, "nia@example.com", spaced).exit_code == 0
    assert users_by_email()["nia@example.com"].check_password(spaced)
    assert attempt(app.test_client(), "nia@example.com", spaced).status_code == 302
    assert attempt(app.test_client(), "nia@example.com", spaced.strip()).status_code == 401


def test_create_staff_refuses_a_short_password(runner):
    result = create_staff(runner, "nia@example.com", "short pw")
    assert result.exit_code != 0
    assert "at least 12 characters" in result.output
    assert "short pw" not in result.output
    assert users_by_email() == {}


def test_create_staff_refuses_a_duplicate_email(runner, admin):
    result = create_staff(runner, "ADMIN@example.com", NEW_PASSWORD, role="admin")
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert NEW_PASSWORD not in result.output
    users = users_by_email()
    assert list(users) == ["admin@example.com"]
    assert users["admin@example.com"].check_password(PASSWORD)


def test_create_staff_refuses_an_unknown_role(runner):
    result = create_staff(runner, "nia@example.com", NEW_PASSWORD, role="owner")
    assert result.exit_code != 0
    assert users_by_email() == {}


# --- admins manage staff accounts ----------------------------------------------------------------


def user_form(**fields) -> dict[str, str]:
    return {
        "name": "Pat Person",
        "email": "pat@example.com",
        "role": "organiser",
        "password": NEW_PASSWORD,
        **fields,
    }


def test_an_admin_adds_a_staff_user(admin_client):
    response = post_form(
        admin_client, "/staff/users/new", user_form(email="Pat@Example.com", role="checkin")
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/users/"
    user = users_by_email()["pat@example.com"]
    assert (user.name, user.role, user.active) == ("Pat Person", Role.checkin, True)
    assert user.password_hash.startswith("scrypt:") and NEW_PASSWORD not in user.password_hash
    listing = admin_client.get("/staff/users/").text
    assert "Added Pat Person as Check-in." in listing
    assert "pat@example.com" in listing


def test_adding_a_staff_user_with_a_used_email_is_refused_with_a_message(admin_client, organiser):
    response = post_form(admin_client, "/staff/users/new", user_form(email="ORG@example.com"))
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "A staff user with that email address already exists." in response.text
    assert sorted(users_by_email()) == ["admin@example.com", "org@example.com"]
    assert users_by_email()["org@example.com"].name == "Olu Organiser"


def test_an_admin_changes_a_users_role(admin_client, organiser):
    path = f"/staff/users/{organiser.id}"
    response = post_form(
        admin_client, path, {"name": "Olu Organiser", "role": "admin", "active": "y"}
    )
    assert response.status_code == 302
    assert users_by_email()["org@example.com"].role == Role.admin


def test_an_admin_cannot_deactivate_their_own_account(admin_client, admin, make_staff):
    make_staff(
        Role.admin, email="second-admin@example.com"
    )  # so the last-admin rule is not the reason
    response = post_form(
        admin_client, f"/staff/users/{admin.id}", {"name": "Ada Admin", "role": "admin"}
    )
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "You cannot deactivate your own account." in response.text
    assert users_by_email()["admin@example.com"].active is True
    assert admin_client.get("/staff/").status_code == 200


def test_the_last_active_admin_cannot_be_demoted(admin_client, admin, organiser):
    response = post_form(
        admin_client,
        f"/staff/users/{admin.id}",
        {"name": "Ada Admin", "role": "organiser", "active": "y"},
    )
    assert response.status_code == 400
    assert "There must always be at least one active admin." in response.text
    assert users_by_email()["admin@example.com"].role == Role.admin


def test_an_inactive_admin_does_not_count_as_the_other_admin(admin_client, admin, make_staff):
    make_staff(Role.admin, email="retired-admin@example.com", active=False)
    response = post_form(
        admin_client,
        f"/staff/users/{admin.id}",
        {"name": "Ada Admin", "role": "checkin", "active": "y"},
    )
    assert response.status_code == 400
    assert "There must always be at least one active admin." in response.text
    assert users_by_email()["admin@example.com"].role == Role.admin


def test_an_admin_may_step_down_when_another_admin_remains(admin_client, admin, make_staff):
    make_staff(Role.admin, email="second-admin@example.com")
    response = post_form(
        admin_client,
        f"/staff/users/{admin.id}",
        {"name": "Ada Admin", "role": "organiser", "active": "y"},
    )
    assert response.status_code == 302
    assert users_by_email()["admin@example.com"].role == Role.organiser
    assert admin_client.get("/staff/users/").status_code == 403  # takes effect at once


def test_an_admin_sets_a_new_password(app, admin_client, organiser):
    path = f"/staff/users/{organiser.id}/password"
    response = post_form(
        admin_client,
        path,
        {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        token_from=f"/staff/users/{organiser.id}",
    )
    assert response.status_code == 302
    assert "Set a new password for Olu Organiser." in admin_client.get("/staff/users/").text
    assert users_by_email()["org@example.com"].check_password(NEW_PASSWORD)
    assert attempt(app.test_client(), organiser.email, NEW_PASSWORD).status_code == 302


def test_a_new_password_that_does_not_match_its_confirmation_is_refused(admin_client, organiser):
    before = users_by_email()["org@example.com"].password_hash
    response = post_form(
        admin_client,
        f"/staff/users/{organiser.id}/password",
        {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"},
        token_from=f"/staff/users/{organiser.id}",
    )
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "The passwords do not match." in response.text
    assert users_by_email()["org@example.com"].password_hash == before


def test_a_short_new_password_is_refused(admin_client, organiser):
    before = users_by_email()["org@example.com"].password_hash
    response = post_form(
        admin_client,
        f"/staff/users/{organiser.id}/password",
        {"password": "too short", "confirm": "too short"},
        token_from=f"/staff/users/{organiser.id}",
    )
    assert response.status_code == 400
    assert "Password must be between 12 and 200 characters." in response.text
    assert users_by_email()["org@example.com"].password_hash == before


def test_setting_a_new_password_logs_the_account_out_everywhere_else(app, admin_client, make_staff):
    user = make_staff(Role.organiser, email="olu@example.com")
    elsewhere = app.test_client()
    log_in(elsewhere, user)
    assert elsewhere.get("/staff/events/").status_code == 200
    response = post_form(
        admin_client,
        f"/staff/users/{user.id}/password",
        {"password": "a brand new password", "confirm": "a brand new password"},
        token_from=f"/staff/users/{user.id}",
    )
    assert response.status_code == 302
    refused = elsewhere.get("/staff/events/")
    assert refused.status_code == 302 and "/staff/login" in refused.headers["Location"]
    log_in(elsewhere, user, password="a brand new password")
    assert elsewhere.get("/staff/events/").status_code == 200


# --- guessable passwords (zxcvbn's lists, offline) -----------------------------------------------

GUESSABLE = [
    "password1234",
    "qwertyuiop12",
    "hertfordshire",
    "Hertfordshire1",
    "hertfordshire2024",
    "Hertfordshire!2024",
    "Chamber2024!!",
    "Password123!",
    "letmein12345",
    "123456789012",
    "aaaaaaaaaaaa",
    "Summer2024!!",
]
TOO_EASY = "That password is too easy to guess."


@pytest.mark.parametrize("password", GUESSABLE)
def test_an_admin_cannot_give_a_new_user_a_guessable_password(admin_client, password):
    response = post_form(admin_client, "/staff/users/new", user_form(password=password))
    assert response.status_code == 400
    assert TOO_EASY in response.text
    assert "A few unrelated words make a strong password" in response.text
    assert password not in response.text  # never echoed back
    assert "pat@example.com" not in users_by_email()


@pytest.mark.parametrize("password", ["password1234", "hertfordshire2024", "qwertyuiop12"])
def test_a_guessable_new_password_is_refused_and_the_old_one_kept(
    admin_client, organiser, password
):
    before = users_by_email()["org@example.com"].password_hash
    response = post_form(
        admin_client,
        f"/staff/users/{organiser.id}/password",
        {"password": password, "confirm": password},
        token_from=f"/staff/users/{organiser.id}",
    )
    assert response.status_code == 400
    assert TOO_EASY in response.text
    assert users_by_email()["org@example.com"].password_hash == before


def test_a_password_made_of_the_persons_own_name_or_email_is_refused(admin_client):
    for password in ("patperson2024", "PatPerson!!12", "pat@example.com"):
        response = post_form(admin_client, "/staff/users/new", user_form(password=password))
        assert response.status_code == 400, password
        assert TOO_EASY in response.text, password
    assert "pat@example.com" not in users_by_email()


@pytest.mark.parametrize(
    "password", ["gravel orchid lantern mosaic", "Tr0ub4dor&3xyz", "k7#Vq!2mZp9$wL"]
)
def test_a_strong_password_is_accepted(admin_client, password):
    response = post_form(admin_client, "/staff/users/new", user_form(password=password))
    assert response.status_code == 302
    assert users_by_email()["pat@example.com"].check_password(password)


def test_the_test_and_demo_passwords_are_strong(app):
    from chamber.auth.services import password_problem

    assert password_problem(PASSWORD) is None
    assert password_problem(NEW_PASSWORD) is None


@pytest.mark.parametrize("password", ["password1234", "qwertyuiop12", "Hertfordshire1"])
def test_create_staff_refuses_a_guessable_password(runner, password):
    result = create_staff(runner, "nia@example.com", password)
    assert result.exit_code != 0
    assert TOO_EASY in result.output
    assert password not in result.output
    assert users_by_email() == {}


def test_create_staff_refuses_a_password_made_of_the_persons_name(runner):
    for password in ("Nia New 2024", "nia@example.com1"):
        result = create_staff(runner, "nia@example.com", password)
        assert result.exit_code != 0, password
        assert TOO_EASY in result.output, password
    assert users_by_email() == {}


# --- create-staff checks the details as the web form does ----------------------------------------

BAD_EMAILS = [
    ("nia.example.com", "Enter an email address in the right format"),
    ("nia@", "Enter an email address in the right format"),
    ("nia@@example.com", "Enter an email address in the right format"),
    ("nia@example.com\r\nBcc: victim@example.com", "Enter an email address in the right format"),
    ("nia@exa\nmple.com", "Enter an email address in the right format"),
    ("nia\x00@example.com", "Email address contains a character that is not allowed."),
    ("n" * 250 + "@example.com", "Email address must be 254 characters or fewer."),
    ("<script>alert(1)</script>@example.com", "Enter an email address in the right format"),
    ('"nia"<nia@example.com>', "Enter an email address in the right format"),
    ("nia@example.com<b>", "Enter an email address in the right format"),
]


@pytest.mark.parametrize(("email", "message"), BAD_EMAILS, ids=range(len(BAD_EMAILS)))
def test_create_staff_refuses_a_bad_email_and_stores_nothing(runner, email, message):
    result = create_staff(runner, email, NEW_PASSWORD)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert NEW_PASSWORD not in result.output
    assert users_by_email() == {}


def test_the_web_form_refuses_the_same_emails(admin_client):
    for email, message in BAD_EMAILS:
        response = post_form(admin_client, "/staff/users/new", user_form(email=email))
        assert response.status_code == 400, email
        assert message in response.text, email
    assert list(users_by_email()) == ["admin@example.com"]


def test_create_staff_refuses_a_bad_email_before_asking_for_a_password(runner):
    result = runner.invoke(
        args=["create-staff", "--email", "not-an-email", "--name", "Nia New", "--password-stdin"],
        input="",  # no password at all: the email is refused first
    )
    assert result.exit_code != 0
    assert "Enter an email address in the right format" in result.output
    assert "at least 12 characters" not in result.output
    assert users_by_email() == {}


def test_create_staff_refuses_a_bad_name(runner):
    for name in ("", "n" * 121, "Nia\x00New"):
        result = runner.invoke(
            args=["create-staff", "--email", "nia@example.com", "--name", name, "--password-stdin"],
            input=NEW_PASSWORD + "\n",
        )
        assert result.exit_code != 0, repr(name)
    assert users_by_email() == {}
