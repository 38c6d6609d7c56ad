"""Run blocks on a dask.distributed cluster: ``%%parallel --backend dask``.

The same cell runs unchanged on either backend; only *where* a block runs changes.

Which cluster
    ``--scheduler ADDR`` connects to that scheduler. Otherwise the current
    ``distributed.Client`` (``distributed.default_client()``) is used if there is one.
    Otherwise a local cluster is started once per kernel and reused by later cells: a
    scheduler in this process and worker processes (dask's default count for this
    machine) in **their own session**. A kernel interrupt is a SIGINT to the kernel's
    whole process group, which kills the workers of a plain ``LocalCluster`` with
    whatever they were running; workers in another session never see it. They end
    with their scheduler when the kernel goes away (each nanny also watches the
    kernel's pid, as a backstop), so a killed kernel leaves no orphans. The report
    says which of the three it used (``run.backend_note``).

Client
    An asynchronous ``Client`` on the running loop (one per loop and scheduler,
    reused across runs), so the kernel's loop is never blocked. On a loop that is
    closed after one run (``parcoord_nb.run()`` outside a notebook) it is closed with
    the loop.

What travels
    A block goes as its source text with its cell file name and first line, and is
    compiled on the worker by :func:`~parcoord_nb.plan.compile_source`, the same
    rewrite the plan uses, so tracebacks show cell line numbers. With it go only the
    values it reads (the names in ``task.reads`` that resolve, plus a fan-out item),
    each pickled once per run and named if it cannot be; values over 1 MiB are
    scattered once per run and shared by every attempt and item that reads them. Back
    come only the names it writes and its result, pickled on the worker so that an
    unpicklable one fails that task alone, with its name and type. The worker also
    returns the block's stdout/stderr (appended to the task's buffers), its last
    ``progress()`` and its start and end on the worker's clock, which the run records
    (clamped between submission and arrival), with the worker's address, so the Gantt
    chart draws one row per worker. ``progress()`` calls reach the kernel while the
    block runs, as dask events at most ten a second per task, the last value always.

Ordering: the engine, not the dask scheduler
    Each attempt is submitted when the engine starts it, under a key unique to the
    run, task, item and attempt (dask silently reuses the result of a known key). The
    engine keeps ordering the blocks, as on the local backend, rather than handing
    dask the whole graph as chained futures, because the semantics the cell promises
    live there and a pre-submitted graph would lose them: resource gates and limits
    (``uses=``, ``--limit``, ``--max-concurrency``, fan-out ``limit=``), per-attempt
    timeouts and backoff, ``--on-error cancel``, skip reasons, and fan-outs whose
    items are only known once their dependencies have finished. The cost is one
    scheduler round trip per dependency level (milliseconds); blocks worth sending to
    a cluster take far longer.

Retries and faults
    Retries are the engine's (``retries=N`` is N+1 attempts, each its own dask key,
    Gantt bar and backoff), not dask's ``retries=``, whose re-runs the run could not
    see. Dask still reschedules a task whose worker died; after
    ``distributed.scheduler.allowed-failures`` deaths the task fails with a message
    naming it, the attempt and the last worker, and the cluster stays up (the worker
    is restarted by its nanny). A timeout or Cancel cancels the future: a queued task
    never starts, but a running dask task cannot be stopped mid-flight; it is told to
    stop (``parcoord_nb.cancelled()`` turns True and ``progress()`` raises on the
    worker) and its late result is discarded.

Async blocks
    Run on the worker, each on a private event loop in the worker thread that runs it
    (``asyncio.run``), not on the worker's own event loop: that loop carries the
    worker's heartbeats and transfers, and one blocking call in a block would stall
    it until the scheduler declares the worker dead. Concurrency inside an async
    block (``asyncio.gather``) works as usual; like blocking blocks, its timeout is
    soft.

Workers must be able to import ``parcoord_nb`` (``pip install 'parcoord_nb[dask]'``
where they run); for a cluster started here they can.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import json
import linecache
import logging
import math
import os
import pickle
import sys
import threading
import time
import uuid
import weakref
from typing import Any, NamedTuple

import cloudpickle
import distributed
from distributed import Client, Nanny
from distributed.deploy.spec import SpecCluster
from distributed.deploy.subprocess import SubprocessWorker
from distributed.scheduler import KilledWorker

from .. import capture
from ..capture import CancelFlag, OutputBuffer, TaskScope
from ..plan import RESULT_NAME, PlannedTask, compile_source
from . import Unit

__all__ = ["DaskBackend", "WorkerDiedError", "start_local_cluster"]

SCATTER_BYTES = 1 << 20  # larger inputs are uploaded once per run and shared
OUTPUT_LIMIT = 4 << 20  # characters of stdout/stderr a task sends back (head and tail)
PROGRESS_INTERVAL = 0.1  # seconds between progress events of one task
CONNECT_TIMEOUT = 30.0
STOP_TIMEOUT = 0.3  # how long a cancel waits to learn whether the task was running

_log = logging.getLogger(__name__)


class WorkerDiedError(RuntimeError):
    """The dask worker running a task died (dask's ``KilledWorker``)."""

    def __init__(self, message: str, task: str | None = None, worker: str | None = None) -> None:
        super().__init__(message)
        self.task = task
        self.worker = worker

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.task, self.worker))


# -- the local cluster ---------------------------------------------------------


class _SessionWorker(SubprocessWorker):
    """A nanny and its worker in a process of their own session.

    ``start_new_session`` puts them out of the kernel's process group, so the SIGINT of
    a kernel interrupt (``os.killpg``) does not reach them; ``LocalCluster``'s workers
    are multiprocessing children that share the group and die of it.
    """

    async def _start(self) -> None:
        opts = {**self.worker_kwargs, "parent_pid": os.getpid()}
        cmd = [sys.executable, "-m", "dask", "spec", self.scheduler, "--spec",
               json.dumps({"cls": f"{__name__}._SessionNanny", "opts": opts})]
        env = dict(os.environ)
        # The child imports this module by name: make sure it finds this copy.
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        self.process = await asyncio.create_subprocess_exec(*cmd, start_new_session=True, env=env)


class _SessionNanny(Nanny):
    """A nanny that closes (and takes its worker with it) once the kernel is gone.

    Losing the scheduler (it lives in the kernel) ends a nanny too; this covers the
    case where that is not noticed, since out of the kernel's session no signal from
    the kernel's end reaches it.
    """

    def __init__(self, *args: Any, parent_pid: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parent_pid = parent_pid
        from tornado.ioloop import PeriodicCallback

        self.periodic_callbacks["parcoord-parent"] = PeriodicCallback(self._check_parent, 500)

    async def _check_parent(self) -> None:
        if self._parent_pid is not None and os.getppid() != self._parent_pid and self.status.name == "running":
            await self.close(reason="the kernel that started this cluster is gone")


def start_local_cluster(
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | int = "auto",
) -> SpecCluster:
    """Start a scheduler here and worker processes that a kernel interrupt cannot kill.

    Blocks until the scheduler is up (workers join a moment later); call it from a
    thread when a loop runs here. The caller owns the cluster: ``cluster.close()``.
    """
    from dask.system import CPU_COUNT
    from distributed.deploy.utils import nprocesses_nthreads
    from distributed.worker_memory import parse_memory_limit

    if n_workers is None and threads_per_worker is None:
        n_workers, threads_per_worker = nprocesses_nthreads()
    elif n_workers is None:
        n_workers = max(1, CPU_COUNT // threads_per_worker)  # type: ignore[operator]
    elif threads_per_worker is None:
        threads_per_worker = max(1, math.ceil(CPU_COUNT / n_workers))
    if memory_limit == "auto":
        memory_limit = parse_memory_limit("auto", 1, n_workers, logger=_log)  # type: ignore[assignment]
    import importlib.util

    dashboard = importlib.util.find_spec("bokeh") is not None
    worker = {
        "cls": _SessionWorker,
        "options": {"worker_kwargs": {
            "host": "127.0.0.1",
            "nthreads": threads_per_worker,
            "memory_limit": memory_limit,
            "silence_logs": logging.WARNING,
            "death_timeout": 60,
        }},
    }
    return SpecCluster(
        scheduler={"cls": distributed.Scheduler, "options": {
            "host": "127.0.0.1", "port": 0, "dashboard": dashboard, "dashboard_address": ":0",
        }},
        workers={i: worker for i in range(n_workers)},
        worker=worker,
        silence_logs=logging.WARNING,
        name="parcoord_nb",
    )


_cluster: SpecCluster | None = None
_cluster_lock = threading.Lock()


def _own_cluster() -> tuple[SpecCluster, bool]:
    """The kernel's cluster, started on first use; True if it was started just now."""
    global _cluster
    with _cluster_lock:
        if _cluster is not None and _cluster.status.name == "running":
            return _cluster, False
        _cluster = start_local_cluster()
        return _cluster, True


# -- clients -------------------------------------------------------------------

# loop -> scheduler address -> client. A client belongs to the loop it was made on.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Client]] = weakref.WeakKeyDictionary()
_connecting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()
_keepers: set[asyncio.Task[None]] = set()
_routers: dict[str, _Router] = {}  # client id -> progress router


class _Router:
    """Hands progress events from the workers to the scopes of the attempts awaiting them."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.scopes: dict[str, TaskScope] = {}

    def __call__(self, event: tuple[float, Any]) -> None:
        try:
            key, done, total, message = event[1]
        except (TypeError, ValueError):
            return
        scope = self.scopes.get(key)
        if scope is None:  # finished, cancelled, or another kernel's task
            return
        scope.progress = (done, total, message)
        if scope.on_progress is not None:
            scope.on_progress(done, total, message)


async def _client_for(address: str) -> Client:
    loop = asyncio.get_running_loop()
    per = _clients.setdefault(loop, {})
    client = per.get(address)
    if client is not None and client.status == "running":
        return client
    lock = _connecting.setdefault(loop, {}).setdefault(address, asyncio.Lock())
    async with lock:
        client = per.get(address)
        if client is not None and client.status == "running":
            return client
        try:
            client = await Client(address, asynchronous=True, set_as_default=False, timeout=CONNECT_TIMEOUT)
        except OSError as e:
            raise ConnectionError(
                f"--backend dask: could not reach the dask scheduler at {address} ({e}); check the "
                "address, or leave out --scheduler to use a local cluster"
            ) from None
        try:
            await client.run(_worker_ready)
        except Exception as e:  # noqa: BLE001 - whatever the worker said, the fix is the same
            await client.close()
            raise ImportError(
                f"--backend dask: the workers of {address} cannot run parcoord_nb's worker code "
                f"({type(e).__name__}: {e}): install parcoord_nb where they run "
                "(pip install 'parcoord_nb[dask]'), or use --backend local"
            ) from None
        per[address] = client
        _attach_router(client)
        keeper = loop.create_task(_close_with_loop(client, per, address), name=f"parcoord dask client {address}")
        _keepers.add(keeper)
        keeper.add_done_callback(_keepers.discard)
        return client


def _attach_router(client: Client) -> _Router:
    router = _routers.get(client.id)
    if router is None:
        router = _routers[client.id] = _Router(f"parcoord-progress-{client.id}")
        client.subscribe_topic(router.topic, router)
    return router


async def _close_with_loop(client: Client, per: dict[str, Client], address: str) -> None:
    # Waits forever on a long-lived loop (the kernel's); a loop made for one run
    # (asyncio.run) cancels it on the way out, and the client is closed with it
    # instead of being left to warn from the garbage collector.
    try:
        await asyncio.Event().wait()
    finally:
        if per.get(address) is client:
            del per[address]
        _routers.pop(client.id, None)
        try:
            await client.close()
        except Exception:  # noqa: BLE001 - the loop is going away; nothing to report to
            pass


async def _on_this_loop(client: Client) -> Client:
    """``client`` if it is asynchronous on the running loop, else one of ours to its scheduler."""
    if client.asynchronous and getattr(client.loop, "asyncio_loop", None) is asyncio.get_running_loop():
        return client
    # A synchronous client (the usual one in a notebook) would block this loop.
    return await _client_for(client.scheduler.address)


def _current_client() -> Client | None:
    try:
        client = distributed.default_client()
    except ValueError:
        return None
    return client if client.status == "running" else None


async def _describe(client: Client) -> str:
    workers = await client.nthreads()
    threads = sum(workers.values())
    if not workers:
        return "no workers yet: tasks wait until one joins"
    return f"{len(workers)} worker{'s' * (len(workers) != 1)}, {threads} thread{'s' * (threads != 1)}"


# -- the backend ---------------------------------------------------------------


class _Outcome(NamedTuple):
    """What a worker sends back for one attempt."""

    result: bytes | None
    writes: dict[str, bytes]
    stdout: str
    stderr: str
    progress: tuple[Any, Any, Any] | None
    started: float
    ended: float
    worker: str


class _BlockError(Exception):
    """A block failed on a worker; carries the original error, its traceback and output.

    The original goes pickled inside, so dask's handling of errors (messages cut at
    10,000 characters, tracebacks dropped past that size, BaseExceptions that would
    stop the worker) never touches it; ``str()`` stays short for dask's dashboard.
    """

    def __init__(self, summary: str, payload: bytes) -> None:
        super().__init__(summary, payload)

    def __str__(self) -> str:
        return str(self.args[0])

    def __repr__(self) -> str:  # what a worker's log shows: not the payload's bytes
        return f"{type(self).__name__}({self.args[0]!r})"


class DaskBackend:
    """Runs each attempt of each block as a dask task; see the module docstring."""

    name = "dask"
    hard_thread_timeouts = False
    hard_async_timeouts = False  # async blocks run on the worker too: cannot be stopped either
    local_threads = False  # blocks use the cluster's threads, not this process's
    soft_timeout_text = (
        "a running dask task cannot be stopped mid-flight: it was told to stop "
        "(parcoord_nb.cancelled() is True on the worker) and its late result will be discarded"
    )

    def __init__(self, scheduler: str | None = None, *, client: Client | None = None) -> None:
        self.scheduler = scheduler
        self._client: Client | None = client
        self._router: _Router | None = None
        self._token = uuid.uuid4().hex
        self._sent: dict[int, tuple[Any, Any]] = {}  # id(value) -> (value, bytes or Future)
        self._batch: _Batch = None  # type: ignore[assignment]  # made by start()

    # -- setup -----------------------------------------------------------------
    async def start(self) -> str:
        """Connect (or start a local cluster) and say which cluster the run uses."""
        given = self._client if self._client is not None and self._client.status == "running" else None
        if given is not None:
            client = await _on_this_loop(given)
            how = f"dask: the given client's scheduler {given.scheduler.address}"
        elif self.scheduler:
            client = await _client_for(self.scheduler)
            how = f"dask: scheduler {client.scheduler.address}"
        elif (user := _current_client()) is not None:
            client = await _on_this_loop(user)
            how = f"dask: the current dask client's scheduler {user.scheduler.address}"
        else:
            cluster, fresh = await asyncio.to_thread(_own_cluster)
            client = await _client_for(cluster.scheduler_address)
            if fresh:
                await client.wait_for_workers(len(cluster.worker_spec), timeout=60)
            link = f", dashboard {cluster.dashboard_link}" if cluster.scheduler_info.get("services", {}).get("dashboard") else ""
            how = (f"dask: {'started' if fresh else 'using'} a local cluster for this kernel, scheduler "
                   f"{cluster.scheduler_address}{link}; its workers run in their own session, so a kernel "
                   "interrupt does not reach them (--scheduler ADDR uses another cluster)")
        self._client = client
        self._router = _attach_router(client)
        self._batch = _Batch(client)
        return f"{how} ({await _describe(client)})"

    def close(self) -> None:
        self._sent.clear()

    # -- one attempt -------------------------------------------------------------
    async def execute(self, unit: Unit) -> Any:
        if self._client is None:
            await self.start()
        client, router = self._client, self._router
        assert client is not None and router is not None
        pt = unit.task
        key = (f"{pt.name}-{unit.attempt}-{self._token}" if unit.item is None
               else f"{pt.name}-{unit.item}-{unit.attempt}-{self._token}")
        inputs = await self._inputs(unit, pt)
        job = (pt.spec.code, pt.block.filename, pt.spec.body_line, pt.name, unit.item,
               tuple(pt.writes), router.topic, key)
        router.scopes[key] = unit.scope
        future: Any = None
        waiter = self._batch.submit(job, inputs, key)
        try:
            future = await waiter
            await _finished(future)
            if future.status == "finished":
                outcome: _Outcome = await self._batch.fetch(future)
            else:
                outcome = await future  # raises what the worker raised (or KilledWorker)
        except asyncio.CancelledError:
            if future is None and waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                future = waiter.result()  # sent just as the cancel came
            if future is None:  # cancelled before it was sent: nothing runs
                raise
            running_on = await self._stop(future, key)
            unit.abandoned = running_on is not None
            if running_on:
                unit.worker = running_on
            if unit.abandoned:
                what = f"task '{pt.name}'" + (f" item {unit.item}" if unit.item is not None else "")
                unit.scope.stderr.write(
                    f"[parcoord_nb] {what} was running on dask worker {running_on or '(unknown)'}: a running "
                    "dask task cannot be stopped mid-flight, so it was told to stop (parcoord_nb.cancelled() "
                    "is True there) and its late result will be discarded\n")
            raise
        except _BlockError as e:
            raise self._failure(e, unit) from None
        except KilledWorker as e:
            raise self._died(e, unit) from None
        finally:
            router.scopes.pop(key, None)
            del future
        return self._absorb(outcome, unit)

    async def _inputs(self, unit: Unit, pt: PlannedTask) -> dict[str, Any]:
        ns = unit.namespace
        names = set(dict.keys(ns)) | pt.reads  # a fan-out item is bound in the block's own dict
        out: dict[str, Any] = {}
        for name in names:
            try:
                value = ns[name]
            except KeyError:
                continue  # not defined anywhere: the block raises NameError on the worker
            sent = self._sent.get(id(value))
            if sent is not None and sent[0] is value:
                out[name] = sent[1]
                continue
            try:
                data: Any = _dumps(value)
            except Exception as e:  # noqa: BLE001 - any pickling failure is the same mistake
                raise TypeError(
                    f"task '{pt.name}' reads '{name}', a {_type_name(value)}, which cannot be sent to a "
                    f"dask worker ({type(e).__name__}: {e}): create it inside the block, or run this "
                    "cell with --backend local"
                ) from None
            if len(data) > SCATTER_BYTES:
                data = await self._client.scatter(data, hash=False)  # type: ignore[union-attr]
            # Keep the value, so its id is not reused for another object during the run.
            self._sent[id(value)] = (value, data)
            out[name] = data
        return out

    def _absorb(self, outcome: _Outcome, unit: Unit) -> Any:
        pt = unit.task
        _take_detail(unit, outcome.stdout, outcome.stderr, outcome.progress, outcome.started,
                     outcome.ended, outcome.worker)
        for name, data in outcome.writes.items():
            dict.__setitem__(unit.namespace, name, _load_here(data, pt.name, f"'{name}'"))
        if outcome.result is None:
            return None
        return _load_here(outcome.result, pt.name, "its result")

    def _failure(self, e: _BlockError, unit: Unit) -> BaseException:
        try:
            error, detail, tb_data = pickle.loads(e.args[1])
        except Exception as load_error:  # noqa: BLE001 - e.g. the error's class exists only on the workers
            return RuntimeError(f"{e} (the error itself cannot be loaded in the kernel: "
                                f"{type(load_error).__name__}: {load_error})")
        _take_detail(unit, *detail)
        if tb_data is not None:
            from tblib import Traceback

            try:
                error = error.with_traceback(Traceback.from_dict(tb_data).as_traceback())
            except Exception:  # noqa: BLE001 - a traceback we cannot rebuild: the error still stands
                pass
        return error

    def _died(self, e: KilledWorker, unit: Unit) -> WorkerDiedError:
        pt = unit.task
        last = getattr(e.last_worker, "address", e.last_worker)
        item = f" item {unit.item}" if unit.item is not None else ""
        unit.worker = str(last)
        return WorkerDiedError(
            f"the dask worker {last} died while running task '{pt.name}'{item} (attempt {unit.attempt}); "
            f"dask tried it on {e.allowed_failures + 1} workers, and each died (the cluster carries on; "
            "nannies restart dead workers). "
            "Usual causes: the block used more memory than a worker has, or crashed the interpreter; "
            "retries=N tries it again, --backend local runs it in the kernel",
            task=pt.name, worker=str(last),
        )

    async def _stop(self, future: Any, key: str) -> str | None:
        """Cancel a future; if its task was already running (so runs on), where ("" if unknown)."""
        if future.done():
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(self._batch.stop(future, key)), STOP_TIMEOUT)
        except (asyncio.TimeoutError, OSError):
            return ""  # no answer in time: assume the worst


async def _finished(future: Any) -> None:
    """Wait until a dask future is done, without fetching its result (that is batched)."""
    state = getattr(future, "_state", None)
    wait = getattr(state, "wait", None)
    if wait is None:  # pragma: no cover - a distributed without FutureState.wait
        try:
            await future
        except Exception:  # noqa: BLE001 - the caller awaits it again and sees the error
            pass
        return
    await wait()


class _Batch:
    """Sends the submissions of one loop turn as one graph, and fetches results together.

    The engine starts a fan-out's items (and all independent tasks) in the same loop
    turn, and results that arrive together are fetched together: one ``update-graph``
    and one ``gather`` for many tasks cost the scheduler far less than one each (on
    2 cores, per-task ``client.submit`` + ``await`` takes about twice ``client.map``).
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._submits: list[tuple[Any, Any, str, asyncio.Future[Any]]] = []
        self._fetches: list[tuple[Any, asyncio.Future[Any]]] = []
        self._stops: list[tuple[Any, str, asyncio.Future[str | None]]] = []

    def submit(self, job: Any, inputs: Any, key: str) -> asyncio.Future[Any]:
        waiter = asyncio.get_running_loop().create_future()
        if not self._submits:
            asyncio.get_running_loop().call_soon(self._send)
        self._submits.append((job, inputs, key, waiter))
        return waiter

    def _send(self) -> None:
        batch = [s for s in self._submits if not s[3].done()]  # cancelled while waiting: never sent
        self._submits = []
        if not batch:
            return
        try:
            futures = self.client.map(_run_block, [s[0] for s in batch], [s[1] for s in batch],
                                      key=[s[2] for s in batch], pure=False)
        except Exception as e:  # noqa: BLE001 - each attempt of the batch fails with it
            for s in batch:
                s[3].set_exception(e)
            return
        for s, f in zip(batch, futures):
            s[3].set_result(f)

    def stop(self, future: Any, key: str) -> asyncio.Future[str | None]:
        """Cancel the future and tell a running block to stop; resolves to its worker, if running.

        All the cancels of one loop turn (an interrupt cancels every running item of a
        fan-out at once) go as one ``cancel`` and one broadcast to the workers.
        """
        waiter: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        if not self._stops:
            asyncio.get_running_loop().call_soon(self._send_stops)
        self._stops.append((future, key, waiter))
        return waiter

    def _send_stops(self) -> None:
        batch, self._stops = self._stops, []
        task = asyncio.ensure_future(self._stop_batch(batch))
        _keepers.add(task)  # type: ignore[arg-type]
        task.add_done_callback(_keepers.discard)  # type: ignore[arg-type]

    async def _stop_batch(self, batch: list[tuple[Any, str, asyncio.Future[str | None]]]) -> None:
        where: dict[str, str] = {}
        try:
            await self.client.cancel([f for f, _, _ in batch], reason="parcoord_nb: timeout or cancel")
            replies = await self.client.run(_stop_tasks, [k for _, k, _ in batch], on_error="return")
            for worker, keys in replies.items():
                if isinstance(keys, list):
                    where.update((k, worker) for k in keys)
        except Exception:  # noqa: BLE001 - cannot tell: report every one as possibly running
            where = {k: "" for _, k, _ in batch}
        for _, key, waiter in batch:
            if not waiter.done():
                waiter.set_result(where.get(key))

    def fetch(self, future: Any) -> asyncio.Future[Any]:
        waiter = asyncio.get_running_loop().create_future()
        if not self._fetches:
            asyncio.get_running_loop().call_soon(self._gather)
        self._fetches.append((future, waiter))
        return waiter

    def _gather(self) -> None:
        batch = [f for f in self._fetches if not f[1].done()]
        self._fetches = []
        if batch:
            task = asyncio.ensure_future(self._gather_batch(batch))
            _keepers.add(task)  # type: ignore[arg-type]
            task.add_done_callback(_keepers.discard)  # type: ignore[arg-type]

    async def _gather_batch(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            try:
                results = await self.client.gather([f for f, _ in batch])
            except Exception:  # noqa: BLE001 - one bad fetch (lost data?): fetch each on its own
                for future, waiter in batch:
                    try:
                        result = await future
                    except Exception as e:  # noqa: BLE001 - that attempt fails with it
                        if not waiter.done():
                            waiter.set_exception(e)
                    else:
                        if not waiter.done():
                            waiter.set_result(result)
                return
        except asyncio.CancelledError:  # the loop is going away
            for _, waiter in batch:
                waiter.cancel()
            raise
        for (_, waiter), result in zip(batch, results):
            if not waiter.done():
                waiter.set_result(result)


def _take_detail(unit: Unit, stdout: str, stderr: str, progress: Any, started: float, ended: float,
                 worker: str) -> None:
    scope = unit.scope
    if stdout:
        scope.stdout.write(stdout)
    if stderr:
        scope.stderr.write(stderr)
    if progress is not None:
        scope.progress = progress
        if scope.on_progress is not None:
            scope.on_progress(*progress)
    unit.started, unit.ended, unit.worker = started, ended, worker


def _load_here(data: bytes, task: str, what: str) -> Any:
    try:
        return pickle.loads(data)
    except Exception as e:  # noqa: BLE001
        raise TypeError(
            f"task '{task}' sent back {what} from the dask worker, but it cannot be loaded in the kernel "
            f"({type(e).__name__}: {e}): install the same packages here as on the workers, or use "
            "--backend local"
        ) from None


def _dumps(value: Any) -> bytes:
    # pickle first (fast, and what most values need); cloudpickle for what pickle
    # cannot do or would pickle by reference to __main__, which a worker does not have.
    try:
        data = pickle.dumps(value, protocol=5)
    except Exception:  # noqa: BLE001
        return cloudpickle.dumps(value, protocol=5)
    if b"__main__" in data:
        return cloudpickle.dumps(value, protocol=5)
    return data


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


# -- on the worker -------------------------------------------------------------

_running: dict[str, CancelFlag] = {}  # key -> cancel flag of the block running under it
_capture_ready = False
_capture_lock = threading.Lock()


def _worker_ready() -> bool:
    """Run on each worker when a client connects: importing this module is the check."""
    return True


def _stop_tasks(keys: list[str]) -> list[str]:
    """On a worker: tell the blocks running under ``keys`` to stop; the keys that were running."""
    found = []
    for key in keys:
        flag = _running.get(key)
        if flag is not None:
            flag.set()
            found.append(key)
    return found


@functools.lru_cache(maxsize=512)
def _compiled(source: str, filename: str, first_line: int) -> Any:
    block = compile_source(source, filename, first_line)
    # The worker has no copy of the cell: give linecache the block's lines at their
    # cell line numbers, so tracebacks formatted here quote them too.
    entry = linecache.cache.get(filename)
    lines = list(entry[2]) if entry is not None else []
    body = source.splitlines(True)
    if body and not body[-1].endswith("\n"):
        body[-1] += "\n"
    end = first_line - 1 + len(body)
    if len(lines) < end:
        lines.extend("\n" for _ in range(end - len(lines)))
    lines[first_line - 1:end] = body
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    return block


class _Progress:
    """``progress()`` on a worker: at most one event per PROGRESS_INTERVAL, the last one always."""

    __slots__ = ("_worker", "_topic", "_key", "_lock", "_sent", "_pending", "_timer")

    def __init__(self, worker: Any, topic: str, key: str) -> None:
        self._worker = worker
        self._topic = topic
        self._key = key
        self._lock = threading.Lock()
        self._sent = 0.0
        self._pending: list[Any] | None = None
        self._timer: threading.Timer | None = None

    def __call__(self, done: Any, total: Any, message: Any) -> None:
        msg = [self._key, _number(done), _number(total), None if message is None else str(message)]
        now = time.monotonic()
        with self._lock:
            self._pending = msg
            wait = self._sent + PROGRESS_INTERVAL - now
            if wait <= 0:
                self._send_locked(now)
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            self._send_locked(time.monotonic())

    def _send_locked(self, now: float) -> None:
        if self._pending is None:
            return
        msg, self._pending = self._pending, None
        self._sent = now
        try:
            self._worker.log_event(self._topic, msg)
        except Exception:  # noqa: BLE001 - progress is best effort; the result carries the last one
            pass

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._pending = None  # the last value goes back with the result


def _number(x: Any) -> float | None:
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _clip(text: str) -> str:
    if len(text) <= OUTPUT_LIMIT:
        return text
    half = OUTPUT_LIMIT // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters left out ...]\n{text[-half:]}"


def _run_block(job: tuple[Any, ...], inputs: dict[str, bytes]) -> _Outcome:
    """Run one attempt of one block on a dask worker (the function dask executes)."""
    global _capture_ready
    source, filename, first_line, task, item, writes, topic, key = job
    started = time.time()
    worker = distributed.get_worker()
    if not _capture_ready:
        with _capture_lock:
            if not _capture_ready:
                capture.install()  # for good: the proxies pass through writes outside a task
                _capture_ready = True
    stdout, stderr = OutputBuffer(), OutputBuffer()
    stop = CancelFlag()
    report = _Progress(worker, topic, key)
    scope = TaskScope(task, stdout, stderr, stop, report, item)  # type: ignore[arg-type]
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    result = None
    sent: dict[str, bytes] = {}
    error: BaseException | None = None
    token = capture.enter_scope(scope)
    _running[key] = stop
    try:
        for name, data in inputs.items():
            ns[name] = _load_input(data, task, name)
        block = _compiled(source, filename, first_line)
        if block.is_async:
            asyncio.run(eval(block.code, ns))
        else:
            exec(block.code, ns)
        value = ns.pop(RESULT_NAME, None)
        if value is not None:
            result = _dumps_out(value, task, "its result (the value of its last expression)")
        for name in writes:
            if name in ns:
                sent[name] = _dumps_out(ns[name], task, f"'{name}'")
    except BaseException as e:  # noqa: BLE001 - SystemExit in a block must not stop the worker
        error = e
    finally:
        capture._current.reset(token)
        _running.pop(key, None)
        report.close()
    ended = time.time()
    detail = (_clip(stdout.getvalue()), _clip(stderr.getvalue()), scope.progress, started, ended,
              worker.address)
    stdout.close()
    stderr.close()
    if error is not None:
        raise _ship(error, detail, filename, task) from None
    return _Outcome(result, sent, *detail)


def _load_input(data: bytes, task: str, name: str) -> Any:
    try:
        return pickle.loads(data)
    except Exception as e:  # noqa: BLE001
        raise TypeError(
            f"task '{task}' reads '{name}', which the dask worker cannot load ({type(e).__name__}: {e}): "
            "install the same packages on the workers as in the kernel, or use --backend local"
        ) from None


def _dumps_out(value: Any, task: str, what: str) -> bytes:
    try:
        return _dumps(value)
    except Exception as e:  # noqa: BLE001
        raise TypeError(
            f"task '{task}' produced {what}, a {_type_name(value)}, which cannot be sent back from the "
            f"dask worker ({type(e).__name__}: {e}): keep it inside the block (del it, or make it in a "
            "function), return something picklable, or run this cell with --backend local"
        ) from None


def _ship(error: BaseException, detail: tuple[Any, ...], filename: str, task: str) -> _BlockError:
    from tblib import Traceback

    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next  # the user's frames start at the block's own
    try:
        tb_data = Traceback(tb).as_dict() if tb is not None else None
    except Exception:  # noqa: BLE001
        tb_data = None
    error.__traceback__ = None
    try:
        payload = _dumps((error, detail, tb_data))  # an exception class defined in a block goes by value
        pickle.loads(payload)
    except Exception:  # noqa: BLE001 - an exception that does not pickle still gets reported
        import traceback

        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        stand_in = RuntimeError(f"{text} (the original {_type_name(error)} could not be sent from the worker)")
        payload = _dumps((stand_in, detail, tb_data))
    return _BlockError(f"task '{task}' failed: {type(error).__name__}: {_first_line(error)}", payload)


def _first_line(error: BaseException) -> str:
    try:
        text = str(error).strip().splitlines()
    except Exception:  # noqa: BLE001
        return ""
    return text[0][:200] if text else ""
