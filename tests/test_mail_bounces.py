"""Hard bounces: a mail server's permanent refusal of an address (a real 5xx from the aiosmtpd
sink) parks the message with the server's answer and suppresses the address for marketing; staff
see it in the directory and can lift it. And RFC 8058 one-click unsubscribe on campaign mail."""

from __future__ import annotations

import logging

import pytest

from chamber.core.times import format_date
from chamber.extensions import db
from chamber.mail import services
from chamber.mail.backends import is_address_refusal
from chamber.mail.delivery import deliver_due
from chamber.mail.models import MailKind, MessageStatus, OutboxMessage, Suppression
from chamber.mail.services import enqueue
from chamber.members.marketing import Basis, counts_by_basis, may_receive, status_of
from chamber.members.models import Contact, MarketingTopic
from tests.support import count_queries, csrf_token, post_form
from tests.test_access import committed_rows

BASE = "/staff/directory"
GONE = "gone@example.com"


def queue(to: str = GONE, *, kind: MailKind = MailKind.transactional, key: str = "", **kw) -> None:
    enqueue(
        key=key or f"test:{kind}:{to}",
        to=to,
        subject="Hello",
        template="test_message",
        kind=kind,
        **kw,
    )
    db.session.commit()


def message(key: str) -> OutboxMessage:
    return db.session.scalar(db.select(OutboxMessage).where(OutboxMessage.key == key))


def suppression(address: str = GONE) -> Suppression | None:
    return db.session.scalar(db.select(Suppression).where(Suppression.email == address))


# --- what counts as a hard bounce ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reply", "bounce"),
    [
        (550, "5.1.1 <gone@example.com>: Recipient address rejected: User unknown", True),
        (550, "5.1.2 Host unknown", True),
        (553, "5.1.3 Bad destination mailbox address syntax", True),
        (550, "5.2.1 Mailbox disabled", True),
        (550, "No such user here", True),  # no enhanced status code: 550, 551, 553
        (551, "User not local", True),
        (554, "5.7.1 <gone@example.com>: Relay access denied", False),  # about us, not them
        (550, "5.7.1 Message rejected as spam", False),
        (552, "5.2.2 Mailbox full", False),
        (554, "Transaction failed", False),
        (530, "5.7.0 Authentication required", False),
        (450, "4.2.1 Mailbox busy", False),
        (421, "Service not available", False),
    ],
)
def test_only_a_5xx_that_says_the_address_is_bad_is_a_hard_bounce(code, reply, bounce):
    assert is_address_refusal(code, reply) is bounce
    assert is_address_refusal(code, reply.encode()) is bounce


# --- the worker ----------------------------------------------------------------------------------


def test_a_5xx_refusal_of_the_recipient_parks_the_message_and_suppresses_the_address(
    app, smtp_server
):
    smtp_server.handler.refuse[GONE] = "550 5.1.1 <gone@example.com>: User unknown"
    queue(key="confirmation")
    report = deliver_due()
    assert (report.sent, report.failed, report.retrying) == (0, 1, 0)
    parked = message("confirmation")
    assert parked.status == MessageStatus.failed
    assert parked.last_error == "550 5.1.1 <gone@example.com>: User unknown"
    bounce = suppression()
    assert (
        bounce.reason == "bounce" and bounce.detail == "550 5.1.1 <gone@example.com>: User unknown"
    )

    # Marketing and survey mail never go to it again; transactional mail still does.
    del smtp_server.handler.refuse[GONE]
    queue(key="news", kind=MailKind.marketing)
    queue(key="survey", kind=MailKind.survey)
    queue(key="update")
    report = deliver_due()
    assert (report.sent, report.suppressed) == (1, 2)
    assert [m["To"] for m in smtp_server.messages] == [GONE]
    assert message("news").last_error == (
        "Not sent: the address bounced (a mail server refused it for good)."
    )


def test_a_bounce_ends_a_campaign_to_the_address_and_the_rest_goes_on(app, smtp_server):
    smtp_server.handler.refuse[GONE] = "550 5.1.1 User unknown"
    for n, to in enumerate(["a@example.com", GONE, "b@example.com"]):
        queue(to, key=f"campaign:{n}", kind=MailKind.marketing, bulk=True)
    report = deliver_due()
    assert (report.sent, report.failed) == (2, 1)
    assert message("campaign:1").status == MessageStatus.failed
    assert suppression().reason == "bounce"


def test_a_4xx_refusal_is_tried_again_and_suppresses_nothing(app, smtp_server):
    smtp_server.handler.refuse[GONE] = "450 4.2.1 Mailbox busy, try later"
    queue(key="confirmation")
    report = deliver_due()
    assert (report.retrying, report.failed) == (1, 0)
    assert message("confirmation").status == MessageStatus.pending
    assert suppression() is None


def test_a_5xx_that_is_about_us_fails_the_message_but_suppresses_nothing(app, smtp_server):
    smtp_server.handler.refuse[GONE] = "554 5.7.1 <gone@example.com>: Relay access denied"
    queue(key="confirmation")
    assert deliver_due().failed == 1
    assert message("confirmation").last_error == (
        "554 5.7.1 <gone@example.com>: Relay access denied"
    )
    assert suppression() is None


def test_a_5xx_after_the_content_that_names_the_recipient_is_a_bounce(app, smtp_server):
    smtp_server.handler.replies.append("550 5.1.1 <gone@example.com>: mailbox unavailable")
    queue(key="confirmation")
    assert deliver_due().failed == 1
    assert suppression().reason == "bounce"


def test_a_5xx_after_the_content_that_does_not_name_the_recipient_is_no_bounce(app, smtp_server):
    smtp_server.handler.replies.append("550 5.1.1 message refused")
    queue(key="confirmation")
    assert deliver_due().failed == 1
    assert suppression() is None


# --- the suppression list ------------------------------------------------------------------------


def test_the_persons_own_unsubscribe_replaces_a_bounce_and_a_bounce_never_replaces_it(app):
    services.suppress(GONE, reason="bounce", detail="550 User unknown")
    services.suppress(GONE)  # they unsubscribed, from an older message
    db.session.commit()
    assert (suppression().reason, suppression().detail) == ("unsubscribe", None)
    assert not services.lift_bounce(GONE)  # lifting a bounce never lifts their choice
    services.suppress("other@example.com")
    services.suppress("other@example.com", reason="bounce", detail="550")
    db.session.commit()
    assert suppression("other@example.com").reason == "unsubscribe"
    assert services.is_suppressed(GONE) and services.is_suppressed("other@example.com")


def test_a_bounce_reads_as_bounced_in_every_form_of_the_marketing_rule(app):
    bounced = Contact(name="Gone", email="Gone@Example.com", soft_opt_in_at=db.func.now())
    unsubscribed = Contact(name="Left", email="left@example.com", soft_opt_in_at=db.func.now())
    keen = Contact(name="Keen", email="keen@example.com", soft_opt_in_at=db.func.now())
    db.session.add_all([bounced, unsubscribed, keen])
    services.suppress(GONE, reason="bounce", detail="550 User unknown")
    services.suppress("left@example.com")
    db.session.commit()
    found = status_of(bounced, MarketingTopic.events)
    assert found.basis is Basis.bounced and not found.may_send
    assert found.reason == "Hard bounce: the address does not take mail"
    assert status_of(unsubscribed, MarketingTopic.events).basis is Basis.suppressed
    counts = counts_by_basis(MarketingTopic.events)
    assert (counts[Basis.bounced], counts[Basis.suppressed], counts[Basis.soft_opt_in]) == (1, 1, 1)
    assert list(db.session.scalars(may_receive(MarketingTopic.events))) == [keen.id]
    assert Basis.bounced.label == "Email bounced"


# --- staff see it in the directory, and lift it --------------------------------------------------


@pytest.fixture
def bounced(app, smtp_server):
    """A contact whose address a real server refused (with markup in its answer)."""
    contact = Contact(name="Gone Away", email="Gone@Example.com")
    db.session.add(contact)
    db.session.commit()
    smtp_server.handler.refuse[GONE] = "550 5.1.1 <gone@example.com>: <b>User unknown</b> " + (
        "and more detail " * 30
    )
    queue(key="confirmation")
    assert deliver_due().failed == 1
    del smtp_server.handler.refuse[GONE]
    return contact


def test_the_contacts_page_says_when_the_email_bounced_and_the_servers_short_answer(
    organiser_client, bounced
):
    page = organiser_client.get(f"{BASE}/contacts/{bounced.id}")
    assert page.status_code == 200
    when = suppression().created_at
    assert f"Email bounced on {format_date(when)}:</strong> 550 5.1.1" in page.text
    assert "550 5.1.1 &lt;gone@example.com&gt;: &lt;b&gt;User unknown&lt;/b&gt;" in page.text
    assert "<b>User unknown" not in page.text
    assert "…" in page.text and "and more detail " * 20 not in page.text  # short
    assert "Lift the bounce" in page.text


def test_a_contact_without_a_bounce_shows_none_and_the_page_costs_the_same(
    organiser_client, bounced
):
    other = Contact(name="Fine", email="fine@example.com")
    db.session.add(other)
    db.session.commit()
    organiser_client.get(f"{BASE}/contacts/{other.id}")
    with count_queries() as fine:
        page = organiser_client.get(f"{BASE}/contacts/{other.id}")
    assert "Email bounced on" not in page.text and "Lift the bounce" not in page.text
    with count_queries() as gone:
        organiser_client.get(f"{BASE}/contacts/{bounced.id}")
    assert len(fine) == len(gone)


def test_the_contact_list_filters_those_whose_email_bounced(organiser_client, bounced):
    db.session.add(Contact(name="Fine", email="fine@example.com"))
    db.session.commit()
    everyone = organiser_client.get(f"{BASE}/contacts").text
    assert "Gone Away" in everyone and "Fine" in everyone
    only = organiser_client.get(f"{BASE}/contacts?email=bounced")
    assert "Gone Away" in only.text and ">Fine<" not in only.text
    assert 'value="bounced" selected' in only.text
    csv = organiser_client.get(f"{BASE}/contacts.csv?email=bounced").data.decode("utf-8-sig")
    assert "gone@example.com" in csv.lower() and "fine@example.com" not in csv
    # Anything else is no filter, never an error.
    for value in ("<script>", "bounced' OR 1=1 --", "{{ 7*7 }}", "\x00"):
        response = organiser_client.get(f"{BASE}/contacts", query_string={"email": value})
        assert response.status_code == 200 and "Fine" in response.text


def test_staff_lift_a_bounce_once_they_confirm_and_it_is_logged(
    organiser_client, bounced, organiser, caplog
):
    path = f"{BASE}/contacts/{bounced.id}/lift-bounce"
    unconfirmed = post_form(organiser_client, path, {}, token_from=f"{BASE}/contacts/{bounced.id}")
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm that the mailbox works again." in unconfirmed.text
    assert suppression() is not None

    with caplog.at_level(logging.INFO, logger="chamber.members.directory"):
        response = post_form(
            organiser_client, path, {"confirm": "y"}, token_from=f"{BASE}/contacts/{bounced.id}"
        )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/contacts/{bounced.id}")
    assert suppression() is None
    assert f"{organiser.email} lifted the email bounce of contact {bounced.id}" in caplog.text
    assert status_of(bounced, MarketingTopic.events).basis is Basis.no_basis
    page = organiser_client.get(response.headers["Location"])
    assert "Lifted the bounce" in page.text and "Email bounced on" not in page.text

    # Again: nothing to lift, said plainly, nothing changed.
    again = post_form(
        organiser_client, path, {"confirm": "y"}, token_from=f"{BASE}/contacts/{bounced.id}"
    )
    assert again.status_code == 302
    assert "has no bounce to lift" in organiser_client.get(again.headers["Location"]).text


def test_lifting_a_bounce_never_lifts_the_persons_unsubscribe(organiser_client, app):
    contact = Contact(name="Left", email="left@example.com")
    db.session.add(contact)
    services.suppress("left@example.com")
    db.session.commit()
    response = post_form(
        organiser_client,
        f"{BASE}/contacts/{contact.id}/lift-bounce",
        {"confirm": "y"},
        token_from=f"{BASE}/contacts/{contact.id}",
    )
    assert response.status_code == 302
    assert suppression("left@example.com").reason == "unsubscribe"


def test_a_forged_or_misdirected_lift_changes_nothing(organiser_client, checkin_client, bounced):
    path = f"{BASE}/contacts/{bounced.id}/lift-bounce"
    before = committed_rows()
    for data in ({"confirm": "y"}, {"confirm": "y", "csrf_token": "forged"}):
        assert organiser_client.post(path, data=data).status_code == 400
    token = csrf_token(organiser_client, f"{BASE}/contacts/{bounced.id}")
    missing = organiser_client.post(
        f"{BASE}/contacts/999999/lift-bounce", data={"csrf_token": token, "confirm": "y"}
    )
    assert missing.status_code == 404
    assert organiser_client.get(path).status_code == 405
    door = checkin_client.post(path, data={"confirm": "y"})
    assert door.status_code in (302, 400, 403)
    assert committed_rows() == before


# --- RFC 8058 on campaign mail -------------------------------------------------------------------


def test_campaign_marketing_carries_one_click_unsubscribe_that_works_without_cookies(
    app, smtp_server
):
    app.config["BASE_URL"] = "https://events.example.org"
    queue("reader@example.com", key="campaign:1", kind=MailKind.marketing, bulk=True)
    assert deliver_due().sent == 1
    (email,) = smtp_server.messages
    header = email["List-Unsubscribe"]
    assert header.startswith("<https://events.example.org/unsubscribe/") and header.endswith(">")
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header[1:-1]
    text, html = email.get_payload()
    assert url in text.get_content() and url in html.get_content()

    # The mail provider posts, with no cookie and no form token.
    provider = app.test_client(use_cookies=False)
    response = provider.post(
        url.removeprefix("https://events.example.org"),
        base_url="https://events.example.org",
        data={"List-Unsubscribe": "One-Click"},
    )
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert services.is_suppressed("reader@example.com")
    queue("reader@example.com", key="campaign:2", kind=MailKind.marketing, bulk=True)
    assert deliver_due().suppressed == 1
