"""the worker's heartbeat: one row per worker process, rewritten every round

Revision ID: c0a1e5e55105
Revises: c0a1e5e55103
Create Date: 2026-12-04 21:00:00

`/healthz` and the staff home page read how long ago the newest round finished.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55105"
down_revision = "c0a1e5e55103"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "worker_heartbeat",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_beat_at", sa.DateTime(), nullable=False),
        sa.Column("last_round_ok", sa.Boolean(), nullable=False),
        sa.Column("last_round", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeat")),
    )
    with op.batch_alter_table("worker_heartbeat", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_worker_heartbeat_last_beat_at"), ["last_beat_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("worker_heartbeat", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_heartbeat_last_beat_at"))
    op.drop_table("worker_heartbeat")
