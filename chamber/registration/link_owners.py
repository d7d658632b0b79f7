"""Whose a minted link is: every link minter here checks that the message goes to the person the
link is for (invariant 11), and refuses otherwise."""

from __future__ import annotations

from chamber.extensions import db
from chamber.mail import links
from chamber.mail.services import normalise_address
from chamber.registration.models import Delegate


def delegate_for(recipient: str, ref: str, what: str) -> Delegate | None:
    """The delegate `ref` names, if the message goes to them; None if they were erased since the
    email was queued (the link then leads nowhere). Raises LinkRefused for a `ref` that is not a
    delegate's number or a recipient who is someone else."""
    if not ref.isdigit():
        raise links.LinkRefused(f"a {what} link needs a delegate's number, not {ref[:20]!r}")
    delegate = db.session.get(Delegate, int(ref))
    if delegate is not None and normalise_address(recipient) != delegate.email_normalised:
        raise links.LinkRefused(f"delegate {ref}'s {what} link is not for this recipient")
    return delegate
