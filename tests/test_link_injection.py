"""Invariant 11 in the mail: text a person typed never becomes a secret link, and a link minted for
a message belongs to its recipient. The outside test's attack was an anonymous booking whose
booker name was a placeholder for another booking's manage link; these tests make that attack in
every typed field that reaches an email, and for every kind of link."""

from __future__ import annotations

import re

import pytest

from chamber.extensions import db
from chamber.mail import links
from chamber.mail.delivery import deliver_due
from chamber.mail.models import MailKind, MessageStatus, OutboxMessage, UnsubscribeToken
from chamber.mail.services import enqueue
from chamber.registration.models import Booking, BookingToken, Delegate
from chamber.surveys.models import SurveyToken
from tests.support import post_form

VICTIM = "victim@victim.example"
ATTACKER = "mallory@attacker.example"


def booking_form(*, booker: str, email: str, delegate_email: str, text: str = "") -> dict:
    """A booking with `text` in every typed field, cut to each field's length."""
    return {
        "business_name": f"Business {text}"[:200].strip(),
        "size_band": "small",
        "sector": f"IT {text}"[:100].strip(),
        "town_or_postcode": f"Stevenage {text}"[:100].strip(),
        "is_member": "no",
        "booker_name": f"{booker} {text}"[:120].strip(),
        "booker_email": email,
        "delegates-0-name": f"Delegate {text}"[:120].strip(),
        "delegates-0-email": delegate_email,
        "delegates-0-job_title": f"Director {text}"[:200].strip(),
        "delegates-0-needs": f"Needs {text}"[:1000].strip(),
        "privacy": "y",
    }


def book(client, event, **fields):
    response = post_form(client, f"/events/{event.slug}/register", booking_form(**fields))
    assert response.status_code == 302, response.text
    return db.session.scalars(db.select(Booking).order_by(Booking.id.desc())).first()


def links_in(email) -> list[str]:
    return re.findall(r"https?://[^\s\"<>]+", email.get_body(("plain",)).get_content())


def forged_markers(booking_id: int, delegate_id: int) -> list[str]:
    """What an attacker might type: the old placeholder form, guessed nonces, every kind."""
    kinds = [("manage", booking_id), ("checkin", delegate_id), ("place", delegate_id),
             ("survey", 1), ("unsubscribe", "")]  # fmt: skip
    forged = []
    for kind, ref in kinds:
        forged.append(f"[[link:{kind}:{ref}]]" if ref != "" else f"[[link:{kind}]]")
        forged.append(f"[[link:{'0' * 32}:{kind}:{ref}]]")
        forged.append(f"[[link:{'f' * 32}:{kind}:{ref}]]")
    return forged


def test_an_anonymous_booking_cannot_mint_another_bookings_links_in_any_field(
    app, client, make_event, smtp_server
):
    event = make_event(capacity=50, business_limit=3)
    victim = book(client, event, booker="Vic Tim", email=VICTIM, delegate_email=VICTIM)
    victim_delegate = victim.delegates[0]
    deliver_due()
    smtp_server.handler.received.clear()
    tokens_before = db.session.scalar(
        db.select(db.func.count(BookingToken.id)).where(BookingToken.booking_id == victim.id)
    )
    checkin_hash_before = victim_delegate.checkin_token_hash

    payload = " ".join(forged_markers(victim.id, victim_delegate.id))
    attacker = book(client, event, booker="Mallory", email=ATTACKER,
                    delegate_email="eve@attacker.example", text=payload[:90])  # fmt: skip
    # And the whole payload where a field takes it (the needs field takes 1,000 characters).
    book(client, event, booker="Mallory", email="m2@attacker.example",
         delegate_email="eve2@attacker.example", text=payload)  # fmt: skip
    report = deliver_due()
    assert report.failed == 0 and report.sent >= 2

    db.session.expire_all()
    tokens_after = db.session.scalar(
        db.select(db.func.count(BookingToken.id)).where(BookingToken.booking_id == victim.id)
    )
    assert tokens_after == tokens_before  # no manage link was minted for the victim's booking
    assert db.session.get(Delegate, victim_delegate.id).checkin_token_hash == checkin_hash_before
    for email in smtp_server.messages:
        body = email.get_body(("plain",)).get_content()
        assert "[[link:" in body  # what was typed arrives as typed: text, not a link
        for url in links_in(email):
            if "/r/" in url:  # a manage link: it must open the attacker's own booking
                page = client.get(url.split("://", 1)[1].partition("/")[2].join(["/", ""]))
                assert page.status_code == 200
                assert "Vic Tim" not in page.text and VICTIM not in page.text
    assert attacker.id != victim.id


@pytest.mark.parametrize("kind", ["manage", "checkin", "survey", "unsubscribe"])
def test_a_marker_typed_into_a_name_is_delivered_as_text_and_mints_nothing(app, smtp_server, kind):
    typed = f"[[link:{kind}:1]] [[link:{'a' * 32}:{kind}:1]] {{{{ link('{kind}', 1) }}}}"
    enqueue(key="typed", to=ATTACKER, subject="Hello", template="test_message",
            to_name="Mallory", context={"note": typed})  # fmt: skip
    db.session.commit()
    assert deliver_due().sent == 1
    (email,) = smtp_server.messages
    assert typed in email.get_body(("plain",)).get_content()
    assert db.session.scalar(db.select(db.func.count(BookingToken.id))) == 0
    assert db.session.scalar(db.select(db.func.count(SurveyToken.id))) == 0
    assert db.session.scalar(db.select(db.func.count(UnsubscribeToken.id))) == 0


def queue_with_marker(key: str, to: str, kind: str, ref: str) -> OutboxMessage:
    """A message whose own template asked for `kind`/`ref`: a bug the worker must catch."""
    enqueue(key=key, to=to, subject="Hello", template="test_message")
    message = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.key == key)).one()
    message.text_body += "\n" + links.marker_for(message.link_nonce, kind, ref)
    db.session.commit()
    return message


@pytest.mark.parametrize("kind", ["manage", "checkin", "survey", "place"])
def test_a_message_asking_for_a_link_its_recipient_does_not_own_is_parked_not_sent(
    app, client, make_event, smtp_server, kind
):
    event = make_event(capacity=50)
    victim = book(client, event, booker="Vic Tim", email=VICTIM, delegate_email=VICTIM)
    deliver_due()
    smtp_server.handler.received.clear()
    ref = str(victim.id if kind == "manage" else victim.delegates[0].id)
    tokens = db.session.scalar(db.select(db.func.count(BookingToken.id)))
    bad = queue_with_marker("bug", ATTACKER, kind, ref)
    enqueue(key="after", to="next@example.com", subject="Next", template="test_message")
    db.session.commit()

    report = deliver_due()

    assert report.failed == 1 and report.sent == 1  # the worker went on to the next message
    db.session.expire_all()
    parked = db.session.get(OutboxMessage, bad.id)
    assert parked.status == MessageStatus.failed
    assert parked.last_error.startswith("Not sent:") and "recipient" in parked.last_error
    assert [m["To"] for m in smtp_server.messages] == ["next@example.com"]
    assert db.session.scalar(db.select(db.func.count(BookingToken.id))) == tokens


def test_the_recipients_own_link_is_minted_and_works(app, client, make_event, smtp_server):
    event = make_event(capacity=50)
    booking = book(client, event, booker="Vic Tim", email=VICTIM, delegate_email=VICTIM)
    deliver_due()
    smtp_server.handler.received.clear()
    queue_with_marker("own", VICTIM, "manage", str(booking.id))
    assert deliver_due().sent == 1
    (url,) = [u for u in links_in(smtp_server.messages[0]) if "/r/" in u]
    assert client.get("/r/" + url.rsplit("/r/", 1)[1]).status_code == 200


@pytest.mark.parametrize("ref", ["", "abc", "-1", "1x"])
def test_a_link_to_nothing_is_parked_with_its_reason(app, smtp_server, ref):
    queue_with_marker("nothing", ATTACKER, "manage", ref)
    report = deliver_due()
    assert report.failed == 1 and report.sent == 0
    message = db.session.scalars(db.select(OutboxMessage)).one()
    assert message.status == MessageStatus.failed and message.last_error.startswith("Not sent:")


def test_a_link_to_a_booking_erased_since_the_message_was_queued_leads_to_a_plain_404(
    app, client, smtp_server
):
    queue_with_marker("erased", VICTIM, "manage", "424242")
    assert deliver_due().sent == 1
    (url,) = [u for u in links_in(smtp_server.messages[0]) if "/r/" in u]
    assert client.get("/r/" + url.rsplit("/r/", 1)[1]).status_code == 404


def test_a_refused_message_in_a_batch_keeps_nothing_it_minted_and_the_others_links_work(
    app, client, make_event, smtp_server
):
    """The worker mints a whole batch's links in one transaction (`delivery._mint_ahead`); a
    message refused half-way through its links keeps none of them, and the others go out."""
    event = make_event(capacity=50)
    victim = book(client, event, booker="Vic Tim", email=VICTIM, delegate_email=VICTIM)
    other = book(client, event, booker="Mallory", email=ATTACKER, delegate_email=ATTACKER)
    deliver_due()
    smtp_server.handler.received.clear()
    tokens = db.session.scalar(db.select(db.func.count(BookingToken.id)))
    queue_with_marker("first", VICTIM, "manage", str(victim.id))
    half = queue_with_marker("half", VICTIM, "manage", str(victim.id))  # its own link first ...
    half.text_body += "\n" + links.marker_for(half.link_nonce, "place", str(other.delegates[0].id))
    db.session.commit()  # ... then one that is not the recipient's
    queue_with_marker("last", VICTIM, "manage", str(victim.id))

    report = deliver_due()

    assert (report.sent, report.failed) == (2, 1)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, half.id).status == MessageStatus.failed
    assert db.session.scalar(db.select(db.func.count(BookingToken.id))) == tokens + 2
    for email in smtp_server.messages:
        (url,) = [u for u in links_in(email) if "/r/" in u]
        assert client.get("/r/" + url.rsplit("/r/", 1)[1]).status_code == 200


def test_a_refused_message_keeps_none_of_the_batchs_stored_token_rows_but_the_others_work(
    app, client, make_event, smtp_server
):
    """Unsubscribe tokens are written as plain rows, one INSERT a batch (`links.store_row`): a
    message refused half-way through a batch leaves none of its rows, and every link of the
    messages that went out works."""
    event = make_event(capacity=50)
    victim = book(client, event, booker="Vic Tim", email=VICTIM, delegate_email=VICTIM)
    deliver_due()
    smtp_server.handler.received.clear()
    for n, key in enumerate(["first", "half", "last"]):
        enqueue(key=key, to=f"reader{n}@example.com", subject="News", template="test_message",
                kind=MailKind.marketing)  # fmt: skip
    half = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.key == "half")).one()
    half.text_body += "\n" + links.marker_for(half.link_nonce, "manage", str(victim.id))
    db.session.commit()

    report = deliver_due()

    assert (report.sent, report.failed) == (2, 1)
    assert db.session.scalar(db.select(db.func.count(UnsubscribeToken.id))) == 2
    assert sorted(m["To"] for m in smtp_server.messages) == [
        "reader0@example.com",
        "reader2@example.com",
    ]
    for email in smtp_server.messages:
        url = email["List-Unsubscribe"].strip("<>")
        assert client.get("/unsubscribe/" + url.rsplit("/", 1)[1]).status_code == 200


# --- a web address typed as a name ---------------------------------------------------------------

ADDRESS_NAMES = [
    "Your account is locked - verify at https://evil.example/login",
    "See www.evil.example now",
    "evil.example",
    "Bob bit.ly/3xYz",
    "bob@evil.example",
    "hxxp://evil",
    "evil。com/login",  # an ideographic full stop, which IDNA reads as a dot
    "evil．co．uk",
    "Open invoice.pdf",
    "Ann - renew at chamber-renewals.me/pay",  # any top-level domain, not a list of a few
    "Visit pay-chamber.ai now",
    "Log in at secure.bank",
    "see offers.page",
    "203.0.113.7/login",  # an IP address
    "evil\u200b.com",  # a zero-width space before the dot
    "evil.c\u00adom",  # a soft hyphen inside the ending
    "пример.рф",  # internationalised
    "evil.москва",
    "xn--80adxhks.xn--p1ai",
]
REAL_NAMES = ["J. R. R. Tolkien", "J.R.R. Tolkien", "Dr. Amara Okafor", "Zoë O'Brien",
              "Jean-Luc Picard", "Ayşe Ölçer", "李小龍", "Mr A. N. Other", "R.K.Narayan",
              "S.Ramesh", "A.B.Chowdhury", "Md.Rahman", "Mohd.Ali", "Ma.Cristina", "T.Ng",
              "St.John Smith", "Mohd.Ali.Hassan", "Kim Lee", "Dr. Li Na", "Zoë\u200dO'Brien",
              "مریم\u200cزاده", "Mr.Black", "Ms.Kim", "Dr.Love", "Mr.Green", "Lu.Xin",
              "Prof.Moss", "Mrs.Page"]  # fmt: skip


@pytest.mark.parametrize("name", ADDRESS_NAMES)
@pytest.mark.parametrize("field", ["booker_name", "delegates-0-name"])
def test_a_name_with_a_web_address_is_refused_on_its_field_and_nothing_is_sent(
    client, make_event, name, field
):
    """A stranger names someone else's address as a delegate: the name is the "Dear ..." of the
    email the chamber sends there, where a mail program makes any web address a link. So a name
    holds none: refused on its field, with nothing stored and nothing queued."""
    event = make_event()
    form = booking_form(booker="Mallory", email=ATTACKER, delegate_email=VICTIM) | {field: name}
    response = post_form(client, f"/events/{event.slug}/register", form)
    assert response.status_code == 400
    assert "Enter a name without a web or email address in it." in response.text
    assert f'id="{field}-error"' in response.text  # tied to its field
    assert db.session.scalar(db.select(db.func.count(Booking.id))) == 0
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id))) == 0


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_names_with_dots_accents_and_other_scripts_are_taken(client, make_event, name):
    event = make_event()
    form = booking_form(booker=name, email=ATTACKER, delegate_email=VICTIM)
    form["delegates-0-name"] = name
    assert post_form(client, f"/events/{event.slug}/register", form).status_code == 302
    assert db.session.scalar(db.select(Delegate.name)) == name


@pytest.mark.parametrize("name", ADDRESS_NAMES[:3])
def test_the_subscribe_form_refuses_a_name_with_a_web_address(client, name):
    form = {"name": name, "email": VICTIM, "topics": ["events"], "privacy": "y"}
    response = post_form(client, "/subscribe", form)
    assert response.status_code == 400
    assert "Enter a name without a web or email address in it." in response.text
    assert db.session.scalar(db.select(db.func.count(OutboxMessage.id))) == 0


@pytest.mark.parametrize(
    ("business", "taken"),
    [("Verify at https://evil.example", False), ("www.evil.example", False),
     ("Booking.com Ltd", True), ("Hair@Home", True), ("Zoë's Café & Co.", True)],
)  # fmt: skip
def test_a_business_name_holds_no_link_but_may_be_a_domain(client, make_event, business, taken):
    """The business as typed goes into the booker's email, to an address the stranger chose."""
    event = make_event()
    form = booking_form(booker="Mallory", email=ATTACKER, delegate_email=VICTIM)
    form["business_name"] = business
    response = post_form(client, f"/events/{event.slug}/register", form)
    assert response.status_code == (302 if taken else 400)
    if not taken:
        assert "Enter the business&#39;s name without a web address in it." in response.text
        assert 'id="business_name-error"' in response.text
        assert db.session.scalar(db.select(db.func.count(Booking.id))) == 0
