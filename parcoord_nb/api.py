"""Run cells from Python: ``run``, ``run_async``, ``plan`` and ``last_run``.

These are what the ``%%parallel`` magic uses too; the magic adds option parsing and
rendering. ``run`` works with or without a running event loop: when one is running
in this thread (a notebook cell), it runs a private loop in a worker thread rather
than nesting loops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

from .engine import Engine, RunOptions
from .events import Observer
from .plan import Plan, build_plan
from .run import Run

__all__ = ["last_run", "run", "run_async", "start"]

_last: Run | None = None
_last_lock = threading.Lock()


def last_run() -> Run | None:
    """The most recently started run in this process, or None."""
    return _last


def _remember(r: Run) -> None:
    global _last
    with _last_lock:
        _last = r


def make_engine(
    source: str | Plan,
    namespace: MutableMapping[str, Any] | None = None,
    *,
    first_line: int = 1,
    observers: Iterable[Observer] = (),
    **options: Any,
) -> Engine:
    """Plan ``source`` (raising PlanError if it cannot run) and prepare an engine."""
    plan = source if isinstance(source, Plan) else build_plan(source, first_line=first_line)
    limits = options.pop("limits", None) or {}
    engine = Engine(plan, namespace, options=RunOptions(limits=limits, **options), observers=observers)
    _remember(engine.run)
    return engine


async def run_async(
    source: str | Plan,
    namespace: MutableMapping[str, Any] | None = None,
    *,
    observers: Iterable[Observer] = (),
    **options: Any,
) -> Run:
    """Run a cell's tasks on the running loop and return the finished :class:`Run`.

    ``namespace`` is the dict the prelude runs in and finished tasks write to (a new
    one by default). Options are those of ``%%parallel``, as keywords:
    ``max_concurrency``, ``limits={"web": 4}``, ``timeout``, ``retries``,
    ``on_error="continue"|"cancel"``, ``sequential``, ``backend``, ``scheduler``.
    Failed tasks do not raise; call ``run.raise_for_status()`` for that.
    """
    engine = make_engine(source, namespace, observers=observers, **options)
    await engine.start()
    return engine.run


def start(
    source: str | Plan,
    namespace: MutableMapping[str, Any] | None = None,
    *,
    observers: Iterable[Observer] = (),
    **options: Any,
) -> Run:
    """Start a run in the background on the running loop; ``await run`` waits for it."""
    engine = make_engine(source, namespace, observers=observers, **options)
    return engine.start()


def run(
    source: str | Plan,
    namespace: MutableMapping[str, Any] | None = None,
    *,
    observers: Iterable[Observer] = (),
    **options: Any,
) -> Run:
    """Run a cell's tasks to the end and return the :class:`Run` (same options as run_async)."""
    engine = make_engine(source, namespace, observers=observers, **options)
    return run_engine_blocking(engine)


def run_engine_blocking(engine: Engine) -> Run:
    """Run an engine from synchronous code, never nesting event loops.

    With no loop running in this thread, ``asyncio.run`` does it. Inside a running loop
    (a notebook cell that could not be made async) a private loop in a worker thread
    runs it; Ctrl-C / kernel interrupt cancels the run and waits for the wind-down.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_execute(engine))
        return engine.run

    box: dict[str, Any] = {}
    ready = threading.Event()

    def worker() -> None:
        try:
            asyncio.run(_execute(engine))
            box["run"] = engine.run
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = e
        finally:
            ready.set()

    thread = threading.Thread(target=worker, name=f"parcoord-loop-{engine.run.id}", daemon=True)
    thread.start()
    try:
        while not ready.wait(0.1):
            pass
    except KeyboardInterrupt:
        engine.run.cancel_reason = engine.run.cancel_reason or "the kernel was interrupted"
        engine.run.cancel()
        try:
            ready.wait(5.0)
        except KeyboardInterrupt:
            # A second interrupt is a hard stop: cancelling again ends the wind-down now.
            engine.run.cancel()
            ready.wait(1.0)
        raise
    if "error" in box:
        raise box["error"]
    return box["run"]


async def _execute(engine: Engine) -> None:
    # Returns nothing on purpose: asyncio.run() formats its main task's repr while
    # checking the SIGINT handler, and the repr of a task holding a Run renders the
    # whole run as text, twice per call, which is seconds for 10,000 tasks.
    # The engine's own Task, not `await run`: that is the user's wait, and runs the
    # run's wait hooks (the notebook reports there), which this thread must not.
    await engine.start()._task  # type: ignore[misc]
