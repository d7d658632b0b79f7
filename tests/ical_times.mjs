// Prints, as JSON, each VEVENT's UID, start and end in UTC as Mozilla's ical.js (Thunderbird's
// parser) reads the iCalendar file on stdin. A time with a TZID is converted with the file's own
// VTIMEZONE (registered with ICAL.TimezoneService), never with a built-in zone database.
// Usage: node tests/ical_times.mjs <path of ical.js> < file.ics
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const ICAL = (await import(pathToFileURL(process.argv[2]).href)).default;
const calendar = new ICAL.Component(ICAL.parse(readFileSync(0, "utf8")));

ICAL.TimezoneService.reset();
for (const vtimezone of calendar.getAllSubcomponents("vtimezone")) {
  const zone = new ICAL.Timezone(vtimezone);
  ICAL.TimezoneService.register(zone, zone.tzid);
}

function utc(property) {
  const time = property.getFirstValue();
  const tzid = property.getParameter("tzid");
  if (tzid) {
    const zone = ICAL.TimezoneService.get(tzid);
    if (!zone) throw new Error(`the file has no VTIMEZONE for ${tzid}`);
    time.zone = zone;
  }
  return new Date(time.toUnixTime() * 1000).toISOString();
}

const events = calendar.getAllSubcomponents("vevent").map((vevent) => ({
  uid: vevent.getFirstPropertyValue("uid"),
  start: utc(vevent.getFirstProperty("dtstart")),
  end: utc(vevent.getFirstProperty("dtend")),
}));
process.stdout.write(JSON.stringify(events));
