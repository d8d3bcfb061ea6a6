"""Reading a template's YAML as composed nodes, so that every problem keeps its line.

PyYAML's ``compose`` gives the document as nodes with their ``start_mark``
(0-based line and column), before any conversion to Python values. A
:class:`Reader` walks them for one file and records a :class:`Problem` at
the node where something is wrong, instead of raising at the first: a file
is checked as far as it can be. Scalars are kept as their text (``version:
3`` is ``"3"``, ``severity: HIGH`` is ``"HIGH"``).
"""

from collections.abc import Collection

import yaml

from vigil.domain.rules import Origin
from vigil.rules.problems import Problem

Node = yaml.Node
_NULL = "tag:yaml.org,2002:null"


class Reader:
    """The problems of one file, and typed access to its nodes."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def origin(self, node: Node) -> Origin:
        return Origin(self.file, node.start_mark.line + 1)

    def error(self, at: Node | Origin, message: str) -> None:
        line = at.line if isinstance(at, Origin) else at.start_mark.line + 1
        self.problems.append(Problem(self.file, line, message))

    def compose(self, text: str) -> Node | None:
        """The document's root node, or None (a problem recorded) when it does not parse."""
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            what = " ".join(part for part in (exc.context, exc.problem) if part)
            self.problems.append(Problem(self.file, line, f"not valid YAML: {what}"))
            return None
        except yaml.YAMLError as exc:
            self.problems.append(Problem(self.file, 1, f"not valid YAML: {exc}"))
            return None
        if root is None:
            self.problems.append(Problem(self.file, 1, "empty file: a template needs at least a metadata section"))
        return root

    def mapping(
        self,
        node: Node,
        what: str,
        *,
        required: Collection[str] = (),
        allowed: Collection[str] | None = None,
    ) -> dict[str, Node] | None:
        """``node`` as ``{key: value node}``: None if it is no mapping.

        Duplicate keys, and keys not in ``allowed`` (when given), are
        problems; so is each missing ``required`` key (reported at the
        mapping), though the mapping is still returned.
        """
        entries = self.entries(node, what, required=required, allowed=allowed)
        return None if entries is None else {key: value for key, (_, value) in entries.items()}

    def entries(
        self,
        node: Node,
        what: str,
        *,
        required: Collection[str] = (),
        allowed: Collection[str] | None = None,
    ) -> dict[str, tuple[Node, Node]] | None:
        """As :meth:`mapping`, with each key's node beside its value's."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping")
            return None
        result: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, f"{what}: a key must be a plain name")
                continue
            key = key_node.value
            if key in result:
                self.error(key_node, f"{what}: duplicate key '{key}'")
                continue
            if allowed is not None and key not in allowed and key not in required:
                known = ", ".join(sorted({*required, *allowed}))
                self.error(key_node, f"{what}: unknown key '{key}' (expected {known})")
                continue
            result[key] = (key_node, value_node)
        for key in required:
            if key not in result:
                self.error(node, f"{what} must contain '{key}'")
        return result

    def sequence(self, node: Node, what: str, *, non_empty: bool = True) -> list[Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list")
            return None
        if non_empty and not node.value:
            self.error(node, f"{what} must not be empty")
        return list(node.value)

    def scalar(self, node: Node, what: str, *, empty: bool = False) -> str | None:
        """A scalar's text; None (a problem recorded) for a list, a mapping, or a null unless ``empty``."""
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, f"{what} must be a single value")
            return None
        if node.tag == _NULL:
            if empty:
                return ""
            self.error(node, f"{what} must not be empty")
            return None
        text: str = node.value
        if not text.strip() and not empty:
            self.error(node, f"{what} must not be empty")
            return None
        return text

    def scalars(self, node: Node, what: str) -> dict[str, str] | None:
        """A mapping of names to scalar values (``execute_mistral``'s ``input``)."""
        entries = self.mapping(node, what)
        return None if entries is None else self.values(entries, what)

    def values(self, entries: dict[str, Node], what: str) -> dict[str, str]:
        """The scalar values of a mapping read by :meth:`mapping` (an empty value is ``""``)."""
        result: dict[str, str] = {}
        for key, value in entries.items():
            text = self.scalar(value, f"{what}: '{key}'", empty=True)
            if text is not None:
                result[key] = text
        return result
