"""What the store can hold, checked at the door.

Every request body of the API derives from :class:`StorableIn`, whose one
validator runs on every field and looks inside lists and dicts too. A value
the store cannot keep is refused there, as a 422 naming the field, instead of
being applied to the resource map, notified, and then failing the shared
commit of everyone's changes (and vanishing at the next restart):

* integers must fit a signed 64-bit column (SQLite INTEGER, PostgreSQL BIGINT);
* floats must be finite (JSON columns and PostgreSQL's float8 refuse the rest);
* datetimes must stay within years 1 to 9999 once normalised to UTC (a time
  without a zone is taken as UTC); they come out of the validator in UTC;
* text must not contain NUL, which PostgreSQL refuses in text and JSON.

Paths and query strings, which no model sees, are checked for NUL by
:class:`vigil.api.limits.NulRefusal`. The limits live in the domain (:mod:`vigil.domain.limits`), so
whatever else writes to the store checks against the same numbers.
"""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from vigil.domain.limits import UnstorableValue, storable


class StorableIn(BaseModel):
    """A request body: unknown fields refused, every value one the store can keep."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            return storable(value)
        except UnstorableValue as exc:
            raise ValueError(str(exc)) from None


__all__ = ["StorableIn"]
