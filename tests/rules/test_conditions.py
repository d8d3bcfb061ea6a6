"""Conditions: from text to tree, and to disjunctive normal form."""

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.domain.rules import (
    MAX_DNF_CLAUSES,
    And,
    Condition,
    ConditionTooLarge,
    Literal,
    Not,
    Or,
    Term,
    dnf_holds,
    holds,
    refs,
    to_dnf,
)
from vigil.rules.conditions import ConditionSyntaxError, parse_condition

a, b, c, d = Term("a"), Term("b"), Term("c"), Term("d")


def parse(text: str, inline: bool = False) -> Condition:
    return parse_condition(text, inline_relationships=inline).condition


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a", a),
        ("a and b or c", Or((And((a, b)), c))),
        ("a or b and c", Or((a, And((b, c))))),
        ("not a and b", And((Not(a), b))),
        ("a AND (b OR NOT c)", And((a, Or((b, Not(c)))))),
        ("not not a", Not(Not(a))),
        ("((a))", a),
        ("a and b and c", And((a, b, c))),
        ("  a   or\tb  ", Or((a, b))),
    ],
)
def test_not_binds_tighter_than_and_and_and_tighter_than_or(text: str, tree: Condition) -> None:
    assert parse(text) == tree


def test_version_3_inline_relationships_become_terms_named_as_vitrage_names_them() -> None:
    parsed = parse_condition("alarm [ on ]  host AND NOT host [contains] instance", inline_relationships=True)
    assert parsed.condition == And((Term("alarm__on__host"), Not(Term("host__contains__instance"))))
    assert [(r.source, r.relationship_type, r.target) for r in parsed.inline] == [
        ("alarm", "on", "host"),
        ("host", "contains", "instance"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty condition"),
        ("a and (b or c", "unbalanced parentheses: '(' (column 7) is never closed"),
        ("a and b)", "unbalanced parentheses: ')' (column 8) has no matching '('"),
        ("a and", "dangling operator 'and' (column 3): no operand after it, at the end"),
        ("or a", "dangling operator 'or' (column 1): no operand before it"),
        ("a and or b", "dangling operator 'and' (column 3): no operand after it, before 'or' (column 7)"),
        ("a and not", "dangling operator 'not' (column 7): no operand after it, at the end"),
        ("(a or) and b", "dangling operator 'or' (column 4): no operand after it, before ')' (column 6)"),
        ("a b", "missing operator before 'b' (column 3)"),
        ("(a b)", "missing operator before 'b' (column 4)"),
        ("()", "empty parentheses (column 1)"),
        ("a & b", "unexpected character '&' (column 3)"),
        ("a [on] b", "relationships are written inline ('a [on] b') only from version 3"),
    ],
)
def test_a_malformed_condition_is_refused_saying_where(text: str, message: str) -> None:
    with pytest.raises(ConditionSyntaxError, match=re.escape(message)):
        parse(text)


def test_a_malformed_inline_relationship_is_refused() -> None:
    with pytest.raises(ConditionSyntaxError, match="expected 'source \\[relationship_type\\] target'"):
        parse("alarm [on host", inline=True)


@pytest.mark.parametrize(
    ("text", "dnf"),
    [
        ("a", ((("a", True),),)),
        ("a and (b or not c)", ((("a", True), ("b", True)), (("a", True), ("c", False)))),
        ("not (a or b)", ((("a", False), ("b", False)),)),
        ("not (a and b)", ((("a", False),), (("b", False),))),
        ("(a or b) and (c or d)", tuple(((x, True), (y, True)) for x in "ab" for y in "cd")),
        ("a and a and b", ((("a", True), ("b", True)),)),  # a repeated literal once
        ("(a and not a) or b", ((("b", True),),)),  # a contradiction dropped
        ("(a and b) or (b and a)", ((("a", True), ("b", True)),)),  # the same clause once
        ("a and not a", ()),  # never holds
    ],
)
def test_dnf_of_known_conditions(text: str, dnf: tuple[tuple[tuple[str, bool], ...], ...]) -> None:
    assert to_dnf(parse(text)) == tuple(tuple(Literal(ref, positive) for ref, positive in clause) for clause in dnf)


def test_a_condition_whose_dnf_explodes_is_refused() -> None:
    # (x0 or y0) and (x1 or y1) and ... has 2**n clauses
    condition = And(tuple(Or((Term(f"x{i}"), Term(f"y{i}"))) for i in range(9)))
    assert MAX_DNF_CLAUSES < 2**9
    with pytest.raises(ConditionTooLarge):
        to_dnf(condition)
    assert len(to_dnf(And(tuple(Or((Term(f"x{i}"), Term(f"y{i}"))) for i in range(8))))) == 2**8


NAMES = ["a", "b", "c", "d"]

conditions: st.SearchStrategy[Condition] = st.recursive(
    st.sampled_from(NAMES).map(Term),
    lambda inner: st.one_of(
        inner.map(Not),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    ),
    max_leaves=10,
)


def _assignments() -> list[dict[str, bool]]:
    return [dict(zip(NAMES, values, strict=True)) for values in itertools.product([False, True], repeat=len(NAMES))]


@given(conditions)
def test_dnf_holds_exactly_when_the_condition_holds(condition: Condition) -> None:
    try:
        dnf = to_dnf(condition)
    except ConditionTooLarge:
        return
    for truth in _assignments():
        assert dnf_holds(dnf, truth.__getitem__) == holds(condition, truth.__getitem__), truth


@given(conditions)
def test_dnf_clauses_are_literals_of_the_condition_with_no_repeats_or_contradictions(condition: Condition) -> None:
    try:
        dnf = to_dnf(condition)
    except ConditionTooLarge:
        return
    for clause in dnf:
        assert all(isinstance(lit, Literal) and lit.ref in refs(condition) for lit in clause)
        assert len(set(clause)) == len(clause)
        assert not any(Literal(lit.ref, not lit.positive) in clause for lit in clause)
    assert len({frozenset(clause) for clause in dnf}) == len(dnf)


@given(conditions)
def test_a_printed_condition_parses_back_to_the_same_tree(condition: Condition) -> None:
    def show(c: Condition) -> str:
        match c:
            case Term(ref):
                return ref
            case Not(operand):
                return f"not {show(operand)}"
            case And(operands):
                return "(" + " and ".join(map(show, operands)) + ")"
            case Or(operands):
                return "(" + " OR ".join(map(show, operands)) + ")"

    assert _flat(parse(show(condition))) == _flat(condition)


def _flat(c: Condition) -> Condition:
    """Nested and/or of the same kind flattened, as the parser builds them."""
    match c:
        case Term():
            return c
        case Not(operand):
            return Not(_flat(operand))
        case And(operands):
            return And(tuple(x for o in map(_flat, operands) for x in (o.operands if isinstance(o, And) else (o,))))
        case Or(operands):
            return Or(tuple(x for o in map(_flat, operands) for x in (o.operands if isinstance(o, Or) else (o,))))
