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

Numbers, flags and times take only their JSON type (:data:`Int`,
:data:`Number`, :data:`Flag`, :data:`Moment`): pydantic's lax mode would take
``"5"`` or ``false`` for a number and ``0`` for a time, which the contract
does not promise and a client should hear about.

Paths and query strings, which no model sees, are checked for NUL by
:class:`vigil.api.limits.NulRefusal`. The limits live in the domain (:mod:`vigil.domain.limits`), so
whatever else writes to the store checks against the same numbers.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, field_validator, model_validator

from vigil.domain.limits import UnstorableValue, storable


def _json_number(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError(f"must be a JSON number, not {type(value).__name__}")
    return value


JSON_NUMBER = BeforeValidator(_json_number)
"""Refuses a string or a boolean for a number. Bounds go before it (``Annotated[int, Field(ge=0), JSON_NUMBER]``),
or pydantic's JSON schema shows them as ``ge`` instead of ``minimum``."""
Int = Annotated[int, JSON_NUMBER]
"""A JSON integer (``3``, or ``3.0``, as JSON Schema counts it): not a string of digits or a boolean."""
Number = Annotated[float, JSON_NUMBER]
"""A JSON number: not a string or a boolean."""
Flag = Annotated[bool, Strict()]
"""A JSON boolean: not 0, 1 or "true"."""


def _date_time_text(value: Any) -> Any:
    if isinstance(value, int | float):  # bool too
        raise ValueError("must be an RFC 3339 date-time string, e.g. 2026-03-14T09:26:53Z")
    return value


Moment = Annotated[datetime, BeforeValidator(_date_time_text)]
"""An RFC 3339 date-time string: not a number of seconds."""


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

    @model_validator(mode="after")
    def _storable_extra(self) -> "StorableIn":
        """The same for the extra fields of a model that allows them (a maintenance action's parameters)."""
        for name, value in (self.__pydantic_extra__ or {}).items():
            try:
                storable({name: value})
            except UnstorableValue as exc:
                raise ValueError(f"{name}: {exc}") from None
        return self


__all__ = ["JSON_NUMBER", "Flag", "Int", "Moment", "Number", "StorableIn"]
