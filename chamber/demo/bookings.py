"""Demo bookings: the 2016 seminar's room of over 60 businesses, and an upcoming edition that is
nearly full with a short waiting list, so every staff page shows something real."""

from __future__ import annotations

import random
from datetime import timedelta

from chamber.core.times import utcnow
from chamber.events.models import Event
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.members.services import normalise_organisation_name
from chamber.registration import services
from chamber.registration.models import Delegate, DelegateStatus

FIRST = ["Amelia", "Oliver", "Priya", "James", "Sophie", "Mohammed", "Grace", "Daniel", "Chloe", "Tom",
         "Aisha", "Ben", "Hannah", "Raj", "Emily", "Jack", "Zoë", "Liam", "Fatima", "Sam", "Niamh", "Owen",
         "Mei", "Harry", "Ella", "Kwame", "Lucy", "Patrick", "Isla", "Ravi"]  # fmt: skip
LAST = ["Patel", "Smith", "Jones", "O'Brien", "Khan", "Taylor", "Williams", "Brown", "Singh", "Evans",
        "Wilson", "Thomas", "Roberts", "Chen", "Walker", "Wright", "Hughes", "Green", "Hall", "Clarke"]  # fmt: skip
WORDS = ["Stevenage", "Hitchin", "Letchworth", "Welwyn", "Hatfield", "St Albans", "Watford", "Hertford",
         "Ware", "Royston", "Harpenden", "Tring", "Baldock", "Knebworth", "Chiltern", "Lea Valley",
         "Mimram", "Priory", "Broadwater", "Fairlands", "Oakwood", "Redbourn", "Bluebell", "Ashwell"]  # fmt: skip
TRADES = [("Precision Engineering", "Manufacturing"), ("Accountants", "Professional services"),
          ("Solicitors", "Legal"), ("Dental Practice", "Health"), ("IT Support", "Technology"),
          ("Logistics", "Transport and logistics"), ("Print", "Manufacturing"), ("Bakery", "Food and drink"),
          ("Estate Agents", "Property"), ("Garden Centre", "Retail"), ("Recruitment", "Professional services"),
          ("Builders", "Construction"), ("Design Studio", "Creative"), ("Insurance Brokers", "Finance"),
          ("Care Homes", "Health"), ("Software", "Technology"), ("Hotel", "Hospitality"),
          ("Community Trust", "Charity")]  # fmt: skip
LARGE = [("Hertfordshire County Services", "Public sector"), ("Airbus Defence and Space", "Aerospace"),
         ("GSK Stevenage", "Pharmaceuticals"), ("MBDA UK", "Defence"), ("Tesco Welwyn", "Retail"),
         ("Johnson Matthey Royston", "Manufacturing"), ("Mitsubishi Electric UK", "Manufacturing"),
         ("Affinity Water", "Utilities"), ("Hertfordshire Building Society", "Finance"),
         ("East and North Herts NHS Trust", "Health")]  # fmt: skip
TOWNS = ["Stevenage", "Hitchin", "Letchworth Garden City", "Welwyn Garden City", "Hatfield", "St Albans",
         "Hertford", "Ware", "Royston", "Harpenden", "SG1 2AB", "AL10 9AB"]  # fmt: skip


def _businesses(rng: random.Random, count: int) -> list[services.BusinessDetails]:
    """A plausible county mix: mostly micro and small firms, some medium, a few large employers."""
    names: set[str] = set()
    result = []
    large = list(LARGE)
    rng.shuffle(large)
    while len(result) < count:
        band = rng.choices(list(SizeBand), weights=[32, 34, 20, 14])[0]
        if band is SizeBand.large and large:
            name, sector = large.pop()
        else:
            band = SizeBand.medium if band is SizeBand.large else band
            trade, sector = rng.choice(TRADES)
            name = f"{rng.choice(WORDS)} {trade} {rng.choice(['Ltd', 'Ltd', 'LLP', 'Limited', ''])}".strip()
        key = normalise_organisation_name(name)  # "X Ltd" and "X Limited" are one business
        if key in names:
            continue
        names.add(key)
        result.append(
            services.BusinessDetails(name, band, sector, rng.choice(TOWNS), rng.random() < 0.55)
        )
    return result


def _people(rng: random.Random, business: services.BusinessDetails, count: int, used: set[str]):
    domain = "".join(ch for ch in business.name.lower() if ch.isalnum())[:24] + ".example"
    people = []
    while len(people) < count:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}".lower().replace("'", "").replace("ë", "e") + f"@{domain}"
        if email in used:
            continue
        used.add(email)
        people.append(
            services.DelegateDetails(
                f"{first} {last}",
                email,
                rng.choice(
                    [
                        "Managing Director",
                        "Office Manager",
                        "IT Manager",
                        "Finance Director",
                        "Owner",
                        "Operations Manager",
                        "Head of IT",
                        "Partner",
                    ]
                ),
            )
        )
    return people


def load_bookings(event: Event, *, past: bool, seed: int) -> None:
    """Book the edition like a real one; only for an edition that has no bookings yet.

    Past: 72 businesses booked and 64 of them came ("over 60 businesses attended").
    Upcoming: every seat taken and five people on the waiting list.
    """
    if db.session.scalar(
        db.select(db.func.count(Delegate.id)).where(Delegate.event_id == event.id)
    ):
        return
    rng = random.Random(seed)
    used: set[str] = set()
    wanted_people = event.capacity - 10 if past else event.capacity + 5
    businesses = _businesses(rng, 72 if past else 200)
    # Booked over the weeks before the event, and never in the future: an edition still to come
    # has its bookings over the last fortnight (the staff home page's chart), up to now.
    latest = min(event.starts_at, utcnow())
    booked_at = latest - timedelta(days=30 if past else 13)
    for number, business in enumerate(businesses):
        room = wanted_people - len(used) - (len(businesses) - number - 1 if past else 0)
        if room <= 0:
            break
        size = min(rng.choice([1, 1, 1, 2, 2, 3]), event.business_limit, room)
        people = _people(rng, business, size, used)
        when = min(booked_at, latest)
        services.book(event, business, people[0], people, source="staff", now=when)
        booked_at += timedelta(minutes=rng.randint(20, 400))
    if past:
        _check_in(event, rng)
    db.session.flush()


def _check_in(event: Event, rng: random.Random) -> None:
    """Eight businesses sent nobody; in the others, nearly everyone booked came."""
    delegates = db.session.scalars(
        db.select(Delegate)
        .where(Delegate.event_id == event.id, Delegate.status == DelegateStatus.confirmed)
        .order_by(Delegate.id)
    ).all()
    businesses = sorted({d.booking.organisation_id for d in delegates})
    no_shows = set(rng.sample(businesses, k=max(0, len(businesses) - 64)))
    seen: set[int] = set()
    for delegate in delegates:
        business = delegate.booking.organisation_id
        if business in no_shows or (business in seen and rng.random() < 0.1):
            continue
        seen.add(business)
        delegate.checked_in_at = event.starts_at - timedelta(minutes=rng.randint(0, 40))
