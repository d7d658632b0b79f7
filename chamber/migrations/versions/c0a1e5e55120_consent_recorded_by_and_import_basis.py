"""consent: who recorded it and who recorded its withdrawal (staff notes, imports); an import's
stated basis for consent (its wording and topics)

Revision ID: c0a1e5e55120
Revises: c0a1e5e55116
Create Date: 2026-12-05 23:15:00
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55120"
down_revision = "c0a1e5e55116"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recorded_by", sa.String(length=254), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("withdrawn_by", sa.String(length=254), server_default="", nullable=False)
        )
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("consent_wording", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("consent_topics", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.drop_column("consent_topics")
        batch_op.drop_column("consent_wording")
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_by")
        batch_op.drop_column("recorded_by")
