"""Run a plan: a task starts as soon as its own dependencies are done.

The engine owns scheduling, limits (``max_concurrency``, ``--limit RES=N``, fan-out
``limit=``), timeouts, retries, skipping and cancellation, and tells observers what
happened (:mod:`parcoord_nb.events`). Where a block runs is the backend's business;
what the user sees is the view's. The engine knows nothing of widgets or IPython.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import heapq
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import capture
from . import events as ev
from .backends import Backend, Unit, get_backend
from .capture import CancelFlag, TaskScope
from .errors import Cancelled, OptionError
from .plan import Plan, PlannedTask
from .run import Attempt, Run, TaskRecord

__all__ = ["BlockNamespace", "Engine", "RunOptions"]

DEFAULT_BACKOFF = 0.2  # seconds before the first retry; doubles each time, with jitter
DEFAULT_MAX_THREADS = 32  # blocking blocks at once, unless --max-concurrency says otherwise
# How long cancelled coroutines get to finish their cleanup. With the heartbeat's
# 0.1 s for an interrupt to land, a run ends within 0.5 s of an interrupt even when a
# coroutine ignores its cancel; a second interrupt (or cancel) ends the wait at once.
WIND_DOWN_S = 0.4
HEARTBEAT_S = 0.1  # loop tick while a run is active (see _heartbeat)
SPAWN_BATCH = 256  # fan-out items made between two yields to the loop (see _run_fanout)
# A fan-out of this many items freezes the garbage collector's view while it spawns.
# Waiting items keep their bookkeeping alive (task, coroutines, namespace, scope,
# attempt: about 20 objects each, twice what a bare asyncio.gather keeps), and the
# collector took these young objects for garbage candidates and walked them again and
# again: 130 ms of collections for 10,000 sleeping items, against 45 ms for gather.
# So after each batch what exists is frozen (gc.freeze), and unfrozen once every item
# is spawned. Garbage made meanwhile is still collected as usual; only cycles among
# the frozen objects wait, for the spawn's duration. Skipped when the collector is off
# or someone else froze objects (their gc.unfreeze() is theirs to call).
GC_FREEZE_ITEMS = 1_000
_gc_holders = 0
_gc_lock = threading.Lock()
_run_ids = itertools.count(1)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How to run a plan; the ``%%parallel`` flags map onto these one to one."""

    max_concurrency: int | None = None
    limits: Mapping[str, int] = field(default_factory=dict)
    timeout: float | None = None
    retries: int = 0
    on_error: str = "continue"
    sequential: bool = False
    backend: str = "local"
    scheduler: str | None = None
    max_threads: int = DEFAULT_MAX_THREADS

    def check(self, plan: Plan) -> None:
        """Reject options that contradict each other or the plan."""
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise OptionError("--max-concurrency must be at least 1")
        if self.on_error not in ("continue", "cancel"):
            raise OptionError(f"--on-error is 'continue' or 'cancel', not {self.on_error!r}")
        if self.sequential and self.max_concurrency not in (None, 1):
            raise OptionError("--sequential runs one task at a time: drop --max-concurrency")
        if self.scheduler and self.backend != "dask":
            raise OptionError("--scheduler is the address of a dask scheduler: add --backend dask")
        if self.timeout is not None and not self.timeout > 0:
            raise OptionError("--timeout must be a positive number of seconds")
        if self.retries < 0:
            raise OptionError("--retries must be 0 or more")
        used = set(plan.resources)
        for res, n in self.limits.items():
            if n < 1:
                raise OptionError(f"--limit {res}={n}: the limit must be at least 1")
            if res not in used:
                known = ", ".join(sorted(used)) or "none"
                raise OptionError(
                    f"--limit {res}={n}: no task uses '{res}' (add uses={res} to a task header; "
                    f"resources in this cell: {known})",
                    names=(res,),
                )


class BlockNamespace(dict):  # type: ignore[type-arg]
    """A block's globals: its own bindings, then its dependencies' exports, then the notebook.

    A plain ``dict`` subclass, because ``exec`` needs one; lookups of names the block did
    not bind fall through ``__missing__``, so the notebook namespace is read live, never
    copied. Functions defined in a block keep seeing the notebook through it.
    """

    __slots__ = ("_fallback",)

    def __init__(self, fallback: Sequence[Mapping[str, Any]], own: Mapping[str, Any] | None = None) -> None:
        super().__init__(own or ())
        self._fallback = fallback

    def __missing__(self, key: str) -> Any:
        for scope in self._fallback:
            if key in scope:
                return scope[key]
        raise KeyError(key)


class _Failure(Exception):
    """Internal: a unit gave up after its last attempt."""

    def __init__(self, status: str, error: BaseException) -> None:
        self.status = status
        self.error = error


class _Gate:
    """A resource: any number of readers (up to a limit) or one writer, first come first served."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.readers = 0
        self.writer = False
        self._waiters: deque[tuple[bool, asyncio.Future[None]]] = deque()

    def _free(self, write: bool) -> bool:
        if self.writer:
            return False
        if write:
            return self.readers == 0
        return self.limit is None or self.readers < self.limit

    def _take(self, write: bool) -> None:
        if write:
            self.writer = True
        else:
            self.readers += 1

    async def acquire(self, write: bool) -> None:
        if not self._waiters and self._free(write):
            self._take(write)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((write, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(write)  # granted just as we were cancelled: give it back
            raise

    def release(self, write: bool) -> None:
        if write:
            self.writer = False
        else:
            self.readers -= 1
        while self._waiters:
            want, fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if not self._free(want):
                break
            self._waiters.popleft()
            self._take(want)
            fut.set_result(None)


class Engine:
    """Runs one plan once: ``engine.start()`` on a running loop returns ``engine.run``
    (the :class:`Run`) at once; ``await engine.execute()`` runs it in the current task."""

    def __init__(
        self,
        plan: Plan,
        namespace: MutableMapping[str, Any] | None = None,
        *,
        options: RunOptions | None = None,
        backend: Backend | None = None,
        observers: Iterable[ev.Observer] = (),
    ) -> None:
        self.plan = plan
        self.options = options or RunOptions()
        self.options.check(plan)
        self.namespace: MutableMapping[str, Any] = namespace if namespace is not None else {}
        self.backend = backend
        self.observers = list(observers)
        self.run = Run(f"run-{next(_run_ids)}", plan, _options_dict(self.options))
        self._t0 = 0.0
        self._exports: dict[str, dict[str, Any]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_event = threading.Event()
        self._live: set[CancelFlag] = set()  # cancel flags of running attempts
        self._lanes: list[int] = []
        self._next_lane = 0
        opts = self.options
        self._global = asyncio.Semaphore(opts.max_concurrency) if opts.max_concurrency else None
        self._threads = asyncio.Semaphore(opts.max_threads)
        self._gates = {
            res: _Gate(opts.limits.get(res)) for res in plan.resources
        }
        self._last_progress: dict[str, float] = {}
        self._reporters: dict[str, Any] = {}  # task -> its progress callback
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False  # the run has ended; late outcomes are discarded

    # -- public --------------------------------------------------------------
    def start(self) -> Run:
        """Start the run as a Task on the running loop and return the run object at once."""
        loop = asyncio.get_running_loop()
        run = self.run
        run._loop = loop
        run._task = loop.create_task(self.execute(), name=f"parcoord {run.id}")
        return run

    def now(self) -> float:
        return time.perf_counter() - self._t0

    async def execute(self) -> Run:
        run = self.run
        self._loop = asyncio.get_running_loop()
        if run._loop is None:
            run._loop = self._loop
            run._task = asyncio.current_task()
        run.started_at = time.time()
        self._t0 = time.perf_counter()
        if self.backend is None:
            extra = {"scheduler": self.options.scheduler} if self.options.backend == "dask" else {}
            self.backend = get_backend(self.options.backend, **extra)
        start = getattr(self.backend, "start", None)
        capture.install()
        heartbeat = asyncio.create_task(_heartbeat(), name="parcoord heartbeat")
        interrupted = False
        try:
            self._emit(ev.RunStarted(0.0, run.id, tuple(self.plan.tasks)))
            if start is not None:
                run.backend_note = await start()
            if not await self._prelude():
                return run
            if self.options.sequential:
                await self._run_sequential()
            else:
                await self._run_graph()
            run.status = _final_status(run.tasks.values())
        except asyncio.CancelledError:
            interrupted = not run._cancel_requested
            run.cancelled_at = self.now()
            reason = "the kernel was interrupted" if interrupted else "the run was cancelled"
            run.cancel_reason = run.cancel_reason or reason
            await self._wind_down(run.cancel_reason, interrupted)
            run.status = "cancelled"
            if interrupted:
                raise
        finally:
            # From here on the books are closed: whatever an abandoned thread or a
            # coroutine that ignored its cancel does later is discarded, never merged.
            self._closed = True
            heartbeat.cancel()
            run.wall_end = self.now()
            capture.uninstall()
            self._emit(ev.RunFinished(self.now(), run.status))
            run._finish()
        return run

    # -- scheduling ------------------------------------------------------------
    async def _prelude(self) -> bool:
        block = self.plan.prelude
        if block is None:
            return True
        try:
            if block.is_async:
                await eval(block.code, self.namespace)  # type: ignore[arg-type]
            else:
                exec(block.code, self.namespace)  # type: ignore[arg-type]
        except (Exception, SystemExit, KeyboardInterrupt) as e:  # sys.exit() fails the run, not the kernel
            run = self.run
            run.error = e
            run.status = "failed"
            for rec in run.tasks.values():
                self._set_final(rec, "skipped", "the prelude failed")
            return False
        return True

    async def _run_sequential(self) -> None:
        for name in self.plan.order:
            rec = self.run.tasks[name]
            if rec.status != "queued":
                continue
            await self._spawn(name)
            await self._tasks[name]
            self._after(name)

    async def _run_graph(self) -> None:
        waiting = {n: len(t.deps) for n, t in self.plan.tasks.items()}
        for name in self.plan.order:
            self._emit(ev.TaskQueued(0.0, name))
        # Tasks report their end on a queue: asyncio.wait() over every running task
        # each time one ends would make a cell of 10,000 tasks quadratic.
        finished: asyncio.Queue[asyncio.Task[None]] = asyncio.Queue()
        outstanding = 0
        for name in self.plan.order:
            if waiting[name] == 0:
                await self._spawn(name)
                self._tasks[name].add_done_callback(finished.put_nowait)
                outstanding += 1
        while outstanding:
            task = await finished.get()
            outstanding -= 1
            name = task.get_name()
            self._after(name)
            if self.run.tasks[name].status == "done":
                for d in self.plan.dependents[name]:
                    waiting[d] -= 1
                    if waiting[d] == 0 and self.run.tasks[d].status == "queued":
                        await self._spawn(d)
                        self._tasks[d].add_done_callback(finished.put_nowait)
                        outstanding += 1

    async def _spawn(self, name: str) -> None:
        self._tasks[name] = asyncio.create_task(self._run_task(name), name=name)

    def _after(self, name: str) -> None:
        """A task ended: skip what depends on it if it did not succeed."""
        rec = self.run.tasks[name]
        if rec.status == "done":
            return
        stack = [(d, name) for d in self.plan.dependents[name]]
        while stack:
            d, up = stack.pop()
            drec = self.run.tasks[d]
            if drec.status != "queued":
                continue
            what = {"failed": "failed", "timeout": "timed out", "skipped": "was skipped",
                    "cancelled": "was cancelled"}.get(self.run.tasks[up].status, "did not finish")
            self._set_final(drec, "skipped", f"upstream '{up}' {what}")
            self._emit(ev.TaskSkipped(self.now(), d, drec.reason or ""))
            stack.extend((dd, d) for dd in self.plan.dependents[d])
        if rec.status in ("failed", "timeout") and self.options.on_error == "cancel":
            self._cancel_others(f"cancelled because '{name}' failed (--on-error cancel)")

    def _cancel_others(self, reason: str) -> None:
        for n, rec in self.run.tasks.items():
            if rec.status == "queued":
                self._set_final(rec, "cancelled", reason)
                self._emit(ev.TaskCancelled(self.now(), n, reason))
        for n, t in self._tasks.items():
            if not t.done():
                self.run.tasks[n].reason = reason
                t.cancel(reason)

    async def _wind_down(self, reason: str, interrupted: bool = False) -> None:
        """Stop everything: no new work, threads told to stop, coroutines cancelled.

        Coroutines get WIND_DOWN_S to run their cleanup; a second interrupt (or a second
        ``run.cancel()``) ends that wait at once. What is still running then is
        abandoned: reported as such, and its outcome is discarded when it comes.
        """
        self._cancel_event.set()
        for stop in list(self._live):
            stop.set()
        pending = {n: t for n, t in self._tasks.items() if not t.done()}
        for n, t in pending.items():
            rec = self.run.tasks[n]
            rec.reason = rec.reason or reason
            t.cancel(reason)
        if pending:
            restore = _second_interrupt_cancels(asyncio.current_task()) if interrupted else None
            try:
                await asyncio.wait(pending.values(), timeout=WIND_DOWN_S)
            except asyncio.CancelledError:
                # A second interrupt: stop waiting for cleanups, finish the books now.
                self.run.cancel_reason = f"{reason} (a second interrupt stopped the wind-down)"
            finally:
                if restore is not None:
                    restore()
        now = self.now()
        for n, t in pending.items():
            if t.done():
                continue
            # It caught CancelledError and went on: it is left running on the loop.
            rec = self.run.tasks[n]
            rec.reason = (f"{rec.reason or reason}; it did not stop when cancelled and was left "
                          "running, its late result is discarded")
            for a in rec.history:
                if a.end is None:
                    a.end, a.status = now, "cancelled"
        for n, rec in self.run.tasks.items():
            if rec.status not in ("done", "failed", "timeout", "skipped", "cancelled"):
                self._set_final(rec, "cancelled", rec.reason or reason)
                self._emit(ev.TaskCancelled(self.now(), n, rec.reason or reason))

    # -- one task --------------------------------------------------------------
    async def _run_task(self, name: str) -> None:
        pt = self.plan.tasks[name]
        rec = self.run.tasks[name]
        # The record stays "queued" until an attempt holds its slots and starts: with
        # --max-concurrency 40 and 3,000 ready tasks, 40 run and the rest are queued.
        rec.timeout = pt.spec.options.timeout or self.options.timeout
        backend = self.backend
        # A coroutine on this loop can be cancelled; a block on a dask worker cannot.
        rec.hard_timeout = (pt.is_async and getattr(backend, "hard_async_timeouts", True)) or backend.hard_thread_timeouts  # type: ignore[union-attr]
        fallback: list[Mapping[str, Any]] = [self._exports[d] for d in pt.deps if d in self._exports]
        fallback.append(self.namespace)
        try:
            if pt.spec.fanout is not None:
                result, exports = await self._run_fanout(pt, rec, fallback)
            else:
                result, ns = await self._attempts(pt, rec, fallback, None, None)
                exports = {w: dict.__getitem__(ns, w) for w in pt.writes if dict.__contains__(ns, w)}
            if self._closed:
                return  # a coroutine that ignored its cancel finished after the run ended
            self._merge(pt, exports)
            self._exports[name] = exports
            rec.result = result
            self._set_final(rec, "done")
            self._emit(ev.TaskFinished(self.now(), name, rec.duration or 0.0))
        except _Failure as f:
            if self._closed:
                return
            rec.error = f.error
            self._set_final(rec, f.status, rec.reason)
            if f.status == "timeout":
                self._emit(ev.TaskTimedOut(self.now(), name, rec.timeout or 0.0, rec.hard_timeout))
            else:
                self._emit(ev.TaskFailed(self.now(), name, f.error))
        except asyncio.CancelledError:
            if not self._closed:
                self._set_final(rec, "cancelled", rec.reason or "the run was cancelled")
                self._emit(ev.TaskCancelled(self.now(), name, rec.reason or ""))
            raise

    async def _run_fanout(
        self, pt: PlannedTask, rec: TaskRecord, fallback: list[Mapping[str, Any]]
    ) -> tuple[list[Any], dict[str, Any]]:
        fan = pt.spec.fanout
        assert fan is not None and pt.fanout_code is not None
        view = BlockNamespace(fallback)
        try:
            value = eval(pt.fanout_code, view)
            if asyncio.iscoroutine(value):
                value = await value
        except (Exception, SystemExit, KeyboardInterrupt) as e:
            raise _Failure("failed", e) from None
        try:
            items = list(value)
        except TypeError as e:
            if "not iterable" in str(e):
                e = TypeError(
                    f"task '{pt.name}' (cell line {pt.spec.line}): 'for {fan.target} in {fan.expr}' "
                    f"needs something to loop over, but {fan.expr} is {type(value).__name__}: "
                    "give it a list, a range or another iterable; none of its items ran"
                )
            raise _Failure("failed", e) from None
        except (Exception, SystemExit, KeyboardInterrupt) as e:
            raise _Failure("failed", e) from None
        n = len(items)
        rec.items = n
        results: list[Any] = [None] * n
        spaces: list[dict[str, Any] | None] = [None] * n
        limit = asyncio.Semaphore(pt.spec.options.limit) if pt.spec.options.limit else None
        targets = fan.target_names

        async def one(i: int, item: Any) -> None:
            bind = _bind_target(targets, fan.target, item)
            if limit is None:
                results[i], spaces[i] = await self._attempts(pt, rec, fallback, i, bind)
            else:
                async with limit:
                    results[i], spaces[i] = await self._attempts(pt, rec, fallback, i, bind)

        # The common fan-out (one loop variable, no limit=) has nothing to bind or wait
        # for: each item's Task runs its attempts directly and stores its outcome, one
        # coroutine less per item. Only a namespace whose names the task exports is kept.
        direct = limit is None and len(targets) == 1 and targets[0] == fan.target
        into = (results, spaces, bool(pt.writes)) if direct else None
        target = fan.target
        hold = n >= GC_FREEZE_ITEMS and _gc_hold()
        try:
            async with asyncio.TaskGroup() as group:
                try:
                    for i, item in enumerate(items):
                        if direct:
                            group.create_task(self._attempts(pt, rec, fallback, i, {target: item}, into))
                        else:
                            group.create_task(one(i, item))
                        if i % SPAWN_BATCH == SPAWN_BATCH - 1:
                            # Let the items made so far start (and quick ones finish)
                            # before making more: 10,000 items then never all sit in
                            # memory at once unless they all wait.
                            await asyncio.sleep(0)
                            if hold:
                                gc.freeze()  # see GC_FREEZE_ITEMS
                finally:
                    if hold:
                        _gc_release()
        except BaseExceptionGroup as eg:
            failures = [e for e in _leaves(eg) if isinstance(e, _Failure)]
            if failures:
                if len(failures) > 1:
                    # One error stands for the task; the others stay in rec.history.
                    _note(failures[0].error, f"{len(failures)} items failed (each attempt's error is in "
                                             f"run.tasks['{pt.name}'].history)")
                raise failures[0] from None
            raise
        exports = {w: [dict.get(ns, w) for ns in spaces if ns is not None] for w in sorted(pt.writes)}
        return results, exports

    async def _attempts(
        self,
        pt: PlannedTask,
        rec: TaskRecord,
        fallback: list[Mapping[str, Any]],
        item: int | None,
        bind: dict[str, Any] | None,
        into: tuple[list[Any], list[Any], bool] | None = None,
    ) -> tuple[Any, BlockNamespace]:
        """Run one block (or one fan-out item) until it succeeds or gives up.

        ``into`` = (results, namespaces, keep namespace): where a direct fan-out item
        stores its outcome, as no wrapper coroutine is there to do it.
        """
        opts = pt.spec.options
        retries = opts.retries if opts.retries is not None else self.options.retries
        timeout = rec.timeout
        backoff = opts.backoff or DEFAULT_BACKOFF
        # Blocks on a cluster do not take one of this process's threads.
        is_thread = not pt.is_async and getattr(self.backend, "local_threads", True)
        # Most attempts wait for no semaphore or gate: skip the coroutine that would.
        gated = is_thread or self._global is not None or bool(pt.uses)
        for number in range(1, retries + 2):
            ns = BlockNamespace(fallback, bind)
            # Each attempt has its own cancel flag, so a timed-out thread is told to stop
            # without stopping its retry; cancelling the run sets every live flag.
            stop = CancelFlag()
            if self._cancel_event.is_set():
                stop.set()
            scope = TaskScope(pt.name, rec.stdout_buffer, rec.stderr_buffer, stop,
                              self._progress_callback(rec), item, displays=rec.displays)
            unit = Unit(pt, ns, scope, number, item)
            error: BaseException | None = None
            status = "done"
            if gated:
                await self._acquire(pt, is_thread)
            self._live.add(stop)
            lane = self._take_lane()
            attempt = Attempt(number, self.now(), item=item, lane=lane)
            rec.history.append(attempt)
            if rec.start is None:
                rec.start = attempt.start
            rec.status = "running"
            if self.observers:
                self._emit(ev.TaskStarted(attempt.start, pt.name, number, item))
            try:
                if timeout:
                    cm = asyncio.timeout(timeout)
                    try:
                        async with cm:
                            result = await self.backend.execute(unit)  # type: ignore[union-attr]
                    except TimeoutError as e:
                        if not cm.expired():
                            raise
                        scope.cancel_event.set()
                        status, error = "timeout", _timeout_error(pt, timeout, rec.hard_timeout, e,
                                                                  getattr(self.backend, "soft_timeout_text", None))
                else:
                    result = await self.backend.execute(unit)  # type: ignore[union-attr]
            except asyncio.CancelledError:
                attempt.status = "cancelled"
                if unit.abandoned:
                    rec.abandoned += 1
                raise
            except Cancelled:
                # progress() saw the cancel flag: this attempt was cancelled, not failed,
                # and a cancel is never retried.
                attempt.status = "cancelled"
                raise asyncio.CancelledError(rec.reason or "the run was cancelled") from None
            except (Exception, SystemExit, KeyboardInterrupt) as e:
                # SystemExit and KeyboardInterrupt raised by a block fail that task only:
                # they must not end the kernel's loop, and are never retried.
                status, error = "failed", e
            finally:
                if not self._closed:  # an abandoned coroutine's late end is not recorded
                    attempt.end = self.now()
                    attempt.worker = unit.worker
                    if unit.started is not None:
                        self._worker_times(rec, attempt, unit.started, unit.ended)
                    rec.end = attempt.end
                self._live.discard(stop)
                self._release(pt, is_thread, lane)
            attempt.status = status
            attempt.error = error
            if error is None:
                if item is not None:
                    rec.items_done += 1
                    if into is not None:
                        into[0][item] = result
                        if into[2]:
                            into[1][item] = ns
                return result, ns
            if unit.abandoned:  # the backend says the block is still running (a soft timeout)
                rec.abandoned += 1
            # Only ordinary exceptions are retried, and never once the run is cancelled.
            retryable = isinstance(error, Exception) and number <= retries and not self._cancel_event.is_set()
            if not retryable:
                if number > 1 and isinstance(error, BaseException):
                    _note(error, f"after {number} attempts")
                raise _Failure(status, error)
            delay = backoff * 2 ** (number - 1) * random.uniform(0.5, 1.5)
            rec.status = "retrying"
            self._emit(ev.AttemptFailed(self.now(), pt.name, number, error, delay, item))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- helpers ---------------------------------------------------------------
    async def _acquire(self, pt: PlannedTask, is_thread: bool) -> None:
        held: list[Any] = []
        try:
            if self._global is not None:
                await self._global.acquire()
                held.append(self._global.release)
            if is_thread:
                await self._threads.acquire()
                held.append(self._threads.release)
            # A fixed order, so two tasks never wait for each other's resources.
            for use in sorted(pt.uses, key=lambda u: u.resource):
                gate = self._gates[use.resource]
                await gate.acquire(use.write)
                held.append(functools.partial(gate.release, use.write))
        except BaseException:
            for release in reversed(held):
                release()
            raise

    def _release(self, pt: PlannedTask, is_thread: bool, lane: int) -> None:
        for use in pt.uses:
            self._gates[use.resource].release(use.write)
        if is_thread:
            self._threads.release()
        if self._global is not None:
            self._global.release()
        heapq.heappush(self._lanes, lane)

    def _worker_times(self, rec: TaskRecord, attempt: Attempt, started: float, ended: float | None) -> None:
        # The backend timed the block where it ran (epoch seconds on a worker's clock).
        # Clamp into submission..arrival, so a skewed remote clock cannot draw the bar
        # outside the time the kernel actually waited for it.
        submitted, arrived = attempt.start, attempt.end if attempt.end is not None else self.now()
        start = min(max(started - self.run.started_at, submitted), arrived)
        end = min(max((ended if ended is not None else started) - self.run.started_at, start), arrived)
        if rec.start == submitted:
            rec.start = start
        attempt.start, attempt.end = start, end

    def _take_lane(self) -> int:
        if self._lanes:
            return heapq.heappop(self._lanes)
        self._next_lane += 1
        return self._next_lane - 1

    def _progress_callback(self, rec: TaskRecord):  # type: ignore[no-untyped-def]
        # One callback per task, not per attempt: a fan-out has thousands of attempts.
        report = self._reporters.get(rec.name)
        if report is None:
            report = self._reporters[rec.name] = self._make_reporter(rec)
        return report

    def _make_reporter(self, rec: TaskRecord):  # type: ignore[no-untyped-def]
        def report(done: float, total: float | None, message: str | None) -> None:
            rec.progress = (done, total, message)
            if not self.observers or self._loop is None:
                return
            t = time.perf_counter()
            # At most 20 progress events a second per task, but always the last one.
            if t - self._last_progress.get(rec.name, 0.0) < 0.05 and not (total and done >= total):
                return
            self._last_progress[rec.name] = t
            event = ev.TaskProgress(t - self._t0, rec.name, done, total, message)
            try:
                self._loop.call_soon_threadsafe(self._emit, event)
            except RuntimeError:
                pass

        return report

    def _merge(self, pt: PlannedTask, exports: Mapping[str, Any]) -> None:
        ns = self.namespace
        ns.update(exports)
        for name in pt.info.deletes:
            if name not in exports:
                ns.pop(name, None)

    def _set_final(self, rec: TaskRecord, status: str, reason: str | None = None) -> None:
        rec.status = status
        if reason is not None:
            rec.reason = reason
        if rec.end is None and rec.start is not None:
            rec.end = self.now()

    def _emit(self, event: ev.Event) -> None:
        for obs in list(self.observers):
            try:
                obs(event)
            except Exception as e:  # a broken view must not break the run
                self.observers.remove(obs)
                capture_warning(f"parcoord_nb: observer {obs!r} raised {type(e).__name__}: {e}; dropped")


def _second_interrupt_cancels(task: asyncio.Task[Any] | None):  # type: ignore[no-untyped-def]
    """While winding down after an interrupt, make the next SIGINT cancel ``task``.

    ipykernel 7.4 turns only the first SIGINT of a cell into a cancel, so a second one
    would otherwise do nothing. Returns a function that restores the previous handler,
    or None when signals cannot be handled here (not the main thread).
    """
    import signal

    if task is None or threading.current_thread() is not threading.main_thread():
        return None
    loop = task.get_loop()

    def on_sigint(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(task.cancel, "a second interrupt")

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except (ValueError, OSError):  # pragma: no cover - signals unavailable here
        return None

    def restore() -> None:
        if signal.getsignal(signal.SIGINT) is on_sigint:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)

    return restore


async def _heartbeat() -> None:
    # ipykernel 7.4 turns SIGINT into a cancel with loop.call_soon from inside the
    # signal handler, which does not wake a loop that is waiting in select(): with
    # nothing else scheduled, an interrupt would only land when the next task
    # finishes. A 10 Hz tick keeps the loop turning, so an interrupt lands within 0.1 s.
    while True:
        await asyncio.sleep(HEARTBEAT_S)


def capture_warning(message: str) -> None:
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=2)


def _final_status(records: Iterable[TaskRecord]) -> str:
    statuses = {r.status for r in records}
    if statuses & {"failed", "timeout"}:
        return "failed"
    if "cancelled" in statuses:
        return "cancelled"
    return "done"


def _gc_hold() -> bool:
    """Start freezing for one fan-out's spawn; False when the collector is not ours to touch."""
    global _gc_holders
    with _gc_lock:
        if _gc_holders == 0 and (not gc.isenabled() or gc.get_freeze_count()):
            return False
        _gc_holders += 1
        return True


def _gc_release() -> None:
    global _gc_holders
    with _gc_lock:
        _gc_holders -= 1
        if _gc_holders == 0:
            gc.unfreeze()


def _bind_target(names: tuple[str, ...], target: str, item: Any) -> dict[str, Any]:
    if len(names) == 1 and names[0] == target:
        return {target: item}
    ns: dict[str, Any] = {"__item__": item}
    exec(f"{target} = __item__", ns)
    return {n: ns[n] for n in names}


def _leaves(eg: BaseExceptionGroup) -> list[BaseException]:  # type: ignore[type-arg]
    out: list[BaseException] = []
    for e in eg.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out


def _note(error: BaseException, note: str) -> None:
    if note not in getattr(error, "__notes__", ()):
        error.add_note(note)


def _timeout_error(pt: PlannedTask, timeout: float, hard: bool, cause: BaseException,
                   soft_text: str | None = None) -> TimeoutError:
    how = ("hard timeout: it was cancelled" if hard else
           f"soft timeout: {soft_text}" if soft_text else
           "soft timeout: threads cannot be stopped, so it was left running and its result will be discarded")
    err = TimeoutError(f"task '{pt.name}' timed out after {timeout:g}s ({how})")
    err.__cause__ = None
    return err


def _options_dict(opts: RunOptions) -> dict[str, Any]:
    return {k: getattr(opts, k) for k in opts.__dataclass_fields__}

