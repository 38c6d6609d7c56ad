"""Fuzzing the parser and the planner: any text gives a Plan or one of our PlanErrors.

Two sources of input: arbitrary text (biased towards the characters headers are made
of), and mutations of valid cells (lines dropped, duplicated, swapped, cut, or spliced
with header fragments). Whatever comes in, ``parse_cell``/``build_plan`` must either
return a plan that explains itself or raise a :class:`~parcoord_nb.errors.PlanError`
that names a line inside the cell and survives pickling. Any other exception is a bug.
"""

from __future__ import annotations

import pickle

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import pytest

from parcoord_nb.errors import PlanError
from parcoord_nb.parse import parse_cell
from parcoord_nb.plan import Plan, build_plan

pytestmark = pytest.mark.scenario("8 fuzz: parser and planner never crash")

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_CELLS = [
    "import asyncio\n# task a: First\nx = 1\nx\n# task b after=a timeout=2 retries=1\ny = x + 1\n",
    "# task fetch uses=web\nawait asyncio.sleep(0)\npage = 'p'\n# task scan uses=files:write\nfindings = [1]\n"
    "# task report after=*\nreport = (page, findings)\n",
    "urls = ['a', 'b']\n# task pages for u in urls: Download limit=2 estimate=1\nbody = u.upper()\n"
    "# task total\nn = len(body)\n",
    "# task a\nfor i in range(3):\n    acc = i\n# task b\nclass K:\n    v = 1\nk = K()\nk.v = 2\n",
    "# task load\ndf = {'a': 1}\n# task clean after=load\ndf['b'] = 2\ndel df\n",
    "# task g\nasync with ctx() as c:\n    r = c\n# task h backoff=0.5\nimport json\nj = json.dumps(1)\n",
]

# Pieces that make headers, options and blocks interesting to the parser.
FRAGMENTS = [
    "# task ", "# task a", "# task b", " for x in ", " for (a, b) in ", ": ", " after=", " after=*", " after=a,b",
    " uses=", " uses=db:write", " timeout=", " timeout=1e999", " retries=", " retries=-3", " limit=0", " backoff=",
    " estimate=nan", "=", "==", ":", "(", ")", "[", "]", "{", "}", "'", '"', "\\", "\t", "    ", "\n", "\r\n",
    "await ", "async for i in it:\n    pass\n", "yield", "return 1", "break", "nonlocal q", "global q", "del ",
    "lambda: 0", "x = ", "x += 1", "import os", "from . import y", "\x00", "\x0c", "\u2028", "é", "𝔘",
    "if True:\n", "else:\n", "def f():\n    ", "class C:\n", "@deco\n", "try:\n", "except:\n", "*", "**",
    "# task a for x in 5", "# task a for x in (yield)", "# task a for x in await y", "# task a for x in lambda: 1",
]

text_alphabet = st.sampled_from(list("#task forinuseafterlimtm=:,*()[]{}'\"\\ \t\n\r0123456789._-xyzé\x00"))
header_ish = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(text_alphabet, max_size=8)), max_size=25).map("".join)


def check(source: str, first_line: int = 2) -> None:
    """The property: a Plan that renders, or a PlanError that points inside the cell."""
    try:
        plan = build_plan(source, first_line=first_line)
    except PlanError as e:
        event(type(e).__name__)
        text = str(e)
        assert text, "an error says what went wrong"
        n_lines = max(len(source.splitlines()), 1)
        if e.line is not None:
            assert first_line <= e.line < first_line + n_lines + 1, (e.line, text)
        copy = pickle.loads(pickle.dumps(e))
        assert type(copy) is type(e) and str(copy) == text and copy.line == e.line
        return
    event("Plan")
    assert isinstance(plan, Plan)
    assert set(plan.order) == set(plan.tasks) and sum(len(w) for w in plan.waves) == len(plan.tasks)
    assert str(plan)  # the plan explains itself
    cell = parse_cell(source, first_line=first_line)
    assert [t.name for t in cell.tasks] == list(plan.tasks)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(source: str) -> None:
    check(source)
    check("# task a\n" + source)  # the same text as the code of a task


@FUZZ
@given(header_ish)
def test_text_made_of_header_fragments(source: str) -> None:
    check(source)
    check("# task seed\nx = 1\n" + source)


@st.composite
def mutated_cells(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(VALID_CELLS)).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "dup", "swap", "cut", "splice", "indent"]))
        if not lines:
            lines = [draw(st.sampled_from(FRAGMENTS))]
        i = draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "cut":
            k = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k]
        elif op == "splice":
            k = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k] + draw(st.sampled_from(FRAGMENTS)) + lines[i][k:]
        else:
            lines[i] = draw(st.sampled_from([" ", "    ", "\t"])) + lines[i]
    return "".join(lines)


@FUZZ
@given(mutated_cells(), st.integers(1, 5))
def test_mutations_of_valid_cells(source: str, first_line: int) -> None:
    check(source, first_line)


def test_the_valid_cells_plan() -> None:
    # The seeds of the mutations are valid, so the mutations start from real plans.
    for cell in VALID_CELLS:
        assert isinstance(build_plan(cell), Plan), cell


@pytest.mark.parametrize(
    "source",
    [
        "# task a\nreturn 1\n",
        "# task a\nyield 1\n",
        "# task a\nbreak\n",
        "# task a\nnonlocal q\n",
        "# task a for x in (yield)\ny = 1\n",
        "# task a\nx = 1\x00\n",
        "# task a\n" + "(" * 300 + ")" * 300 + "\n",
        "# task a\nx = " + "-" * 100_000 + "1\n",
        "# task a for x in " + "[" * 300 + "]" * 300 + "\ny = 1\n",
    ],
    ids=["return", "yield", "break", "nonlocal", "yield-fanout", "nul", "nested-parens", "deep-unary", "deep-fanout"],
)
def test_code_that_parses_but_does_not_compile(source: str) -> None:
    # Found by the fuzzers above: ast.parse accepts these, compile() does not.
    with pytest.raises(PlanError) as info:
        build_plan(source, first_line=2)
    assert info.value.line is not None and info.value.task == "a"
