"""The suppression list is looked up by the address's hash, and contacts carry the same hash, kept
by the model on every way a contact is written (docs/mail.md, "Unsubscribing"; docs/privacy.md)."""

from __future__ import annotations

import hashlib

from chamber.core.addresses import address_hash
from chamber.extensions import db
from chamber.mail import services as mail
from chamber.mail.models import Suppression
from chamber.members import directory
from chamber.members import services as members
from chamber.members.marketing import Basis, status_of
from chamber.members.models import Contact, MarketingTopic
from tests.factories import acting_staff


def test_the_hash_is_sha256_of_the_trimmed_lower_cased_address():
    expected = hashlib.sha256(b"zoe@firm.example").hexdigest()
    assert address_hash("  Zoe@FIRM.example ") == expected
    assert address_hash("zoë@firm.example") != expected


def test_every_way_of_writing_a_contact_keeps_its_hash(app):
    made = members.find_or_create_contact(email=" Core@Firm.Example", name="Core Insert")
    staff = directory.create_contact(
        directory.ContactInput("Staff Made", "staff.made@firm.example"), by=acting_staff()
    )
    db.session.commit()
    assert made.email_hash == address_hash("core@firm.example")
    assert staff.email_hash == address_hash("staff.made@firm.example")

    directory.edit_contact(
        staff.id, directory.ContactInput("Staff Made", "renamed@firm.example"), by=acting_staff()
    )
    db.session.commit()
    db.session.expire_all()
    contact = db.session.get(Contact, staff.id)
    assert contact.email_hash == address_hash("renamed@firm.example")
    rows = db.session.execute(db.select(Contact.email, Contact.email_hash)).all()
    assert len(rows) == 2 and all(digest == address_hash(email) for email, digest in rows)


def test_a_hash_only_row_suppresses_the_address_in_every_check(app):
    contact = members.find_or_create_contact(email="kept@firm.example", name="Kept")
    mail.keep_only_hash("KEPT@firm.example")
    db.session.commit()
    row = db.session.scalar(db.select(Suppression))
    assert row.email is None and row.email_hash == address_hash("kept@firm.example")
    assert mail.is_suppressed("kept@firm.example")
    assert mail.suppression_reasons(["Kept@Firm.example"]) == {"kept@firm.example": "erased"}
    assert status_of(contact, MarketingTopic.events).basis == Basis.suppressed
    # A bounce or an unsubscribe later never writes the address back, nor lifts it.
    mail.suppress("kept@firm.example", mail.BOUNCE, detail="550 kept@firm.example unknown")
    mail.suppress("kept@firm.example")
    assert not mail.lift_bounce("kept@firm.example")
    db.session.commit()
    row = db.session.scalar(db.select(Suppression))
    assert row.email is None and row.detail is None and row.reason == "erased"


def test_the_person_confirming_a_new_subscription_lifts_an_erasure(app):
    mail.keep_only_hash("back@firm.example")
    mail.lift_unsubscribe("back@firm.example")
    db.session.commit()
    assert not mail.is_suppressed("back@firm.example")
