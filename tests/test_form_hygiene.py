"""Invariant 11 at the door: no form takes a line break in a single-line field, or a control
character anywhere, and no email field takes an address mail servers cannot all deliver to. Every
form class in the app is walked, so a form added later is covered without a line here."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from werkzeug.datastructures import MultiDict
from wtforms import PasswordField, StringField, TextAreaField
from wtforms.fields import EmailField

import chamber
from chamber.core.forms import ChamberForm, _leaf_fields, email_problem, text_problem

# The keyword arguments a form needs to be built; any other form must build with none.
NEEDS = {
    "RegistrationForm": {"slots": 2},
    "StaffBookingForm": {"slots": 2},
    "ResourceForm": {"kind": "link"},
    "SupersedeForm": {"choices": []},
    "AttachForm": {"resources": [], "targets": []},
    "AgendaItemForm": {"speaker_choices": [], "zone_name": "Europe/London"},
    "CampaignForm": {"events": [], "resources": [], "segments": []},
}

ONE_LINE = [
    "Bea\r\nBcc: thief@evil.example",  # a header of the attacker's choosing
    "Bea\nReply-To: thief@evil.example",
    "Bea\rX",
    "Bea\u2028X",  # Unicode line separator: Python's splitlines() breaks there
    "Bea\u2029X",
    "Bea\x85X",  # NEL, a C1 line break
    "Bea\x0bX",
]
ENCODED_WORDS = ["Cyber =?utf-8?q?=0D=0AReply-To:_phish@evil.example?=", "=?UTF-8?B?QmNjOiB4?="]
CONTROL = ["Bea\x00", "Bea\x07", "Bea\x1b[31m", "Bea\x7f", "Bea\x9b", "\x08Bea"]
FINE_ON_ONE_LINE = ["Zoë O'Brien 李", "[[link:manage:1]]", "{{ 7*7 }}", "'; DROP TABLE event; --",
                    "<script>alert(1)</script>", "Cyber safety 🔐", "Tab\u00a0space"]  # fmt: skip


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def form_classes() -> list[type[ChamberForm]]:
    for module in pkgutil.walk_packages(chamber.__path__, "chamber."):
        if module.name.rsplit(".", 1)[-1] in ("forms", "manage", "views", "health_views"):
            importlib.import_module(module.name)
    return sorted(set(_subclasses(ChamberForm)), key=lambda cls: cls.__qualname__)


def build(cls, data=None) -> ChamberForm:
    return cls(formdata=MultiDict(data) if data is not None else None, meta={"csrf": False},
               **NEEDS.get(cls.__name__, {}))  # fmt: skip


def text_fields(form) -> list:
    return [
        field
        for field in _leaf_fields(form)
        if isinstance(field, StringField) and not isinstance(field, PasswordField)
        and field.name not in ("csrf_token", "campaign")  # campaign: its filter keeps a number
    ]  # fmt: skip


def errors_for(cls, name: str, value: str) -> list[str]:
    form = build(cls, {name: value})
    form.validate()
    # A list of sub-forms numbers its entries afresh, so find the field by what it was sent.
    field = next(f for f in _leaf_fields(form) if f.raw_data == [value])
    return [str(error) for error in field.errors]


@pytest.fixture
def request_context(app):
    with app.test_request_context(method="POST"):
        yield


def test_every_form_in_the_app_is_walked(request_context):
    names = {cls.__name__ for cls in form_classes()}
    # The forms that take what the public and staff type: if these were missed, nothing is checked.
    assert {"RegistrationForm", "EventForm", "SpeakerForm", "StaffCreateForm", "LoginForm",
            "ResourceForm", "AgendaItemForm", "SettingsForm", "AddDelegateForm"} <= names  # fmt: skip
    for cls in form_classes():
        assert text_fields(build(cls)) or cls.__name__ in {"PasswordForm", "ScheduleForm",
                                                           "NewSurveyForm", "AttachForm",
                                                           "SupersedeForm", "PreferencesForm",
                                                           "UploadForm", "MappingForm",
                                                           "LiftBounceForm",
                                                           "DisableTwoFactorForm",
                                                           "TwoFactorPolicyForm",
                                                           "WithdrawConsentForm"}, cls  # fmt: skip


def test_a_line_break_in_any_single_line_field_of_any_form_is_refused(request_context):
    checked = 0
    for cls in form_classes():
        for field in text_fields(build(cls)):
            if isinstance(field, TextAreaField):
                continue
            for value in ONE_LINE:
                errors = errors_for(cls, field.name, value)
                assert f"{field.label.text} must be on one line." in errors, (
                    cls,
                    field.name,
                    value,
                )
                checked += 1
    assert checked > 100


def test_a_control_character_in_any_text_field_of_any_form_is_refused(request_context):
    checked = 0
    for cls in form_classes():
        for field in text_fields(build(cls)):
            for value in CONTROL:
                errors = " ".join(errors_for(cls, field.name, value))
                assert "contains a character that is not allowed" in errors, (
                    cls,
                    field.name,
                    value,
                )
                checked += 1
    assert checked > 100


def test_line_breaks_and_tabs_are_kept_where_a_field_has_lines(request_context):
    from chamber.events.forms import EventForm

    assert errors_for(EventForm, "venue_address", "St George's Way\r\nStevenage\tSG1 1HS") == []
    assert text_problem("one\r\ntwo\tthree", multiline=True) is None
    assert (
        text_problem("one\u2028two", multiline=True) == "contains a character that is not allowed."
    )


@pytest.mark.parametrize("value", FINE_ON_ONE_LINE)
def test_hostile_looking_text_on_one_line_is_data_and_accepted(value):
    assert text_problem(value, multiline=False) is None


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("zoe@example.com", False),
        ("zoe+events@sub.example.co.uk", False),
        ("zoe@exämple.com", False),  # an internationalised domain is sent in its ASCII form
        ("zoë@example.com", True),
        ("李@例子.中国", True),
    ],
)
def test_an_address_with_non_ascii_before_the_at_is_refused_with_a_reason(address, refused):
    assert (email_problem(address) is not None) == refused


def test_every_email_field_refuses_an_address_not_every_server_delivers_to(request_context):
    checked = 0
    for cls in form_classes():
        for field in text_fields(build(cls)):
            if isinstance(field, EmailField):
                errors = " ".join(errors_for(cls, field.name, "zoë@example.com"))
                assert "before the @" in errors, (cls, field.name)
                checked += 1
    assert checked >= 5


def test_an_encoded_word_in_any_single_line_field_of_any_form_is_refused(request_context):
    checked = 0
    for cls in form_classes():
        for field in text_fields(build(cls)):
            if isinstance(field, TextAreaField):
                continue
            for value in ENCODED_WORDS:
                errors = " ".join(errors_for(cls, field.name, value))
                assert "which email reads as encoded text" in errors, (cls, field.name, value)
                checked += 1
    assert checked > 30
