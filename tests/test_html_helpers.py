"""Template helpers that keep pages valid HTML: `<time datetime>` values and form attributes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from chamber.core.templating import html_datetime


def test_a_time_attribute_is_utc_to_the_second():
    moment = datetime(2030, 6, 12, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert html_datetime(moment) == "2030-06-12T07:30:15Z"
    assert html_datetime(datetime(2030, 1, 1, tzinfo=UTC)) == "2030-01-01T00:00:00Z"


def test_a_naive_time_is_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="aware"):
        html_datetime(datetime(2030, 1, 1))


def test_the_link_health_page_writes_no_fractional_seconds(organiser_client, app):
    from chamber.demo.resources import ILLUSTRATIVE_CHECKS, load_resources
    from chamber.extensions import db
    from chamber.resources import health
    from tests.factories import acting_staff

    load_resources(by=acting_staff())
    moment = datetime.now(UTC).replace(microsecond=654321)  # as a real run's clock reads
    health.record_finished_run(list(ILLUSTRATIVE_CHECKS), at=moment, trigger="command")
    db.session.commit()
    html = organiser_client.get("/staff/resources/health/").text
    assert 'datetime="' in html
    assert ".654321" not in html and "654321" not in html


def test_agenda_speaker_selects_have_no_stray_attributes(organiser_client, make_event, make_item):
    event = make_event()
    item = make_item(event)
    for path in (
        f"/staff/events/{event.id}/agenda/new",
        f"/staff/events/{event.id}/agenda/{item.id}",
    ):
        html = organiser_client.get(path).text
        assert "speakers-0" in html
        assert '="None"' not in html
    response = organiser_client.post(
        f"/staff/events/{event.id}/agenda/{item.id}", data={"speakers-0": "not a number"}
    )
    assert '="None"' not in response.text
