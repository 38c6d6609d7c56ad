"""10,000 tasks and items: what must still hold at scale. Behaviour only, never speed
(timings are in benchmarks/run.py)."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import parcoord_nb
from parcoord_nb import api
from parcoord_nb.plan import build_plan
from parcoord_nb.view.gantt import MAX_LANES, figure_png, gantt_figure
from parcoord_nb.view.report import report_bundle
from parcoord_nb.view.text import ROW_LIMIT

N = 10_000
FANOUT = "# task t for i in range(n)\nawait asyncio.sleep(0)\nsquare = i * i\ni\n"
# Generous: the engine keeps about 250 bytes per finished item; 4 KB would mean it
# kept each item's namespace, scope or coroutine.
MAX_BYTES_PER_ITEM = 4096
MAX_REPORT_BYTES = 400_000


def many_tasks(n: int, *, fail_every: int = 0) -> str:
    """n separate tasks (not a fan-out); every fail_every-th one raises."""
    parts = []
    for k in range(n):
        body = f"raise ValueError('task {k} broke')\n" if fail_every and k % fail_every == 0 else f"x{k} = {k}\n"
        parts.append(f"# task t{k}\n{body}")
    return "".join(parts)


@pytest.fixture(scope="module")
def fanout_run() -> parcoord_nb.Run:
    return parcoord_nb.run(FANOUT, {"asyncio": asyncio, "n": N})


def test_ten_thousand_items_complete_with_results_and_exports_in_order(fanout_run: parcoord_nb.Run) -> None:
    run = fanout_run
    rec = run.tasks["t"]
    assert run.status == "done" and rec.status == "done"
    assert rec.items == rec.items_done == N
    assert run.results["t"] == list(range(N))
    # Every item ran once, as its own attempt, and every attempt has an end.
    assert len(rec.history) == N and sorted(a.item for a in rec.history) == list(range(N))
    assert all(a.status == "done" and a.end is not None and a.end >= a.start for a in rec.history)


def test_exports_of_a_large_fanout_are_lists_in_item_order() -> None:
    ns = {"asyncio": asyncio, "n": N}
    run = parcoord_nb.run(FANOUT, ns)
    assert run.status == "done"
    assert ns["square"] == [i * i for i in range(N)]


def test_a_failing_item_among_thousands_fails_the_task_and_names_it() -> None:
    src = "# task t for i in range(n)\nawait asyncio.sleep(0)\nif i == 4321:\n    raise ValueError(f'item {i}')\ni\n"
    run = parcoord_nb.run(src, {"asyncio": asyncio, "n": N})
    rec = run.tasks["t"]
    assert run.status == "failed" and rec.status == "failed"
    assert str(rec.error) == "item 4321"
    failed = [a for a in rec.history if a.status == "failed"]
    assert [a.item for a in failed] == [4321]
    assert rec.items_done < N  # the others were cancelled, not all run


def test_limited_fanout_runs_every_item_and_never_more_than_the_limit_at_once() -> None:
    # Method calls on shared objects are not writes, so the block exports nothing.
    src = ("# task t for i in range(n) limit=7\n"
           "running.add(i)\nseen.append(len(running))\nawait asyncio.sleep(0)\nrunning.discard(i)\ni\n")
    ns = {"asyncio": asyncio, "n": 2_000, "running": set(), "seen": []}
    run = parcoord_nb.run(src, ns)
    assert run.status == "done" and run.results["t"] == list(range(2_000))
    assert len(ns["seen"]) == 2_000 and max(ns["seen"]) == 7  # type: ignore[arg-type]


def test_many_separate_tasks_all_run_and_finish() -> None:
    n = 2_000
    ns: dict[str, object] = {}
    run = parcoord_nb.run(many_tasks(n), ns)
    assert run.status == "done"
    assert len(run.tasks) == n and all(r.status == "done" for r in run.tasks.values())
    assert [ns[f"x{k}"] for k in range(n)] == list(range(n))


def test_a_long_dependency_chain_runs_in_order() -> None:
    n = 1_500
    src = "# task t0\nx0 = 0\n" + "".join(f"# task t{k}\nx{k} = x{k - 1} + 1\n" for k in range(1, n))
    ns: dict[str, object] = {}
    run = parcoord_nb.run(src, ns)
    assert run.status == "done" and ns[f"x{n - 1}"] == n - 1
    starts = [run.tasks[f"t{k}"].start for k in range(n)]
    ends = [run.tasks[f"t{k}"].end for k in range(n)]
    assert all(e <= s for e, s in zip(ends, starts[1:]))  # each started after the one it reads


def test_a_large_fanout_leaves_the_garbage_collector_as_it_found_it() -> None:
    # The engine freezes the collector's view while it spawns thousands of items; it
    # must always unfreeze, also when an item fails mid-spawn, and never touch objects
    # someone else froze.
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    thresholds = gc.get_threshold()
    ok = parcoord_nb.run(FANOUT, {"asyncio": asyncio, "n": N})
    assert ok.status == "done" and gc.get_freeze_count() == 0
    failing = "# task t for i in range(n)\nif i == 300:\n    raise ValueError(i)\nawait asyncio.sleep(0)\n"
    bad = parcoord_nb.run(failing, {"asyncio": asyncio, "n": N})
    assert bad.status == "failed" and gc.get_freeze_count() == 0
    gc.freeze()
    try:
        theirs = gc.get_freeze_count()
        again = parcoord_nb.run(FANOUT, {"asyncio": asyncio, "n": N})
        assert again.status == "done" and gc.get_freeze_count() >= theirs  # still frozen: not ours to undo
    finally:
        gc.unfreeze()
    assert gc.get_threshold() == thresholds and gc.isenabled()


def test_finished_items_keep_little_memory() -> None:
    src = "# task t for i in range(n)\nawait asyncio.sleep(0)\ni\n"
    parcoord_nb.run(src, {"asyncio": asyncio, "n": 10})  # warm: imports, plan cache
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run = parcoord_nb.run(src, {"asyncio": asyncio, "n": N})
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert run.status == "done" and len(run.tasks["t"].history) == N
    assert kept / N < MAX_BYTES_PER_ITEM, f"{kept / N:.0f} bytes kept per finished item"


def test_gantt_of_ten_thousand_items_is_one_shape_not_ten_thousand_bars(fanout_run: parcoord_nb.Run) -> None:
    fig = gantt_figure(fanout_run)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][0].lstrip("★ ").startswith(f"t [{N}/{N}]")
    shapes = sum(len(c.get_paths()) for c in ax.collections)
    assert 1 <= shapes < 10  # a concurrency profile (plus overlays), not a bar per item
    png = figure_png(fig)
    assert png.startswith(b"\x89PNG") and len(png) < 200_000


def test_small_fanout_draws_each_item_in_its_own_sub_lane() -> None:
    run = parcoord_nb.run("# task t for i in range(4)\nawait asyncio.sleep(0.02)\ni\n", {"asyncio": asyncio})
    ax = gantt_figure(run).axes[0]
    bars = [p for c in ax.collections for p in c.get_paths()]
    assert len(bars) == 4
    tops = sorted({round(float(p.vertices[:, 1].min()), 3) for p in bars})
    assert len(tops) == 4  # they ran at once, so each got its own slice of the row


def test_gantt_of_ten_thousand_tasks_groups_concurrency_slots() -> None:
    src = "".join(f"# task t{k}\nawait asyncio.sleep(0.01)\n" for k in range(N))
    run = parcoord_nb.run(src, {"asyncio": asyncio})
    assert run.status == "done"
    ax = gantt_figure(run).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert 1 < len(labels) <= MAX_LANES and labels[0].startswith("slots 0-")
    assert figure_png(ax.figure).startswith(b"\x89PNG")
    bundle = report_bundle(run)
    size = sum(len(v) for v in bundle.values())
    assert size < MAX_REPORT_BYTES, f"report of {N} tasks is {size:,} bytes"
    assert bundle["text/html"].count('class="parcoord-row"') == ROW_LIMIT
    assert f"{N - ROW_LIMIT:,} more tasks ({N - ROW_LIMIT:,} done)" in bundle["text/html"]
    assert f"{N - ROW_LIMIT:,} more tasks" in bundle["text/plain"]


def test_report_of_ten_thousand_items_is_small(fanout_run: parcoord_nb.Run) -> None:
    bundle = report_bundle(fanout_run)
    assert "image/png" not in bundle  # the PNG is inside the HTML
    assert sum(len(v) for v in bundle.values()) < MAX_REPORT_BYTES
    assert "done (10000/10000)" in bundle["text/html"]


def test_report_lists_failures_first_and_counts_the_rest() -> None:
    n = 3_000
    run = parcoord_nb.run(many_tasks(n, fail_every=100), {})
    assert run.status == "failed" and len(run.failed) == 30
    bundle = report_bundle(run)
    html = bundle["text/html"]
    assert sum(len(v) for v in bundle.values()) < MAX_REPORT_BYTES
    # All 30 failures are listed (before any success), the rest are counted.
    for k in range(0, n, 100):
        assert f"<b>t{k}</b>" in html and f"task {k} broke" in html
    assert html.count('class="parcoord-row"') == ROW_LIMIT
    assert f"{n - ROW_LIMIT:,} more tasks ({n - ROW_LIMIT:,} done)" in html
    # Tracebacks only for the first few failures: the report does not grow with them.
    assert html.count("<pre>Traceback") == 10
    text = bundle["text/plain"]
    assert text.count("\n") < ROW_LIMIT + 10 and "t2900" in text


def test_tracebacks_and_syntax_errors_name_cell_lines_deep_in_a_large_cell() -> None:
    # Small blocks far down a cell and large blocks get their line numbers two ways
    # (tree shifted, or parsed at the right line): both must point at the cell line.
    n = 2_000
    big = "".join(f"v{j} = {j}\n" for j in range(30))
    src = many_tasks(n) + f"# task deep\n{big}raise KeyError('deep')\n# task tiny\n1 / 0\n"
    line_deep = 2 * n + 1 + 30 + 1
    run = parcoord_nb.run(src, {})
    assert f"line {line_deep}" in run.tasks["deep"].traceback
    assert f"line {line_deep + 2}" in run.tasks["tiny"].traceback
    with pytest.raises(parcoord_nb.CellSyntaxError) as info:
        parcoord_nb.plan(many_tasks(n) + "# task bad\nx = 1\ny = (\n")
    assert info.value.line == 2 * n + 3


def test_unchanged_cell_reuses_its_plan() -> None:
    src = "# task a\nx = 1\n# task b\ny = x + 1\n"
    first = build_plan(src)
    assert build_plan(src) is first
    assert api.make_engine(src, {}).plan is first
    assert parcoord_nb.run(src, {}).plan is first
    # The compiled blocks are the plan's: a re-run compiles nothing.
    assert parcoord_nb.run(src, {}).plan.tasks["b"].block.code is first.tasks["b"].block.code
    # Another line number for the same text is another plan (tracebacks differ).
    assert build_plan(src, first_line=2) is not first


@pytest.fixture(scope="module")
def ip() -> Iterator[InteractiveShell]:
    from IPython.testing.globalipapp import get_ipython, start_ipython

    shell = start_ipython() or get_ipython()  # one global test shell per process
    assert shell is not None
    shell.run_line_magic("load_ext", "parcoord_nb")
    yield shell


def test_rerunning_an_unchanged_magic_cell_reuses_the_plan(ip: InteractiveShell) -> None:
    cell = "%%parallel --quiet\n# task a\nx = 1\n# task b for i in range(3)\ny = i\n"
    with capture_output():
        assert ip.run_cell(cell).success
        first = parcoord_nb.last_run()
        assert ip.run_cell(cell).success
        second = parcoord_nb.last_run()
    assert first is not None and second is not None and first is not second
    assert second.plan is first.plan
    with capture_output():
        assert ip.run_cell(cell.replace("x = 1", "x = 2")).success
    assert parcoord_nb.last_run().plan is not first.plan  # type: ignore[union-attr]


LOAD_EXT = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
heavy = ("matplotlib", "ipywidgets", "httpx", "dask", "distributed", "numpy")
def loaded():
    return sorted({m.split(".")[0] for m in sys.modules} & set(heavy))
before = loaded()
shell.run_line_magic("load_ext", "parcoord_nb")
print(json.dumps({"before": before, "after": loaded(), "magic": "parallel" in shell.magics_manager.magics["cell"]}))
"""


def test_loading_the_extension_imports_nothing_heavy() -> None:
    # %load_ext must stay fast in every kernel: plotting, widgets, HTTP and dask load
    # when a run first needs them, never at load time.
    out = subprocess.run([sys.executable, "-c", LOAD_EXT], capture_output=True, text=True, check=True, timeout=120)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"before": [], "after": [], "magic": True}
