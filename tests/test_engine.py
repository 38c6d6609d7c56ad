"""The engine with scripted tasks: recorded event lists, outcomes, limits and timing records."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import parcoord_nb
from parcoord_nb import events as ev
from parcoord_nb.errors import OptionError, RunError


def run(source: str, ns: dict[str, Any] | None = None, **options: Any) -> tuple[parcoord_nb.Run, list[ev.Event]]:
    recorded: list[ev.Event] = []
    r = parcoord_nb.run(source, ns if ns is not None else {}, observers=[recorded.append], **options)
    return r, recorded


def shape(events: list[ev.Event]) -> list[tuple[str, str | None]]:
    return [(type(e).__name__, getattr(e, "task", None)) for e in events]


def test_event_list_of_a_dependent_pair() -> None:
    _, events = run("# task a\nx = 1\n# task b\ny = x + 1\n")
    assert shape(events) == [
        ("RunStarted", None),
        ("TaskQueued", "a"),
        ("TaskQueued", "b"),
        ("TaskStarted", "a"),
        ("TaskFinished", "a"),
        ("TaskStarted", "b"),
        ("TaskFinished", "b"),
        ("RunFinished", None),
    ]


def test_results_writes_and_merge() -> None:
    ns: dict[str, Any] = {"base": 10}
    r, _ = run("k = 2\n# task a\nx = base * k\nx\n# task b\nimport math\ny = math.sqrt(x)\n", ns)
    assert r.status == "done"
    assert r.results == {"a": 20, "b": None}
    assert (ns["x"], ns["y"], ns["k"]) == (20, 20 ** 0.5, 2)
    assert r.tasks["a"].writes == {"x"} and r.tasks["b"].reads == {"x"}


def test_a_task_starts_when_its_own_dependencies_are_done_not_by_wave() -> None:
    # 'slow' waits for a gate that only 'late' opens; 'late' depends on 'quick' only.
    # Wave-by-wave scheduling would deadlock here (the test would time out).
    ns: dict[str, Any] = {}
    source = (
        "import asyncio\ngate = asyncio.Event()\n"
        "# task slow\nawait asyncio.wait_for(gate.wait(), 5)\n"
        "# task quick\nv = 1\n"
        "# task late\nw = v\ngate.set()\nawait asyncio.sleep(0)\n"
    )
    r, _ = run(source, ns)
    assert r.status == "done", r
    assert r.tasks["late"].start < r.tasks["slow"].end  # type: ignore[operator]


def test_async_blocks_run_on_the_loop_and_blocking_ones_in_threads() -> None:
    ns: dict[str, Any] = {}
    r, _ = run(
        "import threading, asyncio\n"
        "# task co\nawait asyncio.sleep(0)\nco_thread = threading.current_thread().name\n"
        "# task th\nth_thread = threading.current_thread().name\n",
        ns,
    )
    assert ns["co_thread"] == threading.main_thread().name or ns["co_thread"].startswith("parcoord-loop")
    assert ns["th_thread"].startswith("parcoord-worker")
    assert (r.tasks["co"].is_async, r.tasks["th"].is_async) == (True, False)


def test_fanout_results_in_item_order_and_writes_become_lists() -> None:
    ns: dict[str, Any] = {"items": [3, 1, 2]}
    r, _ = run(
        "import asyncio\n# task sq for n in items limit=2\nawait asyncio.sleep(0.01 * n)\nsq = n * n\nsq + 1\n",
        ns,
    )
    assert r.tasks["sq"].result == [10, 2, 5]
    assert ns["sq"] == [9, 1, 4]
    assert "n" not in ns
    assert (r.tasks["sq"].items, r.tasks["sq"].items_done) == (3, 3)


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


def test_fanout_limit_and_max_concurrency_bound_what_runs_at_once() -> None:
    r, _ = run("import asyncio\n# task f for i in range(12) limit=3\nawait asyncio.sleep(0.02)\n")
    spans = [(a.start, a.end) for a in r.tasks["f"].history]
    assert len(spans) == 12 and _max_overlap(spans) == 3  # type: ignore[arg-type]

    r, _ = run("import time\n# task f for i in range(8)\ntime.sleep(0.02)\n", max_concurrency=2)
    spans = [(a.start, a.end) for a in r.tasks["f"].history]
    assert _max_overlap(spans) == 2  # type: ignore[arg-type]


def test_failure_skips_dependents_lets_independent_tasks_finish_and_merges_nothing() -> None:
    ns: dict[str, Any] = {}
    r, events = run(
        "# task bad\nhalf = 1\nboom = 1 / 0\n# task child\nc = boom\n# task grandchild\ng = c\n# task ok\nk = 5\n", ns
    )
    assert {n: t.status for n, t in r.tasks.items()} == {
        "bad": "failed", "child": "skipped", "grandchild": "skipped", "ok": "done"}
    assert r.tasks["child"].reason == "upstream 'bad' failed"
    assert r.tasks["grandchild"].reason == "upstream 'child' was skipped"
    assert "half" not in ns and ns["k"] == 5
    assert isinstance(r.tasks["bad"].error, ZeroDivisionError)
    assert "boom = 1 / 0" in r.tasks["bad"].traceback
    assert ("TaskSkipped", "grandchild") in shape(events)
    with pytest.raises(RunError, match=r"1 task failed: bad \(ZeroDivisionError: division by zero\); skipped: child, grandchild"):
        r.raise_for_status()


def test_on_error_cancel_cancels_the_rest() -> None:
    r, _ = run(
        "import asyncio\n# task bad\nawait asyncio.sleep(0.05)\nraise ValueError('no')\n"
        "# task long\nawait asyncio.sleep(30)\n",
        on_error="cancel",
    )
    assert (r.tasks["bad"].status, r.tasks["long"].status) == ("failed", "cancelled")
    assert "--on-error cancel" in (r.tasks["long"].reason or "")
    assert r.summary.wall_s < 30


def test_retries_make_n_plus_one_attempts_and_note_the_count() -> None:
    ns: dict[str, Any] = {"calls": []}
    r, events = run("# task flaky retries=2 backoff=0.01\ncalls.append(1)\nraise ConnectionError('down')\n", ns)
    rec = r.tasks["flaky"]
    assert rec.status == "failed" and rec.attempts == 3 and len(ns["calls"]) == 3
    assert [a.status for a in rec.history] == ["failed", "failed", "failed"]
    assert "after 3 attempts" in rec.traceback
    assert [type(e).__name__ for e in events].count("AttemptFailed") == 2


def test_retry_that_succeeds() -> None:
    ns: dict[str, Any] = {"calls": []}
    r, _ = run("# task flaky retries=3 backoff=0.01\ncalls.append(1)\nif len(calls) < 3:\n    raise OSError\nok = True\n", ns)
    assert r.tasks["flaky"].status == "done" and r.tasks["flaky"].attempts == 3 and ns["ok"] is True


def test_coroutine_timeout_is_hard() -> None:
    r, events = run("import asyncio\n# task slow timeout=0.1\nawait asyncio.sleep(10)\n")
    rec = r.tasks["slow"]
    assert rec.status == "timeout" and rec.hard_timeout
    assert "timed out after 0.1s" in str(rec.error)
    assert any(isinstance(e, ev.TaskTimedOut) and e.hard for e in events)


def test_thread_timeout_is_soft_and_the_late_result_is_discarded() -> None:
    ns: dict[str, Any] = {}
    r, _ = run("import time\n# task slow timeout=0.1\ntime.sleep(0.4)\nlate = 1\n", ns)
    rec = r.tasks["slow"]
    assert rec.status == "timeout" and not rec.hard_timeout and rec.abandoned == 1
    import time

    time.sleep(0.5)  # the thread finishes now; its write must not reach the namespace
    assert "late" not in ns


def test_sequential_runs_one_at_a_time_in_plan_order() -> None:
    r, _ = run("import time\n# task b\ny = x\n# task a\nx = 1\ntime.sleep(0.01)\n# task c\ntime.sleep(0.01)\n",
               sequential=True)
    starts = sorted((t.start, n) for n, t in r.tasks.items())
    assert [n for _, n in starts] == ["a", "b", "c"]
    spans = [(a.start, a.end) for t in r.tasks.values() for a in t.history]
    assert _max_overlap(spans) == 1  # type: ignore[arg-type]


def test_exclusive_resource_and_limit() -> None:
    r, _ = run("import time\n# task a uses=db:write\ntime.sleep(0.03)\n# task b uses=db\ntime.sleep(0.03)\n"
               "# task c uses=db\ntime.sleep(0.03)\n")
    a = r.tasks["a"].history[0]
    for n in "bc":
        other = r.tasks[n].history[0]
        assert other.start >= a.end or other.end <= a.start  # type: ignore[operator]
    r, _ = run("import time\n# task a uses=web\ntime.sleep(0.03)\n# task b uses=web\ntime.sleep(0.03)\n",
               limits={"web": 1})
    spans = [(t.history[0].start, t.history[0].end) for t in r.tasks.values()]
    assert _max_overlap(spans) == 1  # type: ignore[arg-type]


def test_limit_for_an_unused_resource_is_refused() -> None:
    with pytest.raises(OptionError, match="no task uses 'gpu'"):
        run("# task a uses=web\nx = 1\n", limits={"gpu": 2})


def test_output_of_concurrent_coroutines_and_threads_stays_apart() -> None:
    source = "import asyncio, time\n"
    for name in ("co1", "co2"):
        source += f"# task {name}\nfor _i in range(20):\n    print('{name}', _i)\n    await asyncio.sleep(0.001)\n"
    for name in ("th1", "th2"):
        source += f"# task {name}\nfor _i in range(20):\n    print('{name}', _i)\n    time.sleep(0.001)\n"
    r, _ = run(source)
    for name in ("co1", "co2", "th1", "th2"):
        assert r.tasks[name].stdout == "".join(f"{name} {i}\n" for i in range(20))


def test_progress_reaches_the_record_and_observers() -> None:
    r, events = run("import parcoord_nb\n# task p\nfor i in range(1, 4):\n    parcoord_nb.progress(i, 3, f'step {i}')\n")
    assert r.tasks["p"].progress == (3, 3, "step 3")
    assert [e for e in events if isinstance(e, ev.TaskProgress)][-1].done == 3


def test_prelude_failure_skips_every_task() -> None:
    r, _ = run("1 / 0\n# task a\nx = 1\n")
    assert r.status == "failed" and r.tasks["a"].status == "skipped"
    with pytest.raises(RunError, match="the prelude failed with ZeroDivisionError"):
        r.raise_for_status()


def test_cancel_keeps_finished_results() -> None:
    async def main() -> parcoord_nb.Run:
        r = parcoord_nb.start("import asyncio\n# task quick\nq = 1\n# task long\nawait asyncio.sleep(30)\n", {})
        while r.tasks["quick"].status != "done":
            await asyncio.sleep(0.01)
        r.cancel()
        return await r

    r = asyncio.run(main())
    assert r.status == "cancelled"
    assert (r.tasks["quick"].status, r.tasks["long"].status) == ("done", "cancelled")
    assert r.results == {"quick": None}
    with pytest.raises(RunError, match="1 of 2 tasks had finished"):
        r.raise_for_status()


def test_run_inside_a_running_loop_uses_a_private_loop_thread() -> None:
    async def main() -> parcoord_nb.Run:
        return parcoord_nb.run("import asyncio\n# task a\nawait asyncio.sleep(0.01)\nx = 1\n", {})

    assert asyncio.run(main()).status == "done"


def test_functions_defined_in_a_block_see_the_notebook_namespace() -> None:
    ns: dict[str, Any] = {"factor": 2}
    run("# task a\ndef scale(v):\n    return v * factor\n", ns)
    ns["factor"] = 5
    assert ns["scale"](3) == 15


def test_fanout_over_a_non_iterable_names_the_expression() -> None:
    r, _ = run("# task f for x in n\ny = x\n", {"n": 5})
    assert r.tasks["f"].status == "failed"
    assert "'for x in n' needs something to loop over, but n is int" in str(r.tasks["f"].error)


def test_summary_and_exports() -> None:
    r, _ = run("import time\n# task a\ntime.sleep(0.05)\n# task b\ntime.sleep(0.05)\n# task c\nz = 1\n")
    s = r.summary
    assert s.sequential_s == pytest.approx(sum(t.busy for t in r.tasks.values()))
    assert s.saved_s == pytest.approx(s.sequential_s - s.wall_s)
    assert s.speedup == pytest.approx(s.sequential_s / s.wall_s)
    trace = r.to_chrome_trace()
    assert sorted(e["name"] for e in trace["traceEvents"]) == ["a", "b", "c"]
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in trace["traceEvents"])
    import json

    assert json.loads(r.to_json())["tasks"]["a"]["status"] == "done"


def test_gantt_is_a_figure_with_one_bar_per_attempt() -> None:
    from matplotlib.figure import Figure

    r, _ = run("# task a retries=1 backoff=0.01\nimport random\nif not globals().get('seen'):\n    seen = 1\n    raise OSError\n# task b\ny = 1\n")
    fig = r.gantt()
    assert isinstance(fig, Figure)
    bars = sum(len(c.get_paths()) for c in fig.axes[0].collections)
    assert bars == sum(len(t.history) for t in r.tasks.values())


def test_last_run_is_the_latest() -> None:
    r, _ = run("# task a\nx = 1\n")
    assert parcoord_nb.last_run() is r
