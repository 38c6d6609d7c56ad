"""Faults during a run, on the real engine: real event loops, real worker threads.

Each test states one promise of the fault table: cancel and interrupt wind down and keep
what finished, abandoned threads are reported and their late results discarded,
timeouts are hard for coroutines and soft for threads, retries are N+1 attempts and
never retry a cancel, several failures are all reported, and abusive blocks (huge
output, broken repr, ``sys.exit()``, deep recursion) fail alone while the run goes on.

Threads that must outlive a run wait on a ``threading.Event`` the test sets afterwards,
so no test sleeps for long and none relies on timing thresholds.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import threading
from typing import Any

import pytest

import parcoord_nb
from parcoord_nb import engine as engine_mod
from parcoord_nb.errors import Cancelled, RunError
from parcoord_nb.view.gantt import gantt_figure
from parcoord_nb.view.report import run_html
from parcoord_nb.view.text import run_text

scenario = pytest.mark.scenario


def gantt_labels(run: parcoord_nb.Run) -> list[str]:
    fig = gantt_figure(run)
    return [t.get_text() for ax in fig.axes for t in ax.texts]


async def start_then_cancel(source: str, ns: dict[str, Any], *, after: float = 0.3, twice: bool = False,
                            **options: Any) -> parcoord_nb.Run:
    run = parcoord_nb.start(source, ns, **options)
    await asyncio.sleep(after)
    run.cancel()
    if twice:
        await asyncio.sleep(0.2)
        run.cancel()
    await asyncio.wait_for(asyncio.shield(run._task), 20)  # type: ignore[arg-type]
    return run


# -- 1. cancel / interrupt mid-run ----------------------------------------------------


@scenario("1 interrupt mid-run: wind-down keeps finished work")
def test_cancel_mid_run_keeps_finished_results_and_renders_a_partial_report() -> None:
    ns: dict[str, Any] = {}
    source = (
        "import asyncio, time\nimport parcoord_nb\n"
        "# task quick\nquick = 'kept'\nquick\n"
        "# task after_quick\nalso = quick + '!'\n"
        "# task slow_co\nawait asyncio.sleep(30)\n"
        "# task slow_thread\nwhile not parcoord_nb.cancelled():\n    time.sleep(0.01)\n"
        "# task never after=slow_co\nnever = 1\n"
    )
    run = asyncio.run(start_then_cancel(source, ns))
    assert run.status == "cancelled"
    statuses = {n: r.status for n, r in run.tasks.items()}
    assert statuses == {"quick": "done", "after_quick": "done", "slow_co": "cancelled",
                        "slow_thread": "cancelled", "never": "cancelled"}
    assert (ns["quick"], ns["also"]) == ("kept", "kept!")
    assert run.results == {"quick": "kept", "after_quick": None}
    assert "never" not in ns
    assert run.cancelled_at is not None and run.wall_end is not None and run.wall_end >= run.cancelled_at
    assert all(run.tasks[n].reason == "the run was cancelled" for n in ("slow_co", "slow_thread", "never"))
    # The partial report and the Gantt render.
    assert "cancelled" in run_text(run) and "parcoord-final" in run_html(run)
    assert gantt_figure(run).axes
    with pytest.raises(RunError, match="2 of 5 tasks had finished"):
        run.raise_for_status()


@scenario("1 interrupt mid-run: wind-down keeps finished work")
def test_a_run_cancelled_mid_run_leaves_the_loop_usable_for_the_next_run() -> None:
    async def main() -> parcoord_nb.Run:
        await start_then_cancel("import asyncio\n# task a\nawait asyncio.sleep(30)\n", {})
        return await parcoord_nb.run_async("# task b\nb = 2\nb\n", {})

    assert asyncio.run(main()).results == {"b": 2}


@scenario("1 second interrupt is a hard stop")
def test_a_second_cancel_ends_the_wind_down_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A wind-down long enough that, without the hard stop, waiting for it would time out.
    monkeypatch.setattr(engine_mod, "WIND_DOWN_S", 60.0)
    source = (
        "import asyncio\n"
        "# task stubborn\ntry:\n    await asyncio.sleep(30)\nexcept asyncio.CancelledError:\n"
        "    await release.wait()\nlate = 'merged'\nlate\n"
        "# task fine\nfine = 1\n"
    )

    async def main() -> tuple[parcoord_nb.Run, dict[str, Any]]:
        ns: dict[str, Any] = {"release": asyncio.Event()}
        run = await start_then_cancel(source, ns, twice=True)
        # Let the orphan finish now: its late result must not reach the run or the namespace.
        ns["release"].set()
        for _ in range(20):
            await asyncio.sleep(0.01)
        return run, ns

    run, ns = asyncio.run(main())
    assert run.status == "cancelled"
    rec = run.tasks["stubborn"]
    assert rec.status == "cancelled" and rec.result is None
    assert "left running" in (rec.reason or "")
    assert "second interrupt" in (run.cancel_reason or "")
    assert "late" not in ns and ns["fine"] == 1


@scenario("1 second interrupt is a hard stop")
def test_sigint_twice_in_a_plain_asyncio_program() -> None:
    # asyncio.run turns the first SIGINT into a cancel of the main task; the engine then
    # makes the second one stop the wind-down instead of waiting WIND_DOWN_S.
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        pytest.skip("signals need the main thread")
    import signal

    source = (
        "import asyncio\n"
        "# task done_first\nkept = 1\n"
        "# task stubborn\ntry:\n    await asyncio.sleep(30)\nexcept asyncio.CancelledError:\n    await asyncio.sleep(30)\n"
    )
    seen: dict[str, Any] = {}
    ns: dict[str, Any] = {}

    def interrupter() -> None:
        # Like a user at the keyboard: interrupt, then again once the wind-down began.
        while "run" not in seen or not seen["run"].tasks["done_first"].status == "done":
            threading.Event().wait(0.01)
        os.kill(os.getpid(), signal.SIGINT)
        while seen["run"].cancelled_at is None:
            threading.Event().wait(0.01)
        threading.Event().wait(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    async def main() -> None:
        run = parcoord_nb.start(source, ns)
        seen["run"] = run
        threading.Thread(target=interrupter, daemon=True).start()
        await run

    before = signal.getsignal(signal.SIGINT)
    old = engine_mod.WIND_DOWN_S
    engine_mod.WIND_DOWN_S = 60.0
    try:
        with pytest.raises(KeyboardInterrupt):
            asyncio.run(main())
    finally:
        engine_mod.WIND_DOWN_S = old
    run = seen["run"]
    assert run.status == "cancelled" and run.cancel_reason.startswith("the kernel was interrupted")
    assert "second interrupt" in run.cancel_reason
    assert ns["kept"] == 1
    assert signal.getsignal(signal.SIGINT) is before, "the engine put the previous handler back"


# -- 2. threads that ignore cancellation ----------------------------------------------


@scenario("2 thread ignores cancel: abandoned, late result discarded")
def test_a_thread_that_ignores_cancel_is_abandoned_and_its_late_result_discarded() -> None:
    release, finished = threading.Event(), threading.Event()
    ns: dict[str, Any] = {"release": release, "finished": finished}
    source = (
        "# task stubborn\nrelease.wait(30)\nlate = 'merged'\nfinished.set()\n'late result'\n"
        "# task quick\nquick = 1\n"
    )
    run = asyncio.run(start_then_cancel(source, ns, after=0.2))
    rec = run.tasks["stubborn"]
    assert run.status == "cancelled" and not finished.is_set(), "the run did not wait for the thread"
    assert rec.status == "cancelled" and rec.abandoned == 1
    assert "abandoned" in run_text(run) and "abandoned" in run_html(run)
    release.set()
    assert finished.wait(10)
    # The thread finished after the run: nothing of it reaches the run or the namespace.
    assert "late" not in ns and rec.result is None and rec.status == "cancelled"
    assert ns["quick"] == 1


@scenario("2 thread ignores cancel: abandoned, late result discarded")
def test_an_abandoned_thread_does_not_hold_a_slot() -> None:
    # One slot. 'stuck' times out (its thread runs on) and retries once; 'next' waits
    # for the slot. Both must get it although two 'stuck' threads are still running.
    release = threading.Event()
    ns: dict[str, Any] = {"release": release}
    source = (
        "# task stuck timeout=0.2 retries=1 backoff=0.01\nrelease.wait(30)\n"
        "# task next\nnext_ran = True\n"
    )
    try:
        run = parcoord_nb.run(source, ns, max_concurrency=1)
        assert not release.is_set()
        rec = run.tasks["stuck"]
        assert (rec.status, rec.attempts, rec.abandoned) == ("timeout", 2, 2)
        assert run.tasks["next"].status == "done" and ns["next_ran"] is True
    finally:
        release.set()


@scenario("2 cooperative cancel: cancelled() and progress()")
def test_cancelled_lets_a_blocking_loop_stop() -> None:
    stopped = threading.Event()
    ns: dict[str, Any] = {"stopped": stopped}
    source = (
        "import time\nimport parcoord_nb\n"
        "# task loop\nwhile not parcoord_nb.cancelled():\n    time.sleep(0.01)\nstopped.set()\n"
    )
    run = asyncio.run(start_then_cancel(source, ns, after=0.2))
    assert run.tasks["loop"].status == "cancelled"
    assert stopped.wait(10), "the block saw cancelled() and returned"
    assert run.tasks["loop"].abandoned == 0, "it stopped when told, so it is not reported as left behind"


@scenario("2 cooperative cancel: cancelled() and progress()")
@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_progress_raises_cancelled_in_a_cancelled_task(kind: str) -> None:
    seen: list[str] = []
    stopped = threading.Event()
    ns: dict[str, Any] = {"seen": seen, "stopped": stopped}
    # A coroutine is cancelled at its await; one that catches CancelledError and goes on
    # still meets Cancelled at its next progress() call.
    step = ("        time.sleep(0.01)\n" if kind == "thread" else
            "        try:\n            await asyncio.sleep(0.01)\n        except asyncio.CancelledError:\n            pass\n")
    source = (
        "import asyncio, time\nimport parcoord_nb\n"
        "# task work\n"
        "try:\n"
        "    for i in range(10_000):\n"
        "        try:\n"
        "            parcoord_nb.progress(i, 10_000)\n"
        "        except Exception:\n"
        "            seen.append('swallowed')\n"
        + step +
        "except BaseException as e:\n"
        "    seen.append(type(e).__name__)\n"
        "    raise\n"
        "finally:\n"
        "    stopped.set()\n"
    )
    run = asyncio.run(start_then_cancel(source, ns, after=0.2, retries=3))
    assert stopped.wait(10)
    assert seen == ["Cancelled"], "except Exception cannot swallow it"
    rec = run.tasks["work"]
    assert rec.status == "cancelled" and rec.attempts == 1, "a cancel is never retried"
    assert rec.progress is not None and rec.progress[1] == 10_000
    assert rec.abandoned == 0


def test_cancelled_and_progress_outside_a_task_do_nothing() -> None:
    assert parcoord_nb.cancelled() is False
    parcoord_nb.progress(1, 2, "outside")  # no task: nothing to report, nothing raised


def test_cancelled_pickles() -> None:
    err = pickle.loads(pickle.dumps(Cancelled("task 'x' was cancelled")))
    assert isinstance(err, BaseException) and not isinstance(err, Exception)
    assert str(err) == "task 'x' was cancelled"


def test_worker_threads_are_daemons_outside_the_exit_joined_pool() -> None:
    # concurrent.futures joins its workers at exit, so one stuck block would hold up a
    # kernel restart; ours are daemon threads (tests/kernel proves the restart).
    run = parcoord_nb.run("# task t\nimport threading\nme = threading.current_thread()\n", ns := {})
    assert run.status == "done"
    assert ns["me"].daemon and ns["me"].name.startswith("parcoord-worker")


# -- 3. timeouts ------------------------------------------------------------------------


@scenario("3 timeouts: hard for coroutines, soft for threads")
def test_timeout_is_hard_for_a_coroutine() -> None:
    ns: dict[str, Any] = {"cleaned": []}
    run = parcoord_nb.run(
        "import asyncio\n# task co timeout=0.2\ntry:\n    await asyncio.sleep(30)\nfinally:\n    cleaned.append(1)\n", ns
    )
    rec = run.tasks["co"]
    assert (rec.status, rec.hard_timeout, rec.abandoned, rec.timeout) == ("timeout", True, 0, 0.2)
    assert ns["cleaned"] == [1], "the coroutine was cancelled and ran its cleanup"
    assert "hard timeout" in str(rec.error) and "hard timeout" in run_text(run) and "hard timeout" in run_html(run)
    assert "  timeout 0.2s (hard)" in gantt_labels(run)
    with pytest.raises(RunError, match=r"co \(timed out after 0.2s: hard timeout\)"):
        run.raise_for_status()


@scenario("3 timeouts: hard for coroutines, soft for threads")
def test_timeout_is_soft_for_a_thread_and_its_late_result_is_discarded() -> None:
    release, finished = threading.Event(), threading.Event()
    ns: dict[str, Any] = {"release": release, "finished": finished}
    run = parcoord_nb.run("# task th timeout=0.2\nrelease.wait(30)\nlate = 1\nfinished.set()\n", ns)
    rec = run.tasks["th"]
    assert not finished.is_set()
    assert (rec.status, rec.hard_timeout, rec.abandoned) == ("timeout", False, 1)
    assert "soft timeout" in str(rec.error) and "soft timeout" in run_text(run) and "soft timeout" in run_html(run)
    assert "  timeout 0.2s (soft)" in gantt_labels(run)
    with pytest.raises(RunError, match="soft timeout, its thread was left running"):
        run.raise_for_status()
    release.set()
    assert finished.wait(10)
    assert "late" not in ns and rec.status == "timeout"


@scenario("3 timeouts: hard for coroutines, soft for threads")
def test_a_timed_out_thread_is_told_to_stop() -> None:
    stopped = threading.Event()
    ns: dict[str, Any] = {"stopped": stopped}
    run = parcoord_nb.run(
        "import time, parcoord_nb\n# task th\nwhile not parcoord_nb.cancelled():\n    time.sleep(0.01)\nstopped.set()\n",
        ns, timeout=0.2,  # the run-wide --timeout applies to tasks without their own
    )
    assert run.tasks["th"].status == "timeout" and run.tasks["th"].timeout == 0.2
    assert stopped.wait(10)
    assert run.tasks["th"].abandoned == 0, "it stopped when told, so it was not left behind"


# -- 4. retries --------------------------------------------------------------------------


@scenario("4 retries: N+1 attempts, cancel never retried")
def test_exhausted_retries_report_the_last_original_exception() -> None:
    ns: dict[str, Any] = {"calls": []}
    run = parcoord_nb.run(
        "# task flaky retries=2 backoff=0.01\ncalls.append(1)\nraise ValueError(f'boom {len(calls)}')\n", ns
    )
    rec = run.tasks["flaky"]
    assert (rec.status, rec.attempts, len(ns["calls"])) == ("failed", 3, 3)
    assert [a.status for a in rec.history] == ["failed", "failed", "failed"]
    assert type(rec.error) is ValueError and str(rec.error) == "boom 3"
    assert rec.error.__notes__ == ["after 3 attempts"]
    with pytest.raises(RunError, match=r"flaky \(ValueError: boom 3, after 3 attempts\)"):
        run.raise_for_status()
    # Each attempt is a bar of its own on the Gantt.
    assert len({(a.start, a.end) for a in rec.history}) == 3


@scenario("4 retries: N+1 attempts, cancel never retried")
@pytest.mark.parametrize("raise_", ["raise KeyboardInterrupt", "raise SystemExit(2)", "import sys; sys.exit()",
                                    "raise parcoord_nb.Cancelled('by hand')"])
@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_base_exceptions_are_never_retried(raise_: str, kind: str) -> None:
    ns: dict[str, Any] = {"calls": []}
    wait = "await asyncio.sleep(0)\n" if kind == "coroutine" else ""
    run = parcoord_nb.run(f"import asyncio, parcoord_nb\n# task t retries=3 backoff=0.01\ncalls.append(1)\n{wait}{raise_}\n"
                          "# task other\nother = 1\n", ns)
    rec = run.tasks["t"]
    assert rec.attempts == 1 and len(ns["calls"]) == 1
    assert rec.status == ("cancelled" if "Cancelled" in raise_ else "failed")
    assert run.tasks["other"].status == "done" and ns["other"] == 1


@scenario("4 retries: N+1 attempts, cancel never retried")
def test_a_cancel_during_the_backoff_stops_the_retries() -> None:
    ns: dict[str, Any] = {"calls": []}
    run = asyncio.run(start_then_cancel("# task t retries=5 backoff=0.5\ncalls.append(1)\n1 / 0\n", ns, after=0.2))
    assert run.tasks["t"].status == "cancelled" and len(ns["calls"]) == 1


@scenario("4 retries: N+1 attempts, cancel never retried")
def test_a_timeout_is_retried_like_an_error() -> None:
    run = parcoord_nb.run("import asyncio\n# task t timeout=0.1 retries=1 backoff=0.01\nawait asyncio.sleep(30)\n", {})
    rec = run.tasks["t"]
    assert (rec.status, rec.attempts) == ("timeout", 2)
    assert rec.error.__notes__ == ["after 2 attempts"]  # type: ignore[union-attr]


# -- 5. several failures -------------------------------------------------------------------


@scenario("5 several failures: all reported")
def test_several_failures_are_all_reported_with_their_tracebacks() -> None:
    ns: dict[str, Any] = {}
    source = (
        "import asyncio\n"
        "# task a\nraise ValueError('a broke')\n"  # header at line 2, raise at line 3
        "# task b\nawait asyncio.sleep(0.05)\nraise KeyError('b')\n"
        "# task c\nx = 1 / 0\n"
        "# task uses_c\ny = x + 1\n"
        "# task fine\nfine = 'ok'\n"
    )
    run = parcoord_nb.run(source, ns)
    assert run.status == "failed"
    assert {n: r.status for n, r in run.tasks.items()} == {
        "a": "failed", "b": "failed", "c": "failed", "uses_c": "skipped", "fine": "done"}
    assert sorted(run.failed) == ["a", "b", "c"] and ns["fine"] == "ok"
    kinds = {n: type(run.tasks[n].error) for n in ("a", "b", "c")}
    assert kinds == {"a": ValueError, "b": KeyError, "c": ZeroDivisionError}
    for name, line, text in (("a", 3, "raise ValueError('a broke')"), ("b", 6, "raise KeyError('b')"), ("c", 8, "x = 1 / 0")):
        tb = run.tasks[name].traceback
        assert f"line {line}" in tb and text in tb, tb
        assert "parcoord_nb" not in tb, "our frames are hidden"
    with pytest.raises(RunError) as info:
        run.raise_for_status()
    message = str(info.value)
    assert message.startswith("3 tasks failed: ")
    for part in ("a (ValueError: a broke)", "b (KeyError: 'b')", "c (ZeroDivisionError: division by zero)",
                 "skipped: uses_c"):
        assert part in message
    assert sorted(info.value.failed) == ["a", "b", "c"]
    assert pickle.loads(pickle.dumps(info.value)).failed == info.value.failed


@scenario("5 several failures: all reported")
def test_several_failed_items_of_a_fanout_are_all_named() -> None:
    # The items fail in the same loop turn, before the task group can cancel the rest.
    run = parcoord_nb.run(
        "import asyncio\n# task f for i in range(6)\nawait asyncio.sleep(0)\nif i % 2:\n    raise ValueError(f'item {i}')\n", {}
    )
    rec = run.tasks["f"]
    assert rec.status == "failed"
    assert sorted(a.item for a in rec.history if a.status == "failed") == [1, 3, 5]
    assert {str(a.error) for a in rec.history if a.error is not None} == {"item 1", "item 3", "item 5"}
    assert "3 items failed" in rec.traceback


# -- 6. resource abuse ----------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@scenario("6 abuse: print 100 MB")
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_a_task_that_prints_100_mb_keeps_memory_bounded() -> None:
    before = _rss_bytes()
    run = parcoord_nb.run("# task loud\nline = 'x' * 999 + '\\n'\nfor _ in range(100_000):\n    print(line, end='')\n"
                          "print('the end')\n# task quiet\nq = 1\n", {})
    grown = _rss_bytes() - before
    rec = run.tasks["loud"]
    assert run.status == "done"
    assert rec.stdout_buffer.total == 100_000_000 + len("the end\n")
    assert grown < 40 * 1024 * 1024, f"RSS grew by {grown / 1e6:.0f} MB for 100 MB of output"
    assert rec.stdout_buffer._file is not None, "past 1 MB the buffer spilled to a temporary file"
    assert rec.stdout_buffer.tail(100).endswith("the end\n")
    html = run_html(run)
    assert len(html) < 100_000 and "end of output" in html, "the report shows a truncated tail"
    assert run.tasks["quiet"].stdout == ""
    rec.stdout_buffer.close()


@scenario("6 abuse: result whose repr raises or is huge")
def test_results_whose_repr_raises_or_is_huge_are_kept_and_previewed() -> None:
    ns: dict[str, Any] = {}
    source = (
        "# task broken\nclass Broken:\n    def __repr__(self):\n        raise RuntimeError('no repr')\nb = Broken()\nb\n"
        "# task huge\n'x' * 50_000_000\n"
        "# task loud_repr\nclass Loud:\n    def __repr__(self):\n        return 'y' * 10_000_000\nLoud()\n"
        "# task bad_error\nclass BadError(Exception):\n    def __str__(self):\n        raise RuntimeError('no str')\nraise BadError()\n"
    )
    run = parcoord_nb.run(source, ns)
    assert [run.tasks[n].status for n in ("broken", "huge", "loud_repr")] == ["done"] * 3
    assert type(run.results["broken"]).__name__ == "Broken" and ns["b"] is run.results["broken"]
    assert len(run.results["huge"]) == 50_000_000
    text, html = run_text(run), run_html(run)
    assert len(text) < 5_000 and len(html) < 50_000
    line = next(ln for ln in text.splitlines() if " broken " in ln)
    assert "Broken" in line and len(line) < 200
    huge = next(ln for ln in text.splitlines() if " huge " in ln)
    assert "xxx...xxx" in huge and len(huge) < 200
    assert "str() failed" in text
    with pytest.raises(RunError, match="bad_error"):
        run.raise_for_status()


@scenario("6 abuse: sys.exit() in a block")
@pytest.mark.parametrize("where", ["thread", "coroutine", "prelude"])
def test_sys_exit_fails_its_block_not_the_run(where: str) -> None:
    ns: dict[str, Any] = {}
    exit_ = "import sys\nsys.exit('leaving')\n"
    if where == "prelude":
        source = exit_ + "# task a\na = 1\n"
    elif where == "thread":
        source = f"# task a\n{exit_}# task b\nb = 1\n"
    else:
        source = f"# task a\nimport asyncio\nawait asyncio.sleep(0)\n{exit_}# task b\nb = 1\n"
    run = parcoord_nb.run(source, ns)
    assert run.status == "failed"
    if where == "prelude":
        assert isinstance(run.error, SystemExit) and run.tasks["a"].status == "skipped"
        with pytest.raises(RunError, match="the prelude failed with SystemExit: leaving"):
            run.raise_for_status()
    else:
        assert isinstance(run.tasks["a"].error, SystemExit) and ns["b"] == 1
    # The loop that ran it is fine: another run goes through.
    assert parcoord_nb.run("# task c\nc = 1\n", {}).status == "done"


@scenario("6 abuse: KeyboardInterrupt / SystemExit inside a thread")
@pytest.mark.parametrize("exc", ["KeyboardInterrupt", "SystemExit"])
def test_base_exceptions_inside_a_worker_thread_fail_the_task(exc: str) -> None:
    ns: dict[str, Any] = {}
    run = parcoord_nb.run(f"# task t\nimport time\ntime.sleep(0.01)\nraise {exc}\n# task u\nu = 1\n", ns)
    rec = run.tasks["t"]
    assert rec.status == "failed" and type(rec.error).__name__ == exc
    with pytest.raises(RunError, match=rf"t \({exc}\)"):
        run.raise_for_status()
    assert ns["u"] == 1


@scenario("6 abuse: block rebinds print")
def test_rebinding_print_in_a_block_does_not_touch_other_tasks() -> None:
    ns: dict[str, Any] = {"got": []}
    source = (
        "import time\n"
        "# task rebinds\nprint = lambda *args, **kw: got.append(args)\nprint('to the list')\ntime.sleep(0.05)\n"
        "# task prints\ntime.sleep(0.02)\nprint('to my output')\n"
    )
    run = parcoord_nb.run(source, ns)
    assert run.status == "done"
    assert ns["got"] == [("to the list",)]
    assert run.tasks["prints"].stdout == "to my output\n" and run.tasks["rebinds"].stdout == ""
    # The rebinding is a write like any other: merged once the task succeeded.
    assert ns["print"] is not print


@scenario("6 abuse: RecursionError")
@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_deep_recursion_fails_its_task_with_a_short_traceback(kind: str) -> None:
    body = ("def f(n):\n    return f(n + 1)\nf(0)\n" if kind == "thread" else
            "import asyncio\nasync def f(n):\n    return await f(n + 1)\nawait f(0)\n")
    ns: dict[str, Any] = {}
    run = parcoord_nb.run(f"# task deep\n{body}# task fine\nfine = 1\n", ns)
    rec = run.tasks["deep"]
    assert rec.status == "failed" and isinstance(rec.error, RecursionError)
    assert "Previous line repeated" in rec.traceback and len(rec.traceback) < 20_000
    assert ns["fine"] == 1 and "RecursionError" in run_html(run)
    assert parcoord_nb.run("# task again\nx = 1\n", {}).status == "done"
