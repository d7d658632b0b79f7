"""The demo data set: the seed seminar as a past and an upcoming edition, the member directory,
and staff logins."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from flask import Flask

from chamber.auth import services as staff_accounts
from chamber.core.times import utc_to_local, utcnow
from chamber.demo import bookings, campaigns, directory, seminar, surveys
from chamber.demo.resources import load_resources
from chamber.demo.staff import ACCOUNTS, ensure_account


@dataclass
class DemoLogin:
    email: str
    password: str
    role: str = "admin"
    others: list[DemoLogin] = field(default_factory=list)  # the organiser and door accounts


def load_demo(app: Flask, *, today: date | None = None) -> DemoLogin:
    """Load the demo into the current session (flushed, not committed) and return the admin login.

    Safe to run again: events are found by slug, speakers by name and staff by email. Existing
    events and speakers are left as they are; a demo staff account is only repaired (password,
    role, active) so that the login printed works. `today` (in the seminar's zone) is for tests.
    """
    today = today or utc_to_local(utcnow(), seminar.ZONE).date()
    instance_path = Path(app.instance_path)
    logins = [
        DemoLogin(account.email, ensure_account(account, instance_path), account.role.value)
        for account in ACCOUNTS
    ]
    # The demo admin is the staff user the demo's events, resources and survey are made by.
    by = staff_accounts.find_by_email(ACCOUNTS[0].email)
    speakers = seminar.load_speakers(by=by)
    if past := seminar.load_past_edition(speakers, by=by):
        bookings.load_bookings(past, past=True, seed=2016)
        surveys.load_survey(past, seed=2016)
    if upcoming := seminar.load_upcoming_edition(speakers, today, by=by):
        bookings.load_bookings(upcoming, past=False, seed=upcoming.starts_at.toordinal())
    load_resources(by=by)
    directory.load_directory(today=today, by=by)
    campaigns.load_campaigns(seminar.next_edition(), by=by)
    admin, *others = logins
    admin.others = others
    return admin


__all__ = ["DemoLogin", "load_demo"]
