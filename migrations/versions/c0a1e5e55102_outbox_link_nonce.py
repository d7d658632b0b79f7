"""outbox link nonce: only the template's own link markers are minted

Revision ID: c0a1e5e55102
Revises: c0a1e5e55101
Create Date: 2026-12-04 17:10:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55102"
down_revision = "c0a1e5e55101"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
