"""Migration c0a1e5e55125 makes every business's key again without accents, as
`normalise_organisation_name` now makes it, without ever breaking the key's uniqueness: where
two businesses come to share a key, the older keeps it and the newer a key of its own (staff
merge the two in the directory). A downgrade makes the keys with accents again."""

from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from chamber.extensions import db
from chamber.members.services import find_organisation, normalise_organisation_name
from tests.test_outbox_address_migration import empty_app  # noqa: F401  (a fixture)

NAMES = ["Café Bon Appétit Ltd", "Cafe Bon Appetit", "Ölçer Søn & Co", "Octree Ltd"]
WITH_ACCENTS = ["café bon appétit", "cafe bon appetit", "ölçer søn and", "octree"]


def keys() -> list[str]:
    with db.engine.connect() as connection:
        return list(
            connection.scalars(sa.text("SELECT name_normalised FROM organisation ORDER BY id"))
        )


def test_the_keys_are_made_again_without_accents_and_back(empty_app):  # noqa: F811
    upgrade(revision="c0a1e5e55124")
    insert = sa.text(
        "INSERT INTO organisation (name, name_normalised, size_band, sector, town_or_postcode, "
        "is_member, created_at, updated_at, legal_form, website, membership_tier, postcode, "
        "notes) VALUES (:name, :key, 'small', '', '', false, '2026-01-01 00:00:00', "
        "'2026-01-01 00:00:00', 'unknown', '', '', '', '')"
    )
    with db.engine.begin() as connection:
        connection.execute(
            insert, [{"name": n, "key": k} for n, k in zip(NAMES, WITH_ACCENTS, strict=True)]
        )
    upgrade()
    assert keys() == ["cafe bon appetit", "cafe bon appetit (record 2)", "olcer son and", "octree"]
    assert [normalise_organisation_name(n) for n in (NAMES[0], NAMES[2])] == keys()[::2][:2]
    assert find_organisation("CAFE BON APPETIT LIMITED").name == "Café Bon Appétit Ltd"
    db.session.rollback()
    downgrade(revision="c0a1e5e55124")
    assert keys() == WITH_ACCENTS
