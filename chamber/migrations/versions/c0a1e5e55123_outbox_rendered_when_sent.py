"""outbox rendered when sent: a message may be queued with the renderer that writes it
(`render_with`) and what it is about (`render_params`), for the worker to render when it claims it

Revision ID: c0a1e5e55123
Revises: c0a1e5e55122
Create Date: 2026-12-07 15:30:00
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55123"
down_revision = "c0a1e5e55122"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("render_with", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("render_params", sa.Text(), nullable=True))


def downgrade():
    # A message never rendered (waiting, parked or cancelled) has no body without its renderer:
    # it is cancelled, with the reason, so that nothing empty can go out, even sent again.
    op.execute(
        "UPDATE outbox_message SET status = 'cancelled', "
        "last_error = 'Not sent: queued to be rendered when sent, which this version cannot do' "
        "WHERE render_with IS NOT NULL"
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("render_params")
        batch_op.drop_column("render_with")
