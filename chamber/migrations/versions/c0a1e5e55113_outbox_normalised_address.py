"""outbox: the normalised address, indexed for the Outbox's search and the staff home page

Revision ID: c0a1e5e55113
Revises: c0a1e5e55111
Create Date: 2026-12-05 12:40:00

With 200,000 messages, the Outbox's search (`lower(to_address) LIKE '%text%'`) read every message,
and the staff home page's failed mail to each event's delegates joined on `lower(to_address)`,
which no index holds (SQLite ran it as a nested loop: 4 s). `to_normalised` is the address as
`mail.services.normalise_address` leaves it, compared in code-point order (collation "C" on
PostgreSQL) so that a range of it is every address that starts with a text. The index on
`to_address` alone served no query and goes (benchmarks/README.md, "Cost with a large data set").
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55113"
down_revision = "c0a1e5e55111"
branch_labels = None
depends_on = None

BATCH = 5_000
outbox = sa.table(
    "outbox_message",
    sa.column("id", sa.Integer),
    sa.column("to_address", sa.String),
    sa.column("to_normalised", sa.String),
)


def upgrade():
    address = sa.String(length=254).with_variant(sa.String(length=254, collation="C"), "postgresql")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("to_normalised", address, nullable=True))

    # Filled in Python, as the app fills it: SQL's lower() folds only ASCII on SQLite.
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(outbox.c.id, outbox.c.to_address)
            .where(outbox.c.id > last)
            .order_by(outbox.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            outbox.update()
            .where(outbox.c.id == sa.bindparam("row_id"))
            .values(to_normalised=sa.bindparam("normalised")),
            [{"row_id": id_, "normalised": to.strip().lower()} for id_, to in rows],
        )
        last = rows[-1].id

    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.alter_column("to_normalised", existing_type=address, nullable=False)
        batch_op.drop_index("ix_outbox_message_to_address")
        batch_op.create_index(
            "ix_outbox_message_to_normalised_id", ["to_normalised", "id"], unique=False
        )
        batch_op.create_index(
            "ix_outbox_message_status_to_normalised", ["status", "to_normalised"], unique=False
        )


def downgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_status_to_normalised")
        batch_op.drop_index("ix_outbox_message_to_normalised_id")
        batch_op.create_index("ix_outbox_message_to_address", ["to_address"], unique=False)
        batch_op.drop_column("to_normalised")
