"""the worker's heartbeat; a link check run that found no network

Revision ID: c0a1e5e55105
Revises: c0a1e5e55107
Create Date: 2026-12-04 21:00:00

`worker_heartbeat` holds one row per worker process, rewritten every round: `/healthz` and the
staff home page read how long ago the newest round finished. `link_check_run.offline` marks a
run in which every link failed for want of a network, whose results were not recorded.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55105"
down_revision = "c0a1e5e55107"
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
    with op.batch_alter_table("link_check_run", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("offline", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table("link_check_run", schema=None) as batch_op:
        batch_op.drop_column("offline")
    with op.batch_alter_table("worker_heartbeat", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_heartbeat_last_beat_at"))
    op.drop_table("worker_heartbeat")
