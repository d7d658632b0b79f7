"""delegates by name: an event's delegates in the order of lower(name), id, and one status's
delegates in that order (replacing the index on event_id, status, which it extends); on
PostgreSQL, a trigram index of businesses' names (pg_trgm) for the search by any part of a name

Revision ID: c0a1e5e55122
Revises: c0a1e5e55120
Create Date: 2026-12-06 05:15:00
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55122"
down_revision = "c0a1e5e55120"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("delegate", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delegate_event_id_name",
            ["event_id", sa.text("lower(name)"), "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_delegate_event_id_status_name",
            ["event_id", "status", sa.text("lower(name)"), "id"],
            unique=False,
        )
        batch_op.drop_index("ix_delegate_event_id_status")
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13 and later): the database's owner may
        # create it. It stays on a downgrade: other objects may have come to use it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_organisation_name_trigram",
            "organisation",
            [sa.text("lower(name) gin_trgm_ops")],
            unique=False,
            postgresql_using="gin",
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_organisation_name_trigram", table_name="organisation")
    with op.batch_alter_table("delegate", schema=None) as batch_op:
        batch_op.create_index("ix_delegate_event_id_status", ["event_id", "status"], unique=False)
        batch_op.drop_index("ix_delegate_event_id_status_name")
        batch_op.drop_index("ix_delegate_event_id_name")
