"""Times are stored in UTC and shown in the event's zone, safely across the clocks changing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chamber.core.times import NonexistentLocalTime, local_to_utc, utc_to_local
from chamber.events.models import Event


def test_summer_time_is_an_hour_ahead_of_utc():
    assert local_to_utc(datetime(2026, 7, 1, 9, 0), "Europe/London") == datetime(
        2026, 7, 1, 8, 0, tzinfo=UTC
    )


def test_winter_time_is_utc():
    assert local_to_utc(datetime(2026, 12, 3, 9, 0), "Europe/London") == datetime(
        2026, 12, 3, 9, 0, tzinfo=UTC
    )


def test_a_time_skipped_when_the_clocks_go_forward_is_refused():
    with pytest.raises(NonexistentLocalTime, match="does not exist"):
        local_to_utc(datetime(2026, 3, 29, 1, 30), "Europe/London")


def test_a_time_that_happens_twice_when_the_clocks_go_back_means_the_first():
    first = local_to_utc(datetime(2026, 10, 25, 1, 30), "Europe/London")
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST
    assert utc_to_local(first, "Europe/London").strftime("%H:%M %Z") == "01:30 BST"


def test_another_zone_round_trips():
    moment = local_to_utc(datetime(2026, 11, 30, 18, 0), "America/New_York")
    assert moment == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert utc_to_local(moment, "America/New_York").hour == 18


def test_an_event_across_the_clocks_changing_keeps_its_wall_clock_times(make_event):
    # Saturday 23:00 to Sunday 03:00 local across the October change: five hours long in UTC.
    starts = local_to_utc(datetime(2026, 10, 24, 23, 0), "Europe/London")
    ends = local_to_utc(datetime(2026, 10, 25, 3, 0), "Europe/London")
    event = make_event(starts_at=starts, ends_at=ends)
    assert (event.ends_at - event.starts_at).total_seconds() == 5 * 3600
    assert (event.local_start.hour, event.local_end.hour) == (23, 3)


def test_times_come_back_from_the_database_aware_and_in_utc(app, make_event):
    event = make_event()
    from chamber.extensions import db

    db.session.expire_all()
    reloaded = db.session.get(Event, event.id)
    assert reloaded.starts_at.tzinfo is UTC
    assert reloaded.starts_at == event.starts_at


def test_event_page_shows_times_in_the_events_zone(client, make_event):
    event = make_event(
        timezone="America/New_York",
        starts_at=datetime(2030, 6, 4, 13, 0, tzinfo=UTC),
        ends_at=datetime(2030, 6, 4, 17, 0, tzinfo=UTC),
    )
    text = client.get(f"/events/{event.slug}").text
    assert "09:00" in text and "13:00" in text  # 13:00-17:00 UTC is 09:00-13:00 in New York (EDT)
    assert "America/New_York time" in text
