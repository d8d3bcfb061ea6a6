"""The VIM driver's view: which VIM Vigil runs on and how closely its map follows it, admin only.

``GET /v1/vim`` says ``embedded`` (Vigil's own cloud, its own truth: nothing
to follow) or ``openstack``, and then how the map follows Nova: the
notification consumer (connected, what it received and what became of it,
the backlog it found queued at start), the sync (applied, stale, unknown,
the reconciliations and the drift they found) and the pusher of fault
actions (on their way now, pushed, retried, given up). An operator reads drift and stale counts
here; a benchmark waits here for the start-up's catch-up to end.
"""

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from vigil.api.deps import Admin, Context

router = APIRouter(tags=["vim"])


class NotificationsOut(BaseModel):
    connected: bool = Field(description="Consuming Nova's versioned notifications now.")
    backlog_at_start: int | None = Field(description="Messages already queued when consuming began.")
    received: int = Field(description="Messages received.")
    applied: int = Field(description="Changes handed to the sync.")
    ignored: int = Field(description="Notifications Vigil does not follow.")
    malformed: int = Field(description="Bodies that did not parse.")
    failed: int = Field(description="Changes whose application raised (requeued once).")
    last_error: str | None = Field(description="The latest malformed body or failure.")
    last_received_at: datetime | None = Field(description="When the latest message came.")


class SyncOut(BaseModel):
    applied: int = Field(description="Notifications that changed the map.")
    stale: int = Field(description="Notifications older than what the map holds (skipped).")
    unknown: int = Field(description="Notifications about a resource the map does not know yet.")
    reconciliations: int = Field(description="Reads of Nova's whole inventory.")
    drift: int = Field(description="Differences reconciliations found and applied.")
    refused: int = Field(description="Differences that could not be applied.")
    last_drift: list[str] = Field(description="The latest reconciliation's differences (the first 50).")
    last_reconciled_at: datetime | None = Field(description="When the latest reconciliation's read began.")


class PushesOut(BaseModel):
    pending: int = Field(description="Resources whose fault action is on its way to Nova or Neutron now.")
    waiting: dict[str, int] = Field(
        description="Fault actions on their way now, by service (`compute`, `network`); none: left out."
    )
    pushed: int = Field(description="Fault actions Nova or Neutron took.")
    retried: int = Field(description="Attempts made again (a 409/429, or while a service was away).")
    failed: int = Field(description="Fault actions given up (an answer that will not change, or the budget spent).")
    last_error: str | None = Field(description="The latest failed attempt.")
    landed_at: dict[str, datetime] = Field(
        description="When each service (`compute`, `network`) last took a fault action: Nova and Neutron set the "
        "state before they answer, so their APIs show it from then."
    )


class VimOut(BaseModel):
    driver: Literal["embedded", "openstack"] = Field(description="The VIM driver (`vim.driver`).")
    notifications: NotificationsOut | None = Field(
        None, description="The consumer of Nova's notifications; null without one (or on the embedded cloud)."
    )
    sync: SyncOut | None = Field(None, description="How the map follows Nova; null on the embedded cloud.")
    pushes: PushesOut | None = Field(
        None, description="The inspector's fault actions pushed to Nova and Neutron; null on the embedded cloud."
    )


@router.get("/vim", summary="The VIM driver and how the map follows it")
async def show_vim(ctx: Context, _: Admin) -> VimOut:
    """Which VIM Vigil runs on and, on OpenStack, how its map follows Nova: the notification consumer's counters,
    the sync's (stale notifications skipped, the drift reconciliations found), and the fault actions still being
    pushed. Admin only."""
    return VimOut.model_validate(ctx.vim_state())
