"""Messages to an event's delegates: the audiences, writing and checking (preview with a real
recipient's values, a test to oneself, the count), sending once per delegate even when submitted
twice, the record on the event, and what a hostile or forged request gets."""

from __future__ import annotations

import re

import pytest

from chamber.core.times import utcnow
from chamber.extensions import db
from chamber.mail.models import MailKind, OutboxMessage
from chamber.registration import event_messages
from chamber.registration.models import (
    DelegateStatus,
    EventMessage,
    EventMessageStatus,
    MessageAudience,
)
from tests.factories import at, make_booking
from tests.support import csrf_token, post_form


@pytest.fixture
def seminar(make_event):
    """An event with two confirmed delegates (one checked in), one waiting, one cancelled."""
    event = make_event(starts_at=at(-1, 9), capacity=2)  # yesterday: who came is known
    came = make_booking(event, "ann@came.example", "bob@came.example", "wai@came.example")
    came.confirmed[0].checked_in_at = event.starts_at
    db.session.commit()
    gone = make_booking(event, "gone@left.example", business="Left Ltd").waitlisted[0]
    gone.status = DelegateStatus.cancelled
    db.session.commit()
    return event


def message_form(**changes) -> dict:
    return {"audience": "confirmed", "subject": "Slides", "body": "Thank you, **all**.", **changes}


def outbox_keys(prefix: str) -> list[str]:
    return sorted(
        db.session.scalars(db.select(OutboxMessage.key).where(OutboxMessage.key.like(f"{prefix}%")))
    )


def write(client, event, **changes) -> EventMessage:
    response = post_form(client, f"/staff/events/{event.id}/messages/new", message_form(**changes))
    assert response.status_code == 302, response.text
    return db.session.scalars(db.select(EventMessage).order_by(EventMessage.id.desc())).first()


def test_each_audience_counts_whom_it_should(seminar):
    assert event_messages.audience_counts(seminar.id) == {
        MessageAudience.confirmed: 2,
        MessageAudience.waitlisted: 1,
        MessageAudience.checked_in: 1,
        MessageAudience.no_show: 1,
    }
    names = {
        audience: [d.email_normalised for d in event_messages.recipients(seminar.id, audience)]
        for audience in MessageAudience
    }
    assert names[MessageAudience.checked_in] == ["ann@came.example"]
    assert names[MessageAudience.no_show] == ["bob@came.example"]
    assert names[MessageAudience.waitlisted] == ["wai@came.example"]


def test_an_anonymised_place_is_in_no_audience(seminar):
    """Erased (or past its retention), a place has only a made-up address: nobody to write to."""
    for place in event_messages.recipients(seminar.id, MessageAudience.confirmed):
        if place.email_normalised == "ann@came.example":
            place.anonymised_at = utcnow()
    db.session.commit()
    assert event_messages.audience_counts(seminar.id) == {
        MessageAudience.confirmed: 1,
        MessageAudience.waitlisted: 1,
        MessageAudience.checked_in: 0,
        MessageAudience.no_show: 1,
    }
    confirmed = event_messages.recipients(seminar.id, MessageAudience.confirmed)
    assert [d.email_normalised for d in confirmed] == ["bob@came.example"]


def test_write_check_test_and_send_once_to_every_delegate_in_the_audience(
    organiser_client, seminar, organiser
):
    message = write(organiser_client, seminar, audience="no_show")
    check = organiser_client.get(f"/staff/events/{seminar.id}/messages/{message.id}")
    assert check.status_code == 200
    assert "1 person" in check.text and "Bob" in check.text  # the real first recipient
    preview = organiser_client.get(f"/staff/events/{seminar.id}/messages/{message.id}/preview")
    assert "Dear Bob" in preview.text and "<strong>all</strong>" in preview.text
    assert "sandbox" in preview.headers["Content-Security-Policy"]
    assert "[place link]" in preview.text or "[manage link]" in preview.text

    tested = post_form(
        organiser_client,
        f"/staff/events/{seminar.id}/messages/{message.id}/test",
        {},
        token_from=f"/staff/events/{seminar.id}/messages/{message.id}",
    )
    assert tested.status_code == 302
    test_mail = db.session.scalar(
        db.select(OutboxMessage).where(OutboxMessage.key.like("event-message-test:%"))
    )
    assert test_mail.to_address == organiser.email
    assert test_mail.subject == "[Test] Slides"
    assert "[[link:" not in test_mail.html_body  # no private link in a copy for someone else

    path = f"/staff/events/{seminar.id}/messages/{message.id}/send"
    token = csrf_token(organiser_client, f"/staff/events/{seminar.id}/messages/{message.id}")
    first = organiser_client.post(path, data={"csrf_token": token, "expected": "1"})
    again = organiser_client.post(path, data={"csrf_token": token, "expected": "1"})
    assert first.status_code == 302 and again.status_code == 302
    bob = event_messages.recipients(seminar.id, MessageAudience.no_show)[0]
    assert outbox_keys("event-message:") == [f"event-message:{message.id}:{bob.id}"]
    sent = db.session.scalar(
        db.select(OutboxMessage).where(OutboxMessage.key.like("event-message:%"))
    )
    assert sent.kind == MailKind.transactional and sent.to_address == "bob@came.example"
    db.session.refresh(message)
    assert (message.status, message.recipients, message.sent_by_email) == (
        EventMessageStatus.sent, 1, organiser.email,
    )  # fmt: skip
    page = organiser_client.get(f"/staff/events/{seminar.id}").text
    assert "Slides" in page and "no-shows" in page and organiser.email in page
    # A sent message can no longer change or be discarded.
    edit = organiser_client.get(f"/staff/events/{seminar.id}/messages/{message.id}/edit")
    assert edit.status_code == 302
    discard = organiser_client.post(
        f"/staff/events/{seminar.id}/messages/{message.id}/discard", data={"csrf_token": token}
    )
    assert discard.status_code == 302
    assert db.session.get(EventMessage, message.id) is not None


def test_a_changed_audience_is_shown_again_before_anything_is_sent(organiser_client, seminar):
    message = write(organiser_client, seminar)
    check = f"/staff/events/{seminar.id}/messages/{message.id}"
    response = post_form(organiser_client, f"{check}/send", {"expected": "5"}, token_from=check)
    assert response.status_code == 400
    assert "it is now 2" in response.text
    assert outbox_keys("event-message:") == []
    db.session.refresh(message)
    assert message.status == EventMessageStatus.draft
    for bad in ("", "-1", "two", "9" * 50):
        response = post_form(organiser_client, f"{check}/send", {"expected": bad}, token_from=check)
        assert response.status_code == 400
    assert outbox_keys("event-message:") == []


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": ""},
        {"subject": "Hello\r\nBcc: everyone@example.com"},
        {"subject": "x" * 151},
        {"body": ""},
        {"body": "x" * 10001},
        {"body": "bad \x00 byte"},
        {"audience": "everyone"},
        {"audience": ""},
    ],
)
def test_bad_messages_are_refused_and_nothing_is_stored(organiser_client, seminar, changes):
    response = post_form(
        organiser_client, f"/staff/events/{seminar.id}/messages/new", message_form(**changes)
    )
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert db.session.scalar(db.select(db.func.count(EventMessage.id))) == 0


def test_hostile_text_stays_text(organiser_client, seminar):
    body = (
        "<script>alert(1)</script> {{ config.SECRET_KEY }} {% raw %} "
        "[[link:00000000000000000000000000000000:manage:1]] [x](javascript:alert(1)) "
        "'; DROP TABLE delegate; --"
    )
    message = write(organiser_client, seminar, subject="{{ 7*7 }} <b>hi</b>", body=body)
    check = f"/staff/events/{seminar.id}/messages/{message.id}"
    shown = organiser_client.get(check).text
    assert "<b>hi</b>" not in shown and "&lt;b&gt;hi&lt;/b&gt;" in shown
    response = post_form(organiser_client, f"{check}/send", {"expected": "2"}, token_from=check)
    assert response.status_code == 302
    sent = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("event-message:%"))
    ).all()
    assert len(sent) == 2
    for mail in sent:
        assert mail.subject == "{{ 7*7 }} <b>hi</b>"
        assert "<script>" not in mail.html_body and 'href="javascript' not in mail.html_body
        assert "{{ config.SECRET_KEY }}" in mail.text_body
        assert "[[link:00000000000000000000000000000000:manage:1]]" in mail.text_body
        assert "DROP TABLE delegate" in mail.text_body
        own_markers = re.findall(r"\[\[link:([0-9a-f]{32}):", mail.text_body)
        assert set(own_markers) - {"0" * 32} == {mail.link_nonce}  # only the template's own link
    assert db.session.scalar(db.select(db.func.count()).select_from(db.text("delegate"))) == 4


def test_forged_or_foreign_requests_change_nothing(organiser_client, seminar, make_event):
    message = write(organiser_client, seminar)
    other = make_event()
    base = f"/staff/events/{seminar.id}/messages/{message.id}"
    token = csrf_token(organiser_client, base)
    assert organiser_client.post(f"{base}/send", data={"expected": "2"}).status_code == 400
    forged = organiser_client.post(f"{base}/send", data={"csrf_token": "x", "expected": "2"})
    assert forged.status_code == 400
    foreign = f"/staff/events/{other.id}/messages/{message.id}"
    for suffix in ("", "/edit", "/preview"):
        assert organiser_client.get(f"{foreign}{suffix}").status_code == 404
    for action in ("send", "test", "discard"):
        response = organiser_client.post(
            f"{foreign}/{action}", data={"csrf_token": token, "expected": "2"}
        )
        assert response.status_code == 404
    assert outbox_keys("event-message") == []
    assert db.session.get(EventMessage, message.id).status == EventMessageStatus.draft


def test_a_draft_can_be_changed_and_discarded(organiser_client, seminar):
    message = write(organiser_client, seminar)
    edit = f"/staff/events/{seminar.id}/messages/{message.id}/edit"
    assert "Slides" in organiser_client.get(edit).text
    changed = post_form(organiser_client, edit, message_form(subject="Slides, at last"))
    assert changed.status_code == 302
    db.session.refresh(message)
    assert message.subject == "Slides, at last"
    gone = post_form(
        organiser_client,
        f"/staff/events/{seminar.id}/messages/{message.id}/discard",
        {},
        token_from=edit,
    )
    assert gone.status_code == 302
    assert db.session.scalar(db.select(db.func.count(EventMessage.id))) == 0
