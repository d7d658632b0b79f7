"""Objects for rows written with a Core INSERT (`core.written`): persistent as though read, every
column given, nothing to flush and nothing read again."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy import inspect as sa_inspect

from chamber.core.times import utcnow
from chamber.core.written import as_read
from chamber.extensions import db
from chamber.members.models import LegalForm, Organisation, SizeBand
from tests.support import count_queries


def _organisation(name: str) -> dict:
    now = utcnow()
    return {
        "name": name,
        "name_normalised": name.lower(),
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


def test_an_object_for_a_row_just_written_is_as_if_read(app):
    values = _organisation("Octree <b>Ltd</b>'; --")
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


def test_an_object_for_a_row_a_rollback_took_back_leaves_the_session(app):
    """As a new object would: nothing stale is left for `get`, and the same id (SQLite gives it
    again) can be written and made anew."""
    table = Organisation.__table__
    values = _organisation("Octree")
    made = []
    for _ in range(2):
        new_id = db.session.execute(insert(table).values(**values).returning(table.c.id)).scalar()
        made.append(as_read(Organisation, {**values, "id": new_id}))
        db.session.rollback()
        assert db.session.get(Organisation, new_id) is None
    assert all(organisation not in db.session for organisation in made)


def test_a_bookings_objects_are_what_its_rows_hold(make_event):
    """A public booking's objects made from what was written (the booking, its places, the
    business and the people) hold what a fresh read of their rows holds."""
    from chamber.members.models import Contact
    from chamber.registration.models import Booking, Delegate
    from tests.factories import make_booking

    result = make_booking(make_event(), source="web")
    objects = [
        result.booking,
        *result.confirmed,
        result.booking.booker,
        result.booking.organisation,
    ]
    for instance in objects:
        model = type(instance)
        table = model.__table__
        row = db.session.execute(select(*table.c).where(table.c.id == instance.id)).one()._mapping
        keys = {c.name: sa_inspect(model).get_property_by_column(c).key for c in table.c}
        assert {name: getattr(instance, key) for name, key in keys.items()} == dict(row)
        assert model in (Booking, Delegate, Contact, Organisation)
