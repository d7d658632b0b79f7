"""Rate limits in one process: login failures counted per account and address (so a stranger cannot
lock the owner out), a ceiling per account that slows guessing from many addresses, client
addresses from `remote_addr` only, the warning when processes do not share their counters, and
a rate-limit store that stops answering. Across gunicorn workers: test_rate_limits_gunicorn.py."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask_limiter import Limit

from chamber import create_app
from chamber.config import ConfigError, shared_memory_warning
from chamber.extensions import client_address, limiter
from tests.factories import PASSWORD
from tests.support import csrf_token, post_form

WRONG = "wrong password guess"
STRANGER = "203.0.113.5"
OWNER = "198.51.100.9"
ACCOUNT_LOCKED = "Too many attempts to log in to this account"


def attempt(client, email: str, password: str, address: str = STRANGER, **kwargs):
    environ = {"REMOTE_ADDR": address, **kwargs.pop("environ_base", {})}
    return post_form(
        client, "/staff/login", {"email": email, "password": password}, environ_base=environ,
        **kwargs,
    )  # fmt: skip


# --- who is locked out -----------------------------------------------------------------------------


def test_a_strangers_five_failures_stop_the_stranger_not_the_owner(app, admin):
    stranger = app.test_client()
    for _ in range(5):
        assert attempt(stranger, admin.email, WRONG).status_code == 401
    refused = attempt(stranger, admin.email, PASSWORD)  # even the right password, from there
    assert refused.status_code == 429
    assert ACCOUNT_LOCKED in refused.text

    owner = app.test_client()
    assert attempt(owner, admin.email, PASSWORD, address=OWNER).status_code == 302
    assert owner.get("/staff/").status_code == 200


def test_fifty_failures_from_many_addresses_slow_the_guessers_but_never_lock_the_owner_out(
    app, admin
):
    # 10 addresses, 5 failures each: the ceiling of 50 for the account is reached.
    for n in range(10):
        guesser = app.test_client()
        for _ in range(5):
            assert attempt(guesser, admin.email, WRONG, address=f"203.0.113.{n}").status_code == 401

    # A new address still gets its first try, but only one: after a failure the ceiling holds it.
    late = app.test_client()
    assert attempt(late, admin.email, WRONG, address="192.0.2.77").status_code == 401
    refused = attempt(late, admin.email, PASSWORD, address="192.0.2.77")
    assert refused.status_code == 429
    assert ACCOUNT_LOCKED in refused.text

    # The owner, from their own address, types the right password and is in.
    owner = app.test_client()
    assert attempt(owner, admin.email, PASSWORD, address=OWNER).status_code == 302


def test_a_browser_that_logged_in_before_is_never_locked_out_by_strangers(app, admin):
    owner = app.test_client()
    assert attempt(owner, admin.email, PASSWORD, address=OWNER).status_code == 302
    owner.post("/staff/logout", data={"csrf_token": csrf_token(owner, "/staff/")})
    # Strangers fill the ceiling from many addresses and the owner's own shared address (a venue's
    # wifi) ...
    for n in range(10):
        guesser = app.test_client()
        for _ in range(5):
            attempt(guesser, admin.email, WRONG, address=f"203.0.113.{n}")
    for _ in range(5):
        attempt(app.test_client(), admin.email, WRONG, address=OWNER)
    # ... and the owner, after a typo of their own, still logs in from the browser they used.
    assert attempt(owner, admin.email, WRONG, address=OWNER).status_code == 401
    assert attempt(owner, admin.email, PASSWORD, address=OWNER).status_code == 302
    # A stranger's browser without that cookie, or with a forged one, is held back.
    forger = app.test_client()
    forger.set_cookie("chamber_device", "forged.cookie.value", path="/staff/login")
    assert attempt(forger, admin.email, PASSWORD, address=OWNER).status_code == 429


def test_the_device_cookie_is_signed_private_and_for_the_login_page_only(app, admin):
    response = attempt(app.test_client(), admin.email, PASSWORD, address=OWNER)
    (cookie,) = [
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("chamber_device=")
    ]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/staff/login" in cookie
    assert admin.email not in cookie.split(";")[0]  # signed and encoded, not the address itself


def test_below_the_ceiling_a_second_failure_from_an_address_is_still_allowed(make_app, admin):
    limited = make_app(
        LOGIN_LIMIT_PER_ACCOUNT="3 per hour", LOGIN_LIMIT_PER_ACCOUNT_ALL_ADDRESSES="4 per hour"
    )
    first = limited.test_client()
    for _ in range(3):
        assert attempt(first, admin.email, WRONG).status_code == 401
    second = limited.test_client()
    assert attempt(second, admin.email, WRONG, address="192.0.2.1").status_code == 401
    # 4 failures in all: the ceiling is reached, so 192.0.2.1, which has failed, is held back...
    assert attempt(second, admin.email, PASSWORD, address="192.0.2.1").status_code == 429
    # ...while an address that has not failed still logs in.
    assert attempt(limited.test_client(), admin.email, PASSWORD, address=OWNER).status_code == 302


def test_successes_count_towards_no_limit(make_app, admin):
    limited = make_app(
        LOGIN_LIMIT_PER_ACCOUNT="1 per hour",
        LOGIN_LIMIT_PER_ACCOUNT_ALL_ADDRESSES="1 per hour",
        LOGIN_LIMIT_PER_ADDRESS="1 per hour",
    )
    for _ in range(3):
        assert attempt(limited.test_client(), admin.email, PASSWORD).status_code == 302
    client = limited.test_client()
    assert attempt(client, admin.email, WRONG).status_code == 401
    assert attempt(client, admin.email, PASSWORD).status_code == 429


def test_other_accounts_from_the_guessers_address_are_not_locked(app, admin, organiser):
    stranger = app.test_client()
    for _ in range(5):
        assert attempt(stranger, admin.email, WRONG).status_code == 401
    assert attempt(stranger, organiser.email, PASSWORD).status_code == 302


# --- client addresses ----------------------------------------------------------------------------


def test_a_forged_forwarded_for_header_does_not_reset_the_count(app, admin):
    """Without trusted proxies (CHAMBER_PROXY_COUNT=0) X-Forwarded-For is the client's own words."""
    stranger = app.test_client()
    for n in range(5):
        forged = {"X-Forwarded-For": f"192.0.2.{n}"}
        assert attempt(stranger, admin.email, WRONG, headers=forged).status_code == 401
    forged = {"X-Forwarded-For": OWNER}
    assert attempt(stranger, admin.email, PASSWORD, headers=forged).status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(make_app, admin):
    proxied = make_app(PROXY_COUNT=1)
    proxy = "10.0.0.2"
    stranger = proxied.test_client()
    for _ in range(5):
        response = attempt(
            stranger, admin.email, WRONG, address=proxy, headers={"X-Forwarded-For": STRANGER}
        )
        assert response.status_code == 401
    assert (
        attempt(
            stranger, admin.email, PASSWORD, address=proxy, headers={"X-Forwarded-For": STRANGER}
        ).status_code
        == 429
    )
    owner = proxied.test_client()
    response = attempt(
        owner, admin.email, PASSWORD, address=proxy, headers={"X-Forwarded-For": OWNER}
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("remote_addr", "counted_as"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("", "unknown"),
    ],
)
def test_an_ipv6_client_counts_as_its_64(app, remote_addr, counted_as):
    with app.test_request_context(environ_base={"REMOTE_ADDR": remote_addr}):
        assert client_address() == counted_as


def test_addresses_in_one_ipv6_64_share_their_count(app, admin):
    stranger = app.test_client()
    for n in range(5):
        assert (
            attempt(stranger, admin.email, WRONG, address=f"2001:db8:5:6::{n + 1}").status_code
            == 401
        )
    assert attempt(stranger, admin.email, PASSWORD, address="2001:db8:5:6::99").status_code == 429
    owner = app.test_client()
    assert attempt(owner, admin.email, PASSWORD, address="2001:db8:5:7::1").status_code == 302


# --- counters every process shares ---------------------------------------------------------------


def test_several_processes_on_memory_are_warned_about():
    assert shared_memory_warning("memory://", 1) is None
    assert shared_memory_warning("redis://127.0.0.1:6379/0", 4) is None
    warning = shared_memory_warning("memory://", 4)
    assert warning.startswith("4 web processes with CHAMBER_RATELIMIT_STORAGE_URL=memory://")
    assert "redis://" in warning
    assert shared_memory_warning("memory://", None).startswith("Several web processes")


def test_gunicorn_conf_warns_at_start_with_several_workers_on_memory(monkeypatch):
    path = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_conf", path)
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)

    def start(workers: int) -> list[str]:
        said: list[str] = []
        log = SimpleNamespace(warning=lambda message, *args: said.append(message % args))
        conf.on_starting(SimpleNamespace(cfg=SimpleNamespace(workers=workers), log=log))
        return said

    monkeypatch.delenv("CHAMBER_RATELIMIT_STORAGE_URL", raising=False)
    assert start(1) == []
    assert start(4) == [shared_memory_warning("memory://", 4)]
    monkeypatch.setenv("CHAMBER_RATELIMIT_STORAGE_URL", "redis://127.0.0.1:6379/0")
    assert start(4) == []


def test_the_first_request_in_a_multiprocess_server_warns_once(make_app, caplog):
    caplog.set_level(logging.WARNING, logger="chamber")
    several = make_app().test_client()
    for _ in range(3):
        several.get("/", environ_overrides={"wsgi.multiprocess": True})
    warnings = [
        r.getMessage() for r in caplog.records if "CHAMBER_RATELIMIT_STORAGE_URL" in r.getMessage()
    ]
    assert warnings == [shared_memory_warning("memory://", None)]


def test_one_process_or_a_shared_store_is_not_warned_about(make_app, caplog):
    caplog.set_level(logging.WARNING, logger="chamber")
    make_app().test_client().get("/")
    make_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0").test_client().get(
        "/", environ_overrides={"wsgi.multiprocess": True}
    )
    assert not [r for r in caplog.records if "CHAMBER_RATELIMIT_STORAGE_URL" in r.getMessage()]


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        (
            {"RATELIMIT_STORAGE_URI": "memcached://127.0.0.1"},
            "CHAMBER_RATELIMIT_STORAGE_URL must be",
        ),
        ({"RATELIMIT_STORAGE_URI": "127.0.0.1:6379"}, "CHAMBER_RATELIMIT_STORAGE_URL must be"),
        ({"LOGIN_LIMIT_PER_ACCOUNT": "five an hour"}, "CHAMBER_LOGIN_LIMIT_PER_ACCOUNT must be"),
        ({"BOOKING_LIMIT_PER_ADDRESS": "20"}, "CHAMBER_BOOKING_LIMIT_PER_ADDRESS must be"),
    ],
)
def test_a_store_or_limit_chamber_cannot_use_stops_the_start(tmp_path, settings, refusal):
    with pytest.raises(ConfigError, match=refusal):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), **settings})


def test_when_the_store_stops_answering_requests_pass_and_are_logged(make_app, admin, caplog):
    # Port 1 on loopback refuses at once: a Redis that is down.
    dead = make_app(
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", LOGIN_LIMIT_PER_ACCOUNT="1 per hour"
    )
    client = dead.test_client()
    for _ in range(3):
        assert attempt(client, admin.email, WRONG).status_code == 401
    assert attempt(client, admin.email, PASSWORD).status_code == 302
    assert any("Failed to rate limit" in r.getMessage() for r in caplog.records)


def test_only_views_own_limits_are_set_so_the_check_before_every_request_is_skipped(app, client):
    """Chamber sets no default, application or blueprint limit (the API's is counted in front
    of Flask), so Flask-Limiter's check before each request has nothing to do and is skipped;
    set one, and it runs again."""
    assert limiter.limits_every_request() is False
    limiter.reset()
    manager = limiter.limit_manager
    try:
        manager.set_default_limits(
            [Limit("1 per minute", key_function=client_address).bind(limiter)]
        )
        assert limiter.limits_every_request() is True
        assert client.get("/staff/").status_code == 302  # to the login page
        assert client.get("/staff/").status_code == 429
    finally:
        manager.set_default_limits([])
        limiter.reset()
    assert client.get("/staff/").status_code == 302
