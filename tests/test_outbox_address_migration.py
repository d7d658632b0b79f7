"""Migration c0a1e5e55113 gives every message already in the outbox its normalised address (as
the app makes it, not as SQL's lower() would), so the Outbox's search and the staff home page find
old mail as they find new."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from chamber import create_app
from chamber.extensions import db
from chamber.mail.services import normalise_address

ADDRESSES = ["zoe@example.com", "Zoe.Smith@Example.COM", "ZOË@EXÄMPLE.COM", "li@例子.中国",
             "ΣΊΣΥΦΟΣ@example.gr", "a%b_c\\d@example.com"]  # fmt: skip


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


def test_upgrading_fills_each_messages_normalised_address_and_downgrading_drops_it(empty_app):
    upgrade(revision="c0a1e5e55109")
    insert = sa.text(
        "INSERT INTO outbox_message (key, kind, status, to_address, to_name, subject, text_body, "
        "html_body, message_id, created_at, next_attempt_at, attempts) VALUES (:key, "
        "'transactional', 'sent', :to, '', 'Hello', 'Hello', '<p>Hello</p>', :key, "
        "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
    )
    config = empty_app.extensions["migrate"].migrate.get_config()
    batch = ScriptDirectory.from_config(config).get_revision("c0a1e5e55113").module.BATCH
    many = [f"Person{n}@Example.com" for n in range(batch)]  # more than a batch: none left out
    with db.engine.begin() as connection:
        connection.execute(
            insert, [{"key": f"old:{n}", "to": to} for n, to in enumerate(ADDRESSES + many)]
        )
    upgrade()

    with db.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT to_address, to_normalised FROM outbox_message ORDER BY id")
        ).all()
    assert [tuple(row) for row in rows] == [
        (address, normalise_address(address)) for address in ADDRESSES + many
    ]
    assert rows[2].to_normalised == "zoë@exämple.com"

    downgrade(revision="c0a1e5e55109")
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("outbox_message")}
    assert "to_normalised" not in columns
    indexes = {i["name"] for i in sa.inspect(db.engine).get_indexes("outbox_message")}
    assert "ix_outbox_message_to_address" in indexes
    upgrade()
