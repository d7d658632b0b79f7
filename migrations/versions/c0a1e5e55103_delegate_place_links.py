"""a delegate's own place link

Revision ID: c0a1e5e55103
Revises: c0a1e5e55102
Create Date: 2026-12-04 17:10:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55103"
down_revision = "c0a1e5e55102"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
