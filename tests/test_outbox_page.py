"""The admin Outbox page: counts, filters and search, failures with their errors, retry and cancel,
a message's bodies with secret links named (never minted), a sandboxed HTML preview, and who may
see any of it."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest

from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail.delivery import deliver_due
from chamber.mail.models import MailKind, MessageStatus, OutboxMessage
from chamber.mail.services import Attachment, enqueue
from tests.factories import PASSWORD
from tests.support import count_queries, csrf_token, post_form

OUTBOX = "/staff/outbox/"
ROW = re.compile(r"<tr>\s*<td>([^<]*)</td>")
COUNT = re.compile(r'<li class="count-(\w+)"><a [^>]*><strong>(\d+)</strong>')
ALL_COUNT = re.compile(r"<strong>(\d+)</strong> all</a>")
NO_ACTIONS = ("Send again", "Cancel message")
HOSTILE_HTML = (
    '<p id="note">Script did not run</p>'
    '<script>document.getElementById("note").textContent = "SCRIPT RAN";'
    ' console.log("SCRIPT RAN")</script>'
    '<img src="data:," onerror="document.title = \'SCRIPT RAN\'">'
    "<p>[[link:unsubscribe]]</p>"
)


# --- helpers -------------------------------------------------------------------------------------

_numbers = iter(range(1, 1_000_000))


def make_message(to: str = "zoe@example.com", *, status: MessageStatus = MessageStatus.pending,
                 kind: MailKind = MailKind.transactional, subject: str = "Your place",
                 **fields) -> OutboxMessage:  # fmt: skip
    """Queue a message the way the app does, then put it in the state a test needs."""
    key = f"page:{next(_numbers)}"
    enqueue(key=key, to=to, subject=subject, template="test_message", kind=kind,
            attachments=fields.pop("attachments", ()))  # fmt: skip
    message = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.key == key)).one()
    message.status = status
    if status == MessageStatus.sending:
        fields = {
            "claimed_by": "host:1:abc",
            "lease_until": utcnow() + timedelta(minutes=5),
            **fields,
        }
    if status == MessageStatus.sent:
        fields = {"attempts": 1, "sent_at": utcnow(), **fields}
    for name, value in fields.items():
        setattr(message, name, value)
    db.session.commit()
    return message


def recipients(response) -> list[str]:
    """The recipients listed on an outbox page, top to bottom."""
    assert response.status_code == 200, response.status_code
    return [html.unescape(address) for address in ROW.findall(response.text)]


def counts(response) -> dict[str, int]:
    found = {status: int(n) for status, n in COUNT.findall(response.text)}
    (total,) = ALL_COUNT.findall(response.text)
    return {"all": int(total), **found}


def snapshot(message_id: int) -> dict:
    db.session.expire_all()
    message = db.session.get(OutboxMessage, message_id)
    names = (
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "claimed_by",
        "lease_until",
        "sent_at",
    )
    return {name: getattr(message, name) for name in names}


def act(client, message_id: int, action: str):
    """Press a button on the message's page, as a browser would (with the page's CSRF token)."""
    return post_form(client, f"{OUTBOX}{message_id}/{action}", {},
                     token_from=f"{OUTBOX}{message_id}", follow_redirects=True)  # fmt: skip


def csp(response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


# --- the list ------------------------------------------------------------------------------------


def test_counts_by_status_are_at_the_top_and_each_filters_the_list(admin_client):
    layout = {
        MessageStatus.pending: 3,
        MessageStatus.sending: 1,
        MessageStatus.sent: 2,
        MessageStatus.failed: 1,
        MessageStatus.suppressed: 1,
        MessageStatus.cancelled: 1,
    }
    for status, number in layout.items():
        for n in range(number):
            make_message(
                f"{status.value}{n}@example.com",
                status=status,
                kind=MailKind.marketing
                if status == MessageStatus.suppressed
                else MailKind.transactional,
            )

    page = admin_client.get(OUTBOX)
    expected = {"all": 9, **{status.value: number for status, number in layout.items()}}
    assert counts(page) == expected
    assert page.text.index('class="counts"') < page.text.index("<table")  # counts come first
    assert len(recipients(page)) == 9

    for status, number in layout.items():
        filtered = admin_client.get(OUTBOX, query_string={"status": status.value})
        assert sorted(recipients(filtered)) == [
            f"{status.value}{n}@example.com" for n in range(number)
        ]
        assert counts(filtered) == expected  # the counts are always of the whole outbox
        assert re.search(rf'href="[^"]*status={status.value}"\s*aria-current="page"', filtered.text)


def test_an_unknown_status_filter_shows_everything(admin_client):
    make_message("a@example.com")
    make_message("b@example.com", status=MessageStatus.sent)
    for bogus in ["nonsense", "<script>", "SENT", "'; DROP TABLE outbox_message; --", ""]:
        response = admin_client.get(OUTBOX, query_string={"status": bogus})
        assert sorted(recipients(response)) == ["a@example.com", "b@example.com"], bogus
        assert "<script>" not in response.text


def test_search_by_recipient_is_a_case_insensitive_substring(admin_client):
    for address in ["Zoe.Smith@Example.COM", "zoe@example.org", "bob@example.com"]:
        make_message(address)
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "zoe"})) == [
        "zoe@example.org",
        "Zoe.Smith@Example.COM",
    ]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "SMITH@EXAMPLE.c"})) == [
        "Zoe.Smith@Example.COM"
    ]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "  bob@  "})) == [
        "bob@example.com"
    ]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "nobody"})) == []


def test_search_and_status_filter_combine_and_the_form_keeps_both(admin_client):
    make_message("zoe@example.com", status=MessageStatus.failed, last_error="550 No such user")
    make_message("zoe@example.org", status=MessageStatus.sent)
    make_message("bob@example.com", status=MessageStatus.failed, last_error="550 No such user")
    response = admin_client.get(OUTBOX, query_string={"status": "failed", "q": "ZOE"})
    assert recipients(response) == ["zoe@example.com"]
    assert '<input type="hidden" name="status" value="failed">' in response.text
    assert 'value="ZOE"' in response.text


# Search text -> what it finds among LITERAL_ADDRESSES (one login for all: logging in is slow).
LITERAL_SEARCHES = {
    "%": ["a%b@example.com"],
    "_": ["a_b@example.com"],
    "a%b": ["a%b@example.com"],
    "a_b": ["a_b@example.com"],
    "\\": ["a\\b@example.com"],
    "a\\b": ["a\\b@example.com"],
    "\\%": [],
    "%%": [],
    "[ab]": [],
    "*": [],
}
LITERAL_ADDRESSES = ["a%b@example.com", "a_b@example.com", "a\\b@example.com", "axb@example.com",
                     "ab@example.com"]  # fmt: skip
HOSTILE_SEARCHES = [
    "' OR '1'='1",
    "%' OR 1=1 --",
    "'; DROP TABLE outbox_message; --",
    '" OR ""="',
    "<script>alert(1)</script>",
    "李 Zoë 🙂",
    "\u202e\u200b",
    "\x01\x1b[31m",
    "zoe@example.com\r\nBcc: x@example.com",
]


def test_percent_underscore_and_backslash_in_a_search_are_literal_not_wildcards(admin_client):
    for address in LITERAL_ADDRESSES:
        make_message(address)
    for search, found in LITERAL_SEARCHES.items():
        response = admin_client.get(OUTBOX, query_string={"q": search})
        assert recipients(response) == found, search


def test_hostile_or_unusual_search_text_is_harmless(admin_client):
    make_message("zoe@example.com")
    for search in HOSTILE_SEARCHES:
        response = admin_client.get(OUTBOX, query_string={"q": search})
        assert response.status_code == 200, search
        assert recipients(response) == [], search
        assert "<script>alert(1)</script>" not in response.text
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id))) == 1


def test_a_search_that_is_not_valid_utf8_is_harmless(admin_client):
    make_message("zoe@example.com")
    for raw in ["%ED%A0%80", "%FF%FE", "%C0%AF", "zoe%80"]:
        response = admin_client.get(f"{OUTBOX}?q={raw}")
        assert response.status_code == 200, raw
        assert recipients(response) == [], raw


def test_a_nul_character_in_a_search_is_ignored(admin_client):
    make_message("zoe@example.com")
    make_message("bob@example.com")
    assert recipients(admin_client.get(f"{OUTBOX}?q=zoe%00@example.com")) == ["zoe@example.com"]
    assert recipients(admin_client.get(f"{OUTBOX}?q=%00")) == ["bob@example.com", "zoe@example.com"]


def test_unicode_addresses_can_be_found(admin_client):
    make_message("zoë@exämple.com")
    make_message("li@例子.中国")
    make_message("zoe@example.com")
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "zoë"})) == ["zoë@exämple.com"]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "例子"})) == ["li@例子.中国"]


def test_an_overlong_search_is_cut_not_an_error(admin_client):
    make_message("zoe@example.com")
    response = admin_client.get(OUTBOX, query_string={"q": "zoe" + "x" * 5000})
    assert response.status_code == 200
    assert recipients(response) == []
    (value,) = re.findall(r'id="q" name="q" type="search" value="([^"]*)"', response.text)
    assert value == ("zoe" + "x" * 5000)[:254]
    long_query = admin_client.get(OUTBOX + "?q=" + "%25" * 3000)
    assert long_query.status_code == 200


def test_the_list_is_newest_first_and_paginated_at_fifty(admin_client):
    for n in range(120):
        enqueue(
            key=f"bulk:{n}",
            to=f"person{n:03}@example.com",
            subject="Hello",
            template="test_message",
        )
    db.session.commit()
    everyone = [f"person{n:03}@example.com" for n in reversed(range(120))]

    first = admin_client.get(OUTBOX)
    assert recipients(first) == everyone[:50]
    assert "Page 1 of 3" in first.text
    assert (
        'rel="next" href="/staff/outbox/?page=2"' in first.text and 'rel="prev"' not in first.text
    )
    second = admin_client.get(OUTBOX, query_string={"page": 2})
    assert recipients(second) == everyone[50:100]
    assert 'rel="prev"' in second.text and 'rel="next"' in second.text
    third = admin_client.get(OUTBOX, query_string={"page": 3})
    assert recipients(third) == everyone[100:]
    assert "Page 3 of 3" in third.text and 'rel="next"' not in third.text

    assert len(recipients(admin_client.get(OUTBOX, query_string={"per_page": 500}))) == 50
    assert recipients(admin_client.get(OUTBOX, query_string={"page": 99})) == []
    for odd in ["abc", "-1", "0", "1e9", "%00", "99999999999999999999999"]:
        response = admin_client.get(OUTBOX + "?page=" + odd)
        assert response.status_code == 200, odd


def test_pagination_links_keep_the_filter_and_the_search(admin_client):
    for n in range(60):
        enqueue(key=f"bulk:{n}", to=f"zoe{n}@example.com", subject="Hello", template="test_message")
    enqueue(key="other", to="bob@example.com", subject="Hello", template="test_message")
    db.session.commit()
    first = admin_client.get(OUTBOX, query_string={"status": "pending", "q": "zoe"})
    assert len(recipients(first)) == 50
    (next_link,) = re.findall(r'rel="next" href="([^"]+)"', first.text)
    following = admin_client.get(html.unescape(next_link))
    assert sorted(recipients(following)) == sorted(f"zoe{n}@example.com" for n in range(10))


def test_the_lists_query_count_does_not_grow_with_the_number_of_messages(admin_client):
    def measure() -> int:
        with count_queries() as statements:
            response = admin_client.get(OUTBOX)
        assert response.status_code == 200
        return len(statements)

    ics = Attachment(
        "invite.ics", "text/calendar; charset=utf-8; method=REQUEST", b"BEGIN:VCALENDAR\r\n"
    )
    make_message("first@example.com", attachments=[ics])
    admin_client.get(OUTBOX)  # warm up: the session and anything cached on a first request
    one = measure()
    assert len(recipients(admin_client.get(OUTBOX))) == 1
    for n in range(39):
        status = [MessageStatus.pending, MessageStatus.failed, MessageStatus.sent][n % 3]
        make_message(
            f"person{n}@example.com",
            status=status,
            attachments=[ics],
            last_error="550 No such user" if status == MessageStatus.failed else None,
        )
    forty = measure()
    assert len(recipients(admin_client.get(OUTBOX))) == 40
    assert forty == one


# --- failures, retry and cancel ------------------------------------------------------------------


def test_a_failed_message_shows_its_last_error_on_the_list_and_on_its_page(
    admin_client, smtp_server
):
    smtp_server.handler.refuse["nobody@example.com"] = (
        "550 5.1.1 <nobody@example.com>: no such user"
    )
    message = make_message("nobody@example.com")
    assert deliver_due().failed == 1
    error = "550 5.1.1 <nobody@example.com>: no such user"
    assert snapshot(message.id)["last_error"] == error

    listing = admin_client.get(OUTBOX, query_string={"status": "failed"})
    assert recipients(listing) == ["nobody@example.com"]
    assert html.escape(error, quote=False) in listing.text
    assert "<nobody@example.com>" not in listing.text  # escaped, not markup

    page = admin_client.get(f"{OUTBOX}{message.id}")
    assert page.status_code == 200
    assert "Last error" in page.text and html.escape(error, quote=False) in page.text
    assert "Send again" in page.text and "Cancel message" in page.text  # retry, or give up


def test_retrying_a_failed_message_puts_it_back_to_pending_and_the_worker_sends_it(
    admin_client, smtp_server
):
    smtp_server.handler.refuse["zoe@example.com"] = "550 5.7.1 Mailbox full"
    message = make_message("zoe@example.com")
    deliver_due()
    assert snapshot(message.id)["status"] == MessageStatus.failed

    response = post_form(
        admin_client, f"{OUTBOX}{message.id}/retry", {}, token_from=f"{OUTBOX}{message.id}"
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{OUTBOX}{message.id}"
    page = admin_client.get(response.headers["Location"])
    assert "The message will be sent again." in page.text
    after = snapshot(message.id)
    assert after["status"] == MessageStatus.pending and after["attempts"] == 0
    assert after["next_attempt_at"] <= utcnow() and after["claimed_by"] is None

    smtp_server.handler.refuse.clear()
    assert deliver_due().sent == 1
    (email,) = smtp_server.messages
    # The same message, with the same Message-ID, so receivers can de-duplicate.
    assert email["Message-ID"] == message.message_id
    sent = snapshot(message.id)
    assert (
        sent["status"] == MessageStatus.sent
        and sent["attempts"] == 1
        and sent["last_error"] is None
    )


def test_a_cancelled_message_can_be_sent_again(admin_client):
    message = make_message(status=MessageStatus.cancelled)
    assert "The message will be sent again." in act(admin_client, message.id, "retry").text
    assert snapshot(message.id)["status"] == MessageStatus.pending


def test_cancelling_a_pending_message_means_it_is_never_sent(admin_client, smtp_server):
    message = make_message("zoe@example.com")
    keep = make_message("bob@example.com")
    page = admin_client.get(f"{OUTBOX}{message.id}")
    assert "Cancel message" in page.text and "Send again" not in page.text

    response = act(admin_client, message.id, "cancel")
    assert "Cancelled the message." in response.text
    assert snapshot(message.id)["status"] == MessageStatus.cancelled
    assert deliver_due().sent == 1
    assert [email["To"] for email in smtp_server.messages] == ["bob@example.com"]
    assert snapshot(keep.id)["status"] == MessageStatus.sent
    assert snapshot(message.id)["status"] == MessageStatus.cancelled


REFUSED_RETRY = "Only a failed or cancelled message can be sent again."
REFUSED_CANCEL = "Only a message still waiting to be sent, or one that failed, can be cancelled."


@pytest.mark.parametrize(("status", "action", "reason"), [
    (MessageStatus.sent, "retry", REFUSED_RETRY),
    (MessageStatus.sent, "cancel", REFUSED_CANCEL),
    (MessageStatus.sending, "retry", REFUSED_RETRY),  # a worker holds it: a reset sends it twice
    (MessageStatus.sending, "cancel", REFUSED_CANCEL),
    (MessageStatus.pending, "retry", REFUSED_RETRY),
    (MessageStatus.suppressed, "retry", REFUSED_RETRY),
    (MessageStatus.cancelled, "cancel", REFUSED_CANCEL),
])  # fmt: skip
def test_an_action_that_does_not_fit_the_messages_state_is_refused_and_changes_nothing(
    admin_client, status, action, reason
):
    kind = MailKind.marketing if status == MessageStatus.suppressed else MailKind.transactional
    message = make_message(status=status, kind=kind)
    before = snapshot(message.id)
    response = act(admin_client, message.id, action)
    assert response.status_code == 200
    assert f'<div class="notice notice-error" role="alert">{reason}</div>' in response.text
    assert snapshot(message.id) == before


def test_a_sent_message_offers_neither_retry_nor_cancel(admin_client):
    message = make_message(status=MessageStatus.sent)
    page = admin_client.get(f"{OUTBOX}{message.id}")
    assert page.status_code == 200
    assert not any(label in page.text for label in NO_ACTIONS)


@pytest.mark.parametrize(("status", "action"), [(MessageStatus.failed, "retry"),
                                               (MessageStatus.pending, "cancel")])  # fmt: skip
def test_a_retry_or_cancel_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    admin_client, status, action
):
    failed = status == MessageStatus.failed
    message = make_message(status=status, last_error="550 No such user" if failed else None)
    before = snapshot(message.id)
    someone_elses = csrf_token(admin_client.application.test_client())
    for data in [{}, {"csrf_token": ""}, {"csrf_token": "forged"}, {"csrf_token": "x" * 200},
                 {"csrf_token": someone_elses}]:  # fmt: skip
        response = admin_client.post(f"{OUTBOX}{message.id}/{action}", data=data)
        assert response.status_code == 400, data
        assert "The form could not be sent" in response.text
    assert snapshot(message.id) == before


def test_a_retry_or_cancel_by_get_is_not_allowed(admin_client):
    message = make_message(status=MessageStatus.failed, last_error="550")
    for action in ("retry", "cancel"):
        assert admin_client.get(f"{OUTBOX}{message.id}/{action}").status_code == 405
    assert snapshot(message.id)["status"] == MessageStatus.failed


# --- a message's page and its HTML ---------------------------------------------------------------


def test_a_messages_page_names_secret_links_and_never_shows_a_minted_token(
    admin_client, smtp_server
):
    message = make_message(
        "zoe@example.com", kind=MailKind.marketing, subject="News from the Chamber"
    )
    assert f"[[link:{message.link_nonce}:unsubscribe:]]" in message.text_body  # a marker, no secret

    def pages() -> tuple[str, str]:
        page = admin_client.get(f"{OUTBOX}{message.id}")
        preview = admin_client.get(f"{OUTBOX}{message.id}/html")
        assert page.status_code == preview.status_code == 200
        return page.text, preview.text

    page, preview = pages()
    text = re.search(r'<pre class="email-text">(.*?)</pre>', page, re.S).group(1)
    assert "This is a test message from Chamber" in text
    assert "[unsubscribe link]" in text and "[unsubscribe link]" in preview
    assert "[[link:" not in page + preview and "/unsubscribe/" not in page + preview

    deliver_due()  # sending mints the real link
    url = smtp_server.messages[0]["List-Unsubscribe"][1:-1]
    token = url.rsplit("/", 1)[1]
    page, preview = pages()
    assert "sent" in page
    assert token not in page + preview and "/unsubscribe/" not in page + preview
    assert "[unsubscribe link]" in page and "[unsubscribe link]" in preview


def test_the_html_preview_is_the_stored_body_in_a_sandbox_where_no_script_may_run(admin_client):
    message = make_message(html_body=HOSTILE_HTML)
    preview = admin_client.get(f"{OUTBOX}{message.id}/html")
    assert preview.status_code == 200
    assert preview.mimetype == "text/html"
    assert preview.text == HOSTILE_HTML  # a marker without the message's nonce is only text
    policy = csp(preview)
    assert policy["sandbox"] == []  # no allow-scripts, allow-same-origin, allow-forms ...
    assert policy["frame-ancestors"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert "script-src" not in policy and "script-src-elem" not in policy
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"

    page = admin_client.get(f"{OUTBOX}{message.id}")
    (frame,) = re.findall(r"<iframe[^>]*>", page.text)
    # An empty sandbox: no scripts in the frame either.
    assert re.search(r"\ssandbox[\s>]", frame), frame
    assert f'src="{OUTBOX}{message.id}/html"' in frame
    assert "SCRIPT RAN" not in page.text  # the page itself never inlines the stored HTML
    assert csp(page)["frame-ancestors"] == ["'none'"]  # the page's own policy is the site's


@pytest.mark.parametrize("path", ["{id}", "{id}/html"])
def test_an_unknown_message_is_a_plain_404(admin_client, path):
    message = make_message()
    missing = message.id + 1000
    response = admin_client.get(OUTBOX + path.format(id=missing))
    assert response.status_code == 404
    assert "Page not found" in response.text


def test_retrying_or_cancelling_an_unknown_message_is_a_plain_404(admin_client):
    token = csrf_token(admin_client, OUTBOX)
    for action in ("retry", "cancel"):
        response = admin_client.post(f"{OUTBOX}999999/{action}", data={"csrf_token": token})
        assert response.status_code == 404
    for path in [
        f"{OUTBOX}abc",
        f"{OUTBOX}-1",
        f"{OUTBOX}1/delete",
        f"{OUTBOX}99999999999999999999999",
    ]:
        assert admin_client.get(path).status_code == 404, path


# --- who may see it ------------------------------------------------------------------------------


def staff_paths(message_id: int) -> list[str]:
    return [
        OUTBOX,
        f"{OUTBOX}?status=failed&q=zoe",
        f"{OUTBOX}{message_id}",
        f"{OUTBOX}{message_id}/html",
    ]


@pytest.mark.parametrize("who", ["organiser_client", "checkin_client"])
def test_organisers_and_door_volunteers_may_not_see_or_change_the_outbox(request, who):
    client = request.getfixturevalue(who)
    message = make_message(
        "zoe@example.com", status=MessageStatus.failed, last_error="550 No such user"
    )
    other = make_message("bob@example.com")
    for path in staff_paths(message.id):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "zoe@example.com" not in response.text
    token = csrf_token(client, "/staff/")
    before = snapshot(message.id), snapshot(other.id)
    for message_id, action in [(message.id, "retry"), (other.id, "cancel")]:
        assert (
            client.post(f"{OUTBOX}{message_id}/{action}", data={"csrf_token": token}).status_code
            == 403
        )
    assert (snapshot(message.id), snapshot(other.id)) == before


def test_anonymous_visitors_are_sent_to_log_in(client):
    message = make_message(
        "zoe@example.com", status=MessageStatus.failed, last_error="550 No such user"
    )
    for path in staff_paths(message.id):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/staff/login"), path
    token = csrf_token(client, "/staff/login")
    before = snapshot(message.id)
    response = client.post(f"{OUTBOX}{message.id}/retry", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")
    assert snapshot(message.id) == before


# --- in a real browser ---------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        yield browser
        browser.close()


@pytest.mark.browser
def test_no_script_in_a_stored_html_body_runs_in_the_preview(chromium, live_server, admin):
    message = make_message(html_body=HOSTILE_HTML)
    context = chromium.new_context(base_url=live_server)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda entry: console.append(entry.text))
        page.goto("/staff/login")
        page.get_by_label("Email address", exact=True).fill(admin.email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/staff/")

        page.goto(f"{OUTBOX}{message.id}")
        frame = page.frame_locator("iframe.email-html")
        frame.locator("#note").wait_for()
        assert frame.locator("#note").text_content() == "Script did not run"
        assert "[[link:unsubscribe]]" in frame.locator("body").text_content()  # only text

        page.goto(f"{OUTBOX}{message.id}/html")  # opened on its own, outside the frame
        assert page.locator("#note").text_content() == "Script did not run"
        assert page.title() != "SCRIPT RAN"
        assert not any("SCRIPT RAN" in line for line in console), console
    finally:
        context.close()


@pytest.mark.parametrize("status", [MessageStatus.failed, MessageStatus.pending])
def test_a_failed_or_waiting_message_can_be_cancelled(admin_client, status):
    message = make_message(status=status)
    response = act(admin_client, message.id, "cancel")
    assert "Cancelled the message." in response.text
    assert snapshot(message.id)["status"] == MessageStatus.cancelled


def test_a_message_stuck_with_a_dead_worker_can_be_cancelled_and_is_never_sent(
    admin_client, smtp_server
):
    message = make_message(
        status=MessageStatus.sending, lease_until=utcnow() - timedelta(minutes=1)
    )
    page = admin_client.get(f"{OUTBOX}{message.id}")
    assert "Cancel message" in page.text
    response = act(admin_client, message.id, "cancel")
    assert "Cancelled the message." in response.text
    after = snapshot(message.id)
    assert after["status"] == MessageStatus.cancelled and after["claimed_by"] is None
    assert deliver_due().sent == 0 and smtp_server.messages == []
