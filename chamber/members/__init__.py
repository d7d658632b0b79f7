"""The member directory's rows: organisations (businesses) and their contacts, matched on normalised
names and emails, their membership, and what marketing they may be sent (docs/directory.md)."""
