"""CSV files for spreadsheets: UTF-8 with a byte order mark (so Excel reads accents), CRLF line
ends, every cell quoted, and every cell that a spreadsheet would run as a formula neutralised.

Every cell is quoted because a spreadsheet set to split on semicolons (Excel where the decimal
mark is a comma) or tabs would otherwise split an unquoted cell such as `Bob;=2+5`, and read
what follows the separator as a formula of its own."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

BOM = "\ufeff"
# A cell starting with one of these is read as a formula by Excel, LibreOffice and Google Sheets
# (tab and carriage return can hide one); a leading quote makes it plain text (OWASP's advice).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """The cell's text, with a formula-looking start made harmless."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A whole CSV file: the header row, then `rows`, each cell neutralised."""
    buffer = io.StringIO(newline="")
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([neutralise(cell) for cell in header])
    writer.writerows([neutralise(cell) for cell in row] for row in rows)
    return buffer.getvalue().encode("utf-8")
