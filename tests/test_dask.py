"""``--backend dask`` on a real cluster: worker processes, real pickling, real faults.

One cluster (a scheduler in this process, 2 worker processes x 1 thread, 1 GiB each,
started by the backend's own ``start_local_cluster``) serves the module; the kernel
test lets a real kernel start its own, as a user's first ``--backend dask`` cell does.
"""

from __future__ import annotations

import asyncio
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402

import parcoord_nb  # noqa: E402
from parcoord_nb import events as ev  # noqa: E402
from parcoord_nb.backends.dask import WorkerDiedError, start_local_cluster  # noqa: E402
from parcoord_nb.errors import ConflictError  # noqa: E402

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    # One death allowed instead of dask's three: the killed-worker test then costs two
    # worker restarts, not four. Nothing else here kills workers.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        c = start_local_cluster(n_workers=2, threads_per_worker=1, memory_limit="1GiB")
    try:
        with distributed.Client(c.scheduler_address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield c
    finally:
        c.close()


@pytest.fixture
def address(cluster: Any) -> str:
    return cluster.scheduler_address


def workers_of(address: str) -> set[str]:
    with distributed.Client(address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        return set(client.scheduler_info()["workers"])


def cell(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def run(address: str, source: str, ns: dict[str, Any] | None = None, **options: Any) -> parcoord_nb.Run:
    return parcoord_nb.run(cell(source), ns if ns is not None else {}, backend="dask", scheduler=address, **options)


def spans(r: parcoord_nb.Run) -> list[tuple[float, float, str | None]]:
    return [(a.start, a.end, a.worker) for rec in r.tasks.values() for a in rec.history if a.end is not None]


def most_at_once(intervals: list[tuple[float, float, Any]]) -> int:
    points = sorted([(s, 1) for s, _, _ in intervals] + [(e, -1) for _, e, _ in intervals])
    best = now = 0
    for _, step in points:
        now += step
        best = max(best, now)
    return best


# -- the core acceptance cells ------------------------------------------------------


def test_independent_blocks_run_at_once_one_per_worker(address: str) -> None:
    r = run(address, """
        import time
        # task a
        time.sleep(1); a = 1
        # task b
        time.sleep(1); b = 2
        # task c
        time.sleep(1); c = 3
    """)
    assert r.status == "done", r.raise_for_status()
    assert {n: t.status for n, t in r.tasks.items()} == {"a": "done", "b": "done", "c": "done"}
    # The cluster has two threads: two blocks at a time, on both workers (timed there).
    assert most_at_once(spans(r)) == 2
    assert {w for _, _, w in spans(r)} == workers_of(address)
    assert r.summary.sequential_s > r.summary.wall_s
    assert "scheduler" in (r.backend_note or "")
    # One Gantt row per worker.
    from parcoord_nb.view.gantt import gantt_figure

    labels = [t.get_text() for t in gantt_figure(r).axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(f"worker {w.removeprefix('tcp://')}" for w in workers_of(address))


def test_dependency_order_and_only_the_written_names_come_back(address: str) -> None:
    ns: dict[str, Any] = {"base": 10, "unused": object()}  # not read by any block: never pickled
    r = run(address, """
        # task first
        import time
        time.sleep(0.3)
        x = base + 1
        scratch = [x] * 3
        del scratch
        # task second
        y = x * 2
        y
        # task third
        z = y + x
    """, ns)
    assert r.status == "done", r.raise_for_status()
    first, second, third = (r.tasks[n].history[0] for n in ("first", "second", "third"))
    assert first.end <= second.start and second.end <= third.start
    assert (ns["x"], ns["y"], ns["z"]) == (11, 22, 33)
    assert "scratch" not in ns and "time" in ns  # what a block binds, imports too
    assert r.tasks["second"].result == 22


def test_a_conflict_runs_nothing(address: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ConflictError, match="both assign 'v'"):
        run(address, f"""
            # task one
            open({str(marker)!r}, "w").close()
            v = 1
            # task two
            v = 2
        """)
    time.sleep(0.3)
    assert not marker.exists()


def test_a_failure_skips_its_dependents_and_shows_the_cell_line(address: str) -> None:
    r = run(address, """
        # task bad
        x = 1
        raise ValueError("boom")
        # task after_bad
        y = x + 1
        # task fine
        z = 5
    """)
    assert r.status == "failed"
    assert r.tasks["bad"].status == "failed"
    assert type(r.tasks["bad"].error) is ValueError and str(r.tasks["bad"].error) == "boom"
    assert r.tasks["after_bad"].status == "skipped"
    assert r.tasks["after_bad"].reason == "upstream 'bad' failed"
    assert r.tasks["fine"].status == "done"
    # The traceback quotes the cell: line 3 of the cell, with its text.
    tb = r.tasks["bad"].traceback
    assert "line 3" in tb and 'raise ValueError("boom")' in tb
    with pytest.raises(parcoord_nb.RunError, match="bad"):
        r.raise_for_status()


def test_fan_out_items_become_dask_tasks_and_results_keep_item_order(address: str) -> None:
    ns: dict[str, Any] = {"n": 8}
    r = run(address, """
        # task sq for i in range(n)
        import time
        time.sleep(0.05 * (n - i))  # later items finish first
        v = i * i
        v
    """, ns)
    assert r.status == "done", r.raise_for_status()
    assert ns["v"] == [i * i for i in range(8)]
    assert r.tasks["sq"].result == [i * i for i in range(8)]
    history = r.tasks["sq"].history
    assert sorted(a.item for a in history) == list(range(8))
    assert {a.worker for a in history} == workers_of(address)


def test_sequential_runs_one_block_at_a_time(address: str) -> None:
    r = run(address, """
        import time
        # task a
        time.sleep(0.3)
        # task b
        time.sleep(0.3)
    """, sequential=True)
    assert r.status == "done", r.raise_for_status()
    assert most_at_once(spans(r)) == 1


# -- output, progress, async -------------------------------------------------------


def test_output_and_progress_come_from_the_worker_while_it_runs(address: str) -> None:
    seen: list[ev.Event] = []
    source = cell("""
        # task work
        import sys, time
        print("starting")
        print("a warning", file=sys.stderr)
        for k in range(5):
            time.sleep(0.15)
            parcoord_nb.progress(k + 1, 5, f"step {k + 1}")
        for k in range(3000):  # a burst: throttled to a few events, the last one kept
            parcoord_nb.progress(k, 3000)
        time.sleep(0.3)
        parcoord_nb.progress(3000, 3000, "done")
        print("finished")
    """)
    r = parcoord_nb.run(source, {"parcoord_nb": parcoord_nb}, backend="dask", scheduler=address,
                        observers=[seen.append])
    assert r.status == "done", r.raise_for_status()
    rec = r.tasks["work"]
    assert rec.stdout == "starting\nfinished\n"
    assert rec.stderr == "a warning\n"
    assert rec.progress == (3000, 3000, "done")
    finished = next(i for i, e in enumerate(seen) if isinstance(e, ev.TaskFinished))
    live = [e for e in seen[:finished] if isinstance(e, ev.TaskProgress)]
    assert any(e.message == "step 2" for e in live), live  # arrived while the block ran
    assert len(live) < 40, len(live)  # 3,000 calls: a bounded number of events


def test_async_blocks_run_on_a_private_loop_in_a_worker_thread(address: str) -> None:
    ns: dict[str, Any] = {}
    r = run(address, """
        # task fetch
        import asyncio, threading
        async def one(k):
            await asyncio.sleep(0.2)
            return k
        got = await asyncio.gather(one(1), one(2), one(3))
        where = threading.current_thread().name
        sum(got)
    """, ns)
    assert r.status == "done", r.raise_for_status()
    assert r.tasks["fetch"].result == 6 and ns["got"] == [1, 2, 3]
    assert ns["where"] != "MainThread"  # not the worker's own event loop
    assert r.tasks["fetch"].history[0].worker in workers_of(address)
    assert r.tasks["fetch"].hard_timeout is False  # it cannot be stopped there either


# -- faults ---------------------------------------------------------------------------


def test_an_unpicklable_input_fails_that_task_only(address: str) -> None:
    ns: dict[str, Any] = {"lock": threading.Lock(), "k": 2}
    r = run(address, """
        # task uses_lock
        with lock:
            held = True
        # task other
        doubled = k * 2
    """, ns)
    assert r.tasks["other"].status == "done" and ns["doubled"] == 4
    rec = r.tasks["uses_lock"]
    assert rec.status == "failed" and isinstance(rec.error, TypeError)
    message = str(rec.error)
    assert "'uses_lock'" in message and "'lock'" in message and "_thread.lock" in message
    assert "--backend local" in message


def test_an_unpicklable_result_fails_that_task_only(address: str) -> None:
    ns: dict[str, Any] = {}
    r = run(address, """
        # task makes_lock
        import threading
        print("made it")
        lk = threading.Lock()
        # task returns_lock
        import threading as t2
        t2.Lock()
        # task fine
        ok = "yes"
    """, ns)
    assert r.tasks["fine"].status == "done" and ns["ok"] == "yes"
    made = r.tasks["makes_lock"]
    assert made.status == "failed" and "'lk'" in str(made.error) and "_thread.lock" in str(made.error)
    assert "--backend local" in str(made.error)
    assert made.stdout == "made it\n"  # the output still comes back
    assert "its result" in str(r.tasks["returns_lock"].error)
    assert "lk" not in ns and "threading" not in ns  # a failed block merges nothing


def test_sys_exit_in_a_block_fails_that_task_and_not_the_worker(address: str) -> None:
    before = workers_of(address)
    r = run(address, """
        # task leaves
        raise SystemExit(3)
        # task custom
        class StageError(Exception):
            pass
        raise StageError("defined in the block")
    """)
    assert r.tasks["leaves"].status == "failed" and type(r.tasks["leaves"].error) is SystemExit
    assert r.tasks["leaves"].attempts == 1  # never retried
    err = r.tasks["custom"].error
    assert type(err).__name__ == "StageError" and str(err) == "defined in the block"
    assert workers_of(address) == before  # no worker stopped or restarted


def test_a_killed_worker_fails_its_task_names_it_and_the_cluster_stays(address: str) -> None:
    before = workers_of(address)
    r = run(address, """
        # task crash
        import os, signal, time
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)
        # task calm
        calm = 1
    """)
    assert r.tasks["calm"].status == "done"
    rec = r.tasks["crash"]
    assert rec.status == "failed" and isinstance(rec.error, WorkerDiedError)
    message = str(rec.error)
    assert "died while running task 'crash'" in message and "attempt 1" in message
    assert rec.error.worker in before and rec.error.task == "crash"
    assert rec.history[0].worker == rec.error.worker  # the Gantt puts the failed bar on that worker
    # The nannies restart the workers, and the same cluster runs the next cell.
    after = run(address, """
        # task again for i in range(4)
        v = i + 1
    """, {})
    assert after.status == "done", after.raise_for_status()
    assert len(workers_of(address)) == 2


def wait_for_file(path: Path, seconds: float = 20) -> str:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path.name} never appeared"
    time.sleep(0.05)  # written by another process: let it finish the write
    return path.read_text()


def test_a_timeout_cancels_the_future_and_tells_the_running_block_to_stop(address: str, tmp_path: Path) -> None:
    marker = tmp_path / "outcome"
    r = run(address, f"""
        # task slow timeout=0.5
        import time
        time.sleep(2)  # deaf to the timeout: a running task cannot be stopped
        with open({str(marker)!r}, "w") as f:
            f.write("stopped" if parcoord_nb.cancelled() else "not told")
    """, {"parcoord_nb": parcoord_nb})
    assert not marker.exists()  # the run ended without waiting for the block
    rec = r.tasks["slow"]
    assert rec.status == "timeout" and isinstance(rec.error, TimeoutError)
    assert "cannot be stopped mid-flight" in str(rec.error)
    assert rec.abandoned == 1 and rec.history[0].worker in workers_of(address)
    assert wait_for_file(marker) == "stopped"  # ...but it was told to stop, on the worker


def test_retries_are_engine_attempts_with_new_keys(address: str, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    r = run(address, f"""
        # task flaky retries=2 backoff=0.05
        from pathlib import Path
        p = Path({str(counter)!r})
        n = int(p.read_text()) if p.exists() else 0
        p.write_text(str(n + 1))
        if n < 1:
            raise ConnectionError("first try fails")
        n
    """)
    assert r.status == "done", r.raise_for_status()
    rec = r.tasks["flaky"]
    assert [a.status for a in rec.history] == ["failed", "done"]
    assert isinstance(rec.history[0].error, ConnectionError)
    # A reused key would have returned the first attempt's error without running again.
    assert rec.result == 1 and counter.read_text() == "2"


def test_cancel_stops_queued_work_and_reports_running_work_as_left(address: str, tmp_path: Path) -> None:
    async def main() -> parcoord_nb.Run:
        run_ = parcoord_nb.start(cell(f"""
            import time
            def work(name):
                time.sleep(2)
                with open({str(tmp_path)!r} + "/" + name, "w") as f:
                    f.write("stopped" if parcoord_nb.cancelled() else "not told")
            # task a
            work("a")
            # task b
            work("b")
            # task c
            work("c")
        """), {"parcoord_nb": parcoord_nb}, backend="dask", scheduler=address)
        while not all(r.history for r in list(run_.tasks.values())):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.8)  # two run on the workers, the third waits in dask's queue
        run_.cancel()
        return await run_

    r = asyncio.run(main())
    assert list(tmp_path.iterdir()) == []  # the run ended without waiting for the blocks
    assert r.status == "cancelled"
    assert {t.status for t in r.tasks.values()} == {"cancelled"}
    running = [n for n, t in r.tasks.items() if t.abandoned]
    assert len(running) == 2
    assert all("cannot be stopped mid-flight" in r.tasks[n].stderr for n in running)
    assert {wait_for_file(tmp_path / n) for n in running} == {"stopped"}
    (queued,) = set(r.tasks) - set(running)
    time.sleep(2.5)  # had it not been cancelled, it would have started by now and written its file
    assert not (tmp_path / queued).exists()  # the queued one never started


def test_the_current_client_is_used_when_no_scheduler_is_given(address: str) -> None:
    with distributed.Client(address) as client:  # the default client, as in a notebook
        ns: dict[str, Any] = {}
        r = parcoord_nb.run("# task t\nv = 41 + 1\n", ns, backend="dask")
        assert client.status == "running"
    assert r.status == "done" and ns["v"] == 42
    assert "current dask client" in (r.backend_note or "")
    assert r.tasks["t"].history[0].worker in workers_of(address)


def test_large_inputs_go_once_per_run(address: str) -> None:
    big = bytes(3 << 20)  # over the scatter threshold
    ns: dict[str, Any] = {"big": big}
    r = run(address, """
        # task sizes for i in range(4)
        size = len(big) + i
    """, ns)
    assert r.status == "done", r.raise_for_status()
    assert ns["size"] == [len(big) + i for i in range(4)]


# -- a real kernel --------------------------------------------------------------------


@pytest.mark.kernel
def test_an_interrupt_during_a_dask_run_leaves_cluster_and_kernel_usable(tmp_path: Path) -> None:
    import psutil
    from kernel_client import Kernel

    pids_cell = "%%parallel --backend dask --quiet\n# task p for i in range(6)\nimport os, time\ntime.sleep(0.3)\npid = os.getpid()\n"
    with Kernel() as k:
        assert k.execute("%load_ext parcoord_nb\nimport parcoord_nb").status == "ok"
        first = k.execute(pids_cell, timeout=120)  # no client, no --scheduler: the kernel starts a cluster
        assert first.status == "ok", first.text
        assert "started a local cluster" in k.value("parcoord_nb.last_run().backend_note")
        before = set(k.value("pid"))
        assert len(before) == 2  # both workers took items
        nannies = {psutil.Process(p).ppid() for p in before}

        marker = tmp_path / "long"
        r = k.execute(textwrap.dedent(f"""\
            %%parallel --backend dask
            # task long
            import time
            for _ in range(200):
                time.sleep(0.05)
                if parcoord_nb.cancelled():
                    open({str(marker)!r}, "w").close()
                    break
            done_long = True
        """), timeout=60, interrupt_after=1.5)  # SIGINT to the kernel's whole process group
        assert r.status == "error" and "interrupted" in r.text
        wait_for_file(marker)  # the interrupt reached the block as a request to stop, not as a kill

        again = k.execute(pids_cell, timeout=60)
        assert again.status == "ok", again.text
        assert set(k.value("pid")) == before  # the same worker processes: SIGINT never reached them
        assert k.value("'done_long' in dir()") is False
        assert k.value("1 + 1") == 2

    # The kernel is killed on the way out; its workers, in their own session, notice and exit.
    deadline = time.monotonic() + 20
    alive = before | nannies
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
        time.sleep(0.1)
    assert not alive, f"worker processes outlived their kernel: {alive}"
