"""What events tell the domains above them, as blinker signals (Flask's own signals work the same
way). Events sit below registration, resources and surveys and never import them: each of those
connects its receivers in its own `init_app`, for the app it wires (the sender is the app).

- `calendar_changed(app, event=, changed=, before=)`: sent after every change of time, place or
  status (one that raises the event's SEQUENCE), in the same transaction as the change; `changed`
  names the fields and `before` holds their values before it. Registration emails the delegates,
  surveys move or hold back the event's survey.
- `calendar_audience(app, event=)`: each receiver returns how many people a change of the event's
  time, place or status would email now; `events.services.calendar_audience` adds them up.
  Registration counts the confirmed delegates.
- `event_copied(app, source=, copy=, items=)`: staff copied `source` to a new draft `copy`, in the
  same transaction (flushed, so both have ids); `items` maps each of the source's agenda item ids
  to its copy. Resources attach the same resources to the copy and its talks; surveys give the
  copy a draft of the source's survey (its questions and settings, never its invitations or
  responses).
- `seats_changed(app, event=, changed=, before=)`: sent after a save that changed the event's
  capacity or per-business limit, in the same transaction; `changed` names the fields and `before`
  holds their values before it. Registration gives any seat that appeared to the people waiting.
- `showing_event(app, event=, now=)`: the public event page is being shown; each receiver returns
  a dict of what else the page shows (resources: the event's resource list).
"""

from __future__ import annotations

from typing import Any

from blinker import Namespace
from flask import Flask, current_app

signals = Namespace()

calendar_changed = signals.signal("calendar-changed")
calendar_audience = signals.signal("calendar-audience")
seats_changed = signals.signal("seats-changed")
showing_event = signals.signal("showing-event")
event_copied = signals.signal("event-copied")


def this_app() -> Flask:
    """The sender of every signal here: the app the request or command runs in."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


def replies(results: list[tuple[Any, Any]]) -> list[Any]:
    """What the receivers returned, in the order they were connected."""
    return [value for _receiver, value in results]
