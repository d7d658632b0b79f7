"""Pages of query results: by page number, or by key for a list too long for OFFSET; what the
request asks for is read safely from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from chamber.extensions import db

# Far past any real list; a bigger number could overflow the database's OFFSET (a 500).
MAX_PAGE = 1_000_000


def paginate(query: Select[Any], per_page: int, total: int | None = None) -> Pagination:
    """Page `?page=` of `query`; a missing, malformed or absurd number means page 1 or the cap.

    `total`, when the caller already knows how many rows `query` gives, saves the COUNT query
    (on a large table the dearest part of a page)."""
    number = request.args.get("page", 1, type=int)
    number = min(max(number, 1), MAX_PAGE)
    page = db.paginate(
        query,
        page=number,
        per_page=per_page,
        max_per_page=per_page,
        error_out=False,
        count=total is None,
    )
    if total is not None:
        page.total = total
    return page


# --- keyset pages --------------------------------------------------------------------------------
# A list too long for OFFSET (which reads every row it skips) pages by its key instead: "the 50
# before id 1234". Page links carry the key of the row at the page's edge, so a page costs the
# same at the start of the list as at its end, and rows added or removed between requests never
# make a row appear twice or be skipped.

# The largest key a link may carry: PostgreSQL's INTEGER. Past it a comparison would cast the
# column (no index) or overflow.
MAX_KEY = 2**31 - 1


@dataclass(frozen=True)
class KeysetPage:
    """A page of a list ordered by a key, highest first: its rows, and the keys the links to the
    pages either side carry (`newer_after` for `?after=`, `older_before` for `?before=`), None
    when there is nothing that way."""

    items: list[Any]
    newer_after: int | None
    older_before: int | None


def keyset_page(query: Select[Any], key: InstrumentedAttribute[int], per_page: int) -> KeysetPage:
    """The page of `query` (a select of one entity, unordered: `key` orders it, highest first)
    that the request asks for: `?before=<key>` the rows below that key, `?after=<key>` the rows
    above it (`?after=0`: the oldest page). Without either, or with a value that is no key, the
    newest page.

    At most two queries whatever the list's length: the page, with one row more than it shows to
    know whether there is more that way, and, away from the newest page, whether there is any row
    the other way."""
    before = after = None
    if "before" in request.args:
        before = _key_argument("before", least=1, most=MAX_KEY)
    elif "after" in request.args:
        after = _key_argument("after", least=0, most=MAX_KEY - 1)

    if after is not None:
        rows = list(
            db.session.scalars(query.where(key > after).order_by(key.asc()).limit(per_page + 1))
        )
        items = rows[:per_page][::-1]
        newer = len(rows) > per_page
        older = _any(query.where(key <= after))
        edge = after  # an empty page's neighbours: below it, up to and with the key given
    else:
        newer = before is not None and _any(query.where(key >= before))
        if before is not None:
            query = query.where(key < before)
        rows = list(db.session.scalars(query.order_by(key.desc()).limit(per_page + 1)))
        items = rows[:per_page]
        older = len(rows) > per_page
        edge = (before or 1) - 1
    keys = [getattr(item, key.key) for item in items]
    return KeysetPage(
        items=items,
        newer_after=(keys[0] if keys else edge) if newer else None,
        older_before=(keys[-1] if keys else edge + 1) if older else None,
    )


def _key_argument(name: str, least: int, most: int) -> int | None:
    """`?<name>=` as a key: plain digits from `least` to `most`, else None."""
    value = request.args.get(name, "")
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(most))):
        return None
    number = int(value)
    return number if least <= number <= most else None


def _any(query: Select[Any]) -> bool:
    return bool(db.session.scalar(db.select(query.exists())))
