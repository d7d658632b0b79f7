"""contact.address_confirmed_at: when the address was shown to be the person's (staff or an import
recorded them, they confirmed a subscription, came to an event, or acted through a link sent to
it). Marketing's corporate and soft opt-in bases need it, so that an address a stranger typed on
the public booking form is sent no marketing. Contacts already held keep the bases they had: each
is taken as confirmed when it was made.

Revision ID: c0a1e5e55126
Revises: c0a1e5e55125
Create Date: 2026-12-08 03:30:00
"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "c0a1e5e55126"
down_revision = "c0a1e5e55125"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address_confirmed_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE contact SET address_confirmed_at = created_at WHERE anonymised_at IS NULL")


def downgrade():
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_column("address_confirmed_at")
