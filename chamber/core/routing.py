"""URL converters shared by every blueprint."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter, Map

# The largest value an integer primary key holds on every engine (PostgreSQL INTEGER is 32-bit).
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:...>` bounded to what an id column can hold: an absurd id is a 404, not an overflow
    inside the database driver (a 500)."""

    def __init__(
        self,
        map: Map,  # noqa: A002
        fixed_digits: int = 0,
        min: int | None = None,  # noqa: A002
        max: int | None = MAX_ID,  # noqa: A002
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def id_arg(text: str) -> int:
    """An id in the query string, for `request.args.get(name, type=id_arg)`: a number an id
    column can hold, or (as for any malformed value) the argument is taken as missing; never an
    overflow inside the database driver."""
    number = int(text)
    if not 1 <= number <= MAX_ID:
        raise ValueError("not an id")
    return number
