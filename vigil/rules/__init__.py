"""Rule templates in OpenStack Vitrage's format: files in, a validated :class:`~vigil.domain.rules.RuleSet` out.

:func:`load_rules` reads template files and directories (format versions 1,
2 and 3; ``includes`` of definition templates; Vigil's own defaults from
``defaults/`` on request) and refuses the whole set with a
:class:`TemplateError` listing every problem as ``file:line: message``. The
model it builds is pure (:mod:`vigil.domain.rules`); evaluating it is the
inspector's job. ``vigil rules check`` (:mod:`vigil.rules_cli`) runs the
same checks from a shell.

Modules: :mod:`~vigil.rules.nodes` (YAML nodes with lines),
:mod:`~vigil.rules.conditions` (condition text to tree),
:mod:`~vigil.rules.drafts`, :mod:`~vigil.rules.v2` and :mod:`~vigil.rules.v3`
(one file as written), :mod:`~vigil.rules.loader` (includes, references,
the whole set), :mod:`~vigil.rules.cycles` (deduced alarm cycles).
"""

from vigil.rules.loader import DEFAULTS_DIR, load_rules, load_sources, template_files
from vigil.rules.problems import Problem, TemplateError

__all__ = ["DEFAULTS_DIR", "Problem", "TemplateError", "load_rules", "load_sources", "template_files"]
