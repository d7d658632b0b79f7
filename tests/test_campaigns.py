"""Campaigns: compose, the audience before sending, sending in the worker (once per recipient,
however often it runs), the lawful basis checked again as each message goes, progress, the report
in a fixed number of queries, attribution of bookings, hostile input, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chamber.campaigns import queries, sending, services
from chamber.campaigns.models import Campaign, CampaignRecipient, CampaignStatus, LeftOut
from chamber.core.transactions import unit_of_work
from chamber.directory.models import Segment
from chamber.extensions import db
from chamber.mail import delivery
from chamber.mail import services as mail
from chamber.mail.delivery import deliver_due
from chamber.mail.models import MessageStatus, OutboxMessage
from chamber.members import marketing
from chamber.members import services as members
from chamber.members.models import Contact, LegalForm, MarketingTopic, SizeBand
from chamber.registration.models import Booking
from chamber.worker import Worker
from tests.factories import acting_staff
from tests.support import count_queries, csrf_token, post_form
from tests.test_registration import form as booking_form


def person(email: str, business: str | None, legal_form: LegalForm | None = None, **fields):
    organisation = None
    if business:
        organisation = members.find_or_create_organisation(
            name=business, size_band=fields.pop("size_band", SizeBand.small)
        )
        organisation.legal_form = legal_form or LegalForm.limited_company
        if "is_member" in fields:
            organisation.is_member = fields.pop("is_member")
        if "sector" in fields:
            organisation.sector = fields.pop("sector")
    contact = members.find_or_create_contact(
        email=email, name=email.split("@")[0].title(), organisation=organisation, confirmed=True
    )
    db.session.flush()
    return contact


@pytest.fixture
def directory(app):
    """Two who may be sent events marketing, and one left out for each reason."""
    people = {
        "ann": person("ann@octree.example", "Octree Ltd", is_member=True, sector="IT"),
        "bob": person("bob@bakery.example", "Bakery Ltd", size_band=SizeBand.micro),
        "sole": person("sole@trader.example", "Sole Trader", LegalForm.sole_trader),
        "gone": person("gone@octree.example", "Octree Ltd"),
        "bounce": person("bounce@octree.example", "Octree Ltd"),
        "quiet": person("quiet@octree.example", "Octree Ltd"),
    }
    mail.suppress("gone@octree.example")
    mail.suppress("bounce@octree.example", reason="bounce")
    marketing.opt_out(people["quiet"], [MarketingTopic.events])
    db.session.add(Segment(name="Everyone", filters={}))
    db.session.commit()
    return people


def segment_id() -> int:
    return db.session.scalar(db.select(Segment.id).where(Segment.name == "Everyone"))


def compose(client, **changes) -> Campaign:
    data = {
        "subject": "Cyber crime seminar: book your places",
        "preview_text": "Seven speakers, one morning",
        "body": "Join us for **practical** advice.",
        "event_id": "",
        "survey_url": "",
        "segment_id": str(segment_id()),
        "topic": "events",
        **changes,
    }
    response = post_form(client, "/staff/campaigns/new", data)
    assert response.status_code == 302, response.text
    return db.session.scalars(db.select(Campaign).order_by(Campaign.id.desc())).first()


def send(client, campaign: Campaign):
    path = f"/staff/campaigns/{campaign.id}/send"
    response = post_form(client, path, {})
    assert response.status_code == 302, response.text
    db.session.refresh(campaign)


def messages(campaign: Campaign) -> dict[str, MessageStatus]:
    rows = db.session.execute(
        db.select(OutboxMessage.to_normalised, OutboxMessage.status).where(
            OutboxMessage.key.startswith(f"campaign:{campaign.id}:contact:")
        )
    )
    return dict(rows.all())


def worker(app) -> Worker:
    return Worker(app, worker_id="w1", echo=lambda line: None)


# --- the whole path --------------------------------------------------------------------------------


def test_compose_see_the_audience_send_deliver_and_read_the_report(
    app, organiser_client, directory, make_event
):
    event = make_event(title="Cyber crime seminar 2027")
    campaign = compose(organiser_client, event_id=str(event.id))
    assert campaign.status is CampaignStatus.draft

    page = organiser_client.get(f"/staff/campaigns/{campaign.id}")
    assert "<strong>2</strong> people would receive it" in page.text
    for label in ("1 hard bounce", "1 unsubscribed or suppressed", "1 opted out of the topic",
                  "1 no lawful basis"):  # fmt: skip
        assert label in page.text
    left_out = organiser_client.get(f"/staff/campaigns/{campaign.id}/left-out/no_basis")
    assert "sole@trader.example" in left_out.text and "ann@octree" not in left_out.text

    check = organiser_client.get(f"/staff/campaigns/{campaign.id}/send")
    assert "Send it now" in check.text and "<strong>2</strong>" in check.text
    send(organiser_client, campaign)
    assert campaign.status is CampaignStatus.sending
    assert messages(campaign) == {}  # the segment is resolved by the worker, not the request

    worker(app).run_once()
    db.session.expire_all()
    assert messages(campaign) == {
        "ann@octree.example": MessageStatus.sent,
        "bob@bakery.example": MessageStatus.sent,
    }
    recorded = dict(
        db.session.execute(
            db.select(Contact.email, CampaignRecipient.left_out)
            .join(Contact, Contact.id == CampaignRecipient.contact_id)
            .where(CampaignRecipient.campaign_id == campaign.id)
        ).all()
    )
    assert recorded == {
        "ann@octree.example": None, "bob@bakery.example": None,
        "sole@trader.example": LeftOut.no_basis, "gone@octree.example": LeftOut.unsubscribed,
        "bounce@octree.example": LeftOut.bounced, "quiet@octree.example": LeftOut.opted_out,
    }  # fmt: skip
    worker(app).run_once()  # the next round sees every message handled
    db.session.refresh(campaign)
    assert campaign.status is CampaignStatus.sent and campaign.finished_at is not None

    message = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.to_normalised == "ann@octree.example")
    ).one()
    assert message.kind.value == "marketing"
    assert "Dear Ann" in message.text_body and "<strong>practical</strong>" in message.html_body
    assert f"/events/{event.slug}/register?campaign={campaign.id}" in message.text_body
    assert f"/events/{event.slug}.ics" in message.text_body
    assert "Cyber crime seminar 2027" in message.html_body and "80 places left" in message.text_body

    report = organiser_client.get(f"/staff/campaigns/{campaign.id}")
    assert '<strong data-figure="sent">2</strong> delivered' in report.text
    assert '<strong data-figure="left_out">4</strong> left out' in report.text
    # Who was left out, by rule, with how many each (a rule nobody fell under is not listed).
    assert (
        ">1 hard bounce</a>" in report.text and ">1 unsubscribed or suppressed</a>" in report.text
    )
    assert "archived</a>" not in report.text
    # Its times in one zone, the chamber's (it was sent at once, not scheduled in another).
    assert "Sending started</dt><dd>" in report.text and "(Europe/London)" in report.text
    assert " UTC" not in report.text


def test_a_booking_from_the_campaigns_link_records_the_campaign(
    app, client, organiser_client, directory, make_event
):
    event = make_event()
    campaign = compose(organiser_client, event_id=str(event.id))
    draft = compose(organiser_client, subject="Not sent yet")
    send(organiser_client, campaign)

    form_page = client.get(f"/events/{event.slug}/register?campaign={campaign.id}")
    assert f'name="campaign" type="hidden" value="{campaign.id}"' in form_page.text
    path = f"/events/{event.slug}/register"
    made = post_form(client, path, booking_form(campaign=str(campaign.id)))
    assert made.status_code == 302
    for n, reference in enumerate((str(draft.id), "999999", "abc", "1' OR 1=1", "9" * 40, "")):
        response = post_form(
            client, path,
            booking_form(campaign=reference, booker_email=f"b{n}@other.example",
                         business_name=f"Other {n}", **{"delegates-0-email": f"d{n}@other.example"}),
        )  # fmt: skip
        assert response.status_code == 302, reference
    campaigns = db.session.scalars(db.select(Booking.campaign_id).order_by(Booking.id)).all()
    assert campaigns == [campaign.id, None, None, None, None, None, None]

    report = queries.report(campaign)
    assert (report.bookings, report.delegates) == (1, 1)
    membership = report.breakdowns[0].rows
    assert membership == {"Member": [0, 0, 1, 1]}, membership


# --- exactly once ----------------------------------------------------------------------------------


def test_queueing_twice_or_after_a_lost_chunk_queues_each_recipient_once(
    app, organiser_client, directory
):
    campaign = compose(organiser_client)
    send(organiser_client, campaign)
    assert sending.queue_chunk(campaign.id, size=1) == (1, 0)  # ann
    # A worker killed after queueing, before its cursor moved: the next does the chunk again.
    with unit_of_work():
        db.session.execute(db.update(Campaign).values(queued_through=0, queued_all_at=None))
    first = sending.send_due()
    second = sending.send_due()  # a second worker, or the same job retried
    db.session.expire_all()
    assert (first.queued, second.queued) == (2, 0)
    assert set(messages(campaign)) == {"ann@octree.example", "bob@bakery.example"}
    assert db.session.scalar(db.select(db.func.count(CampaignRecipient.id))) == 6


def test_people_who_join_the_segment_after_composing_are_sent_it(app, organiser_client, directory):
    campaign = compose(organiser_client)
    person("late@newco.example", "Newco Ltd")
    db.session.commit()
    send(organiser_client, campaign)
    sending.send_due()
    assert "late@newco.example" in messages(campaign)


# --- scheduling ------------------------------------------------------------------------------------


def test_a_campaign_scheduled_at_a_local_time_starts_then(app, organiser_client, directory):
    campaign = compose(organiser_client)
    path = f"/staff/campaigns/{campaign.id}/schedule"
    response = post_form(
        organiser_client, path, {"send_at": "2030-07-01T09:00", "zone": "Europe/London"}
    )
    assert response.status_code == 302
    db.session.refresh(campaign)
    assert campaign.status is CampaignStatus.scheduled
    assert campaign.scheduled_for.isoformat() == "2030-07-01T08:00:00+00:00"  # BST
    assert (
        "1 July 2030, 09:00 (Europe/London)"
        in organiser_client.get(f"/staff/campaigns/{campaign.id}").text
    )
    sending.send_due(now=campaign.scheduled_for - timedelta(minutes=1))
    db.session.expire_all()
    assert messages(campaign) == {}
    sending.send_due(now=campaign.scheduled_for)
    db.session.expire_all()
    assert len(messages(campaign)) == 2


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("2030-03-31T01:30", "does not exist"),  # the clocks go forward
        ("2020-01-01T09:00", "in the future"),
        ("tomorrow", "real date and time"),
        ("", "Enter the date"),
    ],
)
def test_a_time_that_cannot_be_used_is_refused_on_the_form(
    app, organiser_client, directory, typed, problem
):
    campaign = compose(organiser_client)
    path = f"/staff/campaigns/{campaign.id}/schedule"
    response = post_form(organiser_client, path, {"send_at": typed, "zone": "Europe/London"})
    assert response.status_code == 400 and problem in response.text
    if not typed:  # one message for an empty field, not "must be a real date" as well
        assert "real date and time" not in response.text
    db.session.refresh(campaign)
    assert campaign.status is CampaignStatus.draft


# --- hostile input ---------------------------------------------------------------------------------


HOSTILE_BODY = (
    "<script>alert(1)</script> {{ config }} {% raw %}x{% endraw %} "
    "[[link:00000000000000000000000000000000:unsubscribe:]] [click](javascript:alert(1)) "
    "<img src=x onerror=alert(1)> '; DROP TABLE contact; -- Zoë 🙂"
)


def test_hostile_text_is_data_in_the_email_and_the_preview(app, organiser_client, directory):
    campaign = compose(
        organiser_client, body=HOSTILE_BODY, subject="{{ 7*7 }} <b>Hi</b> [[link:x]]"
    )
    assert campaign.subject == "{{ 7*7 }} <b>Hi</b> [[link:x]]"
    preview = organiser_client.get(f"/staff/campaigns/{campaign.id}/preview/email.html")
    assert preview.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert "<script" not in preview.text and 'href="javascript' not in preview.text
    assert "<img" not in preview.text and "&lt;script&gt;" in preview.text
    send(organiser_client, campaign)
    worker(app).run_once()
    message = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.to_normalised == "ann@octree.example")
    ).one()
    assert message.status is MessageStatus.sent
    assert message.subject == "{{ 7*7 }} <b>Hi</b> [[link:x]]"
    assert "{{ config }}" in message.text_body and "49" not in message.subject
    assert "<script" not in message.html_body and 'href="javascript' not in message.html_body
    assert "[[link:00000000000000000000000000000000:unsubscribe:]]" in message.text_body
    assert "DROP TABLE contact" in message.text_body and "Zoë 🙂" in message.text_body
    assert db.session.scalar(db.select(db.func.count(Contact.id))) == 6


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("subject", "Hello\r\nBcc: all@example.com", "must be on one line"),
        ("subject", "Hello\x07", "not allowed"),
        ("subject", "", "Enter a subject"),
        ("subject", "x" * 151, "150 characters or fewer"),
        ("preview_text", "a\nb", "must be on one line"),
        ("body", "bad \x00 byte", "not allowed"),
        ("survey_url", "javascript:alert(1)", "must be a web address"),
        ("survey_url", "http://[", "must be a web address"),  # urlsplit raises on it
        ("survey_url", "http://]x[", "must be a web address"),
        ("survey_url", "https://user:pass@survey.example/", "must be a web address"),
        ("event_id", "999999", "Not a valid choice"),
        ("segment_id", "abc", "Invalid Choice"),
        ("topic", "everything", "Not a valid choice"),
    ],
)
def test_bad_input_comes_back_with_the_reason_and_stores_nothing(
    app, organiser_client, directory, field, value, problem
):
    data = {"subject": "Hello", "segment_id": str(segment_id()), "topic": "events", field: value}
    response = post_form(organiser_client, "/staff/campaigns/new", data)
    assert response.status_code == 400 and problem in response.text
    assert db.session.scalar(db.select(db.func.count(Campaign.id))) == 0


# --- the report ------------------------------------------------------------------------------------


def test_the_report_costs_the_same_queries_however_many_recipients(
    app, organiser_client, directory, make_event
):
    def sent_campaign(extra: int) -> Campaign:
        for n in range(extra):
            person(f"p{extra}-{n}@firm{n}.example", f"Firm {n} Ltd", sector=f"Sector {n}")
        db.session.commit()
        campaign = compose(organiser_client, subject=f"To {extra} more")
        send(organiser_client, campaign)
        worker(app).run_once()
        return campaign

    small, large = sent_campaign(1), sent_campaign(30)
    db.session.expire_all()
    with count_queries() as few:
        queries.report(small)
    with count_queries() as many:
        report = queries.report(large)
    assert len(few) == len(many) <= 5
    assert report.progress.sent == 33 and len(report.breakdowns[2].rows) >= 30


# --- who may ---------------------------------------------------------------------------------------


def test_the_door_role_cannot_see_or_send_campaigns(app, checkin_client, directory):
    with app.test_request_context():
        campaign = services.save_campaign(
            services.CampaignDetails("Hello", segment_id=segment_id()), by=acting_staff()
        )
        db.session.commit()
    assert checkin_client.get("/staff/campaigns/").status_code == 403
    token = csrf_token(checkin_client, "/staff/")
    response = checkin_client.post(
        f"/staff/campaigns/{campaign.id}/send", data={"csrf_token": token}
    )
    assert response.status_code == 403
    db.session.refresh(campaign)
    assert campaign.status is CampaignStatus.draft


def test_sending_without_the_form_token_is_refused(app, organiser_client, directory):
    campaign = compose(organiser_client)
    for data in ({}, {"csrf_token": "forged"}):
        response = organiser_client.post(f"/staff/campaigns/{campaign.id}/send", data=data)
        assert response.status_code == 400
    db.session.refresh(campaign)
    assert campaign.status is CampaignStatus.draft


def test_a_test_goes_to_the_staff_user_marked_test_and_is_no_recipient(
    app, organiser_client, organiser, directory
):
    campaign = compose(organiser_client)
    response = post_form(
        organiser_client, f"/staff/campaigns/{campaign.id}/test", {},
        token_from=f"/staff/campaigns/{campaign.id}",
    )  # fmt: skip
    assert response.status_code == 302
    test = db.session.scalars(db.select(OutboxMessage)).one()
    assert test.to_normalised == organiser.email and test.subject.startswith("[Test] ")
    deliver_due("w1")
    db.session.refresh(test)
    assert test.status is MessageStatus.sent
    assert db.session.scalar(db.select(db.func.count(CampaignRecipient.id))) == 0


# --- at send time, pause, resume, cancel -----------------------------------------------------------


def queued_campaign(client) -> Campaign:
    campaign = compose(client)
    send(client, campaign)
    sending.send_due()
    db.session.expire_all()
    assert set(messages(campaign)) == {"ann@octree.example", "bob@bakery.example"}
    return campaign


def test_someone_who_opts_out_or_unsubscribes_after_queueing_gets_nothing(
    app, organiser_client, directory
):
    campaign = queued_campaign(organiser_client)
    mail.suppress("ann@octree.example")  # one click in an earlier email
    marketing.opt_out(directory["bob"], [MarketingTopic.events])  # the preferences page
    db.session.commit()
    deliver_due("w1")
    db.session.expire_all()
    assert messages(campaign) == {
        "ann@octree.example": MessageStatus.suppressed,
        "bob@bakery.example": MessageStatus.suppressed,
    }
    reason = db.session.scalar(
        db.select(OutboxMessage.last_error).where(
            OutboxMessage.to_normalised == "bob@bakery.example"
        )
    )
    assert "Opted out" in reason
    assert queries.progress(campaign.id).withheld == 2


def test_the_check_at_send_time_costs_three_queries_however_large_the_batch(
    app, organiser_client, directory
):
    campaign = queued_campaign(organiser_client)
    batch = db.session.scalars(db.select(OutboxMessage)).all()
    assert len(batch) == 2
    with count_queries() as one:
        assert sending.withhold_unlawful(batch[:1]) == {}
    with count_queries() as all_of_it:
        assert sending.withhold_unlawful(batch) == {}
    assert len(one) == len(all_of_it) == 3
    # Each reads the batch's own rows by key: no subquery over the whole suppression list or the
    # directory's businesses, which the rule's SQL form reads once a query.
    assert not any(
        "FROM suppression" in statement or "FROM organisation" in statement
        for statement in all_of_it
    )
    # (by an IN list on SQLite, one array on PostgreSQL: `core.dialects.one_of`)
    assert all("IN (" in statement or "= ANY (" in statement for statement in all_of_it)
    assert campaign.status is CampaignStatus.sending


def test_pause_holds_the_rest_and_resume_sends_it(app, organiser_client, directory):
    campaign = queued_campaign(organiser_client)
    show = f"/staff/campaigns/{campaign.id}"
    paused = post_form(organiser_client, f"{show}/pause", {}, token_from=show)
    assert paused.status_code == 302
    db.session.refresh(campaign)
    assert campaign.status is CampaignStatus.paused
    deliver_due("w1")
    sending.send_due()
    db.session.expire_all()
    assert set(messages(campaign).values()) == {MessageStatus.pending}
    assert post_form(organiser_client, f"{show}/resume", {}, token_from=show).status_code == 302
    deliver_due("w1")
    sending.send_due()
    db.session.expire_all()
    assert set(messages(campaign).values()) == {MessageStatus.sent}
    db.session.refresh(campaign)
    assert campaign.status is CampaignStatus.sent
    # Pausing what has finished is refused with a message, never a 500.
    again = post_form(organiser_client, f"{show}/pause", {}, token_from=show, follow_redirects=True)
    assert "Only a campaign that is sending can be paused." in again.text


def test_paused_before_the_worker_starts_nobody_is_queued(app, organiser_client, directory):
    campaign = compose(organiser_client)
    send(organiser_client, campaign)
    with app.test_request_context():
        services.pause(campaign)
        db.session.commit()
    sending.send_due()
    assert messages(campaign) == {}


def test_cancel_asks_first_then_stops_every_message_not_yet_sent(app, organiser_client, directory):
    campaign = queued_campaign(organiser_client)
    path = f"/staff/campaigns/{campaign.id}/cancel"
    assert "cannot be undone" in organiser_client.get(path).text
    assert post_form(organiser_client, path, {}).status_code == 302
    deliver_due("w1")
    sending.send_due()
    db.session.expire_all()
    assert set(messages(campaign).values()) == {MessageStatus.cancelled}
    db.session.refresh(campaign)
    assert campaign.status is CampaignStatus.cancelled
    assert queries.progress(campaign.id).cancelled == 2


@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_messages_a_worker_held_when_staff_paused_or_cancelled_are_not_sent_when_handed_back(
    app, organiser_client, directory, smtp_server, action
):
    """A worker had claimed the campaign's messages (the batch in hand, or one readied beside
    it) when staff paused or cancelled it, and stopped before sending them: they are handed back
    as pending, which the pause and the cancel did not see. When claimed again, the send-time
    check holds them back again (paused) or withholds them (cancelled): none goes."""
    campaign = queued_campaign(organiser_client)
    claim = delivery.claim_batch("w1", 10)
    assert claim is not None
    show = f"/staff/campaigns/{campaign.id}"

    def press(button: str) -> None:
        assert (
            post_form(organiser_client, f"{show}/{button}", {}, token_from=show).status_code == 302
        )

    press(action)
    db.session.expire_all()
    assert set(messages(campaign).values()) == {MessageStatus.sending}  # on their way: untouched
    with unit_of_work():  # the worker stops before sending them: handed back, due at once
        db.session.execute(
            db.update(OutboxMessage)
            .where(OutboxMessage.claimed_by == claim)
            .values(status=MessageStatus.pending, claimed_by=None, lease_until=None)
        )
    deliver_due("w2", look_ahead=False)
    db.session.expire_all()
    assert smtp_server.handler.recipients == []
    if action == "pause":
        assert set(messages(campaign).values()) == {MessageStatus.pending}
        assert all(m.is_held for m in db.session.scalars(db.select(OutboxMessage)))
        press("resume")
        deliver_due("w2", look_ahead=False)
        db.session.expire_all()
        assert set(messages(campaign).values()) == {MessageStatus.sent}
        assert len(smtp_server.handler.recipients) == 2
    else:
        assert set(messages(campaign).values()) == {MessageStatus.suppressed}
        reasons = set(db.session.scalars(db.select(OutboxMessage.last_error)))
        assert reasons == {"Not sent: the campaign was cancelled"}


# --- a segment narrowed to a marketing status -------------------------------------------------------


def test_a_segment_narrowed_to_a_marketing_status_is_the_campaigns_audience(
    app, organiser_client, directory
):
    from chamber.core.times import utcnow
    from chamber.members.models import Consent

    now = utcnow()
    db.session.add(
        Consent(contact_id=directory["sole"].id, purpose="events", wording="Yes",
                source="staff note", given_at=now, confirmed_at=now)
    )  # fmt: skip
    db.session.add(Segment(name="Consented", filters={"status": ["consent"]}))
    db.session.commit()
    chosen = db.session.scalar(db.select(Segment.id).where(Segment.name == "Consented"))
    campaign = compose(organiser_client, segment_id=str(chosen))
    audience = queries.audience_now(campaign)
    # The corporate subscribers are not chosen; the suppressed, bounced and opted-out are still
    # counted as left out, with their reasons.
    assert audience.included == 1
    assert audience.left_out_total == 3
    send(organiser_client, campaign)
    sending.send_due()
    db.session.commit()
    assert set(messages(campaign)) == {"sole@trader.example"}


# --- the event page keeps the campaign reference ----------------------------------------------------


def test_the_event_pages_book_link_from_a_campaign_email_keeps_the_campaign_for_the_booking(
    app, client, organiser_client, directory, make_event
):
    import re

    event = make_event()
    campaign = compose(organiser_client, event_id=str(event.id))
    send(organiser_client, campaign)
    # The email's event link: ?campaign=<id> on the event page.
    page = client.get(f"/events/{event.slug}?campaign={campaign.id}")
    assert page.status_code == 200
    book = re.search(r'<p class="book"><a class="button" href="([^"]+)"', page.text).group(1)
    assert book == f"/events/{event.slug}/register?campaign={campaign.id}"
    form_page = client.get(book)
    assert f'name="campaign" type="hidden" value="{campaign.id}"' in form_page.text
    made = post_form(client, f"/events/{event.slug}/register",
                     booking_form(campaign=str(campaign.id)), token_from=book)  # fmt: skip
    assert made.status_code == 302
    assert db.session.scalars(db.select(Booking.campaign_id)).all() == [campaign.id]
    # Without a campaign, or with anything but a number, the link carries nothing.
    for reference in ("", "abc", "1' OR 1=1", "9" * 40, "٣", "<b>"):
        other = client.get(f"/events/{event.slug}", query_string={"campaign": reference})
        link = re.search(r'<p class="book"><a class="button" href="([^"]+)"', other.text).group(1)
        assert link == f"/events/{event.slug}/register", reference


# --- the directory's histories show the campaigns received -----------------------------------------


def test_the_directory_shows_the_campaigns_each_contact_and_organisation_received(
    app, organiser_client, directory
):
    campaign = compose(organiser_client, subject="Seminar <b>invitation</b>")
    send(organiser_client, campaign)
    sending.send_due()
    db.session.commit()
    deliver_due("w1")
    ann, gone = directory["ann"], directory["gone"]
    page = organiser_client.get(f"/staff/directory/contacts/{ann.id}").text
    assert "Campaigns received" in page
    assert "Seminar &lt;b&gt;invitation&lt;/b&gt;</a>" in page
    assert f'href="/staff/campaigns/{campaign.id}"' in page and ": Sent</li>" in page
    left = organiser_client.get(f"/staff/directory/contacts/{gone.id}").text
    assert ": Left out: Unsubscribed or suppressed</li>" in left
    organisation = organiser_client.get(
        f"/staff/directory/organisations/{ann.organisation_id}"
    ).text
    # Octree Ltd: ann is sent it; gone, bounce and quiet are left out.
    assert "<strong>1</strong> campaign received" in organisation
    assert "sent to 1 of its people, 3 left out by the marketing rules" in organisation
    # One query for the campaigns, however many there are.
    path = f"/staff/directory/organisations/{ann.organisation_id}"
    contact_path = f"/staff/directory/contacts/{ann.id}"
    with count_queries() as few:
        organiser_client.get(path)
    with count_queries() as contact_few:
        organiser_client.get(contact_path)
    for n in range(3):
        more = compose(organiser_client, subject=f"More {n}")
        send(organiser_client, more)
        sending.send_due()
        db.session.commit()
    with count_queries() as many:
        assert "<strong>4</strong> campaigns received" in organiser_client.get(path).text
    assert len(many) == len(few)
    with count_queries() as contact_many:
        assert organiser_client.get(contact_path).text.count(": Queued</li>") == 3
    assert len(contact_many) == len(contact_few)


# --- the command: chamber campaigns list / send / progress ------------------------------------------


def scheduled(client) -> Campaign:
    campaign = compose(client, subject="Newsletter: December")
    post_form(client, f"/staff/campaigns/{campaign.id}/schedule",
              {"send_at": "2030-07-01T09:00", "zone": "Europe/London"})  # fmt: skip
    db.session.refresh(campaign)
    assert campaign.status is CampaignStatus.scheduled
    return campaign


def test_the_command_lists_campaigns_with_status_segment_and_when(
    app, runner, organiser_client, directory
):
    draft = compose(organiser_client, subject="A draft\u202eevil")
    due = scheduled(organiser_client)
    result = runner.invoke(args=["campaigns", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == [str(due.id), "Scheduled"]
    assert "to “Everyone” (events), due 2030-07-01 09:00 BST" in result.output
    assert f"{draft.id}  Draft" in result.output and "not sent" in result.output
    assert "A draftevil" in result.output and "\u202e" not in result.output  # typed text is data
    only = runner.invoke(args=["campaigns", "list", "--status", "draft"])
    assert "Newsletter: December" not in only.output and "A draft" in only.output
    assert "No campaigns." in runner.invoke(args=["campaigns", "list", "--status", "sent"]).output


def test_the_command_starts_a_scheduled_campaign_now_and_queues_it_once(
    app, runner, organiser_client, directory
):
    campaign = scheduled(organiser_client)
    result = runner.invoke(args=["campaigns", "send", str(campaign.id)])
    assert result.exit_code == 0, result.output
    assert "Queued 2 message(s), 4 left out by the marketing rules" in result.output
    db.session.expire_all()
    assert campaign.status is CampaignStatus.sending and campaign.scheduled_for is None
    assert set(messages(campaign)) == {"ann@octree.example", "bob@bakery.example"}
    # Started already: a second start is refused and queues nothing more.
    again = runner.invoke(args=["campaigns", "send", str(campaign.id)])
    assert again.exit_code != 0 and "is sending, not scheduled" in again.output
    sending.send_due()
    assert len(messages(campaign)) == 2

    progress = runner.invoke(args=["campaigns", "progress", str(campaign.id)])
    assert progress.exit_code == 0, progress.output
    assert "Sending: 2 queued: 0 sent, 2 waiting, 0 failed" in progress.output
    assert "4 left out" in progress.output
    deliver_due("w1")
    sending.send_due()
    done = runner.invoke(args=["campaigns", "progress", str(campaign.id), "--follow"])
    assert "Sent: 2 queued: 2 sent, 0 waiting" in done.output  # --follow stops once it is sent


def test_the_command_can_leave_queueing_to_the_worker(app, runner, organiser_client, directory):
    campaign = scheduled(organiser_client)
    result = runner.invoke(args=["campaigns", "send", str(campaign.id), "--no-queue"])
    assert result.exit_code == 0 and "The worker will queue" in result.output
    assert messages(campaign) == {}
    sending.send_due()
    assert len(messages(campaign)) == 2


def test_the_command_refuses_a_draft_or_an_unknown_campaign(
    app, runner, organiser_client, directory
):
    draft = compose(organiser_client)
    result = runner.invoke(args=["campaigns", "send", str(draft.id)])
    assert result.exit_code != 0 and "is draft, not scheduled" in result.output
    db.session.expire_all()
    assert draft.status is CampaignStatus.draft and messages(draft) == {}
    for command in ("send", "progress"):
        unknown = runner.invoke(args=["campaigns", command, "999999"])
        assert unknown.exit_code != 0 and "There is no campaign 999999." in unknown.output
        junk = runner.invoke(args=["campaigns", command, "1; DROP TABLE campaign"])
        assert junk.exit_code == 2
