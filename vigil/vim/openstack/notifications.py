"""Nova's versioned notifications, parsed into the small changes Vigil applies to its resource map.

Nova publishes each notification on ``versioned_notifications.info`` in
oslo.messaging's envelope, ``{"oslo.version": "2.0", "oslo.message": "<json>"}``,
whose inner message carries ``event_type``, ``publisher_id`` and a
versioned ``payload`` (``nova_object.name``, ``nova_object.data``). Parsing
is pure (no I/O) so the consumer stays a thin loop and the mapping can be
tested on real captured bodies without any service running.

What each notification is worth, as seen on Nova 34 (the fixtures in
``tests/openstack/notifications``), and why some are read the way they are:

* ``service.update`` (disable/enable, ``forced_down``) → :class:`ServiceChanged`.
  Nova emits nothing when a service merely stops reporting (a heartbeat
  timeout), so liveness is not in it: only ``last_seen_up``.
* ``instance.update`` → :class:`InstanceChanged`; it is the freshest
  statement of where a server is (the evacuation's final ``instance.update``
  is the first to name the new host). Its ``state`` is the vm_state and is
  mapped to the API status (Nova's own table) and then to Vigil's state;
  ``state: deleted`` is an :class:`InstanceDeleted`.
* ``instance.create.end`` / ``.error`` → :class:`InstanceCreated` with the
  flavor's vCPUs, name and metadata (``.error`` in ERROR, with the fault).
* ``instance.delete.end`` → :class:`InstanceDeleted`.
* ``instance.power_off.end``, ``power_on.end``, ``shutdown.end`` →
  :class:`InstanceChanged`.
* ``instance.evacuate`` comes from nova-api when the request is accepted:
  the payload still names the failed host and Nova has not chosen the
  target yet, so it is an :class:`InstanceChanged` (REBUILD task), not a move.
* Moves (:class:`InstanceMoved`, "where it ends"): several payloads are
  stale on the host field, so the publisher (``nova-compute:<host>``, the
  service that did the work) is used where it is the truth:

  - ``instance.live_migration_post_dest.end`` (the destination): payload
    host is the new host;
  - ``instance.live_migration_post.end`` (the source, sent after the
    destination's): payload still says source host and task ``migrating``,
    so the move carries ``host=None`` (ended, location told by post_dest);
  - ``instance.live_migration_rollback.end``: it stays on the source;
  - ``instance.resize.end`` (source) and ``resize_finish.end``
    (destination, VERIFY_RESIZE): payload host is the new host;
  - ``instance.resize_confirm.end`` (published by the source): payload host
    is the new host, the source is the publisher;
  - ``instance.rebuild.end`` after an evacuation: the payload still names
    the failed host, the publisher is the new one.

* Where the target is known before the move ends, :class:`InstanceChanged`
  carries ``migrating_to``: ``instance.live_migration_pre.end`` and
  ``instance.resize_prep.end`` are published by the destination compute,
  ``instance.rebuild_scheduled`` by the conductor under the chosen host.

Anything else parses to ``None``. A body that is not a well-formed
notification raises :class:`MalformedNotification`, which the consumer
counts and logs; it never ends the consumer.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from vigil.domain.ids import HostName, InstanceId, ProjectId
from vigil.domain.states import InstanceState
from vigil.vim.openstack.inventory import instance_state


class MalformedNotification(ValueError):
    """A message on the queue that is not a Nova versioned notification Vigil can read."""


@dataclass(frozen=True)
class Envelope:
    """The oslo message inside the envelope: what every notification has."""

    event_type: str
    publisher_id: str
    payload: Mapping[str, Any]
    message_id: str | None = None
    timestamp: str | None = None

    @property
    def publisher_host(self) -> HostName | None:
        """The host part of ``publisher_id`` (``nova-compute:compute-2`` → ``compute-2``)."""
        _, sep, host = self.publisher_id.partition(":")
        return HostName(host) if sep and host else None


@dataclass(frozen=True)
class ServiceChanged:
    """A compute service's admin state or forced-down flag changed (``service.update``)."""

    host: HostName
    binary: str
    disabled: bool
    disabled_reason: str | None
    forced_down: bool
    last_seen_up: str | None
    uuid: str | None
    event_type: str = "service.update"
    timestamp: str | None = None  # the oslo message's (Nova's clock, UTC): which of two changes is newer


@dataclass(frozen=True)
class InstanceChanged:
    """A server's state, task or host as Nova says it now."""

    id: InstanceId
    project: ProjectId
    host: HostName | None
    state: InstanceState
    vm_state: str
    task_state: str | None
    event_type: str
    migrating_to: HostName | None = None
    timestamp: str | None = None  # the oslo message's (Nova's clock, UTC): which of two changes is newer


@dataclass(frozen=True)
class InstanceCreated:
    """A server finished building (``instance.create.end``), or failed to (``.error``, state ERROR)."""

    id: InstanceId
    project: ProjectId
    host: HostName | None
    name: str
    vcpus: int
    metadata: Mapping[str, str]
    state: InstanceState
    event_type: str
    fault: str | None = None
    timestamp: str | None = None  # the oslo message's (Nova's clock, UTC): which of two changes is newer


@dataclass(frozen=True)
class InstanceDeleted:
    """A server is gone (``instance.delete.end``, or ``instance.update`` to ``deleted``)."""

    id: InstanceId
    project: ProjectId
    host: HostName | None
    event_type: str
    timestamp: str | None = None  # the oslo message's (Nova's clock, UTC): which of two changes is newer


@dataclass(frozen=True)
class InstanceMoved:
    """A migration, resize or evacuation ended (or was rolled back) and the server is on ``host``.

    ``host`` is ``None`` only when the notification says the move ended but
    not where (``instance.live_migration_post.end``, whose payload is stale);
    ``source`` is where it came from, when the notification tells.
    """

    id: InstanceId
    project: ProjectId
    host: HostName | None
    source: HostName | None
    state: InstanceState
    task_state: str | None
    event_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    timestamp: str | None = None  # the oslo message's (Nova's clock, UTC): which of two changes is newer


Change = ServiceChanged | InstanceChanged | InstanceCreated | InstanceDeleted | InstanceMoved

# Nova's API status for (vm_state, task_state): nova/api/openstack/common.py's _STATE_MAP, condensed.
_REBUILD = {"rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD", "rebuild_spawning": "REBUILD"}
_RESIZE = {
    "resize_prep": "RESIZE",
    "resize_migrating": "RESIZE",
    "resize_migrated": "RESIZE",
    "resize_finish": "RESIZE",
}
_STATUS: dict[str, tuple[str, dict[str, str]]] = {
    "active": ("ACTIVE", {**_REBUILD, **_RESIZE, "migrating": "MIGRATING"}),
    "building": ("BUILD", {}),
    "stopped": ("SHUTOFF", {**_REBUILD, **_RESIZE}),
    "resized": ("VERIFY_RESIZE", {"resize_reverting": "REVERT_RESIZE"}),
    "paused": ("PAUSED", {"migrating": "MIGRATING"}),
    "suspended": ("SUSPENDED", {}),
    "rescued": ("RESCUE", {}),
    "error": ("ERROR", _REBUILD),
    "deleted": ("DELETED", {}),
    "soft-delete": ("SOFT_DELETED", {}),
    "shelved": ("SHELVED", {}),
    "shelved_offloaded": ("SHELVED_OFFLOADED", {}),
}


def api_status(vm_state: str, task_state: str | None) -> str:
    """The status Nova's API would show for this vm_state and task_state."""
    default, by_task = _STATUS.get(vm_state, (vm_state.upper(), {}))
    return by_task.get(task_state or "", default)


def unwrap(body: bytes | str | Mapping[str, Any]) -> Envelope:
    """The oslo envelope opened: raises :class:`MalformedNotification` for anything else."""
    try:
        outer = json.loads(body) if isinstance(body, (bytes, str)) else body
        if not isinstance(outer, Mapping):
            raise MalformedNotification(f"not a JSON object but {type(outer).__name__}")
        inner_text = outer.get("oslo.message")
        if inner_text is None:
            # oslo.messaging sends an unenveloped message when the envelope is off; accept it as such.
            inner: Any = outer
        elif isinstance(inner_text, str):
            inner = json.loads(inner_text)
        else:
            raise MalformedNotification("oslo.message is not a string")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MalformedNotification(f"not JSON: {e}") from e
    if not isinstance(inner, Mapping):
        raise MalformedNotification("the message is not a JSON object")
    event_type, publisher, payload = inner.get("event_type"), inner.get("publisher_id"), inner.get("payload")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedNotification("no event_type")
    if not isinstance(payload, Mapping):
        raise MalformedNotification(f"{event_type}: no payload object")
    return Envelope(
        event_type,
        publisher if isinstance(publisher, str) else "",
        payload,
        _optional_str(inner.get("message_id")),
        _optional_str(inner.get("timestamp")),
    )


def parse(body: bytes | str | Mapping[str, Any]) -> Change | None:
    """The change a notification body tells, ``None`` for one Vigil does not need.

    Raises :class:`MalformedNotification` for a body that is not a
    notification, or a handled one whose payload lacks what Vigil needs.
    """
    envelope = unwrap(body)
    handler = _HANDLERS.get(envelope.event_type)
    if handler is None:
        return None
    data = envelope.payload.get("nova_object.data")
    if not isinstance(data, Mapping):
        raise MalformedNotification(f"{envelope.event_type}: payload has no nova_object.data")
    try:
        return replace(handler(envelope, data), timestamp=envelope.timestamp)
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedNotification(f"{envelope.event_type}: {type(e).__name__}: {e}") from e


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is not a non-empty string")
    return value


def _host(value: Any) -> HostName | None:
    return HostName(value) if isinstance(value, str) and value else None


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise ValueError(f"{key} is not a boolean")
    return value


def _state(data: Mapping[str, Any]) -> tuple[str, str | None, InstanceState]:
    vm_state = _str(data, "state")
    task_state = _optional_str(data.get("task_state"))
    return vm_state, task_state, instance_state(api_status(vm_state, task_state))


def _metadata(data: Mapping[str, Any]) -> dict[str, str]:
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise ValueError("metadata is not an object")
    return {str(k): str(v) for k, v in metadata.items()}


def _ids(data: Mapping[str, Any]) -> tuple[InstanceId, ProjectId]:
    return InstanceId(_str(data, "uuid")), ProjectId(_str(data, "tenant_id"))


def _service(envelope: Envelope, data: Mapping[str, Any]) -> ServiceChanged:
    return ServiceChanged(
        host=HostName(_str(data, "host")),
        binary=_str(data, "binary"),
        disabled=_bool(data, "disabled"),
        disabled_reason=_optional_str(data.get("disabled_reason")),
        forced_down=_bool(data, "forced_down"),
        last_seen_up=_optional_str(data.get("last_seen_up")),
        uuid=_optional_str(data.get("uuid")),
        event_type=envelope.event_type,
    )


def _changed(envelope: Envelope, data: Mapping[str, Any]) -> InstanceChanged | InstanceDeleted:
    ident, project = _ids(data)
    vm_state, task_state, state = _state(data)
    if vm_state == "deleted":
        return InstanceDeleted(ident, project, _host(data.get("host")), envelope.event_type)
    return InstanceChanged(ident, project, _host(data.get("host")), state, vm_state, task_state, envelope.event_type)


def _migrating(envelope: Envelope, data: Mapping[str, Any]) -> InstanceChanged:
    """A move under way whose target the publisher names (it is the destination, or scheduled for it)."""
    ident, project = _ids(data)
    vm_state, task_state, state = _state(data)
    return InstanceChanged(
        ident,
        project,
        _host(data.get("host")),
        state,
        vm_state,
        task_state,
        envelope.event_type,
        migrating_to=envelope.publisher_host,
    )


def _created(envelope: Envelope, data: Mapping[str, Any]) -> InstanceCreated:
    ident, project = _ids(data)
    _, _, state = _state(data)
    flavor = data.get("flavor")
    flavor_data = flavor.get("nova_object.data") if isinstance(flavor, Mapping) else None
    vcpus = int(flavor_data["vcpus"]) if isinstance(flavor_data, Mapping) else 1
    fault = data.get("fault")
    fault_data = fault.get("nova_object.data") if isinstance(fault, Mapping) else None
    failed = envelope.event_type.endswith(".error")
    return InstanceCreated(
        ident,
        project,
        _host(data.get("host")),
        name=_optional_str(data.get("display_name")) or ident,
        vcpus=vcpus,
        metadata=_metadata(data),
        state=InstanceState.ERROR if failed else state,
        event_type=envelope.event_type,
        fault=str(fault_data.get("exception_message")) if isinstance(fault_data, Mapping) else None,
    )


def _deleted(envelope: Envelope, data: Mapping[str, Any]) -> InstanceDeleted:
    ident, project = _ids(data)
    return InstanceDeleted(ident, project, _host(data.get("host")), envelope.event_type)


def _moved(*, host_from_publisher: bool = False, source_is_publisher: bool = False, stale: bool = False) -> "_Handler":
    """A handler for a move's end; where the host comes from depends on who publishes it (module docstring)."""

    def handle(envelope: Envelope, data: Mapping[str, Any]) -> InstanceMoved:
        ident, project = _ids(data)
        vm_state, task_state, state = _state(data)
        payload_host = _host(data.get("host"))
        if stale:  # the source's post.end: payload still the source host, task migrating
            host, source, task_state, state = None, envelope.publisher_host, None, instance_state(vm_state.upper())
        elif host_from_publisher:
            host = envelope.publisher_host or payload_host
            source = payload_host if payload_host != host else None
        else:
            host = payload_host
            source = envelope.publisher_host if source_is_publisher and envelope.publisher_host != host else None
        return InstanceMoved(ident, project, host, source, state, task_state, envelope.event_type, _metadata(data))

    return handle


_Handler = Callable[[Envelope, Mapping[str, Any]], Change]
_HANDLERS: dict[str, _Handler] = {
    "service.update": _service,
    "instance.update": _changed,
    "instance.create.end": _created,
    "instance.create.error": _created,
    "instance.delete.end": _deleted,
    "instance.power_off.end": _changed,
    "instance.power_on.end": _changed,
    "instance.shutdown.end": _changed,
    "instance.evacuate": _changed,
    "instance.live_migration_pre.end": _migrating,
    "instance.resize_prep.end": _migrating,
    "instance.rebuild_scheduled": _migrating,
    "instance.live_migration_post_dest.end": _moved(),
    "instance.live_migration_post.end": _moved(stale=True),
    "instance.live_migration_rollback.end": _moved(),
    "instance.resize.end": _moved(source_is_publisher=True),
    "instance.resize_finish.end": _moved(),
    "instance.resize_confirm.end": _moved(source_is_publisher=True),
    "instance.resize_revert.end": _moved(),
    "instance.rebuild.end": _moved(host_from_publisher=True),
}
