"""The link checker's engine against real HTTP servers on loopback: every answer a website can
give, time-outs, loops, HEAD refused, huge bodies, the per-host cap and the private-address guard."""

from __future__ import annotations

import ipaddress
import time

import pytest

from chamber.resources.addresses import is_public_address
from chamber.resources.checker import LinkResult, check_urls, iter_results
from tests.link_server import HUGE_BODY_BYTES, LinkServer, SilentServer

FAST = {"allow_private": True, "timeout": 2.0}


@pytest.fixture
def server():
    server = LinkServer().start()
    yield server
    server.stop()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.stop()


def check(url: str, **options) -> LinkResult:
    [result] = check_urls([url], **{**FAST, **options})
    return result


def test_a_page_that_answers_200_is_ok(server):
    result = check(server.url("/ok"))
    assert (result.state, result.status_code, result.final_url) == ("ok", 200, server.url("/ok"))
    assert result.hops == () and result.error is None
    assert result.elapsed_ms >= 0
    assert server.requests == [("HEAD", "/ok", "ChamberLinkChecker/1.0")]


def test_a_chain_of_two_permanent_redirects_is_recorded_hop_by_hop(server):
    result = check(server.url("/chain"))
    assert result.state == "redirected"
    assert result.status_code == 200
    assert result.final_url == server.url("/ok")
    assert result.redirects_text.splitlines() == [
        f"301 {server.url('/chain-2')}",
        f"308 {server.url('/ok')}",
    ]
    assert result.permanent_redirect is True
    assert [path for _, path, _ in server.requests] == ["/chain", "/chain-2", "/ok"]


def test_a_temporary_redirect_is_not_permanent(server):
    result = check(server.url("/moved-for-now"))
    assert result.state == "redirected"
    assert result.permanent_redirect is False


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/error", 500)])
def test_an_error_answer_is_broken_after_asking_with_get_too(server, path, status):
    result = check(server.url(path))
    assert (result.state, result.status_code) == ("broken", status)
    assert [method for method, _, _ in server.requests] == ["HEAD", "GET"]


def test_a_redirect_to_a_missing_page_is_broken_with_the_hop_recorded(server):
    result = check(server.url("/gone-after-redirect"))
    assert (result.state, result.status_code) == ("broken", 404)
    assert result.final_url == server.url("/missing")
    assert len(result.hops) == 1


def test_a_server_that_never_answers_is_unreachable_within_the_time_limit(silent):
    started = time.monotonic()
    result = check(silent.base + "/page", timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.state == "unreachable"
    assert result.error == "no answer within 0.5 s"
    assert result.status_code is None
    assert elapsed < 2.5  # one limit for HEAD; a time-out is not retried with GET


def test_a_redirect_loop_is_unreachable(server):
    result = check(server.url("/loop-a"))
    assert result.state == "unreachable"
    assert result.error == "redirect loop"
    assert [hop.location for hop in result.hops] == [server.url("/loop-b"), server.url("/loop-a")]


def test_too_many_redirects_are_unreachable(server):
    # /redirect-to/<target> sends on to <target> ("|" stands for "/"): eleven hops to /ok.
    url = "/ok"
    for _ in range(11):
        url = "/redirect-to/" + url.replace("/", "|")
    result = check(server.url(url))
    assert result.state == "unreachable"
    assert result.error == "too many redirects"


def test_a_server_that_refuses_head_is_asked_with_get(server):
    result = check(server.url("/no-head"))
    assert (result.state, result.status_code) == ("ok", 200)
    assert [method for method, _, _ in server.requests] == ["HEAD", "GET"]


def test_heads_error_answer_stands_when_get_gets_no_answer(server):
    result = check(server.url("/head-404-get-hangs"), timeout=0.5)
    assert (result.state, result.status_code) == ("broken", 404)


def test_a_huge_body_is_not_read(server):
    started = time.monotonic()
    result = check(server.url("/huge"))
    assert (result.state, result.status_code) == ("ok", 200)
    assert time.monotonic() - started < 3
    deadline = time.monotonic() + 5
    while server.huge_bytes_sent is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the server notices the hang-up on its own thread
    assert server.huge_bytes_sent is not None
    assert server.huge_bytes_sent < HUGE_BODY_BYTES // 10


def test_a_refused_connection_is_unreachable(silent):
    port = silent.base.rsplit(":", 1)[1]
    silent.stop()  # nothing listens there now
    result = check(f"http://127.0.0.1:{port}/")
    assert result.state == "unreachable"
    assert result.error.startswith("could not connect")


def test_only_web_addresses_are_checked():
    results = check_urls(
        [
            "ftp://example.com/file",
            "javascript:alert(1)",
            "http://user:pw@example.com/",
            "http:///x",
            "http://[::1/",
            "http://example.com:99999/",
        ]
    )
    assert [r.state for r in results] == ["unreachable"] * 6
    assert results[4].error == results[5].error == "not a web address"
    assert results[0].error == "only http and https addresses are checked"
    assert results[2].error.startswith("refused: the address carries a user name")


def test_the_user_agent_names_the_checker_and_the_site(server):
    check(server.url("/ok"), user_agent="ChamberLinkChecker/1.0 (+https://chamber.example)")
    assert server.requests[0][2] == "ChamberLinkChecker/1.0 (+https://chamber.example)"


# --- many at once ---------------------------------------------------------------------------------


def test_the_per_host_cap_is_honoured(server):
    server.slow_seconds = 0.2
    urls = [server.url(f"/slow/{n}") for n in range(12)]
    results = check_urls(urls, concurrency=10, per_host=3, **FAST)
    assert [r.state for r in results] == ["ok"] * 12
    assert server.most_active == 3


def test_different_hosts_are_checked_at_once_up_to_the_overall_cap():
    # 127.0.0.1 and 127.0.0.2 are both loopback but different hosts for the cap.
    servers = [LinkServer(host).start() for host in ("127.0.0.1", "127.0.0.2")]
    try:
        for s in servers:
            s.slow_seconds = 0.3
        urls = [s.url(f"/slow/{n}") for n in range(4) for s in servers]
        started = time.monotonic()
        results = check_urls(urls, concurrency=4, per_host=2, **FAST)
        elapsed = time.monotonic() - started
        assert [r.state for r in results] == ["ok"] * 8
        assert [s.most_active for s in servers] == [2, 2]
        assert elapsed < 8 * 0.3 * 0.75  # well under the serial time
    finally:
        for s in servers:
            s.stop()


def test_results_come_back_in_the_order_given_and_each_url_once(server):
    urls = [server.url("/missing"), server.url("/ok"), server.url("/missing")]
    seen = []
    results = check_urls(urls, on_result=seen.append, **FAST)
    assert [r.url for r in results] == [server.url("/missing"), server.url("/ok")]
    assert len(seen) == 2


def test_results_can_be_read_as_they_come_and_stopping_starts_no_more(server):
    urls = [server.url(f"/slow/{n}") for n in range(10)]
    got = []
    for result in iter_results(urls, concurrency=1, per_host=1, **FAST):
        got.append(result)
        if len(got) == 2:
            break
    assert len(got) == 2
    assert len(server.requests) <= 3  # at most the one in flight when we stopped


# --- private addresses ----------------------------------------------------------------------------


def test_loopback_and_private_addresses_are_refused_without_connecting(server):
    results = check_urls(
        [
            server.url("/ok"),
            "http://10.0.0.1/",
            "http://[::1]:80/",
            f"http://localhost:{server.server_address[1]}/ok",
        ],
        timeout=0.5,
    )
    assert [r.state for r in results] == ["unreachable"] * 4
    assert all(r.error.startswith("refused address") for r in results)
    assert "127.0.0.1 is loopback" in results[0].error
    assert "10.0.0.1 is private" in results[1].error
    assert all(r.elapsed_ms < 400 for r in results)
    assert server.requests == []


def test_a_redirect_to_a_refused_address_is_refused_at_that_hop(server):
    # Only 127.0.0.1 is allowed here, so the hop to 127.0.0.2 meets the guard.
    allowed = ipaddress.ip_address("127.0.0.1")
    target = "http:||127.0.0.2:9|secret"
    result = check(
        server.url(f"/redirect-to/{target}"),
        allow_private=False,
        address_allowed=lambda address: address == allowed,
    )
    assert result.state == "unreachable"
    assert result.error.startswith("refused address: 127.0.0.2")
    assert [hop.location for hop in result.hops] == ["http://127.0.0.2:9/secret"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104 - an address judged, not bound
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:10.0.0.1", False),
        ("2002:0a00:0001::1", False),  # 6to4 around 10.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 around 10.0.0.1
    ],
)
def test_which_addresses_are_public(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public
