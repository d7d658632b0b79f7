"""The fields a spreadsheet's columns can be imported into, the column headings that name each one
(so that a file maps itself), and how a cell becomes a value or is refused with a reason:
docs/directory-import.md."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from chamber.core.forms import email_problem, text_problem
from chamber.core.urls import url_fault
from chamber.members.models import LegalForm, SizeBand


class CellRefused(ValueError):
    """A cell that cannot be imported; the message names the field and says why."""


@dataclass(frozen=True)
class ImportField:
    name: str
    label: str
    # "organisation", "contact", "name part" (first or last name, joined) or "consent" (whether
    # the person gave the consent the import states: docs/directory-import.md, "Consent")
    kind: str
    headings: tuple[str, ...]  # what a column heading says, in any case and punctuation
    max_length: int | None = None
    parse: Callable[[str, str], object] | None = None  # (text, label) -> value, or CellRefused
    multiline: bool = False
    hint: str = ""


_NOT_WORD = re.compile(r"[\W_]+")


def heading_key(text: str) -> str:
    """A heading as compared: "E-mail address", " EMAIL ADDRESS " and "email_address" are one."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


# --- parsing cells --------------------------------------------------------------------------------


# The common address, in plain ASCII, that email_validator would take as it is: checked here at a
# fraction of its cost (a large import has one per row); anything else goes to email_validator.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"([A-Za-z]{2,63})"
)


def parse_email(text: str, label: str) -> str:
    plain = _PLAIN_EMAIL.fullmatch(text)
    if (
        plain
        and len(text) <= 254
        and len(text.partition("@")[0]) <= 64
        and plain.group(1).lower() not in SPECIAL_USE_DOMAIN_NAMES
    ):
        return text.lower()
    try:
        address = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise CellRefused(f"{label} “{text}” is not an email address ({error})") from error
    problem = email_problem(address)
    if problem:
        raise CellRefused(f"{label} {problem}")
    return address.lower()


YES = {"yes", "y", "true", "t", "1", "x", "member", "current", "currentmember", "active", "✓", "✔"}
NO = {"no", "n", "false", "f", "0", "nonmember", "notamember", "notmember", "lapsed", "former",
      "formermember", "exmember", "none", "-"}  # fmt: skip


def parse_yes_no(text: str, label: str) -> bool:
    key = heading_key(text) or text.strip()
    if key in YES:
        return True
    if key in NO:
        return False
    raise CellRefused(f"{label} “{text}” must be yes or no")


def band_for_employees(count: int) -> SizeBand:
    if count < 10:
        return SizeBand.micro
    if count < 50:
        return SizeBand.small
    if count < 250:
        return SizeBand.medium
    return SizeBand.large


_WORDS = re.compile(r"[a-z]+")
_NUMBERS = re.compile(r"\d[\d,]*")
_NEGATIVE = re.compile(r"\s*-\s*\d")
_TAG_SEPARATORS = re.compile(r"[,;]")
_BANDS = {band.value: band for band in SizeBand}


def parse_size_band(text: str, label: str) -> SizeBand:
    """A band by name ("Small", "SME small", the page's labels) or by number of employees
    ("12", "1,200", "10-49", "250+")."""
    words = _WORDS.findall(text.casefold())
    if len(words) == 1 and words[0] in _BANDS and text.strip().isalpha():
        return _BANDS[words[0]]  # "Small", "micro"
    named = {_BANDS[word] for word in words if word in _BANDS}
    numbers = [int(n.replace(",", "")) for n in _NUMBERS.findall(text)]
    bands = {band_for_employees(n) for n in numbers}
    if _NEGATIVE.match(text):
        raise CellRefused(f"{label} “{text}” cannot be a negative number of employees")
    if len(named) == 1 and (not bands or bands == named):
        return named.pop()
    if not named and len(bands) == 1:
        return bands.pop()
    if not named and len(bands) > 1:
        raise CellRefused(f"{label} “{text}” spans more than one band (micro 1-9, small 10-49, "
                          "medium 50-249, large 250+)")  # fmt: skip
    raise CellRefused(
        f"{label} “{text}” is not a size band: use micro, small, medium or large, "
        "or the number of employees"
    )


_LEGAL_FORMS = {
    LegalForm.limited_company: ("ltd", "limited", "limitedcompany", "privatelimitedcompany",
                                "companylimitedbyshares", "companylimitedbyguarantee", "plc",
                                "publiclimitedcompany", "cic", "company"),
    LegalForm.llp: ("llp", "limitedliabilitypartnership"),
    LegalForm.public_body: ("publicbody", "publicsector", "council", "localauthority", "nhs",
                            "school", "government", "governmentbody"),
    LegalForm.other_corporate: ("othercorporate", "othercorporatebody", "charitablecompany", "cio",
                                "charitableincorporatedorganisation", "scottishpartnership"),
    LegalForm.sole_trader: ("soletrader", "selfemployed", "individual"),
    LegalForm.partnership: ("partnership", "generalpartnership"),
    LegalForm.unknown: ("unknown", "notknown"),
}  # fmt: skip
LEGAL_FORM_WORDS = {
    **{heading_key(form.value): form for form in LegalForm},
    **{heading_key(form.label): form for form in LegalForm},
    **{word: form for form, words in _LEGAL_FORMS.items() for word in words},
}


def parse_legal_form(text: str, label: str) -> LegalForm:
    found = LEGAL_FORM_WORDS.get(heading_key(text))
    if found is None:
        raise CellRefused(
            f"{label} “{text}” is not one we know: use limited company, LLP, public body, "
            "other corporate body, sole trader or partnership"
        )
    return found


def parse_website(text: str, label: str) -> str:
    address = text if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", text) else f"https://{text}"
    # `url_fault` first: `urlsplit` raises on a bracket ("acme.co.uk [closed]")
    if url_fault(address) or "." not in (urlsplit(address).hostname or ""):
        raise CellRefused(f"{label} “{text}” must be a web address, like https://example.co.uk")
    return address


def parse_postcode(text: str, label: str) -> str:
    return " ".join(text.upper().split())


def parse_tags(text: str, label: str) -> tuple[str, ...]:
    tags = []
    for part in _TAG_SEPARATORS.split(text):
        tag = " ".join(part.split()).lower()
        if len(tag) > 40:
            raise CellRefused(f"{label}: “{tag[:40]}…” is longer than 40 characters")
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


# --- the fields ----------------------------------------------------------------------------------

FIELDS: tuple[ImportField, ...] = (
    ImportField("organisation", "Organisation", "organisation",
                ("organisation", "organization", "organisation name", "organization name",
                 "company", "company name", "business", "business name", "employer"),
                max_length=200, hint="the business; matched on its name"),
    ImportField("name", "Name", "contact",
                ("name", "full name", "contact name", "contact", "person"), max_length=120),
    ImportField("first_name", "First name", "name part",
                ("first name", "forename", "given name", "firstname"), max_length=60),
    ImportField("last_name", "Last name", "name part",
                ("last name", "surname", "family name", "lastname"), max_length=60),
    ImportField("email", "Email", "contact",
                ("email", "e-mail", "email address", "e-mail address", "mail", "contact email"),
                max_length=254, parse=parse_email, hint="the person; matched on the address"),
    ImportField("job_title", "Job title", "contact",
                ("job title", "position", "role", "job", "title at work"), max_length=200),
    ImportField("phone", "Phone", "contact",
                ("phone", "telephone", "tel", "mobile", "phone number", "telephone number"),
                max_length=40),
    ImportField("is_member", "Member", "organisation",
                ("member", "membership", "is member", "member?", "chamber member"),
                parse=parse_yes_no, hint="yes or no"),
    ImportField("membership_tier", "Membership tier", "organisation",
                ("tier", "membership tier", "membership level", "level"), max_length=60),
    ImportField("size_band", "Size band", "organisation",
                ("size band", "size", "employees", "number of employees", "staff", "headcount",
                 "company size"),
                parse=parse_size_band, hint="micro, small, medium, large, or a number of employees"),
    ImportField("sector", "Sector", "organisation", ("sector", "industry"), max_length=100),
    ImportField("town_or_postcode", "Town", "organisation", ("town", "city", "town or city",
                "town/city", "location"), max_length=100),
    ImportField("postcode", "Postcode", "organisation",
                ("postcode", "post code", "zip", "zip code", "postal code"), max_length=12,
                parse=parse_postcode),
    ImportField("website", "Website", "organisation", ("website", "web", "web site", "url", "www",
                "web address"), max_length=300, parse=parse_website),
    ImportField("legal_form", "Legal form", "organisation",
                ("legal form", "company type", "business type", "legal status", "type of company"),
                parse=parse_legal_form),
    ImportField("tags", "Tags", "organisation", ("tags", "tag", "labels"), parse=parse_tags),
    ImportField("notes", "Notes", "organisation", ("notes", "note", "comments"),
                max_length=10_000, multiline=True),
    ImportField("consent", "Consent", "consent",
                ("consent", "consented", "marketing consent", "email consent", "opted in",
                 "opt in", "opt-in"),
                parse=parse_yes_no,
                hint="yes or no: whether the person gave the consent the import states"),
)  # fmt: skip
FIELDS_BY_NAME = {field.name: field for field in FIELDS}
_BY_HEADING = {heading_key(heading): field for field in FIELDS for heading in field.headings}
# A business's details and a person's, beside the organisation's name and the email they are found by.
ORGANISATION_FIELDS = tuple(
    f.name for f in FIELDS if f.kind == "organisation" and f.name != "organisation"
)
CONTACT_FIELDS = tuple(f.name for f in FIELDS if f.kind == "contact" and f.name != "email")


def auto_mapping(header: Sequence[str]) -> list[str]:
    """The field each column's heading names ("" for none), each field taken by its first column."""
    mapping, taken = [], set()
    for heading in header:
        field = _BY_HEADING.get(heading_key(heading))
        if field is None or field.name in taken:
            mapping.append("")
            continue
        taken.add(field.name)
        mapping.append(field.name)
    return mapping


def mapping_problems(header: Sequence[str], mapping: Sequence[str]) -> list[str]:
    """Why a mapping cannot be imported (an unknown field, a field taken twice, neither an
    organisation nor an email column), or nothing."""
    problems = []
    if len(mapping) != len(header):
        return ["Choose a field (or “ignore”) for every column."]
    seen: dict[str, int] = {}
    for index, name in enumerate(mapping):
        if not name:
            continue
        if name not in FIELDS_BY_NAME:
            problems.append(f"Column {index + 1} is mapped to “{name}”, which is not a field.")
        elif name in seen:
            problems.append(
                f"{FIELDS_BY_NAME[name].label} is chosen for two columns "
                f"({_column(header, seen[name])} and {_column(header, index)}): choose one."
            )
        else:
            seen[name] = index
    if "organisation" not in seen and "email" not in seen:
        problems.append(
            "Choose the column with the organisation, the email address, or both: rows are "
            "matched on them."
        )
    return problems


def _column(header: Sequence[str], index: int) -> str:
    return f"“{header[index]}”" if header[index] else f"column {index + 1}"


def parse_cell(field: ImportField, text: str) -> object:
    """The value of one non-blank, trimmed cell for `field`, or CellRefused."""
    # Printable text holds no control character or line break; only the rest needs a closer look.
    clean = text.isprintable() and "=?" not in text
    problem = None if clean else text_problem(text, multiline=field.multiline)
    if problem:
        raise CellRefused(f"{field.label} {problem.rstrip('.')}")
    if field.max_length is not None and len(text) > field.max_length:
        raise CellRefused(
            f"{field.label} is {len(text):,} characters long; at most {field.max_length:,} fit"
        )
    return field.parse(text, field.label) if field.parse else text
