"""The audit trail: an entry for each staff action that matters, written in the action's own
transaction (a refused action logs nothing; a failed sign-in is logged although its request rolls
back), no way to change or delete an entry from the app (no route; triggers in the database),
retention's purge, and the admin page: filters, pages, CSV export (itself audited), access."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from chamber.auth import audit
from chamber.auth.audit import AuditEntry
from chamber.auth.models import Role
from chamber.core.times import utcnow
from chamber.core.transactions import unit_of_work
from chamber.events.models import EventStatus
from chamber.extensions import db
from tests.factories import make_booking
from tests.support import count_queries, csrf_token, log_in, post_form
from tests.test_campaigns import compose, directory, send  # noqa: F401 - `directory` is a fixture
from tests.test_checkin import delegate_named, seminar, tap  # noqa: F401 - `seminar` is a fixture


def entries(action: str | None = None) -> list[AuditEntry]:
    query = db.select(AuditEntry).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(db.session.scalars(query))


def only(action: str) -> AuditEntry:
    found = entries(action)
    assert len(found) == 1, [(e.action, e.detail) for e in entries()]
    return found[0]


# --- signing in ---------------------------------------------------------------------------------


def test_a_sign_in_is_logged_with_who_when_and_from_where(client, organiser):
    before = utcnow()
    log_in(client, organiser)
    entry = only("sign_in")
    assert (entry.user_id, entry.user_email) == (organiser.id, "org@example.com")
    assert entry.ip_address == "127.0.0.1" and entry.user_agent.startswith("Werkzeug")
    assert before - timedelta(seconds=1) <= entry.at <= utcnow()
    assert entry.detail == "password"


def test_a_failed_sign_in_is_logged_although_the_request_rolls_back(client, organiser):
    wrong = post_form(client, "/staff/login", {"email": organiser.email, "password": "nope"})
    assert wrong.status_code == 401
    entry = only("sign_in_failed")
    assert (entry.user_id, entry.user_email, entry.detail) == (
        organiser.id, organiser.email, "wrong password",
    )  # fmt: skip


def test_a_failed_sign_in_to_no_account_keeps_nothing_typed(client):
    typed = "my secret password@example.com"
    post_form(client, "/staff/login", {"email": typed, "password": "whatever it was"})
    entry = only("sign_in_failed")
    assert entry.user_id is None and entry.user_email == ""
    assert "secret" not in repr(
        [tuple(row) for row in db.session.execute(sa.select(AuditEntry.__table__))]
    )


def test_signing_out_is_logged(organiser_client, organiser):
    post_form(organiser_client, "/staff/logout", {}, token_from="/staff/")
    assert only("sign_out").user_id == organiser.id


def test_a_hostile_user_agent_is_kept_on_one_line_and_trimmed(app, organiser):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = "Evil\r\nX-Injected: 1\x00" + "A" * 500
    log_in(client, organiser)
    agent = only("sign_in").user_agent
    assert "\r" not in agent and "\n" not in agent and "\x00" not in agent
    assert agent.startswith("Evil X-Injected: 1") and len(agent) == 200


# --- what staff do ------------------------------------------------------------------------------


def test_an_event_change_is_logged(organiser_client, organiser, make_event):
    event = make_event(status=EventStatus.draft)
    response = post_form(
        organiser_client, f"/staff/events/{event.id}/publish", {},
        token_from=f"/staff/events/{event.id}",
    )  # fmt: skip
    assert response.status_code == 302
    entry = only("event_published")
    assert (entry.object_kind, entry.object_id, entry.user_id) == (
        "event",
        str(event.id),
        organiser.id,
    )


def test_a_booking_change_is_logged(organiser_client, make_event):
    event = make_event()
    delegate = make_booking(event, "tony@octree.example").confirmed[0]
    path = f"/staff/events/{event.id}/registrations/{delegate.id}/cancel"
    assert post_form(organiser_client, path, {}).status_code == 302
    entry = only("place_cancelled")
    assert (entry.object_kind, entry.object_id) == ("delegate", str(delegate.id))
    assert "tony" not in entry.detail  # who the delegate is stays out of the log


def test_a_check_in_and_its_undoing_are_logged(checkin_client, seminar):  # noqa: F811
    tony = delegate_named("Tony Richardson")
    tap(checkin_client, seminar, tony)
    tap(checkin_client, seminar, tony)  # already in: nothing changes, nothing logged
    tap(checkin_client, seminar, tony, "undo")
    assert [(e.action, e.object_id) for e in entries() if e.object_kind == "delegate"] == [
        ("checked_in", str(tony.id)),
        ("check_in_undone", str(tony.id)),
    ]
    assert only("checked_in").user_email == "door@example.com"


def test_a_csv_export_of_personal_data_is_logged(organiser_client, make_event):
    event = make_event()
    make_booking(event, "tony@octree.example")
    response = organiser_client.get(f"/staff/events/{event.id}/registrations.csv")
    assert response.status_code == 200
    entry = only("exported")
    assert (entry.object_kind, entry.object_id, entry.detail) == (
        "event", str(event.id), "registrations CSV",
    )  # fmt: skip


def test_the_printed_door_lists_are_logged(organiser_client, make_event):
    event = make_event()
    assert organiser_client.get(f"/staff/checkin/{event.id}/sign-in-sheet").status_code == 200
    assert organiser_client.get(f"/staff/checkin/{event.id}/badges").status_code == 200
    assert [e.detail for e in entries("downloaded")] == ["sign-in sheet", "name badges"]


def test_a_campaign_send_is_logged(organiser_client, directory):  # noqa: F811
    campaign = compose(organiser_client)
    send(organiser_client, campaign)
    entry = only("campaign_sent")
    assert (entry.object_kind, entry.object_id, entry.detail) == (
        "campaign", str(campaign.id), "sent now",
    )  # fmt: skip


def test_a_staff_role_change_is_logged(admin_client, admin, organiser):
    response = post_form(
        admin_client, f"/staff/users/{organiser.id}",
        {"name": organiser.name, "role": "admin", "active": "y"},
    )  # fmt: skip
    assert response.status_code == 302
    entry = only("staff_changed")
    assert (entry.object_id, entry.detail, entry.user_id) == (
        str(organiser.id), "role organiser to admin", admin.id,
    )  # fmt: skip


def test_a_refused_action_logs_nothing(admin_client, admin):
    before = len(entries())
    refused = post_form(
        admin_client, f"/staff/users/{admin.id}", {"name": admin.name, "role": "admin"}
    )  # deactivating the last admin
    assert refused.status_code == 400 and "at least one active admin" in refused.text
    assert len(entries()) == before and entries("staff_changed") == []


def test_an_unknown_action_is_a_programming_error(app):
    with app.test_request_context(), pytest.raises(ValueError, match="unknown audit action"):
        audit.record("deleted_everything")


def test_a_detail_is_one_line_of_printable_text(app):
    with app.test_request_context():
        entry = audit.record("exported", detail="two\r\nlines\x00 and\u2028more" + "x" * 400)
    assert entry.detail.startswith("two lines and more") and len(entry.detail) == 300


# --- nobody edits or deletes it -----------------------------------------------------------------


def test_no_route_can_change_the_log(app):
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("audit.")]
    assert rules and all(rule.methods <= {"GET", "HEAD", "OPTIONS"} for rule in rules)


def _an_entry(app, **values) -> AuditEntry:
    with app.test_request_context():
        entry = audit.record("exported", detail="old", **values)
    db.session.commit()
    return entry


def test_the_database_refuses_to_update_an_entry(app):
    entry = _an_entry(app)
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(
            sa.update(AuditEntry).where(AuditEntry.id == entry.id).values(detail="rewritten")
        )
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(AuditEntry, entry.id).detail == "old"


def test_on_postgresql_the_database_refuses_to_delete_an_entry(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the DELETE trigger is PostgreSQL's (SQLite refuses UPDATE only)")
    entry = _an_entry(app)
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(sa.delete(AuditEntry).where(AuditEntry.id == entry.id))
    db.session.rollback()
    # Even the purge's own setting lets through only rows older than its cutoff.
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(
            sa.text("SELECT set_config('chamber.audit_purge_before', '2000-01-01', true)")
        )
        db.session.execute(sa.delete(AuditEntry).where(AuditEntry.id == entry.id))
    db.session.rollback()
    assert db.session.get(AuditEntry, entry.id) is not None


def test_purge_deletes_only_entries_older_than_the_cutoff(app):
    old = _an_entry(app)
    recent = _an_entry(app)
    db.session.execute(  # an entry from long ago (the trigger would refuse an UPDATE of `at`)

        sa.insert(AuditEntry),
        [{"at": utcnow() - timedelta(days=800), "user_email": "", "action": "exported",
          "object_kind": "", "object_id": "", "detail": "ancient", "ip_address": "",
          "user_agent": ""}],
    )  # fmt: skip
    db.session.commit()
    with unit_of_work():
        removed = audit.purge_older_than(audit.retention_cutoff())
    assert removed == 1
    assert [e.detail for e in entries()] == ["old", "old"]
    assert {old.id, recent.id} == {e.id for e in entries()}
    assert app.config["AUDIT_RETENTION_MONTHS"] == 24


# --- the admin page -----------------------------------------------------------------------------


def test_only_admins_see_the_log(admin_client, organiser_client, checkin_client, client):
    assert admin_client.get("/staff/audit/").status_code == 200
    assert organiser_client.get("/staff/audit/").status_code == 403
    assert checkin_client.get("/staff/audit/").status_code == 403
    assert organiser_client.get("/staff/audit/audit.csv").status_code == 403
    assert checkin_client.get("/staff/audit/audit.csv").status_code == 403
    assert client.get("/staff/audit/").headers["Location"].startswith("/staff/login")
    assert entries("exported") == []


def test_the_page_filters_by_who_action_object_and_dates(app, admin_client, admin, organiser):
    log_in(app.test_client(), organiser)
    with app.test_request_context():
        audit.record(
            "event_changed", kind="event", object_id=7, detail="marker-seven", by=organiser
        )
        audit.record("event_changed", kind="event", object_id=8, detail="marker-eight", by=admin)
    db.session.commit()

    def shown(**args) -> str:
        page = admin_client.get("/staff/audit/", query_string=args)
        assert page.status_code == 200, page.text
        return page.text

    assert "marker-seven" in shown(who="org@") and "marker-eight" not in shown(who="org@")
    assert "<td>Signed in</td>" not in shown(action="event_changed")
    seven = shown(kind="event", object_id="7")
    assert "marker-seven" in seven and "marker-eight" not in seven
    today = utcnow().date()
    assert "marker-seven" in shown(since=today.isoformat(), until=today.isoformat())
    assert "marker-seven" not in shown(since=(today + timedelta(days=2)).isoformat())
    assert "marker-seven" not in shown(until=(today - timedelta(days=2)).isoformat())
    assert (
        "<td>Signed in</td>" in shown() and "marker-seven" in shown() and "marker-eight" in shown()
    )
    assert admin_client.get("/staff/audit/").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "args",
    [
        {"who": "a\r\nb"}, {"who": "x" * 300}, {"who": "\x00"}, {"who": "%_\\"},
        {"action": "drop table"}, {"since": "yesterday"}, {"since": "2026-02-30"},
        {"since": "2026-12-05", "until": "2026-12-01"}, {"object_id": "{{7*7}}"},
        {"kind": "<script>alert(1)</script>"}, {"before": "-1"}, {"after": "99999999999"},
    ],
)  # fmt: skip
def test_strange_filters_are_answered_calmly(admin_client, args):
    response = admin_client.get("/staff/audit/", query_string=args)
    assert response.status_code in (200, 400)
    assert "<script>alert(1)" not in response.text
    if "object_id" in args:  # typed text is shown as text, never run as a template
        assert "{{7*7}}" in response.text


def test_pages_of_entries_cost_the_same_queries_however_many(app, admin_client):
    def page_queries() -> int:
        with count_queries() as statements:
            assert admin_client.get("/staff/audit/").status_code == 200
        return len(statements)

    with app.test_request_context():
        for n in range(3):
            audit.record("exported", detail=f"few {n}")
    db.session.commit()
    few = page_queries()
    with app.test_request_context():
        for n in range(70):
            audit.record("exported", detail=f"many {n}")
    db.session.commit()
    assert page_queries() == few
    page = admin_client.get("/staff/audit/")
    assert page.text.count("<tr>") == 51  # a header row and 50 entries
    assert "Older" in page.text


def test_the_csv_export_is_formula_safe_filtered_and_itself_logged(app, admin_client, admin):
    with app.test_request_context():
        audit.record("exported", kind="event", object_id=1, detail='=HYPERLINK("http://evil")')
        audit.record("event_changed", kind="event", object_id=2, detail="venue")
    db.session.commit()
    response = admin_client.get("/staff/audit/audit.csv", query_string={"action": "exported"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][0] == "When (UTC)"
    assert [row[6] for row in rows[1:]] == ['\'=HYPERLINK("http://evil")']
    logged = entries("exported")[-1]
    assert (logged.object_kind, logged.user_id) == ("audit_log", admin.id)
    assert "action=exported" in logged.detail


def test_the_page_is_in_the_admin_menu_only(admin_client, organiser_client):
    assert 'href="/staff/audit/"' in admin_client.get("/staff/").text
    assert 'href="/staff/audit/"' not in organiser_client.get("/staff/").text


def test_the_audit_log_is_private_to_the_page_cache():
    from chamber.core.pagecache import PRIVATE_TABLES

    assert {
        "audit_entry",
        "password_reset",
        "staff_recovery_code",
        "staff_policy",
    } <= PRIVATE_TABLES


def test_an_organiser_role_change_by_an_organiser_is_refused_and_not_logged(
    organiser_client, admin
):
    token = csrf_token(organiser_client, "/staff/")
    response = organiser_client.post(
        f"/staff/users/{admin.id}", data={"csrf_token": token, "name": "X", "role": "checkin"}
    )
    assert response.status_code == 403
    assert entries("staff_changed") == []
    assert db.session.get(type(admin), admin.id).role == Role.admin


def test_a_retention_of_no_months_is_refused_at_start(tmp_path):
    from chamber import create_app
    from chamber.config import ConfigError

    with pytest.raises(ConfigError, match="CHAMBER_AUDIT_RETENTION_MONTHS must be above 0"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "AUDIT_RETENTION_MONTHS": 0})


def test_a_staff_account_made_by_the_command_is_logged(runner):
    result = runner.invoke(
        args=["create-staff", "--email", "new@example.com", "--name", "Nia New", "--role", "admin",
              "--password-stdin"],
        input="violet tractor sings under seven lanterns\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    entry = only("staff_created")
    assert entry.user_id is None and entry.detail.startswith("role admin, by the chamber")


def test_directory_work_is_logged_by_record_with_no_personal_data(organiser_client):
    """Adding, changing, archiving, restoring and merging records, and recording consent or its
    withdrawal: each is an entry naming the record by its id (never a name or address)."""
    from chamber.members.models import Contact, Organisation
    from tests.test_directory import CONTACT_FORM, ORGANISATION_FORM

    base = "/staff/directory"
    for form in (ORGANISATION_FORM, {**ORGANISATION_FORM, "name": "Garden City Bakery Two"}):
        assert post_form(organiser_client, f"{base}/organisations/new", form).status_code == 302
    kept, removed = (
        SimpleNamespace(id=o.id)
        for o in db.session.scalars(db.select(Organisation).order_by(Organisation.id))
    )
    edit = f"{base}/organisations/{kept.id}/edit"
    assert (
        post_form(organiser_client, edit, {**ORGANISATION_FORM, "sector": "Bread"}).status_code
        == 302
    )
    page = f"{base}/organisations/{kept.id}"
    for action in ("archive", "restore"):
        assert (
            post_form(organiser_client, f"{page}/{action}", {}, token_from=page).status_code == 302
        )
    merge = f"{base}/organisations/{kept.id}/merge"
    assert (
        post_form(organiser_client, merge, {"removed": removed.id}, token_from=merge).status_code
        == 302
    )
    assert post_form(organiser_client, f"{base}/contacts/new", CONTACT_FORM).status_code == 302
    contact = db.session.scalars(db.select(Contact)).one()
    path = f"{base}/contacts/{contact.id}"
    consent = {"topics": ["events"], "wording": "Said yes on the phone."}
    assert (
        post_form(organiser_client, f"{path}/consent", consent, token_from=path).status_code == 302
    )
    withdrawn = organiser_client.post(
        f"{path}/withdraw-consent",
        data={
            "withdraw-csrf_token": csrf_token(organiser_client, path),
            "withdraw-topics": "events",
        },
    )
    assert withdrawn.status_code == 302
    logged = [
        (e.action, e.object_kind, e.object_id, e.detail)
        for e in entries()
        if e.object_kind in ("organisation", "contact")
    ]
    assert logged == [
        ("record_added", "organisation", str(kept.id), ""),
        ("record_added", "organisation", str(removed.id), ""),
        ("record_changed", "organisation", str(kept.id), ""),
        ("record_archived", "organisation", str(kept.id), ""),
        ("record_restored", "organisation", str(kept.id), ""),
        ("records_merged", "organisation", str(kept.id), f"organisation {removed.id} merged into {kept.id}"),
        ("record_added", "contact", str(contact.id), ""),
        ("consent_recorded", "contact", str(contact.id), "events"),
        ("consent_withdrawn", "contact", str(contact.id), "events"),
    ]  # fmt: skip
    everything = " ".join(f"{e.detail} {e.object_id}" for e in entries())
    assert "Priya" not in everything and "example.com" not in everything.lower()


def test_looking_a_person_up_is_logged_without_their_address(admin_client):
    response = post_form(admin_client, "/staff/privacy/people", {"email": "sue@octree.example"})
    assert response.status_code == 200
    entry = only("person_looked_up")
    assert entry.object_kind == "person" and "sue" not in entry.detail + entry.object_id


def test_scheduling_a_campaign_is_logged_as_such(organiser_client, directory):  # noqa: F811
    campaign = compose(organiser_client)
    path = f"/staff/campaigns/{campaign.id}/schedule"
    scheduled = post_form(
        organiser_client, path, {"send_at": "2030-07-01T09:00", "zone": "Europe/London"}
    )
    assert scheduled.status_code == 302
    entry = only("campaign_scheduled")
    assert entry.detail == "for 2030-07-01 08:00 UTC" and not entries("campaign_sent")
