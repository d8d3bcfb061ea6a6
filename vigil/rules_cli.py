"""``vigil rules check``: validate rule templates (Vitrage's format) from a shell, without a server.

The files and directories given are loaded together, as Vigil loads them
(:func:`vigil.rules.load_rules`): includes resolve across them and deduced
alarm cycles are looked for across all of them (``--with-defaults`` adds
Vigil's own templates to the set). Each problem is printed as
``file:line: message`` and the exit status is 1; a clean set prints a
summary (templates, scenarios, actions by type) and exits 0. ``--json``
prints one object either way.
"""

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from vigil.domain.rules import RuleSet
from vigil.rules import DEFAULTS_DIR, TemplateError, load_rules, template_files

rules_app = typer.Typer(help="Rule templates in Vitrage's format: check them (no server needed).", no_args_is_help=True)

PathsArg = Annotated[
    list[Path],
    typer.Argument(help="Template files, or directories of *.yaml templates.", exists=True, show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
AlarmTypeOpt = Annotated[
    list[str] | None,
    typer.Option("--alarm-type", help="An alarm entity type to accept besides the built-in ones (repeatable)."),
]
DefaultsOpt = Annotated[
    bool, typer.Option("--with-defaults", help="Check the files together with Vigil's default templates.")
]


@rules_app.callback()
def rules() -> None:
    """Rule templates in Vitrage's format (versions 1, 2 and 3): check them without a server."""


def summary(rules: RuleSet) -> dict[str, object]:
    actions = Counter(a.type.value for _, s in rules.scenarios() for a in s.actions)
    return {
        "templates": len(rules.standard),
        "definition_templates": len(rules.definitions),
        "scenarios": sum(len(t.scenarios) for t in rules.standard),
        "actions": dict(sorted(actions.items())),
        "names": [t.name for t in rules.templates],
    }


@rules_app.command("check")
def check(
    paths: PathsArg,
    as_json: JsonOpt = False,
    alarm_types: AlarmTypeOpt = None,
    with_defaults: DefaultsOpt = False,
) -> None:
    """Validate template files: print each problem as file:line: message (exit 1), or a summary (exit 0)."""
    files = template_files([*([DEFAULTS_DIR] if with_defaults else []), *paths])
    try:
        rules = load_rules(files, alarm_types=alarm_types or ())
    except TemplateError as exc:
        if as_json:
            problems = [{"file": p.file, "line": p.line, "message": p.message} for p in exc.problems]
            typer.echo(json.dumps({"ok": False, "files": len(files), "problems": problems}, indent=2))
        else:
            for problem in exc.problems:
                typer.echo(str(problem))
            typer.echo(f"{len(exc.problems)} problem(s) in {len(files)} file(s)", err=True)
        raise typer.Exit(1) from None
    counts = summary(rules)
    if as_json:
        typer.echo(json.dumps({"ok": True, "files": len(files), "problems": [], **counts}, indent=2))
        return
    actions = counts["actions"]
    assert isinstance(actions, dict)
    typer.echo(
        f"OK: {len(files)} file(s), {counts['templates']} template(s) and {counts['definition_templates']} "
        f"definition template(s), {counts['scenarios']} scenario(s), {sum(actions.values())} action(s)"
    )
    for name, count in actions.items():
        typer.echo(f"  {name}: {count}")
