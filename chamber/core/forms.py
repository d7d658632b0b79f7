"""The base form every Chamber form builds on, and field types with clear, human messages."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from flask_wtf import FlaskForm
from publicsuffixlist import PublicSuffixList
from wtforms import (
    DateTimeLocalField,
    EmailField,
    Field,
    FieldList,
    Form,
    FormField,
    IntegerField,
    PasswordField,
    StringField,
    TextAreaField,
)
from wtforms.fields.core import UnboundField
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from chamber.core.times import NonexistentLocalTime, local_to_utc


def strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class _Hygiene(Form):
    """Strips surrounding white space (not from passwords) and refuses control characters no
    person types."""

    class Meta:
        def bind_field(
            self, form: Form, unbound_field: UnboundField[Field], options: dict[str, Any]
        ) -> Field:
            if issubclass(unbound_field.field_class, FieldList | FormField):
                return unbound_field.bind(form=form, **options)  # their entries get the filter
            if issubclass(unbound_field.field_class, PasswordField):
                return unbound_field.bind(form=form, **options)  # a password is exactly as typed
            filters = (strip, *unbound_field.kwargs.get("filters", ()))
            return unbound_field.bind(form=form, filters=filters, **options)

    def validate(self, extra_validators: Mapping[str, Sequence[Any]] | None = None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            if not isinstance(field.data, str):
                continue
            problem = text_problem(field.data, multiline=isinstance(field, TextAreaField))
            if problem is None and isinstance(field, EmailField):
                problem = email_problem(field.data)
            if problem:
                field.errors = [*field.errors, f"{field.label.text} {problem}"]
                valid = False
        return valid


# Characters nobody types into a form: C0 and C1 controls, DEL, and the Unicode line and paragraph
# separators. A line break is allowed only where the field has lines (a textarea).
_LINE_BREAKS = "\r\n\u2028\u2029\x85\x0b\x0c"


# How email writes encoded text in a header (RFC 2047): typed into a one-line field it could hide a
# line break from the header's own check, so it is refused where no person would type it.
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?")


def text_problem(text: str, *, multiline: bool) -> str | None:
    """Why `text` may not be stored as typed, or None. Single-line values reach email headers,
    calendar files and CSV cells, where a line break would start something new."""
    if not multiline and _ENCODED_WORD.search(text):
        return "must not contain “=?…?”, which email reads as encoded text."
    for ch in text:
        if ch in "\r\n" and multiline:
            continue
        if ch in _LINE_BREAKS:  # a textarea's lines end in CR/LF; other breaks are not typed
            return (
                "contains a character that is not allowed." if multiline else "must be on one line."
            )
        if ch == "\t" and multiline:
            continue
        if unicodedata.category(ch) == "Cc":
            return "contains a character that is not allowed."
    return None


def email_problem(address: str) -> str | None:
    """Why an email address that passed the format check still cannot be used, or None."""
    local, _, _domain = address.rpartition("@")
    if not local.isascii():
        return (
            "must use only unaccented letters, digits and . _ - + before the @: "
            "not every mail server can deliver to other characters."
        )
    return None


def _leaf_fields(fields: Iterable[Field]) -> Iterator[Field]:
    """Every input field, looking inside lists of fields and sub-forms."""
    for field in fields:
        if isinstance(field, FieldList):
            yield from _leaf_fields(field.entries)
        elif isinstance(field, FormField):
            yield from _leaf_fields(field.form)
        else:
            yield field


# WTForms' metaclass merges the Meta classes of every base (the hygiene's `bind_field` and
# Flask-WTF's CSRF), where mypy sees one overriding the other.
class ChamberForm(_Hygiene, FlaskForm):  # type: ignore[misc]
    @property
    def error_list(self) -> list[tuple[str, str]]:
        """(field id, message) pairs for the error summary, form-wide errors first with no field."""
        pairs = [("", message) for message in self.form_errors]
        for field in _leaf_fields(self):
            pairs.extend(
                (field.id, message) for message in field.errors if isinstance(message, str)
            )
        return pairs


class ChamberSubform(_Hygiene, Form):
    """A repeated part of a form (one delegate, say): no CSRF field of its own."""


_WHOLE_NUMBER = re.compile(r"-?[0-9]+")  # a minus sign, so "-1" is told the range


class WholeNumberField(IntegerField):
    def __init__(self, label: str, *, minimum: int, maximum: int, **kwargs: Any) -> None:
        validators = [
            *kwargs.pop("validators", []),
            NumberRange(minimum, maximum, f"{label} must be between {minimum} and {maximum}."),
        ]
        render_kw = {
            "inputmode": "numeric",
            "min": minimum,
            "max": maximum,
            **kwargs.pop("render_kw", {}),
        }
        super().__init__(label, validators=validators, render_kw=render_kw, **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or valuelist[0].strip() == "":
            self.data = None
            return
        text = valuelist[0].strip()
        self.data = None
        # Only ASCII digits: int() also takes "٣", "３" and "1_000", which nobody means here.
        if not _WHOLE_NUMBER.fullmatch(text):
            raise ValueError(f"{self.label.text} must be a whole number, like 80.")
        try:
            self.data = int(text)
        except ValueError as error:  # more digits than Python converts
            raise ValueError(f"{self.label.text} must be a whole number, like 80.") from error


class LocalDateTimeField(DateTimeLocalField):
    """A date and time typed in the event's zone (HTML datetime-local), with a clear message."""

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(label, format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"], **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not " ".join(valuelist).strip():  # left empty: the field's own "required" message says
            self.data = None  # so, never "must be a real date" as well
            return
        try:
            super().process_formdata(valuelist)
        except ValueError as error:
            raise ValueError(
                f"{self.label.text} must be a real date and time, like 2026-12-03 08:30."
            ) from error


def to_utc(field: LocalDateTimeField, zone_name: str) -> datetime | None:
    """The field's wall-clock value in `zone_name` as UTC; a skipped time becomes a field error."""
    if field.data is None:
        return None
    try:
        return local_to_utc(field.data, zone_name)
    except NonexistentLocalTime as error:
        raise ValidationError(str(error)) from error


__all__ = ["ChamberForm", "LocalDateTimeField", "Optional", "WholeNumberField", "to_utc"]


def text_field(
    label: str, max_length: int, *, required: str | None = None, area: bool = False, **kwargs: Any
) -> StringField:
    """A text input (or textarea) with a length limit the browser knows too, required with the
    message `required`, or optional."""
    name = label.split(" (")[0]  # "Job title (optional)" is "Job title must be ..."
    validators: list[Any] = [DataRequired(required) if required else Optional()]
    validators.append(
        Length(max=max_length, message=f"{name} must be {max_length} characters or fewer.")
    )
    validators.extend(kwargs.pop("validators", []))
    field_class: type[StringField] = TextAreaField if area else StringField
    render_kw = {"maxlength": max_length, **kwargs.pop("render_kw", {})}
    return field_class(label, validators=validators, render_kw=render_kw, **kwargs)


# A web or email address in a person's name: a scheme, "www.", an @, an IPv4 address, or a dot
# joining a word to a top-level domain: any in the Public Suffix List (bundled with
# `publicsuffixlist`, nothing fetched: "evil.me", "pay.bank", "пример.рф", "xn--p1ai") after a
# word of three letters or more that is no title, and the commonest ("x.com") or a file ending
# ("invoice.pdf") after any. So a dot joining two parts of a real name stays ("R.K.Narayan",
# "Md.Rahman", "T.Ng", "St.John", "J.R.R. Tolkien", "Mr.Black", "Dr.Love", "Lu.Xin"). Full stops
# of other scripts count as dots (as IDNA reads them), and invisible format characters (a
# zero-width space before the dot) are read as absent.
URL_ENDINGS = (
    "com|net|org|info|biz|uk|io|xyz|top|online|site|app|link|click|live|shop|store|support|help"
    "|login|dev|ru|cn|ly|tk|ml|ga|cf|gq|co|cc|gl|eu|me|ai|to|example|test|invalid|localhost|onion"
    "|gov|edu|html?|php|exe|zip|pdf"
)
WEB_ADDRESS = re.compile(
    rf"://|\bwww\.|@|\b\d{{1,3}}(?:\.\d{{1,3}}){{3}}\b|[^\W_]\.(?:{URL_ENDINGS})\b", re.IGNORECASE
)
# Titles written before a name without a space ("Mr.Black", "Dr.Love", "Prof.Kim"): the word after
# them is a name, whatever top-level domain it also is.
TITLES = frozenset({"mrs", "miss", "prof", "rev", "sir", "dame", "lord", "lady", "capt", "col"})
# Each word, dot and word in a text (overlapping: "a.b.c" gives a.b and b.c).
DOTTED_WORDS = re.compile(r"(?=(?<![\w-])([^\W_][\w-]*)\.([^\W\d_][\w-]*))")
BUSINESS_WEB_ADDRESS = re.compile(r"://|\bwww\.", re.IGNORECASE)  # "Booking.com", "Hair@Home"
OTHER_FULL_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
NAME_WITH_ADDRESS = "Enter a name without a web or email address in it."
BUSINESS_WITH_ADDRESS = "Enter the business's name without a web address in it."


@functools.cache
def _top_level_domains() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)  # read once, when a name is first checked


def _as_read(text: str) -> str:
    """The text as a mail program reads it for links: other scripts' full stops as dots, and
    format characters (zero-width spaces, soft hyphens, direction marks) left out."""
    plain = text.translate(OTHER_FULL_STOPS)
    return "".join(ch for ch in plain if unicodedata.category(ch) != "Cf")


def _holds(pattern: re.Pattern[str], text: str | None) -> bool:
    return bool(text and pattern.search(_as_read(text)))


def holds_web_address(text: str | None) -> bool:
    """Whether a mail program could read a link or an address in `text` (see WEB_ADDRESS)."""
    if not text:
        return False
    plain = _as_read(text)
    if WEB_ADDRESS.search(plain):
        return True
    domains = _top_level_domains()
    return any(
        len(first) >= 3 and first.lower() not in TITLES and domains.is_public(last.lower())
        for first, last in DOTTED_WORDS.findall(plain)
    )


def no_web_address(_form: Any, field: Field) -> None:
    """A person's name that a stranger may type (a delegate named by someone else, a subscriber)
    goes into emails to that person's address ("Dear ..."), where a mail program makes any web
    address in it a link: so a name holds none (invariant 11)."""
    if holds_web_address(field.data):
        raise ValidationError(NAME_WITH_ADDRESS)


def no_link_in_business(_form: Any, field: Field) -> None:
    """A business's name as a stranger types it goes into the booker's email ("Thank you for
    booking for ..."), to an address they chose: no link in it. A domain alone may be the
    business's name ("Booking.com"), and an @ part of it ("Hair@Home")."""
    if _holds(BUSINESS_WEB_ADDRESS, field.data):
        raise ValidationError(BUSINESS_WITH_ADDRESS)


def person_name_field(label: str, *, required: str | None = None, **kwargs: Any) -> StringField:
    """A person's full name on a public form: at most 120 characters, and no web or email
    address in it (`no_web_address`)."""
    return text_field(label, 120, required=required, validators=[no_web_address], **kwargs)


EMAIL_FORMAT = "Enter an email address in the right format, like name@example.com."
EMAIL_MAX = 254  # the longest address SMTP carries (RFC 5321's path, less its brackets)


def email_field(label: str, *, required: str | None = None, **kwargs: Any) -> EmailField:
    """An email address input: required with the message `required`, or optional; at most 254
    characters (the browser knows too), in the right format, never spell-checked. Its length
    message names the field as the label does, without a parenthesis (“Email address (private)”
    is “Email address must be ...”)."""
    name = label.split(" (")[0]
    validators: list[DataRequired | Optional | Length | Email] = [
        DataRequired(required) if required else Optional(),
        Length(max=EMAIL_MAX, message=f"{name} must be {EMAIL_MAX} characters or fewer."),
        Email(EMAIL_FORMAT),
    ]
    render_kw = {"maxlength": EMAIL_MAX, "spellcheck": "false", **kwargs.pop("render_kw", {})}
    return EmailField(label, validators=validators, render_kw=render_kw, **kwargs)
