"""The read-only JSON API. Arrives with the calendar issue."""
