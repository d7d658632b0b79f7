"""A person's data as files to hand them: a zip of JSON (one file per kind of row, and a README)
and one readable HTML page, self-contained, with every value escaped."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from typing import Any

from flask import render_template

from chamber.core.times import utcnow
from chamber.privacy.notice import chamber_contact
from chamber.privacy.people import PersonData, plain

# A fixed time inside the zip, so that the archive says nothing of when files were written apart
# from the README's own line.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(
        [{key: plain(value) for key, value in row.items()} for row in rows],
        ensure_ascii=False,
        indent=2,
        default=str,
    )


def readme(data: PersonData, now: datetime) -> str:
    contact = chamber_contact()
    lines = [
        f"Personal data held by {contact.name}",
        "",
        f"For the email address: {data.email}",
        f"Prepared: {now:%Y-%m-%d %H:%M} UTC",
        "",
        "Each .json file holds one kind of record, as a list of objects (times are UTC, ISO 8601).",
        "A kind with no records is an empty list. person.html shows the same data as a web page.",
        "",
    ]
    for kind in data.kinds:
        lines.append(f"{kind.name}.json ({len(kind.rows)}): {kind.title}. {kind.about}")
    lines += [
        "",
        "Answers to anonymous surveys are not linked to anyone in our records, so they cannot be",
        "included. Questions about this data: " + (contact.email or contact.name),
        "",
    ]
    return "\n".join(lines)


def html_page(data: PersonData, now: datetime) -> str:
    """The readable page: a Jinja template with autoescaping, so that no value becomes markup."""
    return render_template(
        "privacy/person_export.html", data=data, now=now, contact=chamber_contact()
    )


def zip_bytes(data: PersonData, now: datetime | None = None) -> bytes:
    now = now or utcnow()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def add(name: str, text: str) -> None:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))

        add("README.txt", readme(data, now))
        for kind in data.kinds:
            add(f"{kind.name}.json", _json(kind.rows))
        add("person.html", html_page(data, now))
    return buffer.getvalue()


def download_name(extension: str, now: datetime | None = None) -> str:
    """The file's name: a date, never the address (text a person typed never becomes a header)."""
    return f"personal-data-{(now or utcnow()):%Y%m%d-%H%M}.{extension}"
