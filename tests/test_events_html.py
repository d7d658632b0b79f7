"""The event pages changed for issue 17 are valid HTML by the Nu checker (vnu.jar): the event form
with its address, box and check steps, the past-event confirmations, the copy form and the public
page's address block."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from chamber.events.models import EventStatus
from tests.factories import make_booking
from tests.outside_tools import program, vnu_jar
from tests.support import post_form
from tests.test_events import EVENT_FORM

pytestmark = pytest.mark.slow


def test_the_changed_event_pages_are_valid_html(organiser_client, make_event, make_item, tmp_path):
    starts = datetime(2030, 3, 20, 9, 0, tzinfo=UTC)
    event = make_event(starts_at=starts, ends_at=starts + timedelta(hours=3),
                       venue_town="Stevenage", venue_postcode="SG1 1HS")  # fmt: skip
    make_item(event, minutes_in=60, title="Keynote")
    make_booking(event, "ann@example.com")
    past = make_event(status=EventStatus.draft, starts_at=datetime(2016, 7, 4, 8, tzinfo=UTC))
    edit = f"/staff/events/{event.id}/edit"
    moved = {**EVENT_FORM, "slug": event.slug, "starts_at": "2030-03-20T09:30",
             "ends_at": "2030-03-20T12:30", "registration_closes_at": "", "move_agenda": "y"}  # fmt: skip
    pages = {
        "public": organiser_client.get(f"/events/{event.slug}"),
        "staff": organiser_client.get(f"/staff/events/{event.id}"),
        "edit": organiser_client.get(edit),
        "check": post_form(organiser_client, edit, moved),
        "bad-postcode": post_form(organiser_client, edit, {**moved, "venue_postcode": "nope"}),
        "create-past": post_form(
            organiser_client,
            "/staff/events/new",
            {
                **EVENT_FORM,
                "starts_at": "2016-07-04T08:00",
                "ends_at": "2016-07-04T12:00",
                "registration_closes_at": "",
            },  # fmt: skip
        ),
        "publish-past": post_form(
            organiser_client,
            f"/staff/events/{past.id}/publish",
            {},
            token_from=f"/staff/events/{past.id}",
        ),  # fmt: skip
        "copy": organiser_client.get(f"/staff/events/{event.id}/copy"),
        "copy-error": post_form(
            organiser_client, f"/staff/events/{event.id}/copy", {"title": "", "starts_at": ""}
        ),
    }
    assert "Check before you save" in pages["check"].text
    assert "already ended" in pages["create-past"].text
    assert "This event ended on" in pages["publish-past"].text
    files = []
    for name, response in pages.items():
        assert response.status_code in (200, 400), name
        path = tmp_path / f"{name}.html"
        path.write_text(response.text)
        files.append(str(path))
    checked = subprocess.run(
        [program("java"), "-jar", str(vnu_jar()), "--errors-only", "--format", "json", *files],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    messages = json.loads(checked.stderr or checked.stdout)["messages"]
    assert messages == []
