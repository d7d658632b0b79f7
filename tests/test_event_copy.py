"""Staff copy an event to a new date: a draft with the same details, agenda (times shifted
exactly, DST-safe), speakers, resources and survey questions; never its bookings, delegates,
check-ins or survey answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chamber.events.models import AgendaItem, Event, EventStatus
from chamber.extensions import db
from chamber.registration.models import Booking, Delegate
from chamber.resources.models import AgendaItemResource, EventResource, Resource, ResourceStatus
from chamber.surveys import services as surveys
from chamber.surveys.models import Invitation, Survey, SurveyStatus
from tests.factories import acting_staff, make_booking
from tests.support import post_form

# 08:00 GMT on Wednesday 20 March 2030; the clocks go forward on 31 March.
WINTER = datetime(2030, 3, 20, 8, 0, tzinfo=UTC)


def resource(title: str) -> Resource:
    made = Resource(
        slug=f"r-{uuid.uuid4().hex[:8]}", title=title, status=ResourceStatus.published,
        url="https://x.test/",
    )  # fmt: skip
    db.session.add(made)
    db.session.flush()
    return made


@pytest.fixture
def seminar(make_event, make_item, make_speaker) -> Event:
    event = make_event(
        slug="cyber",
        title="Cyber seminar",
        starts_at=WINTER,
        ends_at=WINTER + timedelta(hours=4),
        registration_opens_at=WINTER - timedelta(days=30),
        registration_closes_at=WINTER - timedelta(hours=15),  # 17:00 the day before
        venue_town="Stevenage",
        venue_postcode="SG1 1HS",
    )
    tony, sam = make_speaker(name="Tony Richardson"), make_speaker(name="Sam Second")
    make_item(event, minutes_in=0, length=30, title="Welcome")
    talk = make_item(event, minutes_in=60, length=45, title="Keynote", speakers=[sam, tony])
    guide, checklist = resource("NCSC guide"), resource("Checklist")
    db.session.add(EventResource(event_id=event.id, resource_id=guide.id, position=0))
    db.session.add(AgendaItemResource(agenda_item_id=talk.id, resource_id=checklist.id))
    surveys.create_survey(event, by=acting_staff())
    db.session.commit()
    make_booking(event, "ann@example.com", "bob@example.com", checked_in=True)
    return event


def copy_path(event: Event) -> str:
    return f"/staff/events/{event.id}/copy"


def copy(client, event: Event, **data):
    fields = {"title": "Cyber seminar: spring", "starts_at": "2030-04-10T08:30", **data}
    return post_form(client, copy_path(event), fields)


def the_copy() -> Event:
    return db.session.scalars(db.select(Event).where(Event.slug != "cyber")).one()


def test_the_copy_form_offers_the_title_marked_as_a_copy_and_the_same_start(
    seminar, organiser_client
):
    show = organiser_client.get(f"/staff/events/{seminar.id}").text
    assert f'href="{copy_path(seminar)}">Copy' in show
    page = organiser_client.get(copy_path(seminar)).text
    assert 'value="Cyber seminar (copy)"' in page and 'value="2030-03-20T08:00"' in page


def test_a_copy_is_a_draft_with_the_agenda_shifted_exactly_across_the_change_of_clocks(
    seminar, organiser_client
):
    response = copy(organiser_client, seminar)
    assert response.status_code == 302
    made = the_copy()
    assert response.headers["Location"].endswith(f"/staff/events/{made.id}")
    assert made.status == EventStatus.draft and made.sequence == 0
    assert made.slug == "cyber-seminar-spring" and made.previous_starts_at is None
    # 08:30 BST is 07:30 UTC; four hours long as before; the talks keep their local times from
    # the start (the keynote an hour after it, at 09:30 BST), though an hour of UTC moved.
    assert made.starts_at == datetime(2030, 4, 10, 7, 30, tzinfo=UTC)
    assert made.ends_at - made.starts_at == timedelta(hours=4)
    times = {i.title: (f"{i.local_start:%H:%M}", f"{i.local_end:%H:%M}") for i in made.agenda_items}
    assert times == {"Welcome": ("08:30", "09:00"), "Keynote": ("09:30", "10:15")}
    assert made.registration_closes_at == datetime(2030, 4, 9, 16, 30, tzinfo=UTC)  # 17:30 BST
    keynote = next(i for i in made.agenda_items if i.title == "Keynote")
    assert [s.name for s in keynote.speakers] == ["Sam Second", "Tony Richardson"]
    assert (made.venue_town, made.venue_postcode, made.capacity) == ("Stevenage", "SG1 1HS", 80)


def test_a_copy_keeps_the_resources_and_the_survey_questions_but_nothing_people_did(
    seminar, organiser_client
):
    original_survey = surveys.survey_for_event(seminar.id)
    ann = db.session.scalars(db.select(Delegate).where(Delegate.event_id == seminar.id)).first()
    db.session.add(
        Invitation(survey_id=original_survey.id, delegate_id=ann.id, email=ann.email_normalised)
    )
    db.session.commit()
    assert copy(organiser_client, seminar).status_code == 302
    made = the_copy()
    pack = db.session.scalars(db.select(EventResource).where(EventResource.event_id == made.id))
    assert [r.resource.title for r in pack] == ["NCSC guide"]
    keynote = next(i for i in made.agenda_items if i.title == "Keynote")
    talk = db.session.scalars(
        db.select(AgendaItemResource).where(AgendaItemResource.agenda_item_id == keynote.id)
    )
    assert [r.resource.title for r in talk] == ["Checklist"]
    survey = surveys.survey_for_event(made.id)
    assert survey.status == SurveyStatus.draft and survey.id != original_survey.id
    assert survey.title == "Your feedback on Cyber seminar: spring"
    assert [(q.kind, q.text, q.choices) for q in survey.questions] == [
        (q.kind, q.text, q.choices) for q in original_survey.questions
    ]
    assert survey.send_at - made.ends_at == original_survey.send_at - seminar.ends_at
    for model, column in ((Booking, Booking.event_id), (Delegate, Delegate.event_id)):
        assert db.session.scalar(db.select(db.func.count(model.id)).where(column == made.id)) == 0
    assert (
        db.session.scalar(
            db.select(db.func.count(Invitation.id)).where(Invitation.survey_id == survey.id)
        )
        == 0
    )
    # The source keeps all of its own.
    assert (
        db.session.scalar(
            db.select(db.func.count(Delegate.id)).where(Delegate.event_id == seminar.id)
        )
        == 2
    )


def test_an_event_without_a_survey_is_copied_without_one(make_event, organiser_client):
    bare = make_event(starts_at=WINTER, slug="bare")
    assert copy(organiser_client, bare).status_code == 302
    made = db.session.scalars(db.select(Event).where(Event.slug != "bare")).one()
    assert db.session.scalar(db.select(Survey).where(Survey.event_id == made.id)) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": ""}, "Enter the copy&#39;s title."),
        ({"title": "x" * 201}, "Title of the copy must be 200 characters or fewer."),
        ({"title": "Two\r\nlines"}, "line"),
        ({"starts_at": ""}, "Enter when the copy starts."),
        ({"starts_at": "tomorrow"}, "starts"),
        ({"starts_at": "2030-03-31T01:30"}, "the clocks go forward"),
        ({"starts_at": "2016-07-04T08:00"}, "The copy would already have ended"),
    ],
)
def test_bad_input_comes_back_with_the_reason_and_copies_nothing(
    seminar, organiser_client, data, message
):
    page = copy(organiser_client, seminar, **data)
    assert page.status_code == 400
    assert message in page.text
    assert db.session.scalar(db.select(db.func.count(Event.id))) == 1
    assert db.session.scalar(db.select(db.func.count(AgendaItem.id))) == 2
    assert db.session.scalar(db.select(db.func.count(Survey.id))) == 1


def test_a_hostile_title_is_stored_as_typed_and_shown_as_text(seminar, organiser_client):
    title = "<script>alert(1)</script> {{ 7*7 }} ' OR 1=1 -- Café"
    assert copy(organiser_client, seminar, title=title).status_code == 302
    made = the_copy()
    assert made.title == title
    page = organiser_client.get(f"/staff/events/{made.id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in page and "<script>alert" not in page


def test_forged_or_unauthorised_copies_are_refused(seminar, organiser_client, checkin_client):
    fields = {"title": "Forged", "starts_at": "2030-04-10T08:30"}
    assert organiser_client.post(copy_path(seminar), data=fields).status_code == 400  # no CSRF
    assert checkin_client.get(copy_path(seminar)).status_code == 403
    assert organiser_client.get("/staff/events/9999/copy").status_code == 404
    assert db.session.scalar(db.select(db.func.count(Event.id))) == 1
