"""Reading CSV files as spreadsheets save them: Excel's and LibreOffice's "CSV UTF-8" (with or
without a byte order mark), plain "CSV" on Windows (Windows-1252), with commas, semicolons (Excel
where the decimal mark is a comma) or tabs between cells. The counterpart of `core.csvexport`.

`open_sheet` looks at the whole file once (is it text, which encoding, which separator, a header)
and refuses what it cannot read with a `SheetUnreadable` saying why in a person's words; the
sheet's rows are then read as a stream, so a large file never sits in memory as rows.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from chamber.core.errors import Refusal

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}
ENCODING_NAMES = {
    "utf-8-sig": "UTF-8 (with a byte order mark)",
    "utf-8": "UTF-8",
    "cp1252": "Windows-1252",
    "utf-16": "UTF-16",
}
MAX_COLUMNS = 200
MAX_HEADER_CELL = 200
# The longest cell a row may hold; a longer one refuses that row (not the file).
MAX_CELL = 131_072
# The csv module's own limit on one cell, far above MAX_CELL: the module is never stopped by it in
# the middle of a cell (it would go on from there, reading the cell's own lines as rows), so a
# long cell is always read whole, and then refused here by its length.
READER_CELL_LIMIT = 64 * 1024 * 1024
_CHUNK = 1 << 20
# What other files start with: a person who picked the workbook rather than its CSV is told so.
_SIGNATURES = {
    b"PK\x03\x04": "an Excel or LibreOffice workbook (.xlsx or .ods), not a CSV file",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls), not a CSV file",
    b"%PDF": "a PDF document, not a CSV file",
    b"\x89PNG": "a picture, not a CSV file",
    b"\xff\xd8\xff": "a picture, not a CSV file",
}
SAVE_AS_CSV = "In your spreadsheet, choose Save As (or Download) and then “CSV UTF-8”."


class SheetUnreadable(Refusal):
    """A file that cannot be read as a spreadsheet's CSV, with the reason."""


@dataclass(frozen=True)
class SheetFormat:
    encoding: str
    delimiter: str

    @property
    def description(self) -> str:
        return (
            f"{ENCODING_NAMES[self.encoding]}, cells separated by {DELIMITER_NAMES[self.delimiter]}"
        )


@dataclass(frozen=True)
class Record:
    """One row of the sheet: its number as the spreadsheet shows it (the header is row 1), and its
    cells, or the reason it could not be read."""

    number: int
    cells: list[str]
    problem: str | None = None


def detect_format(stream: BinaryIO) -> SheetFormat:
    """The encoding and separator of a CSV file, reading it once from the start (and leaving it
    at the start); SheetUnreadable if it is not text in an encoding spreadsheets use."""
    stream.seek(0)
    head = stream.read(_CHUNK)
    if not head.strip():
        raise SheetUnreadable("The file is empty. " + SAVE_AS_CSV)
    for signature, what in _SIGNATURES.items():
        if head.startswith(signature):
            raise SheetUnreadable(f"This file is {what}. {SAVE_AS_CSV}")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # Excel's "Unicode text": tab-separated UTF-16
    elif b"\x00" in head:
        raise SheetUnreadable(
            "This file holds binary data, not text, so it is not a CSV file. " + SAVE_AS_CSV
        )
    elif head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        encoding = "utf-8"
    stream.seek(0)
    if not _decodes(stream, encoding):
        if encoding != "utf-8" or not _decodes(stream, "cp1252"):
            raise SheetUnreadable(
                "The file's characters could not be read: it is neither UTF-8 nor Windows-1252. "
                + SAVE_AS_CSV
            )
        encoding = "cp1252"
    stream.seek(0)
    first_line = _first_line(_text(stream, encoding))
    stream.seek(0)
    return SheetFormat(encoding, _delimiter(first_line))


def _decodes(stream: BinaryIO, encoding: str) -> bool:
    stream.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while chunk := stream.read(_CHUNK):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _first_line(text: io.TextIOBase) -> str:
    """The header's line, up to the first line break outside quotes (a header cell may hold
    one), read at most a megabyte far."""
    block = text.read(_CHUNK)
    quoted = False
    for index, ch in enumerate(block):
        if ch == '"':
            quoted = not quoted
        elif ch in "\r\n" and not quoted and block[:index].strip():
            return block[:index]
    return block


def _delimiter(line: str) -> str:
    """The separator the header uses most, outside quotes; a comma if it has none (one column)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch in counts and not quoted:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties go to the first: the comma
    return best if counts[best] else ","


class _Unclosed(io.RawIOBase):
    """A view of a stream that TextIOWrapper may close without closing the stream itself."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream

    @property
    def name(self) -> str:
        return str(getattr(self.stream, "name", "upload"))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _text(stream: BinaryIO, encoding: str) -> io.TextIOWrapper:
    """The stream decoded, as csv wants it (newline=""), leaving the stream open when done."""
    return io.TextIOWrapper(_Unclosed(stream), encoding=encoding, newline="")


def records(stream: BinaryIO, sheet: SheetFormat) -> Iterator[Record]:
    """Every row of the file, the header first (number 1), decoded and split as a stream. A row
    the csv module cannot split, or with a cell longer than MAX_CELL, comes with its problem and
    no cells; the rows after it are read as usual. Blank rows are skipped, keeping their
    numbers."""
    stream.seek(0)
    if csv.field_size_limit() < READER_CELL_LIMIT:
        csv.field_size_limit(READER_CELL_LIMIT)
    text = _text(stream, sheet.encoding)
    reader = csv.reader(text, delimiter=sheet.delimiter, strict=False)
    number = 0
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield Record(number, [], f"the row could not be read ({error})")
            continue
        if any(len(cell) > MAX_CELL for cell in cells):
            yield Record(number, [], f"a cell is longer than {MAX_CELL:,} characters")
            continue
        if any(cell.strip() for cell in cells):
            yield Record(number, cells)


def header_of(stream: BinaryIO, sheet: SheetFormat) -> list[str]:
    """The header row's cells, trimmed; SheetUnreadable if the file has no usable header."""
    first = next(records(stream, sheet), None)
    stream.seek(0)
    if first is None:
        raise SheetUnreadable("The file is empty. " + SAVE_AS_CSV)
    if first.problem:
        raise SheetUnreadable(f"The first row is not a header of column names: {first.problem}.")
    header = [cell.strip() for cell in first.cells]
    if len(header) > MAX_COLUMNS:
        raise SheetUnreadable(
            f"The file has {len(header):,} columns; at most {MAX_COLUMNS} can be imported."
        )
    if any(len(cell) > MAX_HEADER_CELL for cell in header):
        raise SheetUnreadable(
            "The first row is not a header of column names: one of its cells is longer than "
            f"{MAX_HEADER_CELL} characters. The first row must name the columns."
        )
    return header
