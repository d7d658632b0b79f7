"""What strangers can learn from the public form, and what anonymous input may change: the page
after booking is the same whether or not someone named already had a place; the per-business
limit names no counts; a public booking never overwrites the CRM or records consent as given."""

from __future__ import annotations

import re

import pytest

from chamber.extensions import db
from chamber.mail.models import OutboxMessage
from chamber.members import services as members
from chamber.members.models import Consent, Contact, Organisation, SizeBand
from chamber.registration import services
from chamber.registration.models import Booking
from chamber.registration.services import BusinessDetails, DelegateDetails
from tests.factories import make_booking
from tests.test_registration import form, register, statuses

CSRF_OR_NONCE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+|nonce="[^"]+"')


def comparable(response) -> str:
    return CSRF_OR_NONCE.sub("", response.text)


def attempt(app, event, email: str):
    """A stranger's submission naming `email`, from a browser of their own."""
    client = app.test_client()
    response = register(
        client,
        event,
        business_name="Snoop Ltd",
        booker_name="Mallory",
        booker_email="mallory@snoop.example",
        **{"delegates-0-name": "Whoever", "delegates-0-email": email},
    )
    return response, client.get(
        response.headers["Location"]
    ) if response.status_code == 302 else None


def test_the_answer_is_the_same_whether_or_not_the_address_had_a_place(app, client, make_event):
    event = make_event()
    # The first time the address is fresh (it is booked); the second time it already has a place.
    fresh, fresh_page = attempt(app, event, "victim@target.example")
    taken, taken_page = attempt(app, event, "victim@target.example")
    assert (fresh.status_code, fresh.headers["Location"]) == (
        taken.status_code,
        taken.headers["Location"],
    )
    assert comparable(fresh_page) == comparable(taken_page)
    assert "We have emailed each delegate with what to do next" in taken_page.text
    assert "already" not in taken_page.text.lower()
    # Invariant 2 holds: one place; the person is emailed (at most once an hour), not the typist.
    assert statuses(event) == {"victim@target.example": "confirmed"}
    told = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("already-booked:%"))
    ).all()
    assert [m.to_address for m in told] == ["victim@target.example"]
    attempt(app, event, "victim@target.example")
    assert len(db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.key.like("already-booked:%"))
    ).all()) == 1  # fmt: skip
    assert db.session.scalar(db.select(db.func.count(Booking.id))) == 1  # nothing for Mallory


def test_a_booking_where_some_people_already_have_places_books_the_others(client, make_event):
    event = make_event(business_limit=5)
    register(client, event)  # Zoë has a place
    response = register(
        client,
        event,
        business_name="Other Ltd",
        booker_email="b@other.example",
        **{
            "delegates-0-email": "zoe@octree.example",
            "delegates-1-name": "New Person",
            "delegates-1-email": "new@other.example",
        },
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert "zoe@octree.example" in page and "new@other.example" in page
    assert statuses(event) == {"zoe@octree.example": "confirmed", "new@other.example": "confirmed"}
    zoe_booking = db.session.scalars(db.select(Booking).order_by(Booking.id)).first()
    assert [d.email_normalised for d in zoe_booking.delegates] == ["zoe@octree.example"]


def test_the_per_business_limit_names_no_counts_and_answers_alike(app, make_event):
    event = make_event(business_limit=1)
    make_booking(event, DelegateDetails("Owner", "owner@snoop.example"), business="Snoop Ltd")
    make_booking(make_event(), DelegateDetails("V", "victim@target.example"), business="Elsewhere")
    refused, _ = attempt(app, event, "fresh@target.example")
    again, _ = attempt(app, event, "owner@snoop.example")  # already has a place, same business
    assert refused.status_code == again.status_code == 400
    assert comparable(refused).replace("fresh@target.example", "X") == comparable(again).replace(
        "owner@snoop.example", "X"
    )
    assert "Each business may book up to 1 place for this event." in refused.text
    assert "already has" not in refused.text and " 1 more" not in refused.text


def test_a_stranger_typing_a_business_name_neither_probes_nor_uses_up_its_allowance(make_event):
    """The limit counts the bookings of the booker's colleagues (same business domain; for a
    personal mailbox, the same address), so another party's places stay invisible and theirs."""
    event = make_event(business_limit=2)
    colleague = DelegateDetails("Tony", "tony@octree.example")
    make_booking(event, colleague, DelegateDetails("Ann", "ann@octree.example"), source="web")
    # A stranger at another domain (or at a free-mail provider) books two under the same name.
    stranger = DelegateDetails("Mallory", "mallory@snoop.example")
    make_booking(event, stranger, "m2@snoop.example", business="OCTREE LIMITED", source="web")
    freemail = DelegateDetails("Eve", "eve.octree@gmail.com")
    make_booking(event, freemail, "e2@elsewhere.example", business="Octree", source="web")
    assert len(statuses(event)) == 6
    # Octree's own colleagues are counted together, whatever name spelling they type.
    with pytest.raises(services.BookingRefused, match="Each business may book up to 2 places"):
        make_booking(event, DelegateDetails("Sue", "sue@OCTREE.example"), business="octree ltd",
                     source="web")  # fmt: skip
    # So is one personal address, but not another one at the same provider.
    with pytest.raises(services.BookingRefused, match="Each business may book up to 2 places"):
        make_booking(event, "e3@elsewhere.example", booker=freemail, business="Octree",
                     source="web")  # fmt: skip
    make_booking(event, DelegateDetails("Other", "other.person@gmail.com"), business="Octree",
                 source="web")  # fmt: skip
    # A look-alike domain is not a colleague: "%" and "_" in a typed address match themselves.
    make_booking(event, DelegateDetails("Odd", "odd@x_octree.example"), business="Octree",
                 source="web")  # fmt: skip
    assert len(statuses(event)) == 8


def test_an_anonymous_booking_never_overwrites_a_business_or_a_person(client, make_event):
    organisation = members.find_or_create_organisation(
        name="Octree Ltd", size_band=SizeBand.medium, sector="IT", town_or_postcode="Hitchin"
    )
    members.find_or_create_contact(
        email="tony@octree.example", name="Tony Richardson", organisation=organisation,
        job_title="CTO",
    )  # fmt: skip
    db.session.commit()
    hostile = "<script>x</script> [[link:manage:1]] {{ 7*7 }}"
    response = register(
        client,
        make_event(),
        business_name="OCTREE LIMITED",
        size_band="large",
        sector=hostile,
        town_or_postcode="Nowhere",
        is_member="yes",
        booker_name=hostile,
        no_marketing="y",
    )
    assert response.status_code == 302
    org = db.session.scalars(db.select(Organisation)).one()
    assert (org.name, org.size_band, org.sector, org.town_or_postcode, org.is_member) == (
        "Octree Ltd", SizeBand.medium, "IT", "Hitchin", False,
    )  # fmt: skip
    tony = db.session.scalars(
        db.select(Contact).where(Contact.email == "tony@octree.example")
    ).one()
    assert (tony.name, tony.job_title) == ("Tony Richardson", "CTO")
    booking = db.session.scalars(db.select(Booking)).one()
    assert booking.business_as_typed["size_band"] == "large"  # what this booking said, kept
    assert booking.business_as_typed["sector"] == hostile
    # Opting out of news adds an opt-out; it gives nothing, and no consent is recorded.
    assert tony.soft_opt_in_at is None and not db.session.scalars(db.select(Consent)).all()


def test_a_new_business_and_person_are_made_from_what_was_typed(client, make_event):
    assert register(client, make_event()).status_code == 302
    org = db.session.scalars(db.select(Organisation)).one()
    assert (org.size_band, org.town_or_postcode, org.is_member) == (
        SizeBand.small,
        "Stevenage",
        True,
    )
    assert db.session.scalars(db.select(Contact.name).order_by(Contact.email)).all() == [
        "Tony Richardson", "Zoë O'Brien",
    ]  # fmt: skip


def test_a_staff_booking_updates_the_records(make_event):
    members.find_or_create_organisation(name="Octree Ltd", size_band=SizeBand.micro)
    db.session.commit()
    services.book(
        make_event(),
        BusinessDetails("Octree", SizeBand.large, town_or_postcode="Stevenage"),
        DelegateDetails("Tony", "tony@octree.example"),
        [DelegateDetails("Tony", "tony@octree.example")],
        source="staff",
    )
    org = db.session.scalars(db.select(Organisation)).one()
    assert (org.size_band, org.town_or_postcode) == (SizeBand.large, "Stevenage")


def test_the_form_without_a_csrf_token_is_refused(client, make_event):
    event = make_event()
    assert client.post(f"/events/{event.slug}/register", data=form()).status_code == 400
    assert statuses(event) == {}
