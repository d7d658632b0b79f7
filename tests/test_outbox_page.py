"""The admin Outbox page: counts, filters and search, failures with their errors, retry and cancel,
a message's bodies with secret links named (never minted), a sandboxed HTML preview, and who may
see any of it."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from chamber.auth.audit import AuditEntry
from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail import queries, services
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


def test_search_finds_an_address_or_how_it_starts_in_any_case_and_says_so(admin_client):
    for address in ["Zoe.Smith@Example.COM", "zoe@example.org", "bob@example.com"]:
        make_message(address)
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "zoe"})) == [
        "zoe@example.org",
        "Zoe.Smith@Example.COM",
    ]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "ZOE.SMITH@EXAMPLE.COM"})) == [
        "Zoe.Smith@Example.COM"
    ]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "zoe.smith@example.c"})) == [
        "Zoe.Smith@Example.COM"
    ]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "  bob@  "})) == [
        "bob@example.com"
    ]
    # How an address starts, not a part of it: no message is read to find it.
    for elsewhere in ["smith", "example.com", "@example.org", "oe", "nobody"]:
        response = admin_client.get(OUTBOX, query_string={"q": elsewhere})
        assert recipients(response) == [], elsewhere
        assert f"No messages to addresses starting with “{elsewhere}”." in response.text
    page = admin_client.get(OUTBOX).text
    assert 'aria-describedby="q-hint"' in page
    assert "The address, or how it starts" in page


def test_the_search_reads_a_range_of_the_address_index_not_every_message(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans by the table's size: benchmarks/scale.py measures it there")
    for n in range(30):
        make_message(f"person{n}@example.com")
    db.session.execute(sa.text("ANALYZE"))
    page = queries.outbox(None, "Person1").order_by(OutboxMessage.id.desc()).limit(51)
    sql = page.compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = " / ".join(row[-1] for row in db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}")))
    assert "USING INDEX ix_outbox_message_to_normalised_id (to_normalised>? AND" in plan, plan
    assert "SCAN outbox_message" not in plan, plan


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
    "%": [],
    "_": [],
    "a%": ["a%b@example.com"],
    "a_": ["a_b@example.com"],
    "a%b": ["a%b@example.com"],
    "a_b": ["a_b@example.com"],
    "\\": [],
    "a\\": ["a\\b@example.com"],
    "a\\b": ["a\\b@example.com"],
    "\\%": [],
    "a%%": [],
    "a[ab]": [],
    "a*": [],
    "ab": ["ab@example.com"],
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
    make_message("Zoë@Exämple.com")
    make_message("li@例子.中国")
    make_message("zoe@example.com")
    make_message("🙂@example.com")
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "zoë"})) == ["Zoë@Exämple.com"]
    # Python's lower case, not SQL's (SQLite's lower() folds only ASCII).
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "ZOË@EXÄ"})) == [
        "Zoë@Exämple.com"
    ]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "li@例子"})) == ["li@例子.中国"]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "🙂"})) == ["🙂@example.com"]
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "例子"})) == []


def test_an_overlong_search_is_cut_not_an_error(admin_client):
    make_message("zoe@example.com")
    response = admin_client.get(OUTBOX, query_string={"q": "zoe" + "x" * 5000})
    assert response.status_code == 200
    assert recipients(response) == []
    (value,) = re.findall(r'id="q" name="q" type="search" value="([^"]*)"', response.text)
    assert value == ("zoe" + "x" * 5000)[:254]
    long_query = admin_client.get(OUTBOX + "?q=" + "%25" * 3000)
    assert long_query.status_code == 200


def queue_many(count: int, to: str = "person{n:03}@example.com", **fields) -> list[str]:
    """Queue `count` messages, all at the same moment (a tie in every column the page shows but
    the id); returns their recipients newest first, as the list shows them."""
    moment = utcnow()
    keys = [f"bulk:{to}:{n}" for n in range(count)]
    for n, key in enumerate(keys):
        enqueue(key=key, to=to.format(n=n), subject="Hello", template="test_message")
    db.session.execute(
        db.update(OutboxMessage)
        .where(OutboxMessage.key.in_(keys))
        .values(created_at=moment, **fields)
    )
    db.session.commit()
    return [to.format(n=n) for n in reversed(range(count))]


def links(response) -> dict[str, str]:
    """The page's links to other pages of the list, by their text."""
    nav = re.search(r'<nav class="pagination"[^>]*>(.*?)</nav>', response.text, re.S)
    if nav is None:
        return {}
    return {
        text: html.unescape(href)
        for href, text in re.findall(r'<a (?:rel="\w+" )?href="([^"]+)">(\w+)</a>', nav.group(1))
    }


def id_of(address: str) -> int:
    return db.session.scalar(db.select(OutboxMessage.id).where(OutboxMessage.to_address == address))


def test_the_list_is_newest_first_fifty_a_page_older_and_newer_by_key(admin_client):
    everyone = queue_many(120)

    first = admin_client.get(OUTBOX)
    assert recipients(first) == everyone[:50]
    assert links(first) == {
        "Older": f"{OUTBOX}?before={id_of(everyone[49])}",
        "Oldest": f"{OUTBOX}?after=0",
    }
    assert (
        'rel="next" href="/staff/outbox/?before=' in first.text and 'rel="prev"' not in first.text
    )

    second = admin_client.get(links(first)["Older"])
    assert recipients(second) == everyone[50:100]
    assert set(links(second)) == {"Newest", "Newer", "Older", "Oldest"}
    third = admin_client.get(links(second)["Older"])
    assert recipients(third) == everyone[100:]
    assert set(links(third)) == {"Newest", "Newer"}  # the end: nothing older

    # And back: each Newer page is the fifty just above, ending on the first page.
    back = admin_client.get(links(third)["Newer"])
    assert recipients(back) == everyone[50:100]
    newest = admin_client.get(links(back)["Newer"])
    assert recipients(newest) == everyone[:50]
    assert set(links(newest)) == {"Older", "Oldest"}

    oldest = admin_client.get(links(first)["Oldest"])
    assert recipients(oldest) == everyone[70:]  # the fifty oldest, still newest first
    assert set(links(oldest)) == {"Newest", "Newer"}
    assert recipients(admin_client.get(links(oldest)["Newer"])) == everyone[20:70]
    assert recipients(admin_client.get(links(oldest)["Newest"])) == everyone[:50]

    assert len(recipients(admin_client.get(OUTBOX, query_string={"per_page": 500}))) == 50
    assert recipients(admin_client.get(OUTBOX, query_string={"page": 3})) == everyone[:50]


def test_messages_added_or_removed_between_requests_are_never_shown_twice_or_skipped(
    admin_client,
):
    everyone = queue_many(120)
    first = admin_client.get(OUTBOX)
    older = links(first)["Older"]

    # Meanwhile: ten new messages, the message the link starts from and two below it are gone.
    queue_many(10, to="new{n}@example.com")
    gone = [everyone[49], everyone[50], everyone[51]]
    db.session.execute(db.delete(OutboxMessage).where(OutboxMessage.to_address.in_(gone)))
    db.session.commit()

    second = admin_client.get(older)
    assert recipients(second) == everyone[52:102]  # no repeat from page one, nothing skipped
    third = admin_client.get(links(second)["Older"])
    assert recipients(third) == everyone[102:]
    back = admin_client.get(links(second)["Newer"])
    assert recipients(back) == ["new0@example.com"] + everyone[:49]  # the fifty just above


def test_a_message_that_leaves_the_filtered_status_between_requests_moves_no_other(
    admin_client,
):
    failed = queue_many(60, status=MessageStatus.failed, last_error="550 No such user")
    first = admin_client.get(OUTBOX, query_string={"status": "failed"})
    assert recipients(first) == failed[:50]
    message = db.session.get(OutboxMessage, id_of(failed[52]))
    message.status = MessageStatus.pending  # sent again meanwhile
    db.session.commit()
    older = admin_client.get(links(first)["Older"])
    assert recipients(older) == failed[50:52] + failed[53:]
    assert "status=failed" in links(older)["Newer"]


MALFORMED_KEYS = ["", "abc", "-1", "+5", " 5", "5 ", "1e3", "0x10", "5.0", "\x00", "١٢", "²",
                  "99999999999999999999999", "2147483648", "<script>", "' OR 1=1 --"]  # fmt: skip


def test_a_malformed_or_out_of_range_key_is_the_newest_page_never_an_error(admin_client):
    everyone = queue_many(60)
    newest = recipients(admin_client.get(OUTBOX))
    assert newest == everyone[:50]
    for name in ("before", "after"):
        for value in MALFORMED_KEYS:
            response = admin_client.get(OUTBOX, query_string={name: value})
            assert response.status_code == 200, (name, value)
            assert recipients(response) == newest, (name, value)
            assert "<script>" not in response.text
    zero = admin_client.get(OUTBOX, query_string={"before": "0"})  # no key is below 1
    assert recipients(zero) == newest
    both = admin_client.get(OUTBOX, query_string={"before": "abc", "after": "0"})
    assert recipients(both) == newest  # a malformed `before` is not passed over for `after`


def test_a_key_past_either_end_gives_an_empty_page_with_the_way_back(admin_client):
    everyone = queue_many(3)
    top = admin_client.get(OUTBOX, query_string={"before": str(2**31 - 1)})
    assert recipients(top) == everyone and links(top) == {}
    past_newest = admin_client.get(OUTBOX, query_string={"after": str(2**31 - 2)})
    assert recipients(past_newest) == []
    assert "No newer messages." in past_newest.text
    assert recipients(admin_client.get(links(past_newest)["Older"])) == everyone
    past_oldest = admin_client.get(OUTBOX, query_string={"before": id_of(everyone[-1])})
    assert recipients(past_oldest) == []
    assert "No older messages." in past_oldest.text
    assert set(links(past_oldest)) == {"Newest", "Newer"}
    assert recipients(admin_client.get(links(past_oldest)["Newer"])) == everyone


def test_page_links_keep_the_filter_and_the_search(admin_client):
    zoes = queue_many(60, to="zoe{n}@example.com")
    enqueue(key="other", to="bob@example.com", subject="Hello", template="test_message")
    db.session.commit()
    first = admin_client.get(OUTBOX, query_string={"status": "pending", "q": "zoe"})
    assert recipients(first) == zoes[:50]
    for text, link in links(first).items():
        assert "status=pending" in link and "q=zoe" in link, text
    following = admin_client.get(links(first)["Older"])
    assert recipients(following) == zoes[50:]
    oldest = admin_client.get(links(first)["Oldest"])
    assert recipients(oldest) == zoes[10:]


def test_counts_past_the_cap_say_so_and_are_never_wrong(admin_client, monkeypatch):
    monkeypatch.setattr(services, "COUNT_CAP", 3)
    queue_many(4, to="sent{n}@example.com", status=MessageStatus.sent)
    for n in range(3):
        make_message(f"failed{n}@example.com", status=MessageStatus.failed, last_error="550")
    make_message("waiting@example.com")

    page = admin_client.get(OUTBOX)
    assert re.search(r"<strong>3 or more</strong> sent</a>", page.text)
    assert re.search(r"<strong>3</strong> failed</a>", page.text)  # exactly the cap: exact
    assert re.search(r"<strong>1</strong> pending</a>", page.text)
    assert re.search(r"<strong>0</strong> cancelled</a>", page.text)
    assert re.search(r"<strong>7 or more</strong> all</a>", page.text)  # 8 in truth

    counted = services.status_counts()
    assert counted[MessageStatus.sent] == services.CappedCount(3, capped=True)
    assert counted[MessageStatus.failed] == services.CappedCount(3, capped=False)
    assert services.status_counts(cap=10)[MessageStatus.sent] == services.CappedCount(4)


def test_a_large_count_is_written_with_thousands_separated(admin_client, monkeypatch):
    monkeypatch.setattr(services, "COUNT_CAP", 1_000)
    db.session.execute(
        db.insert(OutboxMessage),
        [
            {"key": f"many:{n}", "kind": MailKind.transactional, "status": MessageStatus.sent,
             "to_address": f"P{n}@Example.com", "subject": "Hello", "text_body": "Hello",
             "html_body": "<p>Hello</p>", "message_id": f"<many.{n}@example.com>"}
            for n in range(1_001)
        ],
    )  # fmt: skip
    db.session.commit()
    page = admin_client.get(OUTBOX)
    assert re.search(r"<strong>1,000 or more</strong> sent</a>", page.text)
    # A row inserted without the normalised address gets it from the model.
    assert recipients(admin_client.get(OUTBOX, query_string={"q": "p1000@"})) == [
        "P1000@Example.com"
    ]


def test_the_lists_query_count_does_not_grow_with_the_number_of_messages(admin_client):
    def measure(query: str = "") -> int:
        admin_client.get(OUTBOX + query)  # warm up: the session and anything cached
        with count_queries() as statements:
            response = admin_client.get(OUTBOX + query)
        assert response.status_code == 200
        return len(statements)

    ics = Attachment(
        "invite.ics", "text/calendar; charset=utf-8; method=REQUEST", b"BEGIN:VCALENDAR\r\n"
    )
    make_message("first@example.com", attachments=[ics])
    pages = ["", "?before=1000000", "?after=0", "?status=failed", "?q=person", "?q=first@"]
    one = [measure(query) for query in pages]
    assert len(recipients(admin_client.get(OUTBOX))) == 1
    for n in range(139):
        status = [MessageStatus.pending, MessageStatus.failed, MessageStatus.sent][n % 3]
        make_message(
            f"person{n}@example.com",
            status=status,
            attachments=[ics],
            last_error="550 No such user" if status == MessageStatus.failed else None,
        )
    many = [measure(query) for query in pages]
    assert len(recipients(admin_client.get(OUTBOX))) == 50
    assert many == one
    first_id = id_of("first@example.com")
    # A page away from the newest asks once more whether there is anything newer: two reads.
    assert measure(f"?before={first_id + 60}") == measure("") + 1


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
    assert audited("email_retried") == [(str(message.id), "admin@example.com")]


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
    assert audited("email_cancelled") == [(str(message.id), "admin@example.com")]


def audited(action: str) -> list[tuple[str, str]]:
    """(object id, who) of each audit entry for `action`."""
    return [
        (entry.object_id, entry.user_email)
        for entry in db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == action))
    ]


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
    assert audited("email_retried") == audited("email_cancelled") == []  # refused: not logged


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
