"""What an OpenStack service's error answer means to Vigil's caller: a domain error with the service's own message.

The driver sends an admin's (or the maintenance workflow's) request on to
Nova or Neutron; when they refuse it, the caller must learn why in Nova's
words, with the status Vigil's API gives that kind of refusal, never as an
internal error:

* 400 (the request is malformed for Nova: a host it does not know, a body
  its microversion does not take) → :class:`~vigil.domain.errors.InvalidRequest`, 400;
* 404 → :class:`~vigil.domain.errors.NotFound`, 404;
* 409 (the server's or service's state forbids it: "Cannot 'migrate'
  instance while it is in task_state migrating") → :class:`~vigil.domain.errors.Conflict`, 409;
* no answer, a 5xx, or another 4xx (401 and 403 are about Vigil's own
  credentials, 429 about Nova's rate limit: nothing the caller can change)
  → :class:`~vigil.domain.errors.VimFailed`, 502.

Nova wraps its message as ``{"badRequest": {"code": 400, "message": ...}}``
(the key names the fault), Neutron as ``{"NeutronError": {"message": ...}}``,
Keystone as ``{"error": {"message": ...}}``.
"""

import json
from typing import Any

from vigil.domain.errors import Conflict, DomainError, InvalidRequest, NotFound, VimFailed
from vigil.vim.openstack.session import ApiError

SERVICE_NAMES = {"compute": "Nova", "network": "Neutron", "identity": "Keystone"}
MESSAGE_CHARS = 500


def service_message(body: str) -> str | None:
    """The message in an OpenStack error body, or None when it holds none."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    candidates = [parsed, *(v for v in parsed.values() if isinstance(v, dict))]
    for candidate in candidates:
        message = candidate.get("message")
        if isinstance(message, str) and message:
            return message[:MESSAGE_CHARS]
    return None


def refusal(exc: ApiError, doing: str, *, kind: str = "resource", ident: str = "") -> DomainError:
    """The domain error for a call that failed while ``doing`` (``"live-migrate server 42"``); ``kind`` and
    ``ident`` name what a 404 is about."""
    service = SERVICE_NAMES.get(exc.service or "", exc.service or "OpenStack")
    if exc.unreachable:
        return VimFailed(f"cannot {doing}: {service} could not be reached or failed ({exc})")
    said = service_message(exc.body) or exc.body.strip()[:MESSAGE_CHARS] or str(exc)
    message = f"{service} refused to {doing}: {said}"
    match exc.status:
        case 400:
            return InvalidRequest(message)
        case 404:
            return NotFound(kind, ident, message=message)
        case 409:
            return Conflict(message)
    return VimFailed(f"{message} ({exc.status})")


__all__ = ["SERVICE_NAMES", "refusal", "service_message"]
