"""public_version: the number public pages are cached by

Revision ID: c0a1e5e55107
Revises: c0a1e5e55104
Create Date: 2026-12-04 21:00:00

"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "c0a1e5e55107"
down_revision = "c0a1e5e55104"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "public_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_version")),
    )
    op.bulk_insert(
        table, [{"id": 1, "number": 0, "changed_at": datetime.now(UTC).replace(tzinfo=None)}]
    )


def downgrade():
    op.drop_table("public_version")
