"""Every HTML page of the app, found by walking its URL map, for the HTML checker and axe.

`site_pages(app)` loads the demo data set (the seed seminar's past and upcoming editions, their
bookings, survey, results and resource library), adds what the demo has no secret link for, and
returns a `Walk`: every GET route of the URL map as a page to check (who looks at it, its address,
and for a form its error state), or in `EXCLUDED` with the reason it is not a page. A route added
later is walked without anyone remembering to add it here; one whose URL variable cannot be
filled, or that is neither walked nor excluded, fails the test that walks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from flask import Flask, url_for
from werkzeug.routing import AnyConverter, Rule

from chamber.auth.models import Role, StaffUser
from chamber.campaigns.models import Campaign
from chamber.core.times import utcnow
from chamber.demo import load_demo
from chamber.demo.resources import ILLUSTRATIVE_CHECKS
from chamber.directory import merging
from chamber.directory.models import Segment
from chamber.events.models import AgendaItem, Event, EventStatus, Speaker
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.models import OutboxMessage
from chamber.mail.services import _mint_unsubscribe_link
from chamber.members import import_jobs, subscriptions
from chamber.members.models import Contact, MarketingTopic, Organisation, OrganisationTag
from chamber.members.services import normalise_organisation_name
from chamber.registration import event_messages, notifications
from chamber.registration.checkin_services import new_checkin_token
from chamber.registration.models import Delegate, DelegateStatus, MessageAudience
from chamber.registration.places import new_place_token
from chamber.registration.services import new_manage_token
from chamber.resources import health
from chamber.resources.models import Resource, ResourceStatus
from chamber.surveys import services as surveys
from chamber.surveys.dispatch import new_survey_token
from chamber.surveys.models import Invitation, Question, Survey
from chamber.surveys.models import Response as SurveyResponse
from tests.factories import acting_staff, make_booking

# GET routes that answer something other than an HTML page, with the reason. Anything else must be
# walked: an HTML page (200), or a form page. Keep this short and honest.
# Forms whose every field may be left empty, so a blank post is a choice, not an error: no error
# state to check (the page itself is walked).
NOTHING_TO_REFUSE = {
    "staff_users.security",  # the one box "require two-factor sign-in", unticked: the rule is off
}

EXCLUDED = {
    "static": "stylesheets, scripts and images, not pages",
    "core.theme_css": "the chamber's colours as a stylesheet",
    "core.healthz": "JSON for load balancers",
    "api.events": "JSON: tests/test_api_schemathesis.py checks it against its OpenAPI document",
    "api.event": "JSON: tests/test_api_schemathesis.py",
    "api.openapi": "JSON: the OpenAPI document itself",
    "calendar.feed": "an iCalendar feed: tests/test_calendar_files.py checks it with ical.js",
    "calendar.event_ics": "an iCalendar file (ical.js)",
    "calendar.agenda_ics": "an iCalendar file (ical.js)",
    "calendar.item_ics": "an iCalendar file (ical.js)",
    "registration.places.calendar": "an iCalendar file (ical.js)",
    "checkin_code.checkin_code": "a PNG image (the check-in QR code)",
    "manage_registrations.export": "a CSV download",
    "survey_results.export": "a CSV download",
    "directory_imports.report": "a CSV download (the refused rows of an import)",
    "directory.export_organisations": "a CSV download",
    "directory.export_contacts": "a CSV download",
    "registration.booked": "redirects to the event page unless a booking was just made; the "
    "booking tests show it",
    "members.check_email": "redirects to the subscribe form unless it was just sent; "
    "tests/test_subscribe.py shows it",
    "checkin.counts": "JSON: the door page's live counts",
    "directory_segments.count": "JSON: the segment builder's live count",
    "directory_segments.export": "a CSV download",
    "campaigns.progress": "JSON: a sending campaign's figures, for its page's polling script",
    "campaigns.preview_html": "a campaign's email HTML, shown in the preview's sandboxed frames: "
    "email HTML is written for mail programs, not checked as a web page",
    "outbox.html_body": "an email's own HTML as it was sent, shown in a sandboxed frame: email "
    "HTML is written for mail programs, not checked as a web page",
    "event_comms.message_preview": "a message's email HTML, shown in a sandboxed frame, as "
    "outbox.html_body",
    "audit.export": "a CSV download (the audit trail)",
    "auth.second_factor": "redirects to the login page unless a password was just given; "
    "tests/test_sign_in.py shows it",
    "auth.enrol_at_sign_in": "redirects to the login page unless a password was just given while "
    "two-factor sign-in is required; tests/test_sign_in.py shows it",
    "auth.reset_password": "a 404 without a live link from a reset email; tests/test_sign_in.py "
    "shows it",
}
# Served as a download (Content-Disposition: attachment): the HTML checker reads it, but a
# browser saves it rather than showing it, so axe does not.
DOWNLOADS = {"resources.pack_download"}
# Preferred members of `any(...)` URL variables.
FIXED_URL_VALUES = {"kind": "link"}


@dataclass(frozen=True)
class Page:
    endpoint: str
    path: str
    role: Role | None  # None: nobody logged in
    submit_empty: bool = False  # post the page's form empty, to see its error state


@dataclass
class Walk:
    pages: list[Page] = field(default_factory=list)
    logins: dict[Role, StaffUser] = field(default_factory=dict)
    unwalked: list[str] = field(default_factory=list)  # GET routes neither walked nor excluded


def _first(model, *where):
    found = db.session.scalars(db.select(model).where(*where).limit(1)).first()
    assert found is not None, f"the demo has no {model.__name__} {where}"
    return found


def url_values(app: Flask) -> dict[str, object]:
    """The demo, loaded and committed, and a value for every URL variable the app's routes take."""
    load_demo(app)
    # The demo's check history is on the hour; a real run's clock has microseconds.
    health.record_finished_run(list(ILLUSTRATIVE_CHECKS), at=utcnow(), trigger="command")
    db.session.flush()
    upcoming = _first(Event, Event.status == EventStatus.published, Event.ends_at > utcnow())
    past_survey = _first(Survey)
    delegate = _first(
        Delegate, Delegate.event_id == upcoming.id, Delegate.status == DelegateStatus.confirmed
    )
    booking = delegate.booking
    notifications.confirmation(upcoming, delegate)  # the demo sends no mail: one for the outbox
    db.session.flush()
    past_survey.closes_at = None  # still open, so that its form is walked too
    answered = db.select(SurveyResponse.invitation_id)
    invitation = _first(
        Invitation, Invitation.survey_id == past_survey.id, Invitation.id.not_in(answered)
    )
    # The demo's survey has been sent, so its questions can no longer change: a draft for those,
    # on an event of its own (the upcoming edition keeps none, for the "create a survey" form).
    later = Event(
        slug="walk-later", title="Cyber crime: a year on", summary="A follow-up.",
        venue_name=upcoming.venue_name, venue_address=upcoming.venue_address,
        starts_at=upcoming.starts_at + timedelta(days=365),
        ends_at=upcoming.ends_at + timedelta(days=365),
        capacity=40, business_limit=3, status=EventStatus.published,
    )  # fmt: skip
    db.session.add(later)
    db.session.flush()
    draft = surveys.create_survey(later, by=acting_staff())
    # "Send now" asks first only where it can send: a draft survey on an event that has ended,
    # with someone who came.
    earlier = Event(
        slug="walk-earlier", title="Cyber crime: the first one", summary="Where it began.",
        venue_name=upcoming.venue_name, venue_address=upcoming.venue_address,
        starts_at=upcoming.starts_at - timedelta(days=730),
        ends_at=upcoming.ends_at - timedelta(days=730),
        capacity=40, business_limit=3, status=EventStatus.published,
    )  # fmt: skip
    db.session.add(earlier)
    db.session.flush()
    make_booking(earlier, "walk.came@example.com", checked_in=True, commit=False)
    sendable = surveys.create_survey(earlier, by=acting_staff())
    db.session.flush()
    # A spreadsheet checked by a dry run: its page lists each row and why one was refused.
    upload = import_jobs.create_job(
        "members.csv",
        "Company;Contact name;Email;Employees\r\nOctree Ltd;Tony Richardson;tony@octree.example;12\r\n"
        "Café Bleu;Zoë;zoe@cafe.example;lots\r\n".encode(),
    )
    import_jobs.save_mapping(upload, import_jobs.suggested_mapping(upload), None)
    import_jobs.start(upload, dry_run=True)
    subscribing = subscriptions.subscribe(
        subscriptions.SubscribeDetails(
            "Sam Walk", "walk.subscriber@example.com", "", [MarketingTopic.events]
        )
    )
    # A draft message to the upcoming edition's delegates: its check page with the preview.
    note = event_messages.save_draft(
        upcoming, None,
        event_messages.MessageDraft(MessageAudience.confirmed, "Parking on the day",
                                    "The car park is **free**: give your registration."),
        by=acting_staff(),
    )  # fmt: skip
    values = {
        "event_message_id": note.id,
        "job_id": upload.id,
        "slug": upcoming.slug,
        "event_id": upcoming.id,
        "item_id": _first(AgendaItem, AgendaItem.event_id == upcoming.id).id,
        "speaker_id": _first(Speaker).id,
        "user_id": _first(StaffUser, StaffUser.role == Role.organiser).id,
        "message_id": _first(OutboxMessage).id,
        "delegate_id": delegate.id,
        "survey_id": past_survey.id,
        "question_id": _first(Question, Question.survey_id == past_survey.id).id,
        "resource_id": _first(Resource).id,
        "segment_id": _first(Segment).id,
        "campaign_id": _first(Campaign, Campaign.started_at.is_not(None)).id,
        "campaigns.edit": {"campaign_id": _first(Campaign, Campaign.started_at.is_(None)).id},
        "campaigns.confirm_send": {
            "campaign_id": _first(Campaign, Campaign.started_at.is_(None)).id
        },
        "campaigns.schedule": {"campaign_id": _first(Campaign, Campaign.started_at.is_(None)).id},
        # Per endpoint, where a URL variable means something else there.
        "resources.show": {
            "slug": _first(Resource, Resource.status == ResourceStatus.published).slug
        },
        "surveys.thanks": {
            "token": new_survey_token(_first(Invitation, Invitation.id.in_(answered)))
        },
        "manage_surveys.add_question": {"survey_id": draft.id},
        "members.confirm_page": {
            "token": _token_of(
                subscriptions._mint_confirm_link(subscribing.contact.email, str(subscribing.id))
            )
        },
        "members.preferences": {
            "token": _token_of(
                subscriptions._mint_preferences_link(
                    subscribing.contact.email, str(subscribing.contact_id)
                )
            )
        },
        "manage_surveys.confirm_send_now": {"survey_id": sendable.id},
        "directory_segments.left_out": {"reason": "no_basis"},
        "campaigns.left_out": {"reason": "no_basis"},
        "manage_surveys.edit_question": {
            "survey_id": draft.id,
            "question_id": draft.questions[0].id,
        },
        "token": {
            # One URL variable name, several kinds of secret: each route's own, below.
            "registration": new_manage_token(booking),
            "places": new_place_token(delegate),
            "surveys": new_survey_token(invitation),
            "checkin": new_checkin_token(delegate),
            "mail": _mint_unsubscribe_link(invitation.email, "").rsplit("/", 1)[-1],
        },
    }
    values.update(_directory_values(booking.organisation, delegate.contact))
    db.session.commit()
    return values


def _directory_values(business: Organisation, person: Contact) -> dict[str, object]:
    """The directory's pages at their fullest: a member business with tags and notes and a merge
    in its history; a duplicate of it and of a person, for the merge pages' previews."""
    business.is_member, business.membership_tier, business.notes = True, "Patron", "Sponsor."
    business.tags = [OrganisationTag(tag="board"), OrganisationTag(tag="sponsor 2027")]
    twins = [
        Organisation(name=f"{business.name} {n}", name_normalised=normalise_organisation_name(f"{business.name} {n}"),
                     size_band=business.size_band, sector="IT", website="www.example.com")
        for n in (1, 2)
    ]  # fmt: skip
    person_twin = Contact(name=person.name, email=f"walk.{person.email}", job_title="Director")
    db.session.add_all([*twins, person_twin])
    db.session.flush()
    merging.merge_organisations(business.id, twins[1].id, by=acting_staff())
    # The person's page with its bounce notice and the form to lift it.
    mail.suppress(person.email, reason="bounce", detail="550 5.1.1 <x@example.com>: User unknown")
    return {
        "organisation_id": business.id,
        "contact_id": person.id,
        # Walked once more with a query string: the merge pages with their preview (GET only,
        # since posting that page's form as it stands would merge).
        "with_query": {
            "directory.merge_organisation": {"removed": twins[0].id, "q": "walk"},
            "directory.merge_contact": {"removed": person_twin.id, "q": "walk"},
        },
    }


def _token_of(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _token_for(rule: Rule, tokens: dict[str, str]) -> str:
    if rule.endpoint.startswith("registration.places."):
        return tokens["places"]
    return tokens[rule.endpoint.split(".", 1)[0]]


def path_for(app: Flask, rule: Rule, values: dict[str, object]) -> str:
    filled = {}
    own = values.get(rule.endpoint, {})
    for name in rule.arguments:
        converter = rule._converters.get(name)
        if name in own:
            filled[name] = own[name]
        elif name == "token":
            filled[name] = _token_for(rule, values["token"])
        elif name in values:
            filled[name] = values[name]
        elif isinstance(converter, AnyConverter):
            preferred = FIXED_URL_VALUES.get(name)
            filled[name] = preferred if preferred in converter.items else sorted(converter.items)[0]
        else:
            raise AssertionError(
                f"{rule.rule}: no value for <{name}>; add one to tests/page_walk.py url_values"
            )
    with app.test_request_context():
        return url_for(rule.endpoint, **filled)


def _role_for(rule: Rule) -> Role | None:
    if rule.rule.startswith("/staff") and rule.endpoint != "auth.login":
        return Role.admin  # the admin sees every staff page
    return None


def site_pages(app: Flask, make_staff) -> Walk:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    stale = sorted((set(EXCLUDED) | DOWNLOADS) - endpoints)
    assert not stale, f"tests/page_walk.py names routes the app no longer has: {stale}"
    walk = Walk()
    values = url_values(app)
    walk.logins[Role.admin] = make_staff(Role.admin, email="walk.admin@example.com", name="Ada")
    walk.logins[Role.checkin] = make_staff(Role.checkin, email="walk.door@example.com", name="Dee")
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint in EXCLUDED:
            continue
        path = path_for(app, rule, values)
        role = _role_for(rule)
        walk.pages.append(Page(rule.endpoint, path, role))
        if "POST" in rule.methods and rule.endpoint not in NOTHING_TO_REFUSE:
            walk.pages.append(Page(rule.endpoint, path, role, submit_empty=True))
        if rule.endpoint in ("staff.dashboard", "checkin.index"):
            walk.pages.append(Page(rule.endpoint, path, Role.checkin))  # the door's own view
        if query := values["with_query"].get(rule.endpoint):
            walk.pages.append(Page(rule.endpoint, f"{path}?{urlencode(query)}", role))
    return walk
