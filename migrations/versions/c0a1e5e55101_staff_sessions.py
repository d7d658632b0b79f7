"""staff sessions held on the server

Revision ID: c0a1e5e55101
Revises: 497ca04ef891
Create Date: 2026-12-04 17:10:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55101"
down_revision = "497ca04ef891"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
