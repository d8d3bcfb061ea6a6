"""The sample app manager: the sample VNF manager, taking part in NFVI maintenance.

Doctor's maintenance use case, from the VNF's side (OPNFV's and Fenix's
sample VNFM behave the same way). It subscribes to its project's
``maintenance.scheduled`` messages and answers each through the project's
reply endpoint (``PUT /v1/maintenance/{session}/{project}``):

* MAINTENANCE: ACK; it has nothing to prepare.
* SCALE_IN: Vigil cannot empty a host; it deletes as many of its
  non-redundant instances as it runs on its busiest host, then ACKs.
* PREPARE_MAINTENANCE / PLANNED_MAINTENANCE: if its active instance is on
  the host, it first switches the standby to active (the service moves
  away before anything is touched), then ACKs with MIGRATE for each of its
  instances there.
* INSTANCE_ACTION_DONE: noted.
* MAINTENANCE_COMPLETE: it boots back what it scaled in, then ACKs.
* MAINTENANCE_FAILED (the session was rolled back): it boots back what it
  scaled in; no answer is expected.

Anything it cannot do is a ``NACK_<STATE>``. The work runs in a task, so
the webhook answers at once; messages are deduplicated by notification id.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

from vigil.consumer.client import ApiError
from vigil.consumer.manager import Health, Member, Role, VnfManager
from vigil.consumer.notifications import PROJECT_EVENT_TYPE, MaintenanceNotice

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MaintenanceStep:
    """One message the app manager handled (in the order received), and how it answered."""

    session_id: str
    state: str
    received_at: float
    instance_ids: tuple[str, ...]
    reply: str | None = None
    error: str | None = None


class AppManager(VnfManager):
    event_types = ("instance.down", PROJECT_EVENT_TYPE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["payload_format"] = "aodh"  # maintenance messages come as Aodh event alarms
        super().__init__(*args, **kwargs)
        self.maintenance: list[MaintenanceStep] = []
        self.scaled_in: list[Member] = []
        self._maintenance_seen: set[str] = set()

    def receive_maintenance(self, notice: MaintenanceNotice) -> bool:
        """Take a maintenance message (in the webhook request); False for a repeat."""
        if notice.id in self._maintenance_seen or notice.is_host:
            return False
        self._maintenance_seen.add(notice.id)
        self._spawn(self._handle(notice, time.time()), f"vigil.consumer.maintenance.{notice.id}")
        return True

    async def _handle(self, notice: MaintenanceNotice, received_at: float) -> None:
        state = notice.state or ""
        session = notice.session_id or ""
        ids = tuple(str(i) for i in notice.payload.get("instance_ids") or [])
        step = MaintenanceStep(session, state, received_at, ids)
        self.maintenance.append(step)
        reply: str | None = None
        error: str | None = None
        actions: dict[str, str] = {}
        answers = state not in ("INSTANCE_ACTION_DONE", "MAINTENANCE_FAILED")  # information only
        try:
            if state == "SCALE_IN":
                await self._scale_in()
            elif state in ("PREPARE_MAINTENANCE", "PLANNED_MAINTENANCE"):
                self._move_act_away(ids, received_at, notice.id)
                actions = {i: "MIGRATE" for i in ids if i in self.members}
            elif state in ("MAINTENANCE_COMPLETE", "MAINTENANCE_FAILED"):
                await self._scale_out()
            if answers:
                reply = f"ACK_{state}"
        except (ApiError, OSError, TimeoutError, RuntimeError) as exc:
            error = str(exc)
            reply = f"NACK_{state}" if answers else None
            self._say(f"cannot do {state}: {exc}")
        if reply is not None and self.project is not None:
            try:
                await self.client.maintenance_reply(session, self.project, reply, actions)
            except (ApiError, OSError) as exc:
                error = f"{error + '; ' if error else ''}reply {reply} refused: {exc}"
                self._say(error)
        step.reply, step.error = reply, error
        self._say(f"maintenance {state}: answered {reply}" if reply else f"maintenance {state}")
        self._changed.set()

    def _move_act_away(self, leaving: tuple[str, ...], received_at: float, cause: str) -> None:
        act = self.act
        if act is None or act.id not in leaving:
            return
        standby = self._healthy_standby()
        if standby is None or standby.id in leaving:
            raise RuntimeError("the active instance's host is to be maintained and no standby elsewhere can take over")
        self._flip(act, standby, received_at, cause)
        self._say(f"moved the active role to {standby.name} before its host's maintenance")

    async def _scale_in(self) -> None:
        """Remove as many non-redundant instances as run on the busiest host."""
        mine = [i for i in await self.client.instances(self.project) if i["id"] in self.members]
        per_host: dict[str, int] = {}
        for inst in mine:
            per_host[str(inst["host"])] = per_host.get(str(inst["host"]), 0) + 1
        wanted = max(per_host.values(), default=0)
        workers = [m for m in self.members.values() if m.role is Role.SINGLE and m.health is Health.OK]
        if not workers:
            raise RuntimeError("nothing to scale in: only the ACT/STBY pair is left")
        for member in workers[-wanted:] if wanted else workers[-1:]:
            await self.client.delete(member.id)
            self.members.pop(member.id, None)
            self.scaled_in.append(member)
        self._say(f"scaled in by {len(self.scaled_in)} instance(s)")

    async def _scale_out(self) -> None:
        """Boot back what scaling in removed."""
        booted = []
        while self.scaled_in:
            member = self.scaled_in.pop()
            booted.append(await self._boot(member.name, member.role, member.vcpus, member.group, member.metadata))
        for inst in booted:
            await self.client.wait_state(inst["id"], "ACTIVE", timeout_s=self._boot_timeout_s)
        if booted:
            self._say(f"scaled out by {len(booted)} instance(s)")
            await self._subscribe()

    def state(self) -> dict[str, Any]:
        document = super().state()
        document["maintenance"] = [
            {"session_id": s.session_id, "state": s.state, "reply": s.reply, "error": s.error} for s in self.maintenance
        ]
        document["scaled_in"] = len(self.scaled_in)
        return document
