"""consent: who recorded it and who recorded its withdrawal (staff notes, imports); an import's
stated basis for consent (its wording and topics); import_job_key, what a run has read of its
file for the within-file checks, kept in the database so that an import's memory stays flat

Revision ID: c0a1e5e55120
Revises: c0a1e5e55117
Create Date: 2026-12-05 23:15:00
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55120"
down_revision = "c0a1e5e55117"
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
    op.create_table(
        "import_job_key",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=254), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["import_job.id"],
            name=op.f("fk_import_job_key_job_id_import_job"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "kind", "key", name=op.f("pk_import_job_key")),
    )


def downgrade():
    op.drop_table("import_job_key")
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.drop_column("consent_topics")
        batch_op.drop_column("consent_wording")
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_by")
        batch_op.drop_column("recorded_by")
