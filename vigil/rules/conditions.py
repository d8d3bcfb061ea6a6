"""A scenario's condition, from its text to the domain's condition tree.

The grammar is Vitrage's: template ids joined by ``and``, ``or`` and
``not`` (each in lower or upper case), grouped by parentheses; ``not``
binds tightest, then ``and``, then ``or``. From version 3 a term may also be
an inline relationship, ``source [relationship_type] target``, which
becomes a term named ``source__relationship_type__target`` (Vitrage's name
for it) and is returned beside the tree for the loader to define.

Whether the ids exist is the loader's concern; this module refuses only
what cannot be read: unbalanced parentheses, an operator with a missing
operand, two terms with no operator between them, a stray character.
"""

import re
from dataclasses import dataclass
from enum import Enum

from vigil.domain.rules import And, Condition, Not, Or, Term


class ConditionSyntaxError(ValueError):
    """A condition that cannot be read; the message says where (1-based column)."""


@dataclass(frozen=True, slots=True)
class InlineRelationship:
    """A version 3 ``source [relationship_type] target`` term."""

    ref: str
    source: str
    relationship_type: str
    target: str


@dataclass(frozen=True, slots=True)
class ParsedCondition:
    condition: Condition
    inline: tuple[InlineRelationship, ...]


def inline_ref(source: str, relationship_type: str, target: str) -> str:
    """Vitrage's name for an inline relationship."""
    return f"{source}__{relationship_type}__{target}"


def parse_condition(text: str, *, inline_relationships: bool) -> ParsedCondition:
    """Read a condition; ``inline_relationships`` for version 3 templates. Raises :class:`ConditionSyntaxError`."""
    parser = _Parser(_tokens(text), inline_relationships)
    condition = parser.parse()
    return ParsedCondition(condition, tuple(dict.fromkeys(parser.inline)))


class _Kind(Enum):
    LPAR = "("
    RPAR = ")"
    LBRACK = "["
    RBRACK = "]"
    AND = "and"
    OR = "or"
    NOT = "not"
    IDENT = "name"
    END = "end"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: str
    column: int  # 1-based

    def __str__(self) -> str:
        return f"'{self.text}' (column {self.column})"


_TOKEN = re.compile(r"\s*(?:(?P<punct>[()\[\]])|(?P<word>\w+)|(?P<other>\S))")
_KEYWORDS = {"and": _Kind.AND, "AND": _Kind.AND, "or": _Kind.OR, "OR": _Kind.OR, "not": _Kind.NOT, "NOT": _Kind.NOT}
_PUNCT = {"(": _Kind.LPAR, ")": _Kind.RPAR, "[": _Kind.LBRACK, "]": _Kind.RBRACK}
_OPERATORS = {_Kind.AND, _Kind.OR, _Kind.NOT}


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # only trailing blanks are left
            break
        pos = match.end()
        if match.group("punct"):
            tokens.append(_Token(_PUNCT[match.group("punct")], match.group("punct"), match.start("punct") + 1))
        elif match.group("word"):
            word = match.group("word")
            tokens.append(_Token(_KEYWORDS.get(word, _Kind.IDENT), word, match.start("word") + 1))
        else:
            raise ConditionSyntaxError(
                f"unexpected character '{match.group('other')}' (column {match.start('other') + 1})"
            )
    tokens.append(_Token(_Kind.END, "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token], inline_relationships: bool) -> None:
        self._tokens = tokens
        self._pos = 0
        self._inline_allowed = inline_relationships
        self.inline: list[InlineRelationship] = []

    @property
    def _next(self) -> _Token:
        return self._tokens[self._pos]

    @property
    def _previous(self) -> _Token | None:
        return self._tokens[self._pos - 1] if self._pos else None

    def _take(self) -> _Token:
        token = self._tokens[self._pos]
        if token.kind is not _Kind.END:
            self._pos += 1
        return token

    def parse(self) -> Condition:
        if self._next.kind is _Kind.END:
            raise ConditionSyntaxError("empty condition")
        condition = self._or()
        token = self._next
        if token.kind is _Kind.RPAR:
            raise ConditionSyntaxError(f"unbalanced parentheses: ')' (column {token.column}) has no matching '('")
        if token.kind is not _Kind.END:
            raise ConditionSyntaxError(f"missing operator before {token}")
        return condition

    def _or(self) -> Condition:
        operands = [self._and()]
        while self._next.kind is _Kind.OR:
            self._take()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Condition:
        operands = [self._not()]
        while self._next.kind is _Kind.AND:
            self._take()
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _not(self) -> Condition:
        if self._next.kind is _Kind.NOT:
            self._take()
            return Not(self._not())
        return self._atom()

    def _atom(self) -> Condition:
        token = self._next
        if token.kind is _Kind.IDENT:
            self._take()
            if self._next.kind is _Kind.LBRACK:
                return self._inline(token)
            return Term(token.text)
        if token.kind is _Kind.LPAR:
            self._take()
            if self._next.kind is _Kind.RPAR:
                raise ConditionSyntaxError(f"empty parentheses (column {token.column})")
            inner = self._or()
            close = self._take()
            if close.kind is _Kind.END:
                raise ConditionSyntaxError(f"unbalanced parentheses: '(' (column {token.column}) is never closed")
            if close.kind is not _Kind.RPAR:
                raise ConditionSyntaxError(f"missing operator before {close}")
            return inner
        raise self._missing_operand(token)

    def _missing_operand(self, token: _Token) -> ConditionSyntaxError:
        """An operand was expected at ``token``: name the operator left without one."""
        previous = self._previous
        if previous is not None and previous.kind in _OPERATORS:
            where = "at the end" if token.kind is _Kind.END else f"before {token}"
            return ConditionSyntaxError(f"dangling operator {previous}: no operand after it, {where}")
        if token.kind in _OPERATORS:
            return ConditionSyntaxError(f"dangling operator {token}: no operand before it")
        if token.kind is _Kind.RPAR:
            return ConditionSyntaxError(f"unbalanced parentheses: ')' (column {token.column}) has no matching '('")
        if token.kind is _Kind.END and previous is not None and previous.kind is _Kind.LPAR:
            return ConditionSyntaxError(f"unbalanced parentheses: '(' (column {previous.column}) is never closed")
        if token.kind is _Kind.LBRACK:
            return ConditionSyntaxError(f"{token}: a relationship needs a source before '['")
        return ConditionSyntaxError(f"unexpected {token}" if token.kind is not _Kind.END else "unexpected end")

    def _inline(self, source: _Token) -> Condition:
        bracket = self._take()
        if not self._inline_allowed:
            raise ConditionSyntaxError(
                f"{bracket}: relationships are written inline ('a [on] b') only from version 3; "
                "name a relationship's template_id instead"
            )
        label, close, target = self._take(), self._take(), self._take()
        if label.kind is not _Kind.IDENT or close.kind is not _Kind.RBRACK or target.kind is not _Kind.IDENT:
            raise ConditionSyntaxError(
                f"malformed relationship after '{source.text}' (column {source.column}): "
                "expected 'source [relationship_type] target'"
            )
        ref = inline_ref(source.text, label.text, target.text)
        self.inline.append(InlineRelationship(ref, source.text, label.text, target.text))
        return Term(ref)
