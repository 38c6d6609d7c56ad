"""Run blocks in this process: coroutines on the running loop, the rest in worker threads.

Worker threads are daemon threads of our own pool, not ``concurrent.futures``: its
threads are joined at interpreter exit, so one stuck block would hold up a kernel
restart. The pool grows on demand (the engine bounds concurrency), reuses idle
threads across cells, and lets idle threads exit after a while.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from typing import Any

from ..capture import _current
from ..plan import RESULT_NAME
from . import Unit

__all__ = ["LocalBackend", "WorkerPool", "worker_pool"]

IDLE_SECONDS = 120.0
STOP_GRACE_TICKS = 5  # 10 ms ticks a cancelled thread gets to notice cancelled() and return


class _Job:
    __slots__ = ("ctx", "code", "namespace", "loop", "future", "finished")

    def __init__(self, ctx: contextvars.Context, code: Any, namespace: dict[str, Any],
                 loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.ctx = ctx
        self.code = code
        self.namespace = namespace
        self.loop = loop
        self.future = future
        self.finished = False


def _deliver(future: asyncio.Future[Any], error: BaseException | None) -> None:
    if future.done():  # cancelled or timed out meanwhile: the late outcome is discarded
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class WorkerPool:
    """Daemon threads that run jobs from one queue, started when none is idle."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._count = 0
        self.started = 0  # threads ever started (for tests and benchmarks)

    def submit(self, job: _Job) -> None:
        with self._lock:
            spawn = self._idle == 0
            if spawn:
                self._count += 1
                self.started += 1
            else:
                self._idle -= 1
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name=f"parcoord-worker-{self.started}", daemon=True).start()

    @property
    def threads(self) -> int:
        return self._count

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            try:
                job = jobs.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    # Another submit may have counted on us between the timeout and the lock.
                    if self._idle > 0:
                        self._idle -= 1
                        self._count -= 1
                        return
                continue
            error: BaseException | None = None
            try:
                job.ctx.run(exec, job.code, job.namespace)
            except BaseException as e:  # SystemExit, KeyboardInterrupt too: the task fails, not the thread
                error = e
            job.finished = True
            try:
                job.loop.call_soon_threadsafe(_deliver, job.future, error)
            except RuntimeError:  # the loop is closed: nobody waits for this result
                pass
            del job, error
            with self._lock:
                self._idle += 1


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def worker_pool() -> WorkerPool:
    """The process-wide pool, shared by every run and cell."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WorkerPool()
        return _pool


class LocalBackend:
    name = "local"
    hard_thread_timeouts = False

    def __init__(self) -> None:
        self._pool = worker_pool()

    async def execute(self, unit: Unit) -> Any:
        ns = unit.namespace
        block = unit.task.block
        if block.is_async:
            # This coroutine runs in its own Task, so the ContextVar is local to it.
            _current.set(unit.scope)
            unit.worker = "loop"
            await eval(block.code, ns)
        else:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[Any] = loop.create_future()
            ctx = contextvars.copy_context()
            ctx.run(_current.set, unit.scope)
            job = _Job(ctx, block.code, ns, loop, future)
            self._pool.submit(job)
            unit.worker = "thread"
            try:
                await future
            except asyncio.CancelledError:
                # Threads cannot be stopped: tell the block (cancelled(), progress()) and
                # leave it; its late result is discarded by _deliver. A block that checks
                # the flag in its loop gets a moment to return, so it is not reported as
                # abandoned when it did stop.
                unit.scope.cancel_event.set()
                try:
                    for _ in range(STOP_GRACE_TICKS):
                        if job.finished:
                            break
                        await asyncio.sleep(0.01)
                finally:
                    unit.abandoned = not job.finished
                raise
        return ns.pop(RESULT_NAME, None)

    def close(self) -> None:
        pass
