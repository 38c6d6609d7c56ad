"""The bad-input catalogue: each mistake is one clear error before anything runs.

Every case goes through ``parcoord_nb.run`` as a notebook would (the cell text starts on
cell line 2, under the ``%%parallel`` line). The message must name the task, the cell
line and the fix, and nothing may run: the prelude and the first task would create a
marker file, and it must not exist afterwards. The same cells on a real kernel are in
tests/kernel/test_faults_kernel.py.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

import parcoord_nb
from parcoord_nb.errors import (
    CellSyntaxError,
    ConflictError,
    CycleError,
    DuplicateTaskError,
    OptionError,
    PlanError,
    UnknownTaskError,
)

scenario = pytest.mark.scenario

# Prepended to every case: if any code ran, the marker exists.
TOUCH = "open(MARK, 'w').close()\n"


def run_cell(source: str, tmp_path: Path, **options: Any) -> tuple[BaseException | None, Path]:
    mark = tmp_path / "side-effect"
    ns: dict[str, Any] = {"MARK": str(mark)}
    try:
        parcoord_nb.run(source, ns, first_line=2, **options)
    except PlanError as e:
        return e, mark
    return None, mark


def test_the_marker_shows_when_code_runs(tmp_path: Path) -> None:
    # The control case: the same prelude in a valid cell does create the marker.
    error, mark = run_cell(TOUCH + "# task a\nx = 1\n", tmp_path)
    assert error is None and mark.exists()


# (scenario, cell text after the prelude, error class, task, line, words in the message)
CATALOGUE = [
    ("7 bad input: duplicate task names",
     "# task load\nopen(MARK, 'w').close()\n# task load\ny = 1\n",
     DuplicateTaskError, "load", 5, ["'load'", "cell lines 3 and 5", "rename one"]),
    ("7 bad input: dependency cycle",
     "# task a\nx = y\n# task b\ny = x\n",
     CycleError, "a", 3, ["a -> b -> a", "'a' at cell line 3", "'b' at cell line 5", "reads 'x' written by a",
                          "reads 'y' written by b", "move the shared code into one task"]),
    ("7 bad input: unknown after= target",
     "# task load\nopen(MARK, 'w').close()\n# task use after=lod\ny = 1\n",
     UnknownTaskError, "use", 5, ["'use'", "cell line 5", "after=lod", "did you mean 'load'?"]),
    ("7 bad input: two writers of one name",
     "# task a\nopen(MARK, 'w').close()\ndf = 1\n# task b\ndf = 2\n",
     ConflictError, "b", 6, ["'a' (cell line 3)", "'b' (cell line 6)", "'df'", "add after=a to 'b'"]),
    ("7 bad input: unknown option",
     "# task a tiemout=3\nopen(MARK, 'w').close()\n",
     OptionError, "a", 3, ["task 'a'", "cell line 3", "'tiemout'", "did you mean 'timeout'?"]),
    ("7 bad input: empty cell", "", PlanError, None, None, ["empty", "# task NAME"]),
    ("7 bad input: no task header", "x = 1\n", PlanError, None, 2, ["no tasks", "'# task load'"]),
    ("7 bad input: header with no body",
     "# task a\n# only a comment\n# task b\nopen(MARK, 'w').close()\n",
     PlanError, "a", 3, ["'a'", "cell line 3", "no code", "put its code under the header"]),
    ("7 bad input: SyntaxError in a block",
     "# task a\nopen(MARK, 'w').close()\n# task b\ny = (1,\n",
     CellSyntaxError, "b", 6, ["SyntaxError in task 'b' at cell line 6", "never closed", "correct that line",
                               "nothing was run"]),
    ("7 bad input: IndentationError in a block",
     "# task a\nif True:\nopen(MARK, 'w').close()\n",
     CellSyntaxError, "a", 5, ["IndentationError in task 'a' at cell line 5", "'if' statement on cell line 4",
                               "indent the lines under if"]),
    ("7 bad input: fan-out over a non-iterable",
     "# task pages for u in 5\nopen(MARK, 'w').close()\n",
     CellSyntaxError, "pages", 3, ["task 'pages'", "cell line 3", "cannot be iterated", "for u in range(5)"]),
]

MALFORMED = [
    ("timeout=soon", ["timeout=soon", "write timeout=30"]),
    ("timeout=-1", ["timeout=-1", "positive number of seconds"]),
    ("timeout=nan", ["timeout=nan", "positive number of seconds"]),
    ("timeout=", ["'timeout='", "like timeout=30"]),
    ("retries=two", ["retries=two", "write retries=2"]),
    ("retries=-1", ["retries=-1", "at least 0"]),
    ("backoff=0", ["backoff=0", "positive"]),
    ("estimate=x", ["estimate=x", "write estimate=30"]),
    ("uses=1db", ["uses=1db", "a name like 'web'"]),
    ("uses=db:rw", ["uses=db:rw", "'read' or 'write'"]),
    ("after=1x", ["after=1x", "not a task name"]),
    ("after=,", ["after=,", "write after=NAME"]),
    ("after=*,b", ["after=*", "not both"]),
    ("after=a", ["after itself", "remove its own name"]),
    ("retries=1 retries=2", ["'retries' is given twice"]),
    ("limit=2", ["limit=", "has no 'for ... in ...'"]),
]


def _cases(rows: list[tuple[Any, ...]]) -> list[Any]:
    """Each row as a pytest.param marked with its scenario (row[0]), for tests/reliability.py."""
    return [pytest.param(*row[1:], marks=scenario(row[0]), id=row[0].split(": ", 1)[1]) for row in rows]


@pytest.mark.parametrize(("body", "error", "task", "line", "words"), _cases(CATALOGUE))
def test_bad_cell_is_rejected_before_anything_runs(
    tmp_path: Path, body: str, error: type[PlanError], task: str | None, line: int | None, words: list[str],
) -> None:
    source = (TOUCH + body) if body.strip() else body
    found, mark = run_cell(source, tmp_path)
    assert type(found) is error, found
    message = str(found)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert (found.task, found.line) == (task, line)  # type: ignore[union-attr]
    assert not mark.exists(), "nothing may run when the cell is wrong"
    copy = pickle.loads(pickle.dumps(found))
    assert (type(copy), str(copy), copy.task, copy.line, copy.names) == (
        type(found), message, found.task, found.line, found.names)  # type: ignore[union-attr]


@scenario("7 bad input: malformed option values")
@pytest.mark.parametrize(("options", "words"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_option_values_name_the_task_the_line_and_the_fix(
    tmp_path: Path, options: str, words: list[str]
) -> None:
    found, mark = run_cell(f"{TOUCH}# task a {options}\nx = 1\n", tmp_path)
    assert isinstance(found, OptionError), found
    assert (found.task, found.line) == ("a", 3)
    message = str(found)
    assert message.startswith("task 'a' (cell line 3): ")
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert not mark.exists()


def test_cycle_error_carries_path_and_variables(tmp_path: Path) -> None:
    found, _ = run_cell(TOUCH + "# task a\nx = z\n# task b\ny = x\n# task c\nz = y\n", tmp_path)
    assert isinstance(found, CycleError)
    assert found.path == ("a", "b", "c", "a") and set(found.names) == {"x", "y", "z"}
    assert pickle.loads(pickle.dumps(found)).path == found.path


@scenario("7 bad input: fan-out over a non-iterable")
def test_fanout_over_a_value_that_turns_out_not_iterable(tmp_path: Path) -> None:
    # Known only at run time: the task fails before any item runs, its dependents are
    # skipped, and the message still names the task, the line and the fix.
    mark = tmp_path / "item-ran"
    ns: dict[str, Any] = {"MARK": str(mark)}
    run = parcoord_nb.run("n = 5\n# task pages for u in n\nopen(MARK, 'w').close()\nbody = u\n"
                          "# task after_pages\nrest = body\n", ns, first_line=2)
    rec = run.tasks["pages"]
    assert rec.status == "failed" and rec.history == [] and not mark.exists()
    message = str(rec.error)
    for word in ("task 'pages' (cell line 3)", "'for u in n'", "n is int", "give it a list, a range"):
        assert word in message
    assert run.tasks["after_pages"].status == "skipped"


RUN_OPTIONS = [
    ("7 bad input: --limit for a resource no task uses", {"limits": {"web": 2}},
     ["--limit web=2", "no task uses 'web'", "add uses=web to a task header", "resources in this cell: db"]),
    ("7 bad input: contradictory options", {"sequential": True, "max_concurrency": 4},
     ["--sequential", "drop --max-concurrency"]),
    ("7 bad input: contradictory options", {"scheduler": "tcp://127.0.0.1:8786"},
     ["--scheduler", "add --backend dask"]),
    ("7 bad input: malformed option values", {"on_error": "explode"}, ["--on-error", "'continue' or 'cancel'"]),
    ("7 bad input: malformed option values", {"max_concurrency": 0}, ["--max-concurrency", "at least 1"]),
    ("7 bad input: malformed option values", {"timeout": 0.0}, ["--timeout", "positive"]),
    ("7 bad input: malformed option values", {"retries": -1}, ["--retries", "0 or more"]),
    ("7 bad input: malformed option values", {"limits": {"db": 0}}, ["--limit db=0", "at least 1"]),
]


@pytest.mark.parametrize(
    ("options", "words"),
    [pytest.param(*row[1:], marks=scenario(row[0]), id=str(row[1])) for row in RUN_OPTIONS],
)
def test_bad_run_options_are_rejected_before_anything_runs(
    tmp_path: Path, options: dict[str, Any], words: list[str]
) -> None:
    found, mark = run_cell(TOUCH + "# task a uses=db\nx = 1\n", tmp_path, **options)
    assert isinstance(found, OptionError), found
    for word in words:
        assert word in str(found), f"{word!r} not in {str(found)!r}"
    assert not mark.exists()
