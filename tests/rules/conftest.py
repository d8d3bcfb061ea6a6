"""Helpers for the rule template tests: write a template, load it, find the line a problem must name."""

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from vigil.rules import Problem, TemplateError, load_rules

TEMPLATES = Path(__file__).parent / "templates"

Write = Callable[[str, str], Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write a dedented template text to ``tmp_path/name``."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of ``path`` containing ``needle``."""
    hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in {path}"
    return hits[occurrence - 1]


def problems(*paths: Path, alarm_types: tuple[str, ...] = ()) -> tuple[Problem, ...]:
    """The problems that refuse ``paths`` (the test fails if they load)."""
    with pytest.raises(TemplateError) as refused:
        load_rules(paths, alarm_types=alarm_types)
    return refused.value.problems


def only_problem(*paths: Path, alarm_types: tuple[str, ...] = ()) -> Problem:
    found = problems(*paths, alarm_types=alarm_types)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]
