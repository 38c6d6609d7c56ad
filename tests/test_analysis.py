"""Reads, writes and awaits of one block: tiny snippets, whole sets compared."""

from __future__ import annotations

import pytest

from parcoord_nb.analysis import analyse_block, parse_block


def info(code: str):  # type: ignore[no-untyped-def]
    return analyse_block(parse_block(code))


@pytest.mark.parametrize(
    ("code", "reads", "writes"),
    [
        ("x = y + 1", {"y"}, {"x"}),
        ("x = 1\nz = x", set(), {"x", "z"}),
        ("x += 1", {"x"}, {"x"}),
        ("cfg.retries = 3", {"cfg"}, {"cfg"}),
        ("rows[0] = header", {"rows", "header"}, {"rows"}),
        ("a.b.c[k] = v", {"a", "k", "v"}, {"a"}),
        ("a, (b, *c) = t", {"t"}, {"a", "b", "c"}),
        ("n: int = 3", set(), {"n"}),
        ("for i in items:\n    total = i", {"items"}, {"i", "total"}),
        ("with open(p) as f:\n    data = f.read()", {"p"}, {"f", "data"}),
        ("try:\n    pass\nexcept ValueError as e:\n    err = e", set(), {"e", "err"}),
        ("import os.path, json as j\nfrom x import y as z", set(), {"os", "j", "z"}),
        ("def f(a, b=default):\n    return a + b + g", {"default", "g"}, {"f"}),
        ("class C(Base):\n    attr = value", {"Base", "value"}, {"C"}),
        ("del old", {"old"}, {"old"}),
        ("squares = [n * n for n in data]", {"data"}, {"squares"}),
        ("pairs = {k: v for k, v in d.items() if v > limit}", {"d", "limit"}, {"pairs"}),
        ("f = lambda q: q + w", {"w"}, {"f"}),
        ("if (m := size) > 3:\n    big = m", {"size"}, {"m", "big"}),
        ("def f():\n    global G\n    G = 1", set(), {"f", "G"}),
        ("def f():\n    return later\nlater = 1", set(), {"f", "later"}),
        ("print(len(xs))", {"xs"}, set()),
        ("match cmd:\n    case [x, *rest]:\n        y = x\n    case {'k': v, **kw}:\n        pass",
         {"cmd"}, {"x", "rest", "y", "v", "kw"}),
    ],
)
def test_reads_and_writes(code: str, reads: set[str], writes: set[str]) -> None:
    got = info(code)
    assert (set(got.reads), set(got.writes)) == (reads, writes)


@pytest.mark.parametrize(
    ("code", "is_async"),
    [
        ("x = await f()", True),
        ("async with c() as s:\n    pass", True),
        ("async for x in gen():\n    pass", True),
        ("r = [await f(x) for x in xs]", True),
        ("r = [x async for x in agen()]", True),
        ("async def g():\n    await h()", False),
        ("f = lambda: 1\ntime.sleep(1)", False),
    ],
)
def test_awaits_only_at_top_level(code: str, is_async: bool) -> None:
    assert info(code).is_async is is_async


@pytest.mark.parametrize(("code", "has_result"), [("x = 1\nx", True), ("x = 1", False), ("f()", True), ("", False)])
def test_last_expression_is_the_result(code: str, has_result: bool) -> None:
    assert info(code).has_result is has_result


def test_deletes_are_tracked_separately() -> None:
    assert set(info("del a\nb = 1").deletes) == {"a"}
