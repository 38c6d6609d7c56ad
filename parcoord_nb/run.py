"""The run object: every task's outcome and timing, the summary, and exports.

A :class:`Run` is live while the engine works (statuses change, attempts are added)
and complete once ``run.status`` is no longer ``"running"``. Times are seconds since
the run started.
"""

from __future__ import annotations

import asyncio
import json
import threading
import traceback
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .capture import DisplayLog, OutputBuffer
from .errors import RunError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .plan import Plan

__all__ = ["Attempt", "Run", "Summary", "TaskRecord"]

# The cell's final error names at most this many tasks: it must stay one readable line
# even when thousands failed (the report and run.failed have them all).
MESSAGE_NAMES = 10

FINAL = frozenset({"done", "failed", "skipped", "cancelled", "timeout"})


@dataclass(slots=True)
class Attempt:
    """One try at running a block (one per item of a fan-out)."""

    number: int
    start: float
    end: float | None = None
    status: str = "running"  # done, failed, timeout, cancelled
    error: BaseException | None = None
    item: int | None = None
    lane: int = 0  # concurrency slot it ran in (for task-stream Gantt lanes)
    worker: str | None = None

    @property
    def duration(self) -> float:
        return (self.end if self.end is not None else self.start) - self.start


@dataclass(eq=False)
class TaskRecord:
    """One task of a run: its status, result, error, output and timing."""

    name: str
    title: str
    reads: frozenset[str]
    writes: frozenset[str]
    uses: tuple[str, ...] = ()
    is_async: bool = False
    status: str = "queued"  # queued, running, retrying, done, failed, skipped, cancelled, timeout
    result: Any = None
    error: BaseException | None = None
    reason: str | None = None  # why skipped / cancelled / timed out
    history: list[Attempt] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    items: int | None = None  # fan-out: number of subtasks
    items_done: int = 0
    timeout: float | None = None
    hard_timeout: bool = True
    abandoned: int = 0  # worker threads still running after the task ended
    progress: tuple[float, float | None, str | None] | None = None
    stdout_buffer: OutputBuffer = field(default_factory=OutputBuffer, repr=False)
    stderr_buffer: OutputBuffer = field(default_factory=OutputBuffer, repr=False)
    displays: DisplayLog = field(default_factory=DisplayLog, repr=False)  # rich display() outputs

    @property
    def attempts(self) -> int:
        """How many times the block was tried (for a fan-out: the most any item took)."""
        if self.items is None:
            return len(self.history)
        counts: dict[int | None, int] = {}
        for a in self.history:
            counts[a.item] = counts.get(a.item, 0) + 1
        return max(counts.values(), default=0)

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    @property
    def busy(self) -> float:
        """Seconds of work done: the sum of all attempts (what a sequential run would take)."""
        return sum(a.duration for a in self.history)

    @property
    def stdout(self) -> str:
        return self.stdout_buffer.getvalue()

    @property
    def stderr(self) -> str:
        return self.stderr_buffer.getvalue()

    @property
    def traceback(self) -> str:
        """The error's traceback, showing the user's code, not parcoord_nb's."""
        return format_error(self.error) if self.error is not None else ""

    def __repr__(self) -> str:
        d = f"{self.duration:.3f}s" if self.duration is not None else "-"
        return f"<TaskRecord {self.name!r} {self.status} {d}>"


@dataclass(frozen=True)
class Summary:
    """Sequential sum vs parallel wall time."""

    sequential_s: float
    wall_s: float
    saved_s: float
    speedup: float
    critical_path_s: float
    critical_path: tuple[str, ...]
    estimate_s: float | None  # critical path by estimate=, when every task on it had one
    counts: Mapping[str, int]

    def __repr__(self) -> str:
        from .view.text import summary_text

        return f"<Summary {summary_text(self)}>"


class Run:
    """A ``%%parallel`` run: tasks, results, summary, plan, and its exports."""

    def __init__(self, run_id: str, plan: Plan, options: Mapping[str, Any]) -> None:
        self.id = run_id
        self.plan = plan
        self.options = dict(options)
        self.status = "running"
        self.error: BaseException | None = None  # prelude failure or internal error
        self.backend_note: str | None = None
        self.cancel_reason: str | None = None
        self.cancelled_at: float | None = None  # when the interrupt or cancel reached the engine
        self.started_at: float = 0.0  # epoch seconds
        self.wall_end: float | None = None
        self.tasks: dict[str, TaskRecord] = {
            name: TaskRecord(
                name=name,
                title=t.spec.label,
                reads=t.reads,
                writes=t.writes,
                uses=tuple(str(u) for u in t.uses),
                is_async=t.is_async,
                items=0 if t.spec.fanout is not None else None,
            )
            for name, t in plan.tasks.items()
        }
        self._task: asyncio.Future[Run] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done = threading.Event()
        self._cancel_requested = False
        self._cancel_hook: Any = None
        # Called with the run, in the waiting code's context, each time `await run` or
        # run.wait() returns: the notebook view uses it to report in the waiting cell.
        self._wait_hooks: list[Any] = []
        # When set and it returns a bundle, _repr_mimebundle_ shows that instead.
        self._repr_hook: Any = None

    # -- outcomes ----------------------------------------------------------
    @property
    def results(self) -> dict[str, Any]:
        """name -> result, for the tasks that finished."""
        return {n: r.result for n, r in self.tasks.items() if r.status == "done"}

    @property
    def failed(self) -> list[str]:
        return [n for n, r in self.tasks.items() if r.status in ("failed", "timeout")]

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def summary(self) -> Summary:
        recs = list(self.tasks.values())
        starts = [a.start for r in recs for a in r.history]
        ends = [a.end for r in recs for a in r.history if a.end is not None]
        wall = (max(ends) - min(starts)) if starts and ends else 0.0
        seq = sum(r.busy for r in recs)
        durations = {n: r.busy if r.items is None else (r.duration or 0.0) for n, r in self.tasks.items()}
        path, crit = self.plan.critical_path(durations)
        est_path, est = self.plan.critical_path()
        have_estimates = all(self.plan.tasks[n].spec.options.estimate for n in est_path) and est_path
        counts: dict[str, int] = {}
        for r in recs:
            counts[r.status] = counts.get(r.status, 0) + 1
        return Summary(
            sequential_s=seq,
            wall_s=wall,
            saved_s=seq - wall,
            speedup=(seq / wall) if wall > 0 else 1.0,
            critical_path_s=crit,
            critical_path=tuple(path),
            estimate_s=est if have_estimates else None,
            counts=counts,
        )

    def raise_for_status(self) -> Run:
        """Raise :class:`RunError` naming the tasks that did not succeed; else return self."""
        if self.error is not None and self.status == "failed":
            raise RunError(
                f"the prelude failed with {type(self.error).__name__}: {self.error}; no task ran",
                run=self,
            ) from self.error
        bad = self.failed
        if bad:
            parts = []
            for n in bad[:MESSAGE_NAMES]:
                r = self.tasks[n]
                err = r.error
                kind = "hard timeout" if r.hard_timeout else "soft timeout, its thread was left running"
                what = f"timed out after {r.timeout:g}s: {kind}" if r.status == "timeout" and r.timeout else (
                    _error_line(err) if err is not None else r.status
                )
                # Exhausted retries: say so ("after 3 attempts" is a note on the error).
                notes = [x for x in getattr(err, "__notes__", ()) if isinstance(x, str) and x.startswith("after ")]
                parts.append(f"{n} ({what}{', ' + notes[-1] if notes else ''})")
            skipped = [n for n, r in self.tasks.items() if r.status == "skipped"]
            tail = f"; skipped: {_names(skipped)}" if skipped else ""
            noun = "task" if len(bad) == 1 else "tasks"
            listed = ", ".join(parts)
            if len(bad) > MESSAGE_NAMES:
                listed += f" and {len(bad) - MESSAGE_NAMES} more (run.failed lists them all)"
            raise RunError(f"{len(bad)} {noun} failed: {listed}{tail}", failed=bad, run=self)
        if self.status == "cancelled":
            why = self.cancel_reason or "the run was cancelled"
            kept = sum(r.status == "done" for r in self.tasks.values())
            raise RunError(f"{why}: {kept} of {len(self.tasks)} tasks had finished and their "
                           "results are kept; the others were cancelled", run=self)
        return self

    # -- control -------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the run: queued tasks are not started, running ones are cancelled.

        Safe to call from any thread and from widget callbacks.
        """
        if self.done:
            return
        self._cancel_requested = True
        task, loop = self._task, self._loop
        if task is None or loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task.cancel("cancelled by run.cancel()")
        else:
            loop.call_soon_threadsafe(task.cancel, "cancelled by run.cancel()")

    def __await__(self) -> Generator[Any, None, Run]:
        """Wait for the run to end. Interrupting the wait cancels the run."""
        if self._task is not None and not self._task.done():
            try:
                here = asyncio.get_running_loop()
            except RuntimeError:
                here = None
            if here is None or here is self._loop:
                yield from self._task.__await__()
            else:
                # The run lives on another loop (a private one in a worker thread):
                # its Task cannot be awaited from here, so wait for the done flag.
                try:
                    yield from here.run_in_executor(None, self._done.wait).__await__()
                except asyncio.CancelledError:
                    self.cancel()
                    raise
        self._run_wait_hooks()
        return self

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends (from code that cannot ``await``)."""
        if not self._done.is_set() and self._loop is not None and _runs_loop_in_this_thread(self._loop):
            raise RuntimeError(
                f"run.wait() would block the event loop that runs {self.id}, so it could "
                "never finish: in a notebook cell write `await run` instead"
            )
        if not self._done.wait(timeout):
            raise TimeoutError(f"run {self.id} still running after {timeout}s")
        self._run_wait_hooks()
        return self

    def _run_wait_hooks(self) -> None:
        for hook in list(self._wait_hooks):
            hook(self)

    def _finish(self) -> None:
        self._done.set()

    # -- views and exports ---------------------------------------------------
    def gantt(self, **kwargs: Any) -> Figure:
        """A matplotlib Figure with one bar per attempt on a shared time axis."""
        from .view.gantt import gantt_figure

        return gantt_figure(self, **kwargs)

    def to_chrome_trace(self) -> dict[str, Any]:
        """The run as Chrome trace JSON (open in chrome://tracing or Perfetto)."""
        events: list[dict[str, Any]] = []
        for r in self.tasks.values():
            for a in r.history:
                name = r.name if a.item is None else f"{r.name}[{a.item}]"
                events.append({
                    "name": name,
                    "cat": r.status,
                    "ph": "X",
                    "ts": round(a.start * 1e6, 3),
                    "dur": round(a.duration * 1e6, 3),
                    "pid": 1,
                    "tid": a.lane,
                    "args": {"task": r.name, "attempt": a.number, "status": a.status,
                             "title": r.title, **({"item": a.item} if a.item is not None else {}),
                             **({"error": _first_line(a.error)} if a.error is not None else {})},
                })
        return {"traceEvents": events, "displayTimeUnit": "ms",
                "otherData": {"run": self.id, "status": self.status}}

    def to_json(self) -> str:
        """Statuses, timings and result previews as JSON (results themselves are not serialised)."""
        s = self.summary
        return json.dumps({
            "id": self.id,
            "status": self.status,
            "summary": {k: getattr(s, k) for k in ("sequential_s", "wall_s", "saved_s", "speedup", "critical_path_s")},
            "tasks": {
                n: {"status": r.status, "duration": r.duration, "attempts": r.attempts,
                    "error": None if r.error is None else f"{type(r.error).__name__}: {r.error}",
                    "reason": r.reason}
                for n, r in self.tasks.items()
            },
        })

    def __repr__(self) -> str:
        from .view.text import run_text

        return run_text(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .view.report import report_bundle

        if self._repr_hook is not None:
            bundle = self._repr_hook()
            if bundle is not None:
                return bundle
        return report_bundle(self)


def _runs_loop_in_this_thread(loop: asyncio.AbstractEventLoop) -> bool:
    # asyncio's loops record the thread they run in while they run.
    thread_id = getattr(loop, "_thread_id", None)
    return thread_id is not None and thread_id == threading.get_ident()


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MESSAGE_NAMES])
    return shown + (f" and {len(names) - MESSAGE_NAMES} more" if len(names) > MESSAGE_NAMES else "")


def _first_line(err: BaseException | None) -> str:
    if err is None:
        return ""
    try:
        text = str(err).strip().splitlines()
    except Exception:  # noqa: BLE001 - an exception whose str() raises still gets reported
        return f"<str() of {type(err).__name__} failed>"
    return text[0][:200] if text else type(err).__name__


def _error_line(err: BaseException) -> str:
    """``ValueError: boom``, or just ``KeyboardInterrupt`` when there is no message."""
    name = type(err).__name__
    first = _first_line(err)
    return name if first == name else f"{name}: {first}"


def format_error(err: BaseException) -> str:
    """Format a task's exception, hiding parcoord_nb's own frames."""
    import os

    here = os.path.dirname(__file__)
    tb = err.__traceback__
    frames = traceback.extract_tb(tb)
    keep = [f for f in frames if not f.filename.startswith(here)]
    lines = ["Traceback (most recent call last):\n"] if keep else []
    lines += traceback.format_list(keep)
    lines += traceback.format_exception_only(type(err), err)
    return "".join(lines)
