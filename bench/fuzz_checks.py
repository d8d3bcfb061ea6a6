"""A schemathesis check of Vigil's own rule for refusing valid requests; loaded by :mod:`bench.fuzz`.

Schemathesis's ``positive_data_acceptance`` fails a schema-valid request
answered anything but 2xx, 401, 403 or 404. Vigil documents two more
reasons to refuse one: a conflict with the state of things (409: the host is
in another session, the alarm is cleared) and a request that is well-formed
but cannot be acted on (422 with a message: the event type has no policy,
the callback's address is forbidden). What the document cannot excuse is a
refusal of the request's *shape*: a 400, or a 422 whose ``details`` list
field errors, for a request the document says is valid. That means the
schema promises less than the server checks, and a client built from it will
be refused. This check fails exactly those, and replaces the built-in one.
"""

from typing import Any

import schemathesis


@schemathesis.check
def justified_rejection(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request is refused only for a documented reason, never for its shape."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = {}
    if response.status_code == 400 or error.get("details"):
        raise AssertionError(
            f"a request valid by the schema was refused for its shape ({response.status_code}): "
            f"{error.get('message', response.text[:300])}"
        )
    return None
