"""Every client reads our times the same: one VTIMEZONE per zone, built from zoneinfo, the same
bytes in every file, read back by icalendar, vobject and Mozilla's ical.js (Thunderbird's parser),
each converting with the file's own VTIMEZONE, never a zone database of its own."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
import vobject.icalendar

from chamber.calendar import ics, zones
from chamber.events.models import Event
from chamber.extensions import db
from chamber.mail.delivery import deliver_due
from chamber.registration import notifications
from chamber.registration.models import Delegate
from chamber.registration.services import DelegateDetails
from tests.factories import make_booking
from tests.outside_tools import icaljs, program

SCRIPT = "tests/ical_times.mjs"

# (start in UTC, hours, zone): what a delegate would see, and the nights the clocks change.
EVENTS = {
    "london-summer": (datetime(2027, 4, 14, 8, 0, tzinfo=UTC), 2, "Europe/London"),  # 09:00 BST
    "new-york": (datetime(2027, 4, 14, 13, 0, tzinfo=UTC), 2, "America/New_York"),  # 09:00 EDT
    "first-0130": (datetime(2027, 10, 31, 0, 30, tzinfo=UTC), 2, "Europe/London"),  # BST
    "second-0130": (datetime(2027, 10, 31, 1, 30, tzinfo=UTC), 2, "Europe/London"),  # GMT
    "after-spring-forward": (datetime(2027, 3, 28, 1, 5, tzinfo=UTC), 1, "Europe/London"),  # 02:05
    "new-york-night": (datetime(2027, 11, 7, 5, 30, tzinfo=UTC), 3, "America/New_York"),  # 01:30
    "new-york-forward": (datetime(2027, 3, 14, 7, 0, tzinfo=UTC), 1, "America/New_York"),  # 03:00
    "london-2031": (datetime(2031, 7, 1, 12, 0, tzinfo=UTC), 3, "Europe/London"),  # 13:00 BST
}


def expected(events: dict[str, Event]) -> dict[str, tuple[datetime, datetime]]:
    """UID -> (start, end) in UTC, as stored."""
    return {f"event-{e.id}@": (e.starts_at, e.ends_at) for e in events.values()}


def by_uid_prefix(times: dict[str, tuple[datetime, datetime]]) -> dict[str, tuple]:
    """The UIDs without their domain (`event-1@chamber.example` -> `event-1@`)."""
    return {uid.partition("@")[0] + "@": value for uid, value in times.items()}


# --- the three readers ---------------------------------------------------------------------------


def _file_zones(calendar: icalendar.Calendar) -> dict:
    """The file's own VTIMEZONEs as tzinfos (not looked up by name in a zone database)."""
    return {str(tz["TZID"]): tz.to_tz(lookup_tzid=False) for tz in calendar.walk("VTIMEZONE")}


def icalendar_times(body: bytes) -> dict[str, tuple[datetime, datetime]]:
    calendar = icalendar.Calendar.from_ical(body)
    own = _file_zones(calendar)

    def utc(prop) -> datetime:
        tzid = prop.params.get("TZID")
        value = prop.dt.replace(tzinfo=own[tzid]) if tzid else prop.dt
        return value.astimezone(UTC)

    return {str(e["UID"]): (utc(e["DTSTART"]), utc(e["DTEND"])) for e in calendar.walk("VEVENT")}


def forget_vobject_zones() -> None:
    """Empty vobject's process-wide TZID cache (as a fresh client would start), so that what it
    reads next comes from the file's VTIMEZONE, not from a zone some earlier test registered."""
    registry = vars(vobject.icalendar)["__tzidMap"]
    for tzid in [tzid for tzid in registry if tzid != "UTC"]:
        del registry[tzid]


def vobject_times(body: bytes) -> dict[str, tuple[datetime, datetime]]:
    parsed = vobject.readOne(body.decode("utf-8"))
    return {
        e.uid.value: (e.dtstart.value.astimezone(UTC), e.dtend.value.astimezone(UTC))
        for e in getattr(parsed, "vevent_list", [])
    }


def icaljs_times(body: bytes) -> dict[str, tuple[datetime, datetime]]:
    """The times Mozilla's ical.js reads, run by node (tests/ical_times.mjs)."""
    result = subprocess.run(
        [program("node"), SCRIPT, str(icaljs())],
        input=body,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return {
        e["uid"]: (datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"]))
        for e in json.loads(result.stdout)
    }


def fresh_vobject_times(body: bytes) -> dict[str, tuple[datetime, datetime]]:
    forget_vobject_zones()
    return vobject_times(body)


FAST_READERS = {"icalendar": icalendar_times, "vobject": fresh_vobject_times}


# --- the files -----------------------------------------------------------------------------------


@pytest.fixture
def events(make_event) -> dict[str, Event]:
    return {
        name: make_event(
            starts_at=starts, ends_at=starts + timedelta(hours=hours), timezone=zone_name
        )
        for name, (starts, hours, zone_name) in EVENTS.items()
    }


def vtimezone_blocks(body: bytes) -> dict[str, bytes]:
    """TZID -> the VTIMEZONE's bytes, as written."""
    return {
        re.search(rb"TZID:([^\r]+)", block).group(1).decode(): block
        for block in re.findall(rb"BEGIN:VTIMEZONE\r\n.*?END:VTIMEZONE\r\n", body, re.S)
    }


def every_file(client, events: dict[str, Event]) -> dict[str, bytes]:
    """Every kind of calendar file we write, holding these events: the single event's file, its
    agenda file, the feed, and the emailed invitations (REQUEST and CANCEL)."""
    files = {"feed": client.get("/calendar.ics").data}
    delegate = Delegate(name="Ann Example", email_normalised="ann@example.com")
    for name, event in events.items():
        files[f"{name}.ics"] = client.get(f"/events/{event.slug}.ics").data
        for method in ("REQUEST", "CANCEL"):
            files[f"{name} {method}"] = notifications.invite(event, delegate, method).content
    return files


def uids_in(body: bytes) -> set[str]:
    return {uid.decode() for uid in re.findall(rb"UID:(\S+)", body)}


@pytest.mark.parametrize("reader", FAST_READERS)
def test_every_file_reads_at_the_stored_instants(client, events, reader):
    want = expected(events)
    for name, body in every_file(client, events).items():
        got = by_uid_prefix(FAST_READERS[reader](body))
        assert got, name
        for uid, times in got.items():
            assert times == want[uid], (name, uid)
        if name == "feed":
            assert set(got) == set(want)


@pytest.mark.slow
def test_every_file_reads_at_the_stored_instants_in_icaljs(client, events):
    want = expected(events)
    files = every_file(client, events)
    for name, body in files.items():
        got = by_uid_prefix(icaljs_times(body))
        assert got, name
        for uid, times in got.items():
            assert times == want[uid], (name, uid)
    assert set(by_uid_prefix(icaljs_times(files["feed"]))) == set(want)


def test_a_summer_morning_in_london_is_eight_utc_in_every_reader(client, events):
    body = client.get(f"/events/{events['london-summer'].slug}.ics").data
    assert b"DTSTART;TZID=Europe/London:20270414T090000" in body
    for reader in FAST_READERS.values():
        ((start, end),) = reader(body).values()
        assert (start, end) == (
            datetime(2027, 4, 14, 8, tzinfo=UTC),
            datetime(2027, 4, 14, 10, tzinfo=UTC),
        )


def test_the_emailed_invitation_reads_at_the_stored_instants(client, events, smtp_server):
    event = events["new-york-night"]
    booking = make_booking(
        event, DelegateDetails(name="Ann Example", email="ann@example.com"), commit=False
    )
    notifications.booking_emails(event, booking)
    db.session.commit()
    deliver_due()
    parts = [
        part
        for message in smtp_server.messages
        for part in message.walk()
        if part.get_content_type() == "text/calendar"
    ]
    assert parts
    for part in parts:
        body = part.get_payload(decode=True)
        assert part.get_param("method") == "REQUEST"
        for reader in FAST_READERS.values():
            assert by_uid_prefix(reader(body)) == expected({"e": event})


# --- one definition per TZID ---------------------------------------------------------------------


def test_each_zone_is_the_same_bytes_in_every_file(client, events):
    """Different files, events and years: one VTIMEZONE per TZID, whole, never cut to the file."""
    files = every_file(client, events)
    seen: dict[str, set[bytes]] = {}
    for body in files.values():
        for tzid, block in vtimezone_blocks(body).items():
            seen.setdefault(tzid, set()).add(block)
    assert set(seen) == {"Europe/London", "America/New_York"}
    for tzid, blocks in seen.items():
        assert blocks == {ics.vtimezone(tzid)}, tzid
    summer = vtimezone_blocks(files["london-summer.ics"])["Europe/London"]
    later = vtimezone_blocks(files["london-2031 REQUEST"])["Europe/London"]
    assert summer == later


def test_no_rdate_lists_anywhere(client, events):
    for name, body in every_file(client, events).items():
        assert b"RDATE" not in body, name
        assert b"BEGIN:STANDARD" in body, name


def test_vobject_reading_one_file_then_another_gets_both_right(client, events):
    """vobject keeps the first VTIMEZONE it reads for a TZID for the rest of the process: with
    one definition per TZID, the second file (another event, another year) still reads right."""
    forget_vobject_zones()
    first = client.get(f"/events/{events['london-summer'].slug}.ics").data
    second = client.get(f"/events/{events['second-0130'].slug}.ics").data
    later = notifications.invite(
        events["london-2031"], Delegate(name="Ann", email_normalised="ann@example.com"), "REQUEST"
    ).content
    want = expected(events)
    for body in (first, second, later):
        for uid, times in by_uid_prefix(vobject_times(body)).items():
            assert times == want[uid]


# --- the VTIMEZONE against zoneinfo, change by change --------------------------------------------

# Zones with every kind of rule: half-hour and 45-minute offsets, the southern hemisphere, rules
# that changed, Ireland's negative DST, a zone that skipped a day, zones with no DST at all.
ZONES = [
    "Europe/London",
    "America/New_York",
    "Europe/Dublin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Asia/Tehran",
    "Europe/Moscow",
    "Pacific/Apia",
    "Africa/Casablanca",
    "Asia/Kolkata",
    "Asia/Tokyo",
]
# Morocco's future clock changes follow Ramadan, listed one by one in the zone database past 2037
# (the end of the span we write); every other zone here keeps its rule.
LISTED_AFTER_SPAN = {"Africa/Casablanca"}


def instants(tzid: str) -> list[datetime]:
    """Just before, at, and after every change of the zone's clocks in the span, the middle of
    each year, and (where the rule goes on) years past the span."""
    found = [datetime(year, 6, 15, 12, tzinfo=UTC) for year in range(1971, zones.LAST_YEAR + 1)]
    for change in zones._changes(ZoneInfo(tzid)):
        for delta in (
            -timedelta(seconds=1),
            timedelta(0),
            timedelta(minutes=30),
            timedelta(hours=1),
        ):
            found.append(change.at + delta)
    if tzid not in LISTED_AFTER_SPAN:
        found += [datetime(year, month, 1, tzinfo=UTC) for year in (2040, 2061) for month in (1, 7)]
    return [moment for moment in found if moment.year > zones.FIRST_YEAR]


def one_entry_per_instant(tzid: str) -> tuple[bytes, dict[str, tuple[datetime, datetime]]]:
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [
        ics.CalendarEntry(
            uid=f"at-{n}@chamber.example",
            sequence=0,
            summary="A moment",
            starts_at=moment,
            ends_at=moment + timedelta(minutes=45),
            timezone=tzid,
            location="",
            description="",
            url="https://chamber.example/",
            organizer_name="Chamber",
            organizer_email="events@chamber.example",
            cancelled=False,
            created_at=stamp,
            last_modified=stamp,
        )
        for n, moment in enumerate(instants(tzid))
    ]
    body = ics.entries_to_ical(entries, stamp=stamp)
    return body, {e.uid: (e.starts_at, e.ends_at) for e in entries}


# Every instant of every zone takes seconds: the fast suite reads London's, the slow one the rest.
@pytest.mark.parametrize(
    "tzid",
    [
        tzid if tzid == "Europe/London" else pytest.param(tzid, marks=pytest.mark.slow)
        for tzid in ZONES
    ],
)
def test_the_zone_gives_zoneinfos_offset_at_every_change(tzid):
    body, want = one_entry_per_instant(tzid)
    assert b"RDATE" not in body
    assert body.count(b"TZID:" + tzid.encode()) == 1
    assert icalendar_times(body) == want
    assert fresh_vobject_times(body) == want


@pytest.mark.slow
def test_icaljs_gives_zoneinfos_offset_at_every_change():
    for tzid in ZONES:
        body, want = one_entry_per_instant(tzid)
        got = icaljs_times(body)
        wrong = {uid: (got[uid], times) for uid, times in want.items() if got[uid] != times}
        assert not wrong, (tzid, sorted(wrong.values())[:3])


def test_the_form_clients_write_yearly_rules():
    london = ics.vtimezone("Europe/London").decode()
    assert (
        "BEGIN:DAYLIGHT\r\nDTSTART:19810329T010000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n"
        in london
    )
    assert "DTSTART:19991031T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n" in london
    new_york = ics.vtimezone("America/New_York").decode()
    assert "DTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\n" in new_york
    assert "DTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\n" in new_york
    # A rule that ended has its UNTIL (a day after its last change: see zones._UNTIL_MARGIN).
    assert "RRULE:FREQ=YEARLY;UNTIL=20061030T060000Z;BYDAY=-1SU;BYMONTH=10\r\n" in new_york


def test_a_zone_without_daylight_saving_is_one_standard():
    tokyo = ics.vtimezone("Asia/Tokyo")
    assert tokyo.count(b"BEGIN:") == 2  # the VTIMEZONE and its one STANDARD
    assert b"BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZNAME:JST\r\n" in tokyo
    assert b"TZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\n" in tokyo


def test_an_unknown_zone_gets_no_vtimezone():
    assert ics.vtimezone("Mars/Olympus_Mons") == b""
    assert ics.vtimezone("../../etc/passwd") == b""
