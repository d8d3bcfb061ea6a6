"""The sample VNF manager: a consumer of Vigil's fault notifications.

It plays Doctor's "consumer" (steps 0, 9 and 10 of the fault management
use case) against a running Vigil, through the public API only, as a real
VNF manager would:

* ``client.py``: :class:`VigilClient`, the few API calls it needs (httpx).
* ``notifications.py``: reading an Aodh alarm webhook body or an ETSI SOL 003
  AlarmNotification into one :class:`Notification` (pure).
* ``manager.py``: :class:`VnfManager`, which owns an ACT/STBY pair in an
  anti-affinity server group plus non-redundant instances, subscribes to
  them, switches the standby to active the moment a notification says the
  active is down, then recreates what failed.
* ``webhook.py``: the HTTP endpoint Vigil posts to (a bare ASGI app on
  uvicorn, so a notification is stamped the moment it arrives), which also
  shows the manager's state at ``GET /state``.

``vigil consumer`` runs it; ``vigil demo fault`` and the tests start it
in-process.
"""

from vigil.consumer.client import ApiError, VigilClient
from vigil.consumer.manager import VnfManager
from vigil.consumer.notifications import Notification, parse_notification
from vigil.consumer.webhook import WebhookServer, running_consumer

__all__ = [
    "ApiError",
    "Notification",
    "VigilClient",
    "VnfManager",
    "WebhookServer",
    "parse_notification",
    "running_consumer",
]
