"""Every served `.ics` file, read back by icalendar and by an independent parser (vobject)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject

from chamber.calendar import entries, ics, zones
from chamber.events import services
from chamber.events.models import EventStatus
from chamber.extensions import db
from tests.factories import acting_staff, at
from tests.support import count_queries


def _read(response) -> tuple[icalendar.Calendar, object]:
    """The file parsed by both parsers (after checking the response is a calendar file)."""
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    text = response.get_data(as_text=True)
    for line in text.split("\r\n"):
        assert len(line.encode()) <= 75, line  # folded at 75 octets
    return icalendar.Calendar.from_ical(response.data), vobject.readOne(text)


def _vevents(ical: icalendar.Calendar) -> list:
    return list(ical.walk("VEVENT"))


def _vobject_events(vcal) -> list:
    return list(getattr(vcal, "vevent_list", []))


def _utc(value: datetime) -> datetime:
    assert value.tzinfo is not None, value
    return value.astimezone(UTC)


def _check_times(response, starts: datetime, ends: datetime) -> tuple:
    ical, vcal = _read(response)
    (event,) = _vevents(ical)
    (vevent,) = _vobject_events(vcal)
    assert _utc(event.decoded("dtstart")) == starts
    assert _utc(event.decoded("dtend")) == ends
    assert _utc(vevent.dtstart.value) == starts
    assert _utc(vevent.dtend.value) == ends
    return event, vevent


# --- one event ------------------------------------------------------------------------------------


def test_event_file_has_every_property(client, make_event, make_item, make_speaker):
    event = make_event(summary="Protect your business.")
    speaker = make_speaker("Tony Richardson", "Octree", email="tony@private.example")
    make_item(event, title="Phishing", length=45, speakers=[speaker])
    response = client.get(f"/events/{event.slug}.ics")
    assert response.headers["Content-Disposition"] == f'attachment; filename="{event.slug}.ics"'
    vevent, vob = _check_times(response, event.starts_at, event.ends_at)
    ical, _ = _read(response)
    assert ical["method"] == "PUBLISH"
    assert str(vevent["uid"]) == f"event-{event.id}@{entries.uid_domain()}"
    assert vevent["sequence"] == event.sequence
    assert vevent["status"] == "CONFIRMED"
    assert vevent["dtstart"].params["TZID"] == "Europe/London"
    assert [tz["tzid"] for tz in ical.walk("VTIMEZONE")] == ["Europe/London"]
    assert str(vevent["location"]) == "Holiday Inn Stevenage, St George's Way, Stevenage SG1 1HS"
    description = str(vevent["description"])
    local = event.local_start
    assert "Protect your business." in description
    assert f"{local:%H:%M}–{event.local(event.starts_at + timedelta(minutes=45)):%H:%M}" in (
        description
    )
    assert "Phishing – Tony Richardson (Octree)" in description
    assert description.endswith(f"/events/{event.slug}")
    assert str(vevent["url"]).endswith(f"/events/{event.slug}")
    assert str(vevent["organizer"]).startswith("mailto:")
    for name in ("created", "last-modified", "dtstamp"):
        assert vevent.decoded(name).tzinfo is not None
    assert vob.uid.value == str(vevent["uid"])
    assert vob.description.value == description
    assert "tony@private.example" not in response.get_data(as_text=True)


def test_ics_rule_wins_over_the_event_page(app, client, make_event):
    event = make_event()
    adapter = app.url_map.bind("localhost")
    assert adapter.match(f"/events/{event.slug}.ics")[0] == "calendar.event_ics"
    assert adapter.match(f"/events/{event.slug}")[0] == "events.show"
    assert client.get(f"/events/{event.slug}").headers["Content-Type"].startswith("text/html")


def test_cancelled_event_is_served_cancelled(client, make_event):
    event = make_event(status=EventStatus.cancelled, sequence=3)
    vevent, vob = _check_times(
        client.get(f"/events/{event.slug}.ics"), event.starts_at, event.ends_at
    )
    assert vevent["status"] == "CANCELLED" and vob.status.value == "CANCELLED"
    assert vevent["sequence"] == 3


@pytest.mark.parametrize(
    "path", ["/events/{slug}.ics", "/events/{slug}/agenda.ics", "/events/{slug}/agenda/{item}.ics"]
)
def test_drafts_and_unknown_events_are_not_found(client, make_event, make_item, path):
    draft = make_event(status=EventStatus.draft)
    item = make_item(draft)
    assert client.get(path.format(slug=draft.slug, item=item.id)).status_code == 404
    assert client.get(path.format(slug="no-such-event", item=item.id)).status_code == 404
    assert client.get(path.format(slug="a%00b", item=item.id)).status_code == 404


def test_awkward_text_round_trips(client, make_event):
    title = "Tax, VAT; and you\\ 🚀 " + "x" * 480
    title = title[:500]
    summary = "Line one,\nline two; semicolons, commas\nand emoji 🎉✨ and a backslash \\"
    event = make_event(
        title=title[:200],
        summary=summary,
        venue_name="Hall; East, Wing",
        venue_address="1 High St,\nHitchin",
    )
    event.title = title[:200]
    db.session.commit()
    ical, vcal = _read(client.get(f"/events/{event.slug}.ics"))
    (vevent,) = _vevents(ical)
    (vob,) = _vobject_events(vcal)
    assert str(vevent["summary"]) == vob.summary.value == title[:200]
    assert str(vevent["description"]).startswith(summary)
    assert vob.description.value.startswith(summary)
    assert str(vevent["location"]) == vob.location.value == "Hall; East, Wing, 1 High St, Hitchin"


def test_a_500_character_title_folds_and_round_trips(client, make_event, make_item):
    event = make_event()
    long_title = ("Très long, 🚀; " * 40)[:200]  # the column's limit, but many octets
    make_item(event, title=long_title)
    ical, vcal = _read(client.get(f"/events/{event.slug}/agenda.ics"))
    assert str(_vevents(ical)[0]["summary"]) == long_title
    assert _vobject_events(vcal)[0].summary.value == long_title
    text = ("A 500-character summary, with; punctuation\n" * 12)[:500]
    event.summary = text
    db.session.commit()
    ical, vcal = _read(client.get(f"/events/{event.slug}.ics"))
    assert str(_vevents(ical)[0]["description"]).startswith(text.strip())
    assert _vobject_events(vcal)[0].description.value.startswith(text.strip())


def _varied_entries(stamp: datetime) -> list[ics.CalendarEntry]:
    """Entries whose lines fold at every length around the limit, with escapes, wide characters,
    four zones, both sides of a clock change, cancelled or not, with an attendee or without."""
    texts = [
        "x" * n + tail
        for n in range(55, 80)
        for tail in (",; ", "\\ back", "é–🚀 wide", "\n" + "🚀" * 40)
    ]
    zone_names = ["Europe/London", "America/New_York", "Asia/Kolkata", "UTC"]
    return [
        ics.CalendarEntry(
            uid=f"event-{n}@chamber.example",
            sequence=n % 3,
            summary=text,
            starts_at=datetime(2030, 10, 27, 0, 30, tzinfo=UTC) + timedelta(days=n % 2 * 40),
            ends_at=datetime(2030, 10, 27, 3, tzinfo=UTC) + timedelta(days=n % 2 * 40),
            timezone=zone_names[n % len(zone_names)],
            location=f"Hall; East, Wing {text}",
            description=text * 3,
            url=f"https://chamber.example/events/{n}",
            organizer_name="Hertfordshire Chamber of Commerce, Events",
            organizer_email="events@chamber.example",
            cancelled=n % 5 == 0,
            created_at=stamp,
            last_modified=stamp,
            attendee_name=text[-20:] if n % 2 else "",
            attendee_email="ann@example.com" if n % 2 else "",
        )
        for n, text in enumerate(texts)
    ]


def test_files_are_the_bytes_icalendar_writes_for_the_whole_calendar():
    """`entries_to_ical` serialises one component at a time and folds lines itself (for the
    feed's speed); the bytes must be those of icalendar's own `Calendar.to_ical()`."""
    stamp = datetime(2030, 6, 1, 12, tzinfo=UTC)
    entries_ = _varied_entries(stamp)

    def whole_calendar(method: str, entries_: list, tzids: list[str]) -> bytes:
        calendar = icalendar.Calendar()
        for name, value in [
            ("prodid", ics.PRODID),
            ("version", "2.0"),
            ("calscale", "GREGORIAN"),
            ("method", method),
            ("x-wr-calname", "Feed; name, 🚀"),
        ]:
            calendar.add(name, value)
        for tzid in tzids:
            calendar.add_component(zones.vtimezone_component(tzid))
        for entry in entries_:
            calendar.add_component(ics._vevent(entry, stamp, cancel=method == "CANCEL"))
        return calendar.to_ical()

    tzids = ["America/New_York", "Asia/Kolkata", "Europe/London"]  # sorted; UTC needs none
    for method in ics.METHODS:
        ours = ics.entries_to_ical(entries_, method=method, stamp=stamp, name="Feed; name, 🚀")
        assert ours == whole_calendar(method, entries_, tzids)
        empty = ics.entries_to_ical([], method=method, stamp=stamp, name="Feed; name, 🚀")
        assert empty == whole_calendar(method, [], [])


def test_one_entrys_file_is_the_bytes_of_the_whole_calendar_whoever_it_is_for():
    """`entry_to_ical` keeps what comes from the event and writes each file's stamp and attendee
    into it: every file is still the bytes icalendar writes, for each attendee and stamp, even
    for a second attendee of an entry already written, and for each method."""
    stamp = datetime(2030, 6, 1, 12, tzinfo=UTC)
    later = stamp + timedelta(days=3, seconds=7)
    people = [("", ""), ("Ann", "ann@example.com"), ('Žofie "Zo" Dvořák; ' * 4, "z@example.cz")]
    for method in ics.METHODS:
        for entry in _varied_entries(stamp)[::3]:
            for (name, email), when in zip(people, (stamp, later, stamp), strict=True):
                own = replace(entry, attendee_name=name, attendee_email=email)
                expected = ics.entries_to_ical([own], method=method, stamp=when)
                assert ics.entry_to_ical(own, method=method, stamp=when) == expected
    with pytest.raises(ValueError):
        ics.entry_to_ical(_varied_entries(stamp)[0], method="REPLY", stamp=stamp)


def test_one_entrys_file_keeps_apart_equal_moments_written_in_other_zones():
    """Two entries whose times are the same instant in different zones compare equal, but
    icalendar writes them differently; neither file is taken for the other's."""
    in_utc = _varied_entries(datetime(2030, 6, 1, 12, tzinfo=UTC))[0]
    paris = datetime(2030, 6, 1, 14, tzinfo=ZoneInfo("Europe/Paris"))
    in_paris = replace(in_utc, created_at=paris, last_modified=paris)
    assert in_paris == in_utc
    for entry in (in_utc, in_paris, in_utc):
        expected = ics.entries_to_ical([entry], stamp=paris)
        assert ics.entry_to_ical(entry, stamp=paris) == expected


# --- time zones -----------------------------------------------------------------------------------


def test_event_across_the_october_clock_change(client, make_event):
    # Clocks go back at 01:00 UTC on Sunday 31 October 2027.
    starts = datetime(2027, 10, 30, 23, 0, tzinfo=UTC)
    ends = datetime(2027, 10, 31, 3, 0, tzinfo=UTC)
    event = make_event(starts_at=starts, ends_at=ends)
    vevent, _ = _check_times(client.get(f"/events/{event.slug}.ics"), starts, ends)
    assert vevent["dtstart"].to_ical() == b"20271031T000000"  # BST
    assert vevent["dtend"].to_ical() == b"20271031T030000"  # GMT


@pytest.mark.parametrize(
    "starts",
    [
        datetime(2027, 10, 31, 0, 30, tzinfo=UTC),  # 01:30 BST, the first 01:30
        datetime(2027, 10, 31, 1, 30, tzinfo=UTC),  # 01:30 GMT, the second
    ],
)
def test_event_at_0130_on_the_october_change_day(client, make_event, starts):
    event = make_event(starts_at=starts, ends_at=starts + timedelta(hours=2))
    vevent, _ = _check_times(
        client.get(f"/events/{event.slug}.ics"), starts, starts + timedelta(hours=2)
    )
    # 01:30 happens twice that night and parsers disagree on which is meant: written in UTC.
    assert vevent["dtstart"].to_ical() == f"{starts:%Y%m%dT%H%M%S}Z".encode()
    assert vevent["dtend"].params["TZID"] == "Europe/London"


def test_event_across_the_march_clock_change(client, make_event):
    starts = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)  # clocks go forward at 01:00 UTC
    event = make_event(starts_at=starts, ends_at=starts + timedelta(hours=3))
    _check_times(client.get(f"/events/{event.slug}.ics"), starts, starts + timedelta(hours=3))


def test_event_in_new_york(client, make_event):
    starts = datetime(
        2027, 11, 7, 4, 0, tzinfo=UTC
    )  # midnight EDT; ends 02:00 EST, after the change
    event = make_event(
        starts_at=starts, ends_at=starts + timedelta(hours=3), timezone="America/New_York"
    )
    ical, _ = _read(client.get(f"/events/{event.slug}.ics"))
    vevent, _ = _check_times(
        client.get(f"/events/{event.slug}.ics"), starts, starts + timedelta(hours=3)
    )
    assert vevent["dtstart"].params["TZID"] == "America/New_York"
    assert [tz["tzid"] for tz in ical.walk("VTIMEZONE")] == ["America/New_York"]


# --- UID and SEQUENCE -----------------------------------------------------------------------------


def test_uid_is_stable_and_sequence_rises_with_each_change(client, make_event):
    event = make_event(starts_at=at(30, 8), ends_at=at(30, 12))
    first, _ = _read(client.get(f"/events/{event.slug}.ics"))
    by = acting_staff()
    details = services.EventDetails.of(event)
    services.save_event(event, replace(details, title="A new title"), by=by)  # not a calendar field
    db.session.commit()
    retitled, _ = _read(client.get(f"/events/{event.slug}.ics"))
    services.save_event(event, replace(details, title="A new title", starts_at=at(30, 9)), by=by)
    db.session.commit()
    moved, vmoved = _read(client.get(f"/events/{event.slug}.ics"))
    services.set_status(event, EventStatus.cancelled, by=by)
    db.session.commit()
    cancelled, _ = _read(client.get(f"/events/{event.slug}.ics"))
    files = [_vevents(c)[0] for c in (first, retitled, moved, cancelled)]
    assert len({str(f["uid"]) for f in files}) == 1
    assert [f["sequence"] for f in files] == [0, 0, 1, 2]
    assert _utc(_vobject_events(vmoved)[0].dtstart.value) == at(30, 9)
    assert files[-1]["status"] == "CANCELLED"


# --- agenda ---------------------------------------------------------------------------------------


def test_agenda_file_has_one_entry_per_item(client, make_event, make_item, make_speaker):
    event = make_event()
    ann, bo = make_speaker("Ann Lee", "Lee & Co"), make_speaker("Bo Diaz", "")
    talk = make_item(event, title="Passwords", length=30, speakers=[ann, bo])
    panel = make_item(event, title="Panel", minutes_in=30, length=60)
    ical, vcal = _read(client.get(f"/events/{event.slug}/agenda.ics"))
    vevents = _vevents(ical)
    assert [str(v["uid"]) for v in vevents] == [
        f"item-{talk.id}@{entries.uid_domain()}",
        f"item-{panel.id}@{entries.uid_domain()}",
    ]
    assert [str(v["summary"]) for v in vevents] == ["Passwords", "Panel"]
    assert "Ann Lee (Lee & Co), Bo Diaz" in str(vevents[0]["description"])
    assert str(vevents[0]["location"]).startswith("Holiday Inn Stevenage")
    vobs = _vobject_events(vcal)
    assert [_utc(v.dtstart.value) for v in vobs] == [talk.starts_at, panel.starts_at]
    assert [_utc(v.dtend.value) for v in vobs] == [talk.ends_at, panel.ends_at]


def test_single_item_file_and_items_of_other_events(client, make_event, make_item):
    event, other = make_event(), make_event()
    item = make_item(event, title="Keynote")
    foreign = make_item(other)
    response = client.get(f"/events/{event.slug}/agenda/{item.id}.ics")
    vevent, _ = _check_times(response, item.starts_at, item.ends_at)
    assert str(vevent["summary"]) == "Keynote"
    assert client.get(f"/events/{event.slug}/agenda/{foreign.id}.ics").status_code == 404
    assert client.get(f"/events/{event.slug}/agenda/999999.ics").status_code == 404


# --- the feed -------------------------------------------------------------------------------------


def test_feed_holds_published_and_cancelled_events_of_the_window(client, make_event):
    upcoming = make_event()
    cancelled = make_event(status=EventStatus.cancelled)
    recent = make_event(starts_at=at(-30, 8), ends_at=at(-30, 12))
    make_event(status=EventStatus.draft)
    make_event(starts_at=at(-120, 8), ends_at=at(-120, 12))  # too old
    ical, vcal = _read(client.get("/calendar.ics"))
    uids = {str(v["uid"]) for v in _vevents(ical)}
    domain = entries.uid_domain()
    assert uids == {f"event-{e.id}@{domain}" for e in (upcoming, cancelled, recent)}
    statuses = {v.uid.value: v.status.value for v in _vobject_events(vcal)}
    assert statuses[f"event-{cancelled.id}@{domain}"] == "CANCELLED"


def test_feed_answers_conditional_requests(client, make_event):
    event = make_event()
    first = client.get("/calendar.ics")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/calendar.ics", headers={"If-Modified-Since": modified}).status_code == 304
    later = replace(services.EventDetails.of(event), starts_at=event.starts_at + timedelta(hours=1))
    services.save_event(event, later, by=acting_staff())
    db.session.commit()
    changed = client.get("/calendar.ics", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_feed_query_count_does_not_grow(client, make_event, make_item, make_speaker):
    speaker = make_speaker()
    make_item(make_event(), speakers=[speaker])
    with count_queries() as few:
        assert client.get("/calendar.ics").status_code == 200
    for _ in range(5):
        event = make_event()
        make_item(event, speakers=[speaker])
        make_item(event, minutes_in=30, speakers=[make_speaker("Another", "Org")])
    with count_queries() as many:
        assert client.get("/calendar.ics").status_code == 200
    assert len(many) == len(few)


def test_empty_feed_is_a_valid_calendar(client):
    ical, _ = _read(client.get("/calendar.ics"))
    assert _vevents(ical) == []


# --- links on the pages ---------------------------------------------------------------------------


def test_event_page_links_to_every_calendar(app, client, make_event, make_item):
    event = make_event(title="Tax & VAT, simply", summary="Bring questions; and a pen.")
    item = make_item(event)
    page = client.get(f"/events/{event.slug}").get_data(as_text=True)
    assert f'href="/events/{event.slug}.ics"' in page
    assert f'href="/events/{event.slug}/agenda/{item.id}.ics"' in page
    assert "Add to calendar (.ics)" in page
    assert "Add to Google Calendar" in page and "Add to Outlook.com" in page

    google = urlsplit(entries.google_link(event))
    assert google.netloc == "calendar.google.com" and google.path == "/calendar/render"
    query = parse_qs(google.query)
    assert query["action"] == ["TEMPLATE"]
    assert query["text"] == ["Tax & VAT, simply"]
    start, end = query["dates"][0].split("/")
    assert datetime.strptime(start, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) == event.starts_at
    assert datetime.strptime(end, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) == event.ends_at
    assert query["details"][0].startswith("Bring questions; and a pen.")
    assert query["location"] == [entries.location(event)]

    outlook = urlsplit(entries.outlook_link(event))
    assert outlook.netloc == "outlook.live.com"
    assert outlook.path == "/calendar/0/deeplink/compose"
    query = parse_qs(outlook.query)
    assert query["subject"] == ["Tax & VAT, simply"]
    assert datetime.fromisoformat(query["startdt"][0]) == event.starts_at
    assert datetime.fromisoformat(query["enddt"][0]) == event.ends_at
    assert query["body"][0].startswith("Bring questions; and a pen.")
    assert query["location"] == [entries.location(event)]
    # The links sit in the page HTML-escaped (& as &amp;), never raw.
    assert "&amp;text=Tax+%26+VAT%2C+simply" in page


def test_draft_preview_has_no_calendar_links(organiser_client, make_event):
    event = make_event(status=EventStatus.draft)
    page = organiser_client.get(f"/events/{event.slug}").get_data(as_text=True)
    assert ".ics" not in page and "Google Calendar" not in page


def test_home_page_offers_a_webcal_subscription(app, client):
    host = urlsplit(app.config["BASE_URL"]).netloc
    page = client.get("/").get_data(as_text=True)
    assert f'href="webcal://{host}/calendar.ics"' in page
