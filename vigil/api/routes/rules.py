"""The rule templates a running Vigil evaluates, and reloading them without a restart: admin only.

``GET /v1/rules`` lists the templates loaded from ``rules.paths`` (name, file,
format version, each scenario's condition, actions and how many of its
actions are done now). ``POST /v1/rules/reload`` reads the same paths again:
a template that does not load is a 422 naming each problem's file and line,
and the rules in force stay as they were; loaded, every scenario is evaluated
again over the whole graph (what no longer holds is undone).
"""

from typing import Any

from fastapi import APIRouter, HTTPException

from vigil.api.contract import errors
from vigil.api.deps import Admin, Context
from vigil.rules.problems import TemplateError

router = APIRouter(tags=["rules"])


def _rules(ctx: Context) -> Any:
    if ctx.rules is None:
        raise HTTPException(404, "no rule templates: this server has no rules.paths")
    return ctx.rules


@router.get("/rules", summary="The loaded rule templates", responses=errors(404))
async def list_rules(ctx: Context, _: Admin) -> dict[str, Any]:
    """The templates in force, their scenarios and how many of their actions are done now. Admin only."""
    described: dict[str, Any] = _rules(ctx).describe()
    return described


@router.post("/rules/reload", summary="Read the rule templates again", responses=errors(404, 422))
async def reload_rules(ctx: Context, _: Admin) -> dict[str, Any]:
    """Read ``rules.paths`` again; 422 with each problem (``file:line: message``) keeps the rules in force."""
    rules = _rules(ctx)
    try:
        reloaded: dict[str, Any] = rules.reload()
    except TemplateError as exc:
        raise HTTPException(422, f"the rules in force are kept; templates refused: {exc}") from None
    return reloaded
