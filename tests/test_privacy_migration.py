"""Migration c0a1e5e55117 on a database already in use: the contact and suppression tables are
rebuilt (SQLite's batch mode) while bookings, places and consents point at contacts, and every
existing address gets its hash (`core.addresses.address_hash`), so the suppression list and the
marketing rules find old rows as they find new."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from chamber import create_app
from chamber.core.addresses import address_hash
from chamber.extensions import db

BEFORE = "c0a1e5e55119"  # the revision before 117 in the chain


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


def test_upgrading_a_database_in_use_keeps_every_row_and_hashes_every_address(empty_app):
    upgrade(revision=BEFORE)
    statements = [
        "INSERT INTO organisation (id, name, name_normalised, size_band, sector, "
        " town_or_postcode, is_member, created_at, updated_at) VALUES (1, 'Octree Ltd', "
        " 'octree', 'small', 'IT', 'Stevenage', false, '2026-01-01 00:00:00', "
        " '2026-01-01 00:00:00')",
        "INSERT INTO contact (id, organisation_id, name, email, job_title, phone, created_at) "
        " VALUES (1, 1, 'Zoë', 'Zoe.Smith@Example.com', '', '', '2026-01-01 00:00:00')",
        "INSERT INTO suppression (email, reason, created_at) VALUES "
        " ('gone@example.com', 'unsubscribe', '2026-01-01 00:00:00')",
    ]
    with db.engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
        # A row that points at the contact, as bookings and consents do in a chamber's database.
        connection.execute(
            sa.text(
                "INSERT INTO consent (contact_id, purpose, wording, source, given_at) "
                "VALUES (1, 'events', 'Yes please', 'import', '2026-01-01 00:00:00')"
            )
        )

    upgrade()

    with db.engine.connect() as connection:
        contact = connection.execute(sa.text("SELECT email, email_hash FROM contact")).one()
        suppressed = connection.execute(sa.text("SELECT email, email_hash FROM suppression")).one()
        consents = connection.execute(sa.text("SELECT contact_id FROM consent")).scalars().all()
    assert contact.email_hash == address_hash("zoe.smith@example.com")
    assert suppressed.email_hash == address_hash("gone@example.com")
    assert consents == [1]  # the contact's consent still points at it
