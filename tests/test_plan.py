"""The graph: edges with their reasons, conflicts, cycles, waves, critical path."""

from __future__ import annotations

import linecache

import pytest

from parcoord_nb.errors import CellSyntaxError, ConflictError, CycleError
from parcoord_nb.plan import build_plan


def edges(source: str) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(e.src, e.dst, e.names) for e in build_plan(source).edges}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("# task a\nx = 1\n# task b\ny = 2\n", set()),
        ("# task a\nx = 1\n# task b\ny = x\n", {("a", "b", ("x",))}),
        ("# task b\ny = x\n# task a\nx = 1\n", {("a", "b", ("x",))}),
        ("# task a\nx = 1\ny = 2\n# task b\nz = x + y\n", {("a", "b", ("x", "y"))}),
        ("# task a\nx = 1\n# task b after=a\ny = 2\n", {("a", "b", ())}),
        ("# task a\nx = 1\n# task b\ny = 2\n# task c after=*\nz = 3\n", {("a", "c", ()), ("b", "c", ())}),
        ("# task a\ncfg.x = 1\n# task b\nv = cfg.x\n", {("a", "b", ("cfg",))}),
        # A name the prelude binds is not an edge: the prelude runs before every task.
        ("n = 3\n# task a\nx = n\n# task b\ny = n\n", set()),
        # Reading a name before binding it reads the other task's value.
        ("# task a\nx = 1\n# task b after=a\nx = x + 1\n", {("a", "b", ("x",))}),
        # A fan-out's loop variable is its own, per item.
        ("# task a\nurls = [1]\n# task b for u in urls\nbody = u\n", {("a", "b", ("urls",))}),
    ],
)
def test_edges_and_their_reasons(source: str, expected: set[tuple[str, str, tuple[str, ...]]]) -> None:
    assert edges(source) == expected


def test_edge_reason_names_the_variable() -> None:
    (edge,) = build_plan("# task load\ndf = 1\n# task clean\nout = df\n").edges
    assert edge.reason == "clean reads 'df' written by load"


@pytest.mark.parametrize(
    ("source", "waves"),
    [
        ("# task a\nx = 1\n# task b\ny = 2\n", (("a", "b"),)),
        ("# task a\nx = 1\n# task b\ny = x\n# task c\nz = y\n# task d\nw = 0\n", (("a", "d"), ("b",), ("c",))),
        ("# task a\nx = 1\n# task b\ny = 2\n# task r after=*\nr = 0\n", (("a", "b"), ("r",))),
    ],
)
def test_waves(source: str, waves: tuple[tuple[str, ...], ...]) -> None:
    assert build_plan(source).waves == waves


def test_conflict_names_both_tasks_the_variable_and_the_fix() -> None:
    with pytest.raises(ConflictError) as info:
        build_plan("# task load\ndf = 1\n# task clean\ndf = 2\n", first_line=2)
    e = info.value
    assert str(e) == (
        "tasks 'load' (cell line 2) and 'clean' (cell line 4) both assign 'df' and neither runs "
        "after the other: rename one (a name starting with _ stays local to its task), "
        "or add after=load to 'clean'"
    )
    assert (e.task, e.line, e.names) == ("clean", 4, ("df",))


def test_underscore_names_stay_local_to_their_task() -> None:
    plan = build_plan("# task a\nfor _i in range(3):\n    x = _i\n# task b\nfor _i in range(2):\n    y = _i\n")
    assert plan.edges == () and plan.tasks["a"].writes == {"x"}


def test_ordered_writers_are_not_a_conflict() -> None:
    plan = build_plan("# task load\ndf = 1\n# task clean after=load\ndf = 2\n")
    assert plan.order == ("load", "clean")


def test_cycle_shows_the_path_and_the_variables() -> None:
    with pytest.raises(CycleError) as info:
        build_plan("# task a\nx = y\n# task b\ny = x\n")
    e = info.value
    assert e.path in (("a", "b", "a"), ("b", "a", "b"))
    assert set(e.names) == {"x", "y"}
    assert "reads 'x' written by a" in str(e) and "reads 'y' written by b" in str(e)


def test_cycle_through_after() -> None:
    with pytest.raises(CycleError) as info:
        build_plan("# task a after=c\nx = 1\n# task b after=a\ny = 1\n# task c after=b\nz = 1\n")
    assert len(info.value.path) == 4 and info.value.path[0] == info.value.path[-1]


def test_syntax_error_reports_the_cell_line() -> None:
    with pytest.raises(CellSyntaxError) as info:
        build_plan("# task a\nx = 1\n# task b\ny = (\n", first_line=2)
    assert info.value.task == "b"
    assert info.value.line == 5
    assert "SyntaxError in task 'b' at cell line 5" in str(info.value)


def test_indentation_error_is_named() -> None:
    with pytest.raises(CellSyntaxError) as info:
        build_plan("# task a\nif x:\ny = 1\n")
    assert "IndentationError in task 'a' at cell line 3" in str(info.value)


def test_prelude_syntax_error() -> None:
    with pytest.raises(CellSyntaxError, match="prelude"):
        build_plan("import (\n# task a\nx = 1\n")


def test_critical_path_from_estimates_and_from_durations() -> None:
    plan = build_plan(
        "# task a estimate=2\nx = 1\n# task b estimate=1\ny = x\n# task c estimate=5\nz = 0\n"
    )
    assert plan.critical_path() == (["c"], 5.0)
    assert plan.critical_path({"a": 3.0, "b": 3.0, "c": 1.0}) == (["a", "b"], 6.0)


def test_resources_and_verdict() -> None:
    plan = build_plan("# task a uses=web\nx = 1\n# task b uses=web\ny = 1\n# task c uses=db:write\nz = 1\n")
    assert plan.resources == {"web": {"read": ["a", "b"], "write": []}, "db": {"read": [], "write": ["c"]}}
    text = [t for _, t in plan.verdict]
    assert "resource 'web' is shared read-only by a, b: safe" in text


def test_plan_is_cached_by_source() -> None:
    source = "# task a\nx = 1\n"
    assert build_plan(source) is build_plan(source)


def test_tracebacks_quote_the_cell_by_line() -> None:
    plan = build_plan("# task a\nx = 1\ny = 1 / 0\n", first_line=2)
    filename = plan.tasks["a"].block.filename
    assert linecache.getline(filename, 4).strip() == "y = 1 / 0"
    assert plan.tasks["a"].block.code.co_filename == filename


def test_plan_text_lists_tasks_edges_verdict_and_waves() -> None:
    text = str(build_plan("# task a: Fetch\nx = 1\n# task b\ny = x\n"))
    for part in ["Plan: 2 tasks in 2 waves", "a [thread]", "reads: x", "a -> b: b reads 'x' written by a",
                 "Independence check:", "1: a", "2: b"]:
        assert part in text


def test_a_long_chain_of_dependencies_plans_without_recursion() -> None:
    # Written last-first, so a recursive depth-first sort would go 3,000 calls deep.
    n = 3000
    source = "".join(f"# task t{i}\nv{i} = v{i + 1}\n" for i in range(n)) + f"# task last\nv{n} = 1\n"
    plan = build_plan(source)
    assert len(plan.waves) == n + 1
    assert plan.order[0] == "last" and plan.order[-1] == "t0"
