"""merge records: two organisations or two contacts merged into one, with the removed row's
snapshot, what moved, by whom and when

Revision ID: c0a1e5e55110
Revises: c0a1e5e55113
Create Date: 2026-12-05 12:40:00
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55110"
down_revision = "c0a1e5e55113"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "merge_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "organisation",
                "contact",
                name="mergekind",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("kept_id", sa.Integer(), nullable=False),
        sa.Column("removed_id", sa.Integer(), nullable=False),
        sa.Column("removed_snapshot", sa.JSON(), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("by_email", sa.String(length=254), nullable=False),
        sa.Column("merged_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["by_id"],
            ["staff_user.id"],
            name=op.f("fk_merge_record_by_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_record")),
    )
    with op.batch_alter_table("merge_record", schema=None) as batch_op:
        batch_op.create_index("ix_merge_record_kind_kept_id", ["kind", "kept_id"], unique=False)


def downgrade():
    with op.batch_alter_table("merge_record", schema=None) as batch_op:
        batch_op.drop_index("ix_merge_record_kind_kept_id")
    op.drop_table("merge_record")
