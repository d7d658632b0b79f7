"""Migration c0a1e5e55104 moves each event's free-text address into street, town and postcode
where it can, and keeps the text whole as the street address where it cannot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from chamber import create_app
from chamber.extensions import db

MIGRATION = (
    Path(__file__).resolve().parent.parent
    / "chamber/migrations/versions/c0a1e5e55104_event_postal_address_and_previous_start.py"
)


def migration_module():
    spec = importlib.util.spec_from_file_location("address_migration", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def empty_app(databases, tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": databases.new(),
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("St George's Way, Stevenage SG1 1HS", ("St George's Way", "Stevenage", "SG1 1HS")),
        ("St George's Way\nStevenage\nsg11hs", ("St George's Way", "Stevenage", "SG1 1HS")),
        ("Knebworth House, Knebworth, SG3 6PY", ("Knebworth House", "Knebworth", "SG3 6PY")),
        ("1 High St\nFlat 2\nHitchin SG5 1AA", ("1 High St\nFlat 2", "Hitchin", "SG5 1AA")),
        ("The old mill by the river", ("The old mill by the river", "", "")),
        ("SG1 1HS", ("SG1 1HS", "", "SG1 1HS")),
        ("", ("", "", "")),
    ],
)
def test_free_text_addresses_split_where_they_can(text, split):
    assert migration_module().split_address(text) == split


def test_upgrading_moves_an_existing_events_address_and_downgrading_joins_it_again(empty_app):
    upgrade(revision="c0a1e5e55103")
    insert = sa.text(
        "INSERT INTO event (slug, title, summary, description, venue_name, venue_address, "
        "timezone, starts_at, ends_at, capacity, business_limit, host, supporters, status, "
        "sequence, created_at, updated_at) VALUES (:slug, 'T', '', '', 'Holiday Inn', :address, "
        "'Europe/London', '2030-07-04 07:00:00', '2030-07-04 11:00:00', 10, 3, '', '', "
        "'published', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )
    with db.engine.begin() as connection:
        connection.execute(
            insert, {"slug": "split", "address": "St George's Way\nStevenage SG1 1HS"}
        )
        connection.execute(insert, {"slug": "whole", "address": "Behind the church"})
    upgrade()
    query = sa.text(
        "SELECT slug, venue_address, venue_town, venue_postcode, venue_country, "
        "previous_starts_at FROM event ORDER BY slug"
    )
    with db.engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(query)]
    assert rows == [
        ("split", "St George's Way", "Stevenage", "SG1 1HS", "GB", None),
        ("whole", "Behind the church", "", "", "GB", None),
    ]
    downgrade(revision="c0a1e5e55103")
    with db.engine.connect() as connection:
        addresses = connection.execute(
            sa.text("SELECT venue_address FROM event ORDER BY slug")
        ).scalars()
        assert list(addresses) == ["St George's Way\nStevenage SG1 1HS", "Behind the church"]
