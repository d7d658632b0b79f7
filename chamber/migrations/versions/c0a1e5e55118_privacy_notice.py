"""privacy notice: its versions, and the version each booking, consent and subscription saw

Revision ID: c0a1e5e55118
Revises: c0a1e5e55116
Create Date: 2026-12-05 23:30:00

`privacy_notice` holds every saved version of the public notice (version 0, the built-in text,
is never stored). `booking`, `consent` and `subscription_request` gain `privacy_notice_version`:
empty for every row made before, since no one can say which text those people saw.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55118"
down_revision = "c0a1e5e55116"
branch_labels = None
depends_on = None

RECORDING = ("booking", "consent", "subscription_request")


def upgrade():
    op.create_table(
        "privacy_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("saved_by_id", sa.Integer(), nullable=True),
        sa.Column("saved_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["saved_by_id"],
            ["staff_user.id"],
            name=op.f("fk_privacy_notice_saved_by_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_notice")),
        sa.UniqueConstraint("version", name=op.f("uq_privacy_notice_version")),
    )
    for table in RECORDING:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("privacy_notice_version", sa.Integer(), nullable=True))


def downgrade():
    for table in reversed(RECORDING):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("privacy_notice_version")
    op.drop_table("privacy_notice")
