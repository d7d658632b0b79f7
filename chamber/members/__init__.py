"""The member directory's rows: organisations (businesses) and their contacts, matched on normalised
names and emails, their membership, and what marketing they may be sent (docs/directory.md,
docs/marketing.md)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The subscribe and preferences pages, and their links in emails (`confirm_subscription`,
    `preferences`), each minted for its own recipient only."""
    from chamber.mail import links
    from chamber.members import subscriptions, views

    app.register_blueprint(views.bp)
    links.register_link_minter("confirm_subscription", subscriptions._mint_confirm_link)
    links.register_link_minter(
        "preferences", subscriptions._mint_preferences_link, prefetch=subscriptions._load_contacts
    )
