"""organisation.name_normalised without accents: "Cafe Bon Appetit Ltd" finds "Café Bon Appétit
Ltd" (`members.services.normalise_organisation_name`). Each key is made again; where two
businesses come to share one, the older keeps it and the newer keeps its old key (staff merge
them in the directory), so the unique constraint holds throughout.

Revision ID: c0a1e5e55125
Revises: c0a1e5e55124
Create Date: 2026-12-08 03:50:00
"""

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c0a1e5e55125"
down_revision = "c0a1e5e55124"
branch_labels = None
depends_on = None

# The key as this revision makes it, written here so that a later change of the application's
# function does not change what this migration did.
LEGAL_SUFFIXES = {
    "ltd", "limited", "plc", "llp", "lp", "inc", "incorporated", "co", "company", "corp",
    "corporation", "cic", "uk", "group",
}  # fmt: skip
PLAIN_LETTERS = str.maketrans(
    {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
     "ı": "i", "ħ": "h"}
)  # fmt: skip


def _key(name: str, accents: bool) -> str:
    text = unicodedata.normalize("NFKC", name).casefold()
    if not accents:
        decomposed = unicodedata.normalize("NFKD", text.lower())
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
        text = text.translate(PLAIN_LETTERS)
    words = re.findall(r"[^\W_]+", text.replace("&", " and "))
    if words and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)[:200] or text.strip()[:200]


def _rekey(accents: bool) -> None:
    organisation = sa.table(
        "organisation", sa.column("id", sa.Integer), sa.column("name", sa.String),
        sa.column("name_normalised", sa.String),
    )  # fmt: skip
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(organisation.c.id, organisation.c.name, organisation.c.name_normalised)
        .order_by(organisation.c.id)
    ).all()  # fmt: skip
    taken: set[str] = set()
    wanted: dict[int, str] = {}
    for row_id, name, old in rows:
        key = _key(name or "", accents)
        if key in taken:
            key = old if old not in taken else f"{key[:180]} (record {row_id})"
        taken.add(key)
        if key != old:
            wanted[row_id] = key
    update = (
        organisation.update()
        .where(organisation.c.id == sa.bindparam("row_id"))
        .values(name_normalised=sa.bindparam("key"))
    )
    if wanted:  # through a key no name makes, so that no two rows hold one key on the way
        bind.execute(update, [{"row_id": i, "key": f"\x01{i}"} for i in wanted])
        bind.execute(update, [{"row_id": i, "key": key} for i, key in wanted.items()])


def upgrade():
    _rekey(accents=False)


def downgrade():
    _rekey(accents=True)
