"""Organisations (businesses) and their contacts, matched on normalised names and emails. Arrives with registration."""
