"""privacy: the suppression list by address hash, contacts' address hash, anonymised marks,
and the record of retention runs

Revision ID: c0a1e5e55117
Revises: c0a1e5e55119
Create Date: 2026-12-05 23:30:00

An erased person's suppression row keeps only the SHA-256 of their normalised address
(`core.addresses.address_hash`), so every check looks the list up by `email_hash`; contacts carry
the same hash so that the marketing rules and segments compare in SQL (docs/privacy.md).
"""

import hashlib

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c0a1e5e55117"
down_revision = "c0a1e5e55119"
branch_labels = None
depends_on = None

BATCH = 5_000


def _hash(address):
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


def _fill_hashes(table_name):
    """Each row's email_hash, computed in Python as the app computes it."""
    table = sa.table(
        table_name,
        sa.column("id", sa.Integer),
        sa.column("email", sa.String),
        sa.column("email_hash", sa.String),
    )
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(table.c.id, table.c.email)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values(email_hash=sa.bindparam("digest")),
            [{"row_id": id_, "digest": _hash(email or "")} for id_, email in rows],
        )
        last = rows[-1].id


def upgrade():
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
    _fill_hashes("suppression")
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.alter_column("email_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=True)
        batch_op.create_unique_constraint(batch_op.f("uq_suppression_email_hash"), ["email_hash"])

    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("anonymised_at", sa.DateTime(), nullable=True))
    _fill_hashes("contact")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.alter_column("email_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(batch_op.f("ix_contact_email_hash"), ["email_hash"], unique=False)

    with op.batch_alter_table("delegate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anonymised_at", sa.DateTime(), nullable=True))

    op.create_table(
        "retention_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_run")),
    )
    with op.batch_alter_table("retention_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retention_run_started_at"), ["started_at"], unique=False
        )


def downgrade():
    op.drop_table("retention_run")
    with op.batch_alter_table("delegate", schema=None) as batch_op:
        batch_op.drop_column("anonymised_at")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_email_hash"))
        batch_op.drop_column("anonymised_at")
        batch_op.drop_column("email_hash")
    # Rows that keep only a hash cannot go back to an address: they are dropped.
    op.execute("DELETE FROM suppression WHERE email IS NULL")
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_suppression_email_hash"), type_="unique")
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=False)
        batch_op.drop_column("email_hash")
