"""a delegate's own place link; consent from a public form is a request until confirmed

Revision ID: c0a1e5e55103
Revises: c0a1e5e55102
Create Date: 2026-12-04 17:10:00

`delegate_token` holds the hashes of delegates' own place links. `booking.business_as_typed`
keeps what a booking said about its business, which no longer overwrites the organisation.
`consent` gains `source` and
`confirmed_at`: a box ticked on the booking form is a request, not proof, so every consent
recorded before this revision (all from the booking form) becomes an unconfirmed request.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55103"
down_revision = "c0a1e5e55102"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "delegate_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delegate_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delegate_id"],
            ["delegate.id"],
            name=op.f("fk_delegate_token_delegate_id_delegate"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegate_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_delegate_token_token_hash")),
    )
    with op.batch_alter_table("delegate_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delegate_token_delegate_id"), ["delegate_id"], unique=False
        )

    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(sa.Column("business_as_typed", sa.JSON(), nullable=True))
    booking = sa.table("booking", sa.column("business_as_typed", sa.JSON))
    op.execute(booking.update().values(business_as_typed={}))
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.alter_column("business_as_typed", existing_type=sa.JSON(), nullable=False)

    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(), nullable=True))
    consent = sa.table("consent", sa.column("source", sa.String))
    op.execute(consent.update().values(source="booking form"))
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.alter_column("source", existing_type=sa.String(length=40), nullable=False)


def downgrade():
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("source")
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_column("business_as_typed")

    with op.batch_alter_table("delegate_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delegate_token_delegate_id"))
    op.drop_table("delegate_token")
