"""Objects for rows written with a Core INSERT (`core.written`): persistent as though read, every
column given, nothing to flush and nothing read again."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from chamber.core.times import utcnow
from chamber.core.written import as_read
from chamber.extensions import db
from chamber.members.models import LegalForm, Organisation, SizeBand
from tests.support import count_queries


def test_an_object_for_a_row_just_written_is_as_if_read(app):
    now = utcnow()
    values = {
        "name": "Octree <b>Ltd</b>'; --",
        "name_normalised": "octree",
        "size_band": SizeBand.small,
        "legal_form": LegalForm.unknown,
        "sector": "",
        "town_or_postcode": "",
        "postcode": "",
        "website": "",
        "notes": "",
        "is_member": False,
        "membership_tier": "",
        "member_since": None,
        "renews_on": None,
        "lapsed_on": None,
        "archived_at": None,
        "created_at": now,
        "updated_at": now,
    }
    table = Organisation.__table__
    new_id = db.session.execute(insert(table).values(**values).returning(table.c.id)).scalar_one()
    with count_queries() as statements:
        organisation = as_read(Organisation, {**values, "id": new_id})
        assert organisation.name == "Octree <b>Ltd</b>'; --" and organisation.id == new_id
        assert db.session.get(Organisation, new_id) is organisation
        assert not db.session.new and not db.session.dirty
        db.session.flush()
    assert statements == []  # nothing written twice, nothing read again
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Organisation, new_id).name == "Octree <b>Ltd</b>'; --"


def test_a_column_left_out_is_refused(app):
    with pytest.raises(ValueError, match="written without .*name_normalised"):
        as_read(Organisation, {"id": 1, "name": "Octree"})
