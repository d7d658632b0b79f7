"""unaccent on PostgreSQL: the door's and the registrations list's search by name without regard
to accents (`core.dialects.folded`; SQLite folds with the function `chamber_fold` that each
connection registers, so it needs nothing here)

Revision ID: c0a1e5e55124
Revises: c0a1e5e55123
Create Date: 2026-12-08 00:50:00
"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "c0a1e5e55124"
down_revision = "c0a1e5e55123"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # unaccent is a trusted extension (PostgreSQL 13 and later): the database's owner may
        # create it. It stays on a downgrade: other objects may have come to use it.
        op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")


def downgrade():
    pass
