"""an event's venue has a structured postal address; a rescheduled event keeps its previous start

Revision ID: c0a1e5e55104
Revises: c0a1e5e55103
Create Date: 2026-12-04 21:00:00

`event.venue_address` becomes the street address, beside the new `venue_town`, `venue_postcode`
and `venue_country` (GB for every event so far). Each free-text address is split where it can be:
a UK postcode at its end becomes the postcode and the words before it on that line (or the line
before) the town; the rest stays the street address. An address that cannot be split is kept
whole as the street address. `event.previous_starts_at` is the start a published event was
announced with while it is rescheduled.
"""

import re

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c0a1e5e55104"
down_revision = "c0a1e5e55103"
branch_labels = None
depends_on = None

POSTCODE_AT_END = re.compile(r"(?:^|[\s,])([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$", re.I)

event = sa.table(
    "event",
    sa.column("id", sa.Integer),
    sa.column("venue_address", sa.String),
    sa.column("venue_town", sa.String),
    sa.column("venue_postcode", sa.String),
)


def split_address(text: str) -> tuple[str, str, str]:
    """(street, town, postcode) of a free-text UK address; (text, "", "") when it has no
    postcode at its end to anchor the split."""
    parts = [p.strip() for p in re.split(r"[\n,]", text or "") if p.strip()]
    if not parts:
        return "", "", ""
    match = POSTCODE_AT_END.search(parts[-1])
    if match is None:
        return (text or "").strip(), "", ""
    postcode = f"{match[1]} {match[2]}".upper()
    town = parts[-1][: match.start(1)].strip(" ,")
    street = parts[:-1]
    if not town and street:
        town = street.pop()
    if not street:  # nothing would be left of the street: keep the text whole there
        return (text or "").strip(), town, postcode
    return "\n".join(street), town[:120], postcode


def upgrade():
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("venue_town", sa.String(length=120), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("venue_postcode", sa.String(length=20), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("venue_country", sa.String(length=2), nullable=False, server_default="GB")
        )
        batch_op.add_column(sa.Column("previous_starts_at", sa.DateTime(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(event.c.id, event.c.venue_address)).all()
    for event_id, address in rows:
        street, town, postcode = split_address(address)
        connection.execute(
            event.update()
            .where(event.c.id == event_id)
            .values(venue_address=street, venue_town=town, venue_postcode=postcode)
        )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.alter_column("venue_town", server_default=None)
        batch_op.alter_column("venue_postcode", server_default=None)
        batch_op.alter_column("venue_country", server_default=None)


def downgrade():
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(event.c.id, event.c.venue_address, event.c.venue_town, event.c.venue_postcode)
    ).all()
    for event_id, street, town, postcode in rows:
        last = " ".join(part for part in (town, postcode) if part)
        whole = "\n".join(part for part in (street, last) if part)
        connection.execute(
            event.update().where(event.c.id == event_id).values(venue_address=whole[:500])
        )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_column("previous_starts_at")
        batch_op.drop_column("venue_country")
        batch_op.drop_column("venue_postcode")
        batch_op.drop_column("venue_town")
