"""Bookings, delegates, the waiting list, manage links and check-in. Arrives with the registration issue."""
