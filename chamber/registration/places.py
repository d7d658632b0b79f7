"""A delegate's own place link: their place only, never the rest of the booking.

The booker's manage link (`/r/<token>`) shows the whole booking. A delegate who is not the booker
gets `/places/<token>` instead: their own details, their calendar file, and cancelling their own
place. Its token is minted when an email is sent (a `place` link, see chamber.mail.links), 256
random bits, stored only as a SHA-256 hash in `delegate_token`; each email mints a new one.
"""

from __future__ import annotations

from chamber.core.tokens import hash_token, new_token
from chamber.core.urls import external_url
from chamber.events.models import Event
from chamber.extensions import db
from chamber.registration import link_owners, waitlist
from chamber.registration.models import Delegate, DelegateToken

MAX_TOKEN_LENGTH = 100


def new_place_token(delegate: Delegate) -> str:
    """A fresh secret for `delegate`'s own place link; only its hash is stored."""
    token = new_token()
    db.session.add(DelegateToken(delegate_id=delegate.id, token_hash=hash_token(token)))
    db.session.flush()
    return token


def delegate_for_place_token(token: str) -> Delegate | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    delegate: Delegate | None = db.session.scalar(
        db.select(Delegate).join(DelegateToken).where(DelegateToken.token_hash == hash_token(token))
    )
    return delegate


def place_url(token: str) -> str:
    return external_url("registration.places.show", token=token)


def cancel_own_place(event: Event, delegate: Delegate) -> list[Delegate]:
    """The delegate cancels their own place: the seat goes to whoever waited longest (they are
    emailed), the delegate gets the cancellation, and the booker is told. Begins with the seat
    lock (a no-op if the caller holds it). Returns who was promoted."""
    return waitlist.cancel_places(event, [delegate], by=waitlist.CancelledBy.delegate).promoted


def _mint_place_link(recipient: str, ref: str) -> str:
    """A place link for the delegate `ref`, only if the message goes to that delegate."""
    delegate = link_owners.delegate_for(recipient, ref, "place")
    return place_url(new_place_token(delegate) if delegate is not None else "gone")
