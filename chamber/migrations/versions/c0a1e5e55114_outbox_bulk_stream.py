"""outbox: the bulk stream (campaign mail, claimed after transactional mail and rate limited),
when each message was last claimed, and a bounce's server answer on the suppression list

Revision ID: c0a1e5e55114
Revises: c0a1e5e55110
Create Date: 2026-12-05 16:50:00

`bulk` marks campaign mail: the claim takes every due message that is not bulk first
(`ix_outbox_message_stream_due`), and the bulk messages claimed in the last minute
(`claimed_at`, `ix_outbox_message_bulk_claimed_at`) are counted against CHAMBER_BULK_PER_MINUTE.
`suppression.detail` keeps a hard bounce's server answer, for staff to read in the directory.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55114"
down_revision = "c0a1e5e55110"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("bulk", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.create_index(
            "ix_outbox_message_stream_due", ["status", "bulk", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_outbox_message_bulk_claimed_at", ["bulk", "claimed_at"], unique=False
        )
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.drop_column("detail")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_bulk_claimed_at")
        batch_op.drop_index("ix_outbox_message_stream_due")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("bulk")
