"""The public subscribe page with double opt-in, and the preferences page: through the worker's real
delivery to an SMTP server, following the links in the emails as a person would. Nothing but the
confirmation is sent until they confirm; the page tells a stranger nothing; typed text never
reaches the email; a link is for its own recipient only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail import links
from chamber.mail import services as mail
from chamber.mail.delivery import deliver_due
from chamber.mail.models import MailKind, MessageStatus, OutboxMessage, Suppression
from chamber.members import services as members
from chamber.members.marketing import Basis, status_of
from chamber.members.models import (
    Consent,
    Contact,
    MarketingToken,
    MarketingTopic,
    SubscriptionRequest,
    TopicOptOut,
)
from tests.support import csrf_token, post_form
from tests.test_registration import register

EVENTS, NEWSLETTER, SURVEYS = MarketingTopic
ANN = "ann@octree.example"


def subscribe(client, **changes):
    data = {"name": "Ann Smith", "email": ANN, "organisation": "Octree Ltd",
            "topics": ["events", "newsletter"], **changes}  # fmt: skip
    data = {k: v for k, v in data.items() if v is not None}
    return post_form(client, "/subscribe", data)


def delivered(smtp_server, seen: int = 0):
    report = deliver_due()
    assert (report.failed, report.retrying, report.errors) == (0, 0, [])
    return smtp_server.messages[seen:]


def link_in(message, path: str) -> str:
    """The path of the one link in `message` that goes to `path`, the same in text and HTML."""
    text = message.get_body(("plain",)).get_content()
    markup = message.get_body(("html",)).get_content()
    found = set(re.findall(rf"https?://[^/\s]+({re.escape(path)}[^\s\"<>]+)", text + markup))
    assert len(found) == 1, found
    return found.pop()


def contact(email: str = ANN) -> Contact:
    return db.session.scalars(db.select(Contact).where(Contact.email == email)).one()


@pytest.fixture
def lenient(app):
    """The subscribe form's rate limit out of the way, for tests that post many times."""
    app.config["SUBSCRIBE_LIMIT_PER_ADDRESS"] = "1000 per hour"


# --- the happy path -----------------------------------------------------------------------------


def test_subscribe_confirm_by_email_then_hear_from_us(client, smtp_server):
    page = client.get("/subscribe")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    response = subscribe(client)
    assert response.status_code == 302
    check = client.get(response.headers["Location"])
    assert "Check your email" in check.text and ANN in check.text
    ann = contact()
    assert ann.name == "Ann Smith" and ann.organisation_id is None
    consents = db.session.scalars(db.select(Consent).order_by(Consent.purpose)).all()
    assert [(c.purpose, c.source, c.confirmed_at) for c in consents] == [
        ("events", "subscribe form", None), ("newsletter", "subscribe form", None),
    ]  # fmt: skip
    assert consents[0].wording.startswith("Email me news from the Chamber about: Events")
    request = db.session.scalars(db.select(SubscriptionRequest)).one()
    assert request.organisation_as_typed == "Octree Ltd"
    assert status_of(ann, EVENTS).basis is Basis.no_basis  # nothing may be sent yet

    # Only the confirmation is sent: transactional, with no unsubscribe header.
    (confirmation,) = delivered(smtp_server)
    assert confirmation["To"] == ANN and confirmation["List-Unsubscribe"] is None
    assert confirmation["Subject"] == "Confirm that you want our emails"
    kinds = db.session.scalars(db.select(OutboxMessage.kind)).all()
    assert kinds == [MailKind.transactional]
    confirm = link_in(confirmation, "/subscribe/confirm/")
    token = confirm.rsplit("/", 1)[1]
    stored = db.session.scalars(db.select(MarketingToken.token_hash)).all()
    assert token not in stored and len(stored) == 1 and len(token) >= 22  # 128 bits or more

    # Opening the link (as a mail scanner would) changes nothing; the button confirms.
    opened = client.get(confirm)
    assert opened.status_code == 200 and "Confirm" in opened.text
    assert opened.headers["Cache-Control"] == "no-store"
    assert opened.headers["Referrer-Policy"] == "same-origin"
    assert db.session.scalars(db.select(Consent.confirmed_at)).all() == [None, None]
    done = post_form(client, confirm, {})
    assert done.status_code == 302
    assert "You are subscribed" in client.get(done.headers["Location"]).text
    assert all(c.confirmed_at for c in db.session.scalars(db.select(Consent)))
    assert db.session.get(SubscriptionRequest, request.id).confirmed_at is not None
    ann = contact()
    assert status_of(ann, EVENTS).basis is Basis.consent
    assert status_of(ann, NEWSLETTER).basis is Basis.consent
    assert status_of(ann, SURVEYS).basis is Basis.no_basis  # not asked for
    again = post_form(client, confirm, {}, token_from="/subscribe")
    assert again.status_code == 302  # and nothing new

    # Then a welcome, as marketing: the one-click unsubscribe and the preferences link in it.
    (welcome,) = delivered(smtp_server, 1)
    assert welcome["Subject"] == "You are subscribed"
    assert welcome["List-Unsubscribe"] and welcome["List-Unsubscribe-Post"]
    preferences = link_in(welcome, "/preferences/")
    assert client.get(preferences).status_code == 200


def test_confirming_again_later_keeps_the_first_time_and_sends_one_welcome(client, smtp_server):
    subscribe(client)
    confirm = link_in(delivered(smtp_server)[0], "/subscribe/confirm/")
    post_form(client, confirm, {})
    first = db.session.scalars(db.select(Consent.confirmed_at)).all()
    post_form(client, confirm, {}, token_from="/subscribe")
    assert db.session.scalars(db.select(Consent.confirmed_at)).all() == first
    assert len(delivered(smtp_server, 1)) == 1


# --- what strangers can learn and do ------------------------------------------------------------


def test_the_answer_is_the_same_whether_or_not_the_address_is_known(client, lenient, smtp_server):
    known = Contact(name="Ann Known", email=ANN, job_title="CTO")
    db.session.add(known)
    db.session.commit()
    pages = []
    for email in (ANN, "new.person@example.com"):
        response = subscribe(client, email=email, name="Someone Else")
        assert response.status_code == 302
        assert response.headers["Location"] == "/subscribe/check-your-email"
        pages.append(client.get(response.headers["Location"]).text)
    assert pages[0].replace(ANN, "X") == pages[1].replace("new.person@example.com", "X")
    # The person we knew is left as they were: anonymous input never overwrites.
    assert (contact().name, contact().job_title) == ("Ann Known", "CTO")
    sent = delivered(smtp_server)
    assert sorted(m["To"] for m in sent) == [ANN, "new.person@example.com"]
    bodies = [m.get_body(("plain",)).get_content() for m in sent]
    assert bodies[0].split("/subscribe/confirm/")[0] == bodies[1].split("/subscribe/confirm/")[0]


def test_at_most_one_confirmation_an_hour_goes_to_an_address(client, lenient, smtp_server):
    for _ in range(5):
        assert subscribe(client).status_code == 302
    assert len(delivered(smtp_server)) == 1


HOSTILE_KEPT = [
    "<script>alert(1)</script><b>bold</b>",
    "{{ 7*7 }} {% raw %}",
    "[[link:manage:1]] [[link:00000000000000000000000000000000:confirm_subscription:1]]",
    "'; DROP TABLE contact; --",
    "Zoë O'Brien 李 🔐 \u202eevil",
]
HOSTILE_REFUSED = [
    "Ann\r\nBcc: thief@evil.example",
    "Ann\nX",
    "Ann\u2028X",
    "Ann\x00",
    "Ann\x1b[31m",
    "=?utf-8?q?=0D=0ABcc:_x@evil.example?=",
]


@pytest.mark.parametrize("field", ["name", "organisation"])
def test_hostile_text_in_a_typed_field_is_refused_or_kept_as_typed_never_sent(
    client, lenient, smtp_server, field
):
    for text in HOSTILE_REFUSED:
        response = subscribe(client, **{field: text})
        assert response.status_code == 400, text
        assert "There is a problem" in response.text
    assert subscribe(client, **{field: "x" * 201}).status_code == 400
    assert not db.session.scalars(db.select(Contact)).all()  # nothing stored half-way
    assert not db.session.scalars(db.select(OutboxMessage)).all()
    for n, text in enumerate(HOSTILE_KEPT):
        response = subscribe(client, email=f"p{n}@example.com", **{field: text})
        assert response.status_code == 302, text
        shown = client.get(response.headers["Location"]).text
        assert "<script>" not in shown and "<b>bold" not in shown
    typed = db.session.scalars(
        db.select(Contact.name if field == "name" else SubscriptionRequest.organisation_as_typed)
    ).all()
    assert sorted(typed) == sorted(HOSTILE_KEPT)  # data, stored as typed
    sent = delivered(smtp_server)
    assert len(sent) == len(HOSTILE_KEPT)
    for message in sent:  # the typed text never reaches the email, so no link can come of it
        body = message.get_body(("plain",)).get_content()
        links = re.findall(r"https?://\S+/subscribe/confirm/\S+", body)
        assert len(links) == 1
        words = body.replace(links[0], "")  # its random token may hold "49" by chance
        assert "[[link" not in words and "49" not in words and "DROP" not in words
    assert not db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.status != MessageStatus.sent)
    ).all()


@pytest.mark.parametrize(
    ("email", "problem"),
    [
        ("", "Enter your email address."),
        ("not-an-address", "right format"),
        ("ann@octree.example\r\nBcc: x@evil.example", "on one line"),
        ("zoë@octree.example", "before the @"),
        ("a" * 250 + "@x.example", "254 characters or fewer"),
        ("<script>@x.example", "right format"),
        ("'; DROP TABLE contact;--@x.example", "right format"),
    ],
)
def test_a_bad_address_is_refused_with_the_reason(client, lenient, email, problem):
    response = subscribe(client, email=email)
    assert response.status_code == 400 and problem in response.text
    assert not db.session.scalars(db.select(Contact)).all()


@pytest.mark.parametrize(
    "topics",
    [[], ["events", "<script>"], ["events' OR 1=1 --"], ["{{ 7*7 }}"], ["EVENTS"], ["x" * 5000]],
)
def test_topics_must_be_chosen_from_the_list(client, lenient, topics):
    response = subscribe(client, topics=topics)
    assert response.status_code == 400
    assert (
        "Choose at least one" in response.text or "Choose from the topics listed" in response.text
    )
    assert "<script>" not in response.text and "OR 1=1" not in response.text
    assert not db.session.scalars(db.select(Consent)).all()


def test_no_single_topic_box_is_announced_as_required(client):
    """At least one topic is needed, not each: no box carries `required`, which a screen reader
    reads out for every one of them."""
    page = client.get("/subscribe").text
    boxes = re.findall(r'<input[^>]*name="topics"[^>]*>', page)
    assert len(boxes) == 3 and not any("required" in box for box in boxes)
    assert "Choose at least one thing to hear about." in subscribe(client, topics=[]).text


def test_a_name_that_is_too_long_or_missing_is_refused(client, lenient):
    assert "120 characters or fewer" in subscribe(client, name="x" * 121).text
    assert "Enter your name." in subscribe(client, name=None).text


def test_a_bot_filling_the_hidden_field_is_refused(client):
    assert subscribe(client, website="http://spam.example").status_code == 400
    assert not db.session.scalars(db.select(Consent)).all()


def test_a_post_without_or_with_a_wrong_form_token_is_refused(client):
    data = {"name": "Ann", "email": ANN, "topics": "events"}
    assert client.post("/subscribe", data=data).status_code == 400
    assert client.post("/subscribe", data={**data, "csrf_token": "forged"}).status_code == 400
    assert not db.session.scalars(db.select(Contact)).all()


def test_the_subscribe_form_is_rate_limited_per_address(app, client):
    app.config["SUBSCRIBE_LIMIT_PER_ADDRESS"] = "2 per hour"
    assert subscribe(client).status_code == 302
    for _ in range(3):  # sent back for a missing field: nobody emailed, so not counted
        assert subscribe(client, email="").status_code == 400
    assert subscribe(client, email="b@example.com").status_code == 302
    refused = subscribe(client, email="c@example.com")
    assert refused.status_code == 429
    # Said in words, with when to try again: not the limiter's "2 per 1 hour".
    assert "Try again in 60 minutes" in refused.text or "Try again in 59 minutes" in refused.text
    assert "per 1 hour" not in refused.text
    assert client.get("/subscribe").status_code == 200  # reading the form is not counted


# --- confirmation links -------------------------------------------------------------------------


def test_a_wrong_tampered_expired_or_unconfirmed_link_is_a_plain_404(client, smtp_server):
    subscribe(client)
    confirm = link_in(delivered(smtp_server)[0], "/subscribe/confirm/")
    token = confirm.rsplit("/", 1)[1]
    tampered = token[:-1] + ("B" if token.endswith("A") else "A")
    for bad in ("gone", "x" * 43, tampered, token.upper(), "x" * 500, "%00"):
        assert client.get(f"/subscribe/confirm/{bad}").status_code == 404
        assert client.get(f"/preferences/{bad}").status_code == 404
    assert client.get(confirm.replace("/subscribe/confirm/", "/preferences/")).status_code == 404
    stored = db.session.scalars(db.select(MarketingToken)).one()
    stored.created_at = utcnow() - timedelta(days=8)
    db.session.commit()
    assert client.get(confirm).status_code == 404
    expired = client.post(confirm, data={"csrf_token": csrf_token(client, "/subscribe")})
    assert expired.status_code == 404
    assert all(c is None for c in db.session.scalars(db.select(Consent.confirmed_at)))


def test_confirming_needs_the_form_token(client, smtp_server):
    subscribe(client)
    confirm = link_in(delivered(smtp_server)[0], "/subscribe/confirm/")
    assert client.post(confirm).status_code == 400
    assert client.post(confirm, data={"csrf_token": "forged"}).status_code == 400
    assert all(c is None for c in db.session.scalars(db.select(Consent.confirmed_at)))


def test_a_link_for_someone_elses_subscription_or_preferences_is_refused(client, smtp_server):
    subscribe(client)
    victim = db.session.scalars(db.select(SubscriptionRequest)).one()
    nonce = links.new_nonce()
    for kind, ref in (("confirm_subscription", victim.id), ("preferences", victim.contact_id)):
        marker = links.marker_for(nonce, kind, str(ref))
        with pytest.raises(links.LinkRefused):
            links.mint_links([marker], "mallory@attacker.example", nonce)
        with pytest.raises(links.LinkRefused):
            links.mint_links([links.marker_for(nonce, kind, "not-a-number")], ANN, nonce)
        assert links.mint_links([marker], ANN.upper(), nonce)[0].startswith("http")
    db.session.rollback()
    # Through the worker: a message to Mallory naming Ann's request is parked, never sent.
    mail.enqueue(key="forged", to="mallory@attacker.example", subject="x",
                 template="members/confirm_subscription",
                 context={"subscription": victim, "topics": [EVENTS], "confirm_days": 7})  # fmt: skip
    db.session.commit()
    deliver_due()
    forged = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.key == "forged")).one()
    assert forged.status == MessageStatus.failed and "not for this recipient" in forged.last_error
    assert all(m["To"] != "mallory@attacker.example" for m in smtp_server.messages)


# --- preferences --------------------------------------------------------------------------------


def subscribed(client, smtp_server, **changes) -> str:
    """Subscribe and confirm; the preferences link from the welcome email."""
    subscribe(client, **changes)
    confirm = link_in(delivered(smtp_server)[0], "/subscribe/confirm/")
    assert post_form(client, confirm, {}).status_code == 302
    return link_in(delivered(smtp_server, 1)[0], "/preferences/")


def test_choosing_topics_takes_effect_at_once_with_the_time(client, smtp_server):
    preferences = subscribed(client, smtp_server, topics=["events", "newsletter", "surveys"])
    page = client.get(preferences)
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.text.count("checked") == 3 and ANN in page.text
    saved = post_form(client, preferences, {"topics": ["events"], "save": "Save my choices"})
    assert saved.status_code == 302
    assert "Your choices are saved" in client.get(saved.headers["Location"]).text
    ann = contact()
    assert status_of(ann, EVENTS).basis is Basis.consent
    assert status_of(ann, NEWSLETTER).basis is Basis.opted_out
    assert status_of(ann, SURVEYS).basis is Basis.opted_out
    opted = {o.topic: o.created_at for o in db.session.scalars(db.select(TopicOptOut))}
    assert set(opted) == {NEWSLETTER, SURVEYS} and all(opted.values())
    withdrawn = dict(db.session.execute(db.select(Consent.purpose, Consent.withdrawn_at)).all())
    assert withdrawn["events"] is None and withdrawn["newsletter"] and withdrawn["surveys"]
    assert client.get(preferences).text.count("checked") == 1
    # Ticking a box shown unticked, through a link to their own address, is consent again.
    post_form(client, preferences, {"topics": ["events", "newsletter"], "save": "Save"})
    assert status_of(contact(), NEWSLETTER).basis is Basis.consent
    assert status_of(contact(), NEWSLETTER).consent.source == "preferences page"
    assert {o.topic for o in db.session.scalars(db.select(TopicOptOut))} == {SURVEYS}


def test_a_box_shown_ticked_is_no_consent_and_one_shown_unticked_is(
    client, smtp_server, make_event
):
    # A soft opt-in, at a business whose name says no legal form (so no corporate basis).
    booked = register(client, make_event(), booker_email=ANN, business_name="Octree Trading")
    assert booked.status_code == 302
    members.confirm_addresses([contact().id])  # and they came: the address is theirs
    mail.enqueue(key="news", to=ANN, subject="News", template="members/subscribed",
                 context={"topics": [EVENTS], "preferences_for": contact().id,
                          "events_url": "http://127.0.0.1:5000/"},
                 kind=MailKind.marketing)  # fmt: skip
    db.session.commit()
    deliver_due()
    news = next(m for m in smtp_server.messages if m["Subject"] == "News")
    preferences = link_in(news, "/preferences/")
    page = client.get(preferences).text
    ticked = set(re.findall(r'value="(\w+)"[^>]*checked|checked[^>]*value="(\w+)"', page))
    assert {a or b for a, b in ticked} == {"events", "newsletter"}  # what they may be sent now
    post_form(client, preferences, {"topics": ["events", "newsletter"], "save": "Save"})
    assert not db.session.scalars(db.select(Consent)).all()  # shown ticked, left ticked: nothing
    assert status_of(contact(), EVENTS).basis is Basis.soft_opt_in
    post_form(client, preferences, {"topics": ["events", "surveys"], "save": "Save"})
    consent = db.session.scalars(db.select(Consent)).one()
    assert (consent.purpose, consent.source) == ("surveys", "preferences page")
    assert consent.wording == "Send me emails about: Surveys about business needs"
    assert consent.confirmed_at is not None
    assert status_of(contact(), SURVEYS).basis is Basis.consent
    assert status_of(contact(), NEWSLETTER).basis is Basis.opted_out


def test_unsubscribing_from_everything_suppresses_at_once_and_can_be_undone(client, smtp_server):
    preferences = subscribed(client, smtp_server)
    gone = post_form(client, preferences, {"topics": ["events"], "unsubscribe": "Unsubscribe"})
    assert gone.status_code == 302
    page = client.get(gone.headers["Location"])
    assert "You are unsubscribed" in page.text and page.text.count("checked") == 0
    assert mail.is_suppressed(ANN)
    assert status_of(contact(), EVENTS).basis is Basis.suppressed
    assert all(c.withdrawn_at for c in db.session.scalars(db.select(Consent)))
    # Marketing queued now is not sent.
    mail.enqueue(key="news", to=ANN, subject="News", template="test_message",
                 kind=MailKind.marketing)  # fmt: skip
    db.session.commit()
    deliver_due()
    news = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.key == "news")).one()
    assert news.status == MessageStatus.suppressed
    # Choosing a topic on the same page ends their own unsubscribe (the link proves the address).
    post_form(client, preferences, {"topics": ["events"], "save": "Save"})
    assert not mail.is_suppressed(ANN)
    assert status_of(contact(), EVENTS).basis is Basis.consent  # given again, on the page
    assert status_of(contact(), NEWSLETTER).basis is Basis.opted_out


def test_subscribing_again_lifts_ones_own_unsubscribe_but_never_a_bounce(
    client, lenient, smtp_server
):
    mail.suppress(ANN)
    mail.suppress("bounced@example.com", reason="bounce")
    db.session.commit()
    subscribe(client)
    subscribe(client, email="bounced@example.com")
    sent = delivered(smtp_server)  # the confirmation is transactional: it goes to both
    assert sorted(m["To"] for m in sent) == [ANN, "bounced@example.com"]
    for message in sent:
        assert post_form(client, link_in(message, "/subscribe/confirm/"), {}).status_code == 302
    reasons = db.session.scalars(db.select(Suppression.reason)).all()
    assert reasons == ["bounce"]
    assert status_of(contact(), EVENTS).basis is Basis.consent
    assert status_of(contact("bounced@example.com"), EVENTS).basis is Basis.bounced


def test_subscribing_ends_an_earlier_opt_out_of_the_topics_confirmed(client, smtp_server):
    ann = Contact(name="Ann", email=ANN)
    db.session.add(ann)
    db.session.flush()
    db.session.add_all(TopicOptOut(contact_id=ann.id, topic=t) for t in (EVENTS, SURVEYS))
    db.session.commit()
    subscribed(client, smtp_server, topics=["events"])
    assert {o.topic for o in db.session.scalars(db.select(TopicOptOut))} == {SURVEYS}
    assert status_of(contact(), EVENTS).basis is Basis.consent


def test_the_preferences_page_refuses_a_topic_not_listed(client, smtp_server):
    preferences = subscribed(client, smtp_server)
    refused = post_form(client, preferences, {"topics": ["<b>x</b>"], "save": "Save"})
    assert refused.status_code == 400 and "Choose from the topics listed" in refused.text
    assert "<b>x</b>" not in refused.text
    assert not db.session.scalars(db.select(TopicOptOut)).all()
    assert client.post(preferences, data={"unsubscribe": "1"}).status_code == 400  # no token
    assert not mail.is_suppressed(ANN)
