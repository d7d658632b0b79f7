"""outbox link nonce: only the template's own link markers are minted

Revision ID: c0a1e5e55102
Revises: c0a1e5e55101
Create Date: 2026-12-04 17:10:00

Messages not yet sent are given a nonce, and their markers (`[[link:kind:ref]]`, the old form)
are rewritten to carry it, so that they still get their links. In such a message an old-form
marker a person typed cannot be told from the template's own: it is minted only if its minter
finds that the recipient owns what it names (their own booking, place, check-in code or
invitation), and refused otherwise. Deliver the outbox before upgrading to avoid even that.
"""

import re
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "c0a1e5e55102"
down_revision = "c0a1e5e55101"
branch_labels = None
depends_on = None

OLD_MARKER = re.compile(r"\[\[link:([a-z_]+)(?::([A-Za-z0-9_-]{1,64}))?\]\]")
NEW_MARKER = re.compile(r"\[\[link:[0-9a-f]{32}:([a-z_]+):([A-Za-z0-9_-]{0,64})\]\]")
UNSENT = ("pending", "sending", "failed", "cancelled")


def upgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_nonce", sa.String(length=32), nullable=True))

    outbox = sa.table(
        "outbox_message",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("text_body", sa.Text),
        sa.column("html_body", sa.Text),
        sa.column("link_nonce", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(outbox.c.id, outbox.c.text_body, outbox.c.html_body).where(
            outbox.c.status.in_(UNSENT)
        )
    ).all()
    for row in rows:
        nonce = secrets.token_hex(16)

        def rewrite(text, nonce=nonce):
            return OLD_MARKER.sub(
                lambda m: f"[[link:{nonce}:{m.group(1)}:{m.group(2) or ''}]]", text
            )

        connection.execute(
            outbox.update()
            .where(outbox.c.id == row.id)
            .values(
                link_nonce=nonce,
                text_body=rewrite(row.text_body),
                html_body=rewrite(row.html_body),
            )
        )


def downgrade():
    outbox = sa.table(
        "outbox_message",
        sa.column("id", sa.Integer),
        sa.column("text_body", sa.Text),
        sa.column("html_body", sa.Text),
        sa.column("link_nonce", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(outbox.c.id, outbox.c.text_body, outbox.c.html_body).where(
            outbox.c.link_nonce.is_not(None)
        )
    ).all()
    for row in rows:

        def rewrite(text):
            return NEW_MARKER.sub(
                lambda m: (
                    f"[[link:{m.group(1)}:{m.group(2)}]]"
                    if m.group(2)
                    else f"[[link:{m.group(1)}]]"
                ),
                text,
            )

        connection.execute(
            outbox.update()
            .where(outbox.c.id == row.id)
            .values(text_body=rewrite(row.text_body), html_body=rewrite(row.html_body))
        )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("link_nonce")
