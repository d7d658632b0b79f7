"""iCalendar builders (pure functions taking plain values) and .ics views. Arrives with the calendar issue."""
