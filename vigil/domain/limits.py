"""The values a store can keep, as one pure check.

SQLite and PostgreSQL agree on what they refuse: integers beyond a signed 64
bits, floats that are not finite (inside JSON, and in float8 columns on
PostgreSQL), datetimes that leave years 1 to 9999 when normalised to UTC, and
text with NUL characters (PostgreSQL). :func:`storable` checks a value, looking
into lists, tuples and dicts, and returns it with every datetime at its top
level normalised to UTC. The API validates every request body with it
(``vigil.api.storable``), so nothing accepted can poison a commit.
"""

import math
from datetime import UTC, datetime
from typing import Any

MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)


class UnstorableValue(ValueError):
    """A value no store can keep; the message says why."""


def storable(value: Any) -> Any:
    """``value`` if every part of it can be stored (datetimes in UTC); else UnstorableValue."""
    if isinstance(value, datetime):
        return _utc(value)
    _check(value)
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise UnstorableValue("a time needs a time zone")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise UnstorableValue(f"{value.isoformat()} is outside years 1 to 9999 in UTC") from None


def _check(value: Any) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not MIN_INT64 <= value <= MAX_INT64:
            raise UnstorableValue(f"{value} does not fit in a signed 64-bit integer")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UnstorableValue(f"{value} is not a finite number")
    elif isinstance(value, str):
        if "\x00" in value:
            raise UnstorableValue("text may not contain a NUL character")
    elif isinstance(value, datetime):
        _utc(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key)
            _check(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check(item)
