"""indexes for scale: the Outbox page of one status, newest first

Revision ID: c0a1e5e55108
Revises: c0a1e5e55105
Create Date: 2026-12-05 09:00:00

With 200,000 messages, the Outbox filtered by status read every message of that status and sorted
them for each page; `(status, id)` gives them in order and counts them from the index alone
(benchmarks/scale.py, "Cost with a large data set" in benchmarks/README.md).
"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "c0a1e5e55108"
down_revision = "c0a1e5e55105"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_message_status_id", ["status", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_status_id")
