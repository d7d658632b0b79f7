"""Refusals: the one error a service raises for a rule a person can break, and how a page shows it.

A service refuses with a `Refusal` (or a domain's subclass of it) carrying the message and, when
the message is about one field, that field's name. A view runs the service call inside
`refusals_shown_on(form)` (a form page) or `refusals_flashed()` (a button that redirects): what
the request changed is undone and the message is shown; a form page then answers with
`form_status(form)`, 400 for a form sent back with errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import flash
from flask_wtf import FlaskForm
from wtforms import Form

from chamber.core import transactions


class Refusal(Exception):
    """A rule a person broke; `message` says why in their words, `field` names the form field it
    belongs to (None: the form as a whole)."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


def show_on_form(form: Form, refusal: Refusal) -> None:
    """The refusal as an error on its field, if the form has that field, or on the whole form."""
    field = form._fields.get(refusal.field) if refusal.field else None
    if field is not None:
        field.errors = [*field.errors, refusal.message]
    else:
        form.form_errors.append(refusal.message)


def on_field(name: str) -> Callable[[Form, Refusal], None]:
    """For `refusals_shown_on(form, on_field(name))`: every refusal on the one field the form is
    about, whatever field the service named."""

    def show(form: Form, refusal: Refusal) -> None:
        form[name].errors = [*form[name].errors, refusal.message]

    return show


@contextmanager
def refusals_shown_on(
    form: Form, show: Callable[[Form, Refusal], None] = show_on_form
) -> Iterator[None]:
    """A refusal raised in the block undoes what the request changed and shows on `form` (through
    `show`, for a form that places some refusals itself); the code after the call that refused is
    skipped, so the view goes on to render the form."""
    try:
        yield
    except Refusal as refusal:
        transactions.abandon()  # and the page reads a clean state (a failed flush included)
        show(form, refusal)


@contextmanager
def refusals_flashed() -> Iterator[None]:
    """A refusal raised in the block undoes what the request changed and is flashed, for a button
    whose view redirects either way."""
    try:
        yield
    except Refusal as refusal:
        transactions.abandon()
        flash(refusal.message, "error")


def form_status(form: FlaskForm) -> int:
    """The status of a form page: 400 for a form sent back with errors, 200 for a fresh one."""
    return 400 if form.is_submitted() else 200  # type: ignore[no-untyped-call]
