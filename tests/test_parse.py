"""Cell text -> prelude + task specs: one tiny cell per case."""

from __future__ import annotations

import pytest

from parcoord_nb.errors import CellSyntaxError, DuplicateTaskError, OptionError, PlanError, UnknownTaskError
from parcoord_nb.parse import FanOut, TaskOptions, Use, parse_cell


def test_prelude_and_tasks_with_cell_lines() -> None:
    cell = parse_cell("import os\n# task a\nx = 1\n# task b: Second one\ny = 2\n", first_line=2)
    assert cell.prelude == "import os"
    assert [(t.name, t.title, t.line, t.body_line, t.code) for t in cell.tasks] == [
        ("a", "", 3, 4, "x = 1"),
        ("b", "Second one", 5, 6, "y = 2"),
    ]


@pytest.mark.parametrize(
    ("header", "options"),
    [
        ("# task t", TaskOptions()),
        ("# task t after=a,b", TaskOptions(after=("a", "b"))),
        ("# task t after=*", TaskOptions(after_all=True)),
        ("# task t uses=web,db:write", TaskOptions(uses=(Use("web"), Use("db", write=True)))),
        ("# task t timeout=60 retries=2 backoff=0.5", TaskOptions(timeout=60.0, retries=2, backoff=0.5)),
        ("# task t: A title with words estimate=3s", TaskOptions(estimate=3.0)),
    ],
)
def test_header_options(header: str, options: TaskOptions) -> None:
    source = "# task a\na = 1\n# task b\nb = 1\n" + header + "\nt = 1\n"
    assert parse_cell(source).task("t").options == options


def test_title_keeps_its_words_and_options_come_last() -> None:
    spec = parse_cell("# task rates: Research API rate limiting   timeout=60 retries=2 uses=web\nx = 1\n").tasks[0]
    assert spec.title == "Research API rate limiting"
    assert spec.options == TaskOptions(timeout=60.0, retries=2, uses=(Use("web"),))


@pytest.mark.parametrize(
    ("header", "fanout", "title", "limit"),
    [
        ("# task pages for u in urls: Download pages   limit=4", FanOut("u", "urls", ("u",)), "Download pages", 4),
        ("# task p for u in range(10) limit=2", FanOut("u", "range(10)", ("u",)), "", 2),
        ("# task p for k, v in d.items(): Pairs", FanOut("k, v", "d.items()", ("k", "v")), "Pairs", None),
        ("# task p for x in {'a': 1, 'b': 2}", FanOut("x", "{'a': 1, 'b': 2}", ("x",)), "", None),
        ("# task p for x in data[1:3]: Slice", FanOut("x", "data[1:3]", ("x",)), "Slice", None),
    ],
)
def test_fanout_expression_ends_at_top_level_colon_or_option(header: str, fanout: FanOut, title: str, limit: int | None) -> None:
    spec = parse_cell(header + "\nbody = 1\n").tasks[0]
    assert (spec.fanout, spec.title, spec.options.limit) == (fanout, title, limit)


def test_indented_comment_is_not_a_header() -> None:
    cell = parse_cell("# task a\nfor i in range(2):\n    # task b\n    x = i\n")
    assert [t.name for t in cell.tasks] == ["a"]


def test_word_task_in_a_comment_is_not_a_header() -> None:
    cell = parse_cell("# tasks below\n# task-list\n# task a\nx = 1\n")
    assert [t.name for t in cell.tasks] == ["a"]
    assert cell.prelude == "# tasks below\n# task-list"


@pytest.mark.parametrize(
    ("source", "error", "words"),
    [
        ("", PlanError, ["empty"]),
        ("x = 1\n", PlanError, ["no tasks", "# task NAME"]),
        ("# task a\nx = 1\n# task a\ny = 2\n", DuplicateTaskError, ["'a'", "lines 1 and 3", "rename"]),
        ("# task a\n# just a comment\n# task b\ny = 1\n", PlanError, ["'a'", "line 1", "no code"]),
        ("# task a after=lod\nx = 1\n# task load\ny = 1\n", UnknownTaskError, ["after=lod", "did you mean 'load'"]),
        ("# task a tiemout=3\nx = 1\n", OptionError, ["'tiemout'", "did you mean 'timeout'", "line 1"]),
        ("# task a timeout=soon\nx = 1\n", OptionError, ["timeout=soon", "seconds"]),
        ("# task a timeout=-1\nx = 1\n", OptionError, ["positive"]),
        ("# task a retries=two\nx = 1\n", OptionError, ["whole number"]),
        ("# task a limit=2\nx = 1\n", OptionError, ["limit=", "fan-out"]),
        ("# task a uses=db:rw\nx = 1\n", OptionError, ["read", "write"]),
        ("# task a after=a\nx = 1\n", OptionError, ["after itself"]),
        ("# task a retries=1 retries=2\nx = 1\n", OptionError, ["twice"]),
        ("# task a some words\nx = 1\n", CellSyntaxError, ["'some'", "after ':'"]),
        ("# task a for 1 in xs\nx = 1\n", CellSyntaxError, ["loop variable"]),
        ("# task a for x in (1,\nx = 1\n", CellSyntaxError, ["fan-out expression"]),
        ("# task\nx = 1\n", CellSyntaxError, ["needs a name"]),
    ],
)
def test_mistakes_are_reported_with_task_line_and_fix(source: str, error: type[Exception], words: list[str]) -> None:
    with pytest.raises(error) as info:
        parse_cell(source)
    for word in words:
        assert word in str(info.value)
