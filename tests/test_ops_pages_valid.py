"""The pages issue 17's operations work added or changed are valid HTML, by the Nu HTML checker:
the staff home page (figures, attention, chart, health notice), the door's walk-in form (fresh and
with errors), the badges, the sign-in sheet and the link health page after an offline check."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from chamber.extensions import db
from chamber.resources import checker, health
from chamber.resources.models import Resource, ResourceKind, ResourceStatus
from tests.factories import make_booking
from tests.outside_tools import program, vnu_jar
from tests.support import post_form

pytestmark = pytest.mark.slow


def test_the_pages_are_valid_html(tmp_path, make_event, organiser_client):
    event = make_event(
        title="Cyber seminar", capacity=2,
        starts_at=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1),
    )  # fmt: skip
    make_booking(event, "a@example.com", "b@example.com", "c@example.com")
    make_event(
        title="Later seminar",
        starts_at=datetime.now(UTC).replace(microsecond=0) + timedelta(days=5),
    )
    link = Resource(
        slug="offline-guide", title="Guide", url="https://guide.chamber-test.invalid/",
        kind=ResourceKind.link, status=ResourceStatus.published,
    )  # fmt: skip
    db.session.add(link)
    db.session.commit()
    health.run_check(health.start_run("test"))  # offline: the name never resolves
    assert checker  # the checker's real resolver, no stand-in

    pages = {
        "dashboard": organiser_client.get("/staff/").text,
        "walk-in": organiser_client.get(f"/staff/checkin/{event.id}/walk-in").text,
        "walk-in-error": post_form(
            organiser_client, f"/staff/checkin/{event.id}/walk-in", {"name": "", "email": "x"}
        ).text,
        "badges": organiser_client.get(f"/staff/checkin/{event.id}/badges").text,
        "sign-in": organiser_client.get(f"/staff/checkin/{event.id}/sign-in-sheet").text,
        "door": organiser_client.get(f"/staff/checkin/{event.id}").text,
        "link-health": organiser_client.get("/staff/resources/health/").text,
    }
    assert "could not reach the internet" in pages["link-health"]
    assert "The event is full" in pages["walk-in"]
    files = []
    for name, text in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_text(text)
        files.append(str(path))
    result = subprocess.run(
        [program("java"), "-jar", str(vnu_jar()), "--format", "json", "--exit-zero-always", *files],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    messages = json.loads(result.stderr or result.stdout)["messages"]
    problems = [
        f"{m['url'].rsplit('/', 1)[-1]}:{m.get('lastLine')}: {m['message']}"
        for m in messages
        if m["type"] == "error" or m.get("subType") == "warning"
    ]
    assert problems == []
