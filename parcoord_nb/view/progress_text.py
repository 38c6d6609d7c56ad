"""Progress as text, where there are no widgets: terminal IPython, plain Python, or a
kernel without ipywidgets. One short line when the run's counts change, at most once
every ``min_interval`` seconds, and always the last one; the report follows as text.

Also home of :func:`make_view`, which picks the live view for a run and falls back
to this one whenever ipywidgets cannot be used, so a missing package is never an
ImportError for the user.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from .. import events as ev
from .live import STATUS_TEXT, clock_text, counts, status_of

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["TextProgress", "make_view", "progress_line"]

MIN_INTERVAL_S = 1.0
CHECK_INTERVAL_S = 0.05  # how often an event may look at the run's counts


def progress_line(run: Run, now: float, *, final: bool = False) -> str:
    """``run-3: 2/5 done · 1 running (fetch) · 1 failed · 1.2 s``."""
    c = counts(run)
    total = len(run.tasks)
    parts = [f"{c.get('done', 0):,}/{total:,} done"]
    running = [n for n, r in run.tasks.items() if status_of(r) in ("running", "retrying")]
    if running and not final:
        names = ", ".join(running[:3]) + (", …" if len(running) > 3 else "")
        parts.append(f"{len(running):,} running ({names})")
    for st in ("failed", "timeout", "skipped", "cancelled"):
        if c.get(st):
            parts.append(f"{c[st]:,} {STATUS_TEXT[st]}")
    head = f"{run.id} {run.status}" if final else run.id
    return f"{head}: " + " · ".join(parts) + f" · {clock_text(now)}"


class TextProgress:
    """An engine observer that prints :func:`progress_line` when it changes, rate-limited."""

    def __init__(self, run: Run, *, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 min_interval: float = MIN_INTERVAL_S, live: bool = True) -> None:
        self.run = run
        self.stream = stream
        self.clock = clock
        self.min_interval = min_interval
        self.live = live  # False: only the last line (background runs, whose prints would be lost)
        self.lines: list[str] = []
        self._t0: float | None = None
        self._last_at: float | None = None
        self._checked_at: float | None = None
        self._last_key: Any = None
        # Print from the context the view was made in: observers are also called from
        # inside tasks, whose stdout goes to the task, not to the user.
        self._ctx = contextvars.copy_context()

    def observe(self, event: ev.Event) -> None:
        now = self.clock()
        if self._t0 is None:
            self._t0 = now - event.t
        if isinstance(event, ev.RunFinished):
            self._emit(progress_line(self.run, event.t, final=True))
            return
        if not self.live or isinstance(event, (ev.TaskProgress, ev.TaskQueued, ev.RunStarted)):
            return
        # The clock first: counting 10,000 tasks on each of their 20,000 events would
        # cost more than the run.
        if self._last_at is not None and now - self._last_at < self.min_interval:
            return
        if self._checked_at is not None and now - self._checked_at < CHECK_INTERVAL_S:
            return
        self._checked_at = now
        key = tuple(sorted(counts(self.run).items()))
        if key == self._last_key:
            return
        self._last_key = key
        self._last_at = now
        self._emit(progress_line(self.run, now - self._t0))

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        self._ctx.copy().run(self._write, line)

    def _write(self, line: str) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        try:
            stream.write(line + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed terminal must not break the run
            pass

    # The magic treats every view alike.
    def bundle(self) -> None:
        return None

    def finish(self) -> None:
        pass

    def resend(self) -> None:
        pass

    def close(self) -> None:
        pass


def make_view(run: Run, *, widgets: bool = True, background: bool = False, in_kernel: bool = False,
              notes: tuple[str, ...] = (), formatter: Callable[[Any], dict[str, Any]] | None = None,
              gantt: bool = True) -> Any:
    """The live view for ``run``: the widget dashboard when it can work, else text.

    ``widgets`` says whether the frontend can show widgets (the magic knows: a kernel
    has a frontend, terminal IPython does not). ipywidgets missing or broken falls
    back to text, never raises. Without widgets, a background run in a kernel prints
    only its last line: earlier prints would land in whichever cell runs then.
    """
    if widgets:
        try:
            from .dashboard import Dashboard
        except Exception:  # noqa: BLE001 - ImportError, or an ipywidgets that fails to import
            pass
        else:
            return Dashboard(run, background=background, notes=notes, formatter=formatter, gantt=gantt)
    return TextProgress(run, live=not (background and in_kernel))
