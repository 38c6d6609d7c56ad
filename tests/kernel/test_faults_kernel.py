"""Faults and bad input on a real ipykernel, driven over ZMQ as JupyterLab drives it.

Interrupts are real SIGINTs sent by the kernel manager; shutdowns and restarts are the
kernel manager's own. Each test then checks that the kernel is still usable (or exited
by itself), besides what the run object in the kernel recorded.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

import pytest

from kernel_client import CellResult, Kernel

pytestmark = pytest.mark.kernel
scenario = pytest.mark.scenario


def execute_interrupting(kernel: Kernel, code: str, at: list[float], timeout: float = 60.0) -> CellResult:
    """Like Kernel.execute, but sends a real interrupt at each of the times ``at`` (seconds)."""
    client = kernel.client
    started = time.perf_counter()
    msg_id = client.execute(code, allow_stdin=False)
    pending = sorted(at)
    messages: list[dict[str, Any]] = []
    while True:
        now = time.perf_counter() - started
        if pending and now >= pending[0]:
            kernel.km.interrupt_kernel()
            pending.pop(0)
        if now > timeout:
            raise TimeoutError(f"cell did not finish within {timeout}s:\n{code}")
        try:
            msg = client.get_iopub_msg(timeout=0.02)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        msg["_t"] = time.perf_counter() - started
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        messages.append(msg)
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=timeout)
    return CellResult(reply=reply, messages=messages, started=started, finished=time.perf_counter())


def assert_usable(kernel: Kernel) -> None:
    """The next cells run normally: plain code, and a %%parallel cell with its output."""
    assert kernel.execute("1 + 1").status == "ok"
    r = kernel.execute("%%parallel --quiet --out after_run\n# task after_check\nprint('still fine')\nfine = 41 + 1\n")
    assert r.status == "ok", r.text
    assert kernel.value("(fine, after_run.tasks['after_check'].stdout)") == (42, "still fine\n")
    assert kernel.value("type(__import__('sys').stdout).__name__") == "OutStream", "capture proxies are gone"


# -- 1. interrupt -------------------------------------------------------------------------

INTERRUPTED_CELL = (
    "%%parallel --out int_run\nimport asyncio, time\nimport parcoord_nb\n"
    "# task quick\nquick = 'kept'\nquick\n"
    "# task uses_quick\nderived = quick.upper()\n"
    "# task slow_co\nawait asyncio.sleep(30)\n"
    "# task polite_thread\nwhile not parcoord_nb.cancelled():\n    time.sleep(0.02)\n"
    "# task stubborn_thread\ntime.sleep(30)\n"
    "# task never after=slow_co\nnever = 1\n"
)


@scenario("1 interrupt mid-run: wind-down keeps finished work")
def test_interrupt_mid_run_ends_promptly_and_keeps_finished_work(fresh_kernel: Kernel) -> None:
    sent = time.time() + 1.5  # the interrupt goes out at this epoch time or a little later
    r = fresh_kernel.execute(INTERRUPTED_CELL, interrupt_after=1.5, timeout=30)
    assert r.status == "error" and r.error["ename"] == "RunError", r.text  # type: ignore[index]
    assert r.error["evalue"].startswith("the kernel was interrupted: 2 of 6 tasks had finished")  # type: ignore[index]
    statuses = fresh_kernel.value("{n: t.status for n, t in int_run.tasks.items()}")
    assert statuses == {"quick": "done", "uses_quick": "done", "slow_co": "cancelled", "polite_thread": "cancelled",
                        "stubborn_thread": "cancelled", "never": "cancelled"}
    # Finished results and their exports are kept; nothing of the cancelled tasks merged.
    assert fresh_kernel.value("(quick, derived, int_run.results['quick'], 'never' in dir())") == (
        "kept", "KEPT", "kept", False)
    assert fresh_kernel.value("int_run.tasks['stubborn_thread'].abandoned") == 1
    assert fresh_kernel.value("int_run.tasks['slow_co'].reason") == "the kernel was interrupted"
    # Promptly: the engine's own clock from the interrupt landing to the run's end, and
    # the epoch time of the end against the moment the interrupt was sent.
    wind_down, ended = fresh_kernel.value("(int_run.wall_end - int_run.cancelled_at, int_run.started_at + int_run.wall_end)")
    assert 0 <= wind_down < 0.5, wind_down
    assert ended - sent < 1.0, ended - sent  # generous: measured ~0.1 s (10 Hz heartbeat)
    # The partial report and its Gantt chart came before the error.
    text = "\n".join(r.data("text/plain"))
    assert "int_run" not in text and "cancelled" in text and "abandoned" in text
    assert any("parcoord-final" in h for h in r.data("text/html"))
    assert r.data("image/png"), "the partial report has its Gantt"
    assert_usable(fresh_kernel)


@scenario("1 interrupt mid-run: wind-down keeps finished work")
def test_interrupt_with_autoawait_off_uses_the_private_loop_and_recovers(fresh_kernel: Kernel) -> None:
    assert fresh_kernel.execute("%autoawait off").status == "ok"
    r = fresh_kernel.execute(
        "%%parallel --out sync_run\nimport time\nimport parcoord_nb\n# task quick\nkept = 1\n"
        "# task slow\nfor _ in range(3000):\n    parcoord_nb.progress(_)\n    time.sleep(0.01)\n",
        interrupt_after=1.5, timeout=30,
    )
    assert r.status == "error" and "the kernel was interrupted" in r.error["evalue"], r.text  # type: ignore[index]
    assert fresh_kernel.value("({n: t.status for n, t in sync_run.tasks.items()}, kept)") == (
        {"quick": "done", "slow": "cancelled"}, 1)
    assert fresh_kernel.execute("%autoawait on").status == "ok"
    assert_usable(fresh_kernel)


@scenario("1 second interrupt is a hard stop")
def test_a_second_interrupt_during_the_wind_down_is_a_hard_stop(fresh_kernel: Kernel) -> None:
    # A coroutine whose cleanup takes a minute, and a wind-down allowed to wait 40 s for
    # it: only the second interrupt can end the cell before that.
    assert fresh_kernel.execute("import parcoord_nb.engine\nparcoord_nb.engine.WIND_DOWN_S = 40").status == "ok"
    r = execute_interrupting(
        fresh_kernel,
        "%%parallel --out hard_run\nimport asyncio\n# task quick\nkept = 'yes'\n"
        "# task stubborn\ntry:\n    await asyncio.sleep(60)\nexcept asyncio.CancelledError:\n"
        "    await asyncio.sleep(60)\nlate = 'merged'\n",
        at=[1.0, 2.0],
        timeout=35,
    )
    assert r.status == "error" and r.error["ename"] == "RunError", r.text  # type: ignore[index]
    assert "a second interrupt stopped the wind-down" in r.error["evalue"]  # type: ignore[index]
    assert r.elapsed < 30, "the hard stop did not wait for the 40 s wind-down"
    assert fresh_kernel.value("(kept, hard_run.status, hard_run.tasks['stubborn'].status)") == (
        "yes", "cancelled", "cancelled")
    assert "left running" in fresh_kernel.value("hard_run.tasks['stubborn'].reason")
    assert r.data("image/png")
    assert_usable(fresh_kernel)
    assert fresh_kernel.value("'late' in dir()") is False
    # The kernel's own interrupt handling is back: the next interrupted cell is cancelled as usual.
    assert fresh_kernel.execute("parcoord_nb.engine.WIND_DOWN_S = 0.4").status == "ok"
    r = fresh_kernel.execute("%%parallel --quiet --out again_run\nimport asyncio\n# task wait\nawait asyncio.sleep(30)\n",
                             interrupt_after=1.0, timeout=20)
    assert r.status == "error" and fresh_kernel.value("again_run.status") == "cancelled", r.text


@scenario("1 second interrupt is a hard stop")
def test_a_second_interrupt_with_autoawait_off(fresh_kernel: Kernel) -> None:
    setup = "%autoawait off\nimport parcoord_nb.engine\nparcoord_nb.engine.WIND_DOWN_S = 40"
    assert fresh_kernel.execute(setup).status == "ok"
    r = execute_interrupting(
        fresh_kernel,
        "%%parallel --out hard_sync\nimport asyncio\n# task quick\nkept2 = 'yes'\n"
        "# task stubborn\ntry:\n    await asyncio.sleep(60)\nexcept asyncio.CancelledError:\n    await asyncio.sleep(60)\n",
        at=[1.0, 2.0],
        timeout=35,
    )
    assert r.status == "error" and "second interrupt" in r.error["evalue"], r.text  # type: ignore[index]
    assert r.elapsed < 30
    assert fresh_kernel.value("(kept2, hard_sync.status)") == ("yes", "cancelled")
    assert fresh_kernel.execute("%autoawait on").status == "ok"
    assert_usable(fresh_kernel)


# -- 2. threads that ignore cancellation; shutdown and restart --------------------------------


@scenario("2 thread ignores cancel: abandoned, late result discarded")
def test_an_abandoned_thread_s_late_result_never_reaches_the_notebook(fresh_kernel: Kernel) -> None:
    setup = "import threading\nrelease, finished = threading.Event(), threading.Event()"
    assert fresh_kernel.execute(setup).status == "ok"
    r = fresh_kernel.execute(
        "%%parallel --out ab_run\n# task stubborn\nrelease.wait(60)\nlate = 'merged'\nfinished.set()\n'late result'\n"
        "# task quick\nq = 1\n",
        interrupt_after=1.0, timeout=30,
    )
    assert r.status == "error", r.text
    # The cell ended while the thread was still blocked: the run did not wait for it.
    assert fresh_kernel.value("(finished.is_set(), ab_run.status, ab_run.tasks['stubborn'].abandoned)") == (
        False, "cancelled", 1)
    assert "abandoned" in "\n".join(r.data("text/plain"))
    assert fresh_kernel.value("(release.set(), finished.wait(10))[1]") is True
    assert fresh_kernel.value("('late' in dir(), ab_run.tasks['stubborn'].status, ab_run.tasks['stubborn'].result, q)") == (
        False, "cancelled", None, 1)
    assert_usable(fresh_kernel)


def _own_kernel() -> Kernel:
    k = Kernel()
    k.__enter__()
    assert k.execute("%load_ext parcoord_nb").status == "ok"
    # Without a clean exit the manager would SIGTERM at 30 s and SIGKILL at 60 s.
    k.km.shutdown_wait_time = 60
    return k


@scenario("2 blocking work does not delay shutdown or restart")
def test_a_thread_sleeping_60_s_does_not_delay_kernel_shutdown() -> None:
    k = _own_kernel()
    try:
        r = k.execute("%%parallel --background --out bg\n# task sleeper\nimport time\ntime.sleep(60)\n")
        assert r.status == "ok", r.text
        time.sleep(0.5)
        assert k.value("bg.tasks['sleeper'].status") == "running"
        proc = k.km.provisioner.process  # type: ignore[union-attr]
    finally:
        k.client.stop_channels()
        started = time.perf_counter()
        k.km.shutdown_kernel(now=False)
        took = time.perf_counter() - started
    assert proc.returncode == 0, "the kernel exited by itself, it was not terminated"
    assert took < 25, took  # SIGTERM would only come at 30 s


@scenario("2 blocking work does not delay shutdown or restart")
def test_an_abandoned_thread_does_not_delay_a_restart() -> None:
    k = _own_kernel()
    try:
        r = k.execute("%%parallel\n# task stuck\nimport time\ntime.sleep(60)\n", interrupt_after=1.0, timeout=30)
        assert r.status == "error", r.text
        old = k.km.provisioner.process  # type: ignore[union-attr]
        started = time.perf_counter()
        k.km.restart_kernel(now=False)
        took = time.perf_counter() - started
        assert old.returncode == 0 and took < 25, (old.returncode, took)
        k.client.wait_for_ready(timeout=60)
        assert k.execute("%load_ext parcoord_nb").status == "ok"
        assert k.execute("%%parallel --quiet\n# task again\nx = 1\n").status == "ok"
    finally:
        k.__exit__(None, None, None)


# -- 3-5. timeouts, retries, several failures -------------------------------------------------


@scenario("3 timeouts: hard for coroutines, soft for threads")
def test_timeouts_are_labelled_hard_and_soft_in_the_report_and_the_gantt(kernel: Kernel) -> None:
    kernel.execute("import threading\nto_release = threading.Event()")
    r = kernel.execute(
        "%%parallel --out to_run\nimport asyncio\n"
        "# task co timeout=0.3\nawait asyncio.sleep(30)\n"
        "# task th timeout=0.3\nto_release.wait(60)\n"
        "# task ok\nok = 1\n",
        timeout=30,
    )
    assert r.status == "error", r.text
    assert kernel.value("(to_release.set(), to_run.status)") == (None, "failed"), "ended with the thread still blocked"
    evalue = r.error["evalue"]  # type: ignore[index]
    assert "co (timed out after 0.3s: hard timeout)" in evalue
    assert "th (timed out after 0.3s: soft timeout, its thread was left running)" in evalue
    html = "".join(r.data("text/html"))
    assert "hard timeout" in html and "soft timeout" in html and "abandoned" in html
    assert kernel.value("sorted(t.get_text().strip() for t in to_run.gantt().axes[0].texts)") == [
        "timeout 0.3s (hard)", "timeout 0.3s (soft)"]
    assert kernel.value("(to_run.tasks['co'].hard_timeout, to_run.tasks['th'].hard_timeout, ok)") == (True, False, 1)
    assert r.data("image/png")


@scenario("4 retries: N+1 attempts, cancel never retried")
def test_retries_end_with_the_last_error_after_n_plus_one_attempts(kernel: Kernel) -> None:
    kernel.execute("calls = []")
    r = kernel.execute("%%parallel --out retry_run --retries 2\n# task flaky backoff=0.01\n"
                       "calls.append(1)\nraise ConnectionError(f'try {len(calls)}')\n")
    assert r.status == "error"
    assert "flaky (ConnectionError: try 3, after 3 attempts)" in r.error["evalue"]  # type: ignore[index]
    assert kernel.value("(len(calls), retry_run.tasks['flaky'].attempts)") == (3, 3)
    assert "after 3 attempts" in "".join(r.data("text/html"))


@scenario("5 several failures: all reported")
def test_several_failures_are_all_in_the_final_error_with_tracebacks(kernel: Kernel) -> None:
    r = kernel.execute(
        "%%parallel --out many_run\n"
        "# task a\nraise ValueError('a broke')\n"
        "# task b\nraise KeyError('b')\n"
        "# task c\n1 / 0\n"
        "# task d\nd_ok = True\n"
    )
    assert r.status == "error" and r.error["ename"] == "RunError"  # type: ignore[index]
    assert r.error["evalue"] == ("3 tasks failed: a (ValueError: a broke), b (KeyError: 'b'), "  # type: ignore[index]
                                 "c (ZeroDivisionError: division by zero)")
    tracebacks = kernel.value("{n: many_run.tasks[n].traceback for n in 'abc'}")
    assert "line 3" in tracebacks["a"] and "raise ValueError('a broke')" in tracebacks["a"]
    assert "line 5" in tracebacks["b"] and "line 7" in tracebacks["c"]
    assert kernel.value("(type(many_run.tasks['c'].error).__name__, many_run.tasks['c'].error.__traceback__ is not None)") == (
        "ZeroDivisionError", True)
    html = "".join(r.data("text/html"))
    assert all(w in html for w in ("a broke", "KeyError", "division by zero"))
    assert kernel.value("d_ok") is True


# -- 6. resource abuse --------------------------------------------------------------------------


@scenario("6 abuse: print 100 MB")
def test_printing_100_mb_keeps_the_kernel_small_and_the_report_short(kernel: Kernel) -> None:
    rss = "int(open('/proc/self/statm').read().split()[1]) * __import__('os').sysconf('SC_PAGE_SIZE')"
    before = kernel.value(rss)
    r = kernel.execute(
        "%%parallel --out loud_run\n# task loud\nchunk = 'x' * 999 + '\\n'\nfor _ in range(100_000):\n"
        "    print(chunk, end='')\nprint('the end')\n# task quiet\nquiet = 1\n",
        timeout=120,
    )
    assert r.status == "ok", r.text[:2000]
    grown = kernel.value(rss) - before
    assert grown < 60 * 1024 * 1024, f"the kernel grew by {grown / 1e6:.0f} MB"
    assert kernel.value("loud_run.tasks['loud'].stdout_buffer.total") == 100_000_008
    assert kernel.value("loud_run.tasks['loud'].stdout_buffer.tail(8)") == "the end\n"
    # Nothing of it was streamed to the frontend; the report holds only the tail.
    assert len(r.stdout) == 0
    assert sum(len(h) for h in r.data("text/html")) < 100_000
    assert "end of output" in "".join(r.data("text/html"))


@scenario("6 abuse: result whose repr raises or is huge")
def test_results_whose_repr_raises_or_is_huge(kernel: Kernel) -> None:
    r = kernel.execute(
        "%%parallel --out repr_run\n"
        "# task broken\nclass Broken:\n    def __repr__(self):\n        raise RuntimeError('no repr')\nBroken()\n"
        "# task huge\n'y' * 50_000_000\n"
    )
    assert r.status == "ok", r.text
    text = "\n".join(r.data("text/plain"))
    assert "Broken" in text and len(text) < 5_000
    assert kernel.value("(type(repr_run.results['broken']).__name__, len(repr_run.results['huge']))") == (
        "Broken", 50_000_000)
    assert kernel.execute("repr_run").status == "ok", "the run object itself renders"


@scenario("6 abuse: sys.exit() in a block")
@pytest.mark.parametrize(
    "cell",
    ["# task t\nimport sys\nsys.exit(3)\n# task u\nu = 1\n",
     "import asyncio\n# task t\nawait asyncio.sleep(0)\nimport sys\nsys.exit(3)\n# task u\nu = 1\n",
     "import sys\nsys.exit(3)\n# task t\nt = 1\n"],
    ids=["thread", "coroutine", "prelude"],
)
def test_sys_exit_in_a_block_does_not_end_the_kernel(kernel: Kernel, cell: str) -> None:
    r = kernel.execute("%%parallel\n" + cell)
    assert r.status == "error" and r.error["ename"] == "RunError" and "SystemExit: 3" in r.error["evalue"], r.text  # type: ignore[index]
    assert kernel.km.is_alive()
    assert kernel.execute("1 + 1").status == "ok"


@scenario("6 abuse: KeyboardInterrupt / SystemExit inside a thread")
@pytest.mark.parametrize("exc", ["KeyboardInterrupt", "SystemExit"])
def test_base_exceptions_in_threads_do_not_reach_the_kernel(kernel: Kernel, exc: str) -> None:
    # Raised by the block in its worker thread, and by a thread the block starts itself.
    r = kernel.execute(f"%%parallel --out exc_run\n# task direct\nraise {exc}\n"
                       f"# task spawned\nimport threading\ndef boom():\n    raise {exc}\n"
                       "th = threading.Thread(target=boom)\nth.start()\nth.join()\nspawned_ok = True\n")
    assert r.status == "error" and r.error["evalue"] == f"1 task failed: direct ({exc})", r.text  # type: ignore[index]
    assert kernel.value("(exc_run.tasks['spawned'].status, spawned_ok)") == ("done", True)
    assert kernel.km.is_alive() and kernel.execute("1 + 1").status == "ok"


@scenario("6 abuse: block rebinds print")
def test_a_block_that_rebinds_print(kernel: Kernel) -> None:
    r = kernel.execute(
        "%%parallel --out print_run\nimport time\n"
        "# task rebinds\nprint = None\ntime.sleep(0.1)\n"
        "# task prints\nprint('captured as usual')\n"
    )
    assert r.status == "ok", r.text
    # The rebinding is the block's write, merged like any other; the kernel recovers with del.
    assert kernel.execute("print").status == "ok"
    r = kernel.execute("assert print is None\ndel print\nprint('builtin again')")
    assert r.status == "ok" and r.stdout == "builtin again\n", r.text
    assert kernel.value("print_run.tasks['prints'].stdout") == "captured as usual\n"


@scenario("6 abuse: RecursionError")
def test_deep_recursion_fails_one_task(kernel: Kernel) -> None:
    r = kernel.execute("%%parallel\n# task deep\ndef f(n):\n    return f(n + 1)\nf(0)\n# task fine\nfine_rec = 1\n")
    assert r.status == "error" and "deep (RecursionError" in r.error["evalue"], r.text  # type: ignore[index]
    assert kernel.value("fine_rec") == 1 and kernel.execute("1 + 1").status == "ok"


# -- 7. the bad-input catalogue through the magic ------------------------------------------------

TOUCH = "open(MARK, 'w').close()\n"
BAD_CELLS = [
    ("7 bad input: duplicate task names", "%%parallel\n" + TOUCH + "# task load\nx = 1\n# task load\ny = 1\n",
     "DuplicateTaskError", ["'load'", "cell lines 3 and 5", "rename one"]),
    ("7 bad input: dependency cycle", "%%parallel\n" + TOUCH + "# task a\nx = y\n# task b\ny = x\n",
     "CycleError", ["a -> b -> a", "'a' at cell line 3", "'x'", "'y'", "move the shared code"]),
    ("7 bad input: unknown after= target", "%%parallel\n" + TOUCH + "# task load\nx = 1\n# task use after=lod\ny = 1\n",
     "UnknownTaskError", ["'use'", "cell line 5", "did you mean 'load'?"]),
    ("7 bad input: two writers of one name", "%%parallel\n" + TOUCH + "# task a\ndf = 1\n# task b\ndf = 2\n",
     "ConflictError", ["'a' (cell line 3)", "'b' (cell line 5)", "'df'", "add after=a to 'b'"]),
    ("7 bad input: unknown option", "%%parallel\n" + TOUCH + "# task a tiemout=3\nx = 1\n",
     "UsageError", ["task 'a'", "cell line 3", "did you mean 'timeout'?"]),
    ("7 bad input: malformed option values", "%%parallel\n" + TOUCH + "# task a retries=two\nx = 1\n",
     "UsageError", ["task 'a'", "cell line 3", "write retries=2"]),
    ("7 bad input: empty cell", "%%parallel\n", "PlanError", ["empty", "# task NAME"]),
    ("7 bad input: header with no body", "%%parallel\n" + TOUCH + "# task a\n# task b\ny = 1\n",
     "PlanError", ["'a'", "cell line 3", "no code", "put its code under the header"]),
    ("7 bad input: SyntaxError in a block", "%%parallel\n" + TOUCH + "# task a\nx = 1\n# task b\ny = (1,\n",
     "CellSyntaxError", ["SyntaxError in task 'b' at cell line 6", "correct that line"]),
    ("7 bad input: IndentationError in a block", "%%parallel\n" + TOUCH + "# task a\nif x:\ny = 1\n",
     "CellSyntaxError", ["IndentationError in task 'a' at cell line 5", "indent the lines under if"]),
    ("7 bad input: fan-out over a non-iterable", "%%parallel\n" + TOUCH + "# task pages for u in 5\nb = u\n",
     "CellSyntaxError", ["task 'pages'", "cell line 3", "for u in range(5)"]),
    ("7 bad input: --limit for a resource no task uses", "%%parallel --limit web=2\n" + TOUCH + "# task a uses=db\nx = 1\n",
     "UsageError", ["--limit web=2", "no task uses 'web'", "add uses=web"]),
    ("7 bad input: contradictory options", "%%parallel --sequential --max-concurrency 2\n" + TOUCH + "# task a\nx = 1\n",
     "UsageError", ["--sequential", "drop --max-concurrency"]),
    ("7 bad input: contradictory options", "%%parallel --scheduler tcp://127.0.0.1:1\n" + TOUCH + "# task a\nx = 1\n",
     "UsageError", ["--scheduler", "add --backend dask"]),
    ("7 bad input: malformed option values", "%%parallel --limit web\n" + TOUCH + "# task a uses=web\nx = 1\n",
     "UsageError", ["--limit web", "write --limit RES=N"]),
    ("7 bad input: malformed option values", "%%parallel --max-concurrency many\n" + TOUCH + "# task a\nx = 1\n",
     "UsageError", ["max-concurrency", "many"]),
    ("7 bad input: unknown option", "%%parallel --max-concurency 2\n" + TOUCH + "# task a\nx = 1\n",
     "UsageError", ["--max-concurency"]),
]


@pytest.mark.parametrize(
    ("cell", "ename", "words"),
    [pytest.param(*row[1:], marks=scenario(row[0]), id=f"{i}-{row[0].split(': ', 1)[1]}") for i, row in enumerate(BAD_CELLS)],
)
def test_bad_cells_fail_before_anything_runs(kernel: Kernel, tmp_path: Path, cell: str, ename: str, words: list[str]) -> None:
    mark = tmp_path / "side-effect"
    kernel.execute(f"MARK = {str(mark)!r}")
    r = kernel.execute(cell)
    assert r.status == "error" and r.error["ename"] == ename, r.text  # type: ignore[index]
    for word in words:
        assert word in r.error["evalue"], f"{word!r} not in {r.error['evalue']!r}"  # type: ignore[index]
    assert not mark.exists(), "nothing may run"
    assert len(r.error["traceback"]) <= 4, "a usage error, not a traceback into parcoord_nb"  # type: ignore[index]
