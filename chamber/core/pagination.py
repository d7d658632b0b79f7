"""Pages of query results, with the page number read safely from the request."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select

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
