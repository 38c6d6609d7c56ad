"""The Gantt chart of a run, as a ``matplotlib.figure.Figure`` (no pyplot).

pyplot would register the figure with the inline backend, which then shows it a
second time when the cell ends. A bare Figure is shown exactly where we display it.

Up to ``MAX_ROWS`` tasks get a row each. Inside a fan-out's row its items are
stacked in sub-lanes (one per item running at once), and past ``MAX_SUBLANES`` items
at once the row shows how many ran at each moment instead of one bar per item, so a
10,000-item fan-out is one filled shape. Beyond ``MAX_ROWS`` tasks, rows are
concurrency lanes, like a task stream, grouped into at most ``MAX_LANES`` rows: 10,000
tasks draw in about the time 10 do. A run on dask workers (``by="worker"``, the
default when attempts ran on a cluster) gets one row per worker instead, its threads
stacked as sub-lanes, each bar named by its task while there are few.
"""

from __future__ import annotations

import heapq
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..run import Attempt, Run

MAX_ROWS = 40
MAX_SUBLANES = 8  # items at once that a fan-out row still draws one bar each
MAX_LANES = 48  # rows of the lane view; more concurrency slots share a row
COLORS = {
    "done": "#2e7d32",
    "failed": "#c62828",
    "timeout": "#ef6c00",
    "cancelled": "#757575",
    "running": "#1565c0",
}
_GREY = "#9e9e9e"

Bars = dict[tuple[float, float, str, bool], list[tuple[float, float]]]  # (y, height, status, outline) -> spans


def gantt_figure(run: Run, *, width: float = 9.0, by: str = "auto") -> Figure:
    """Draw one bar per attempt on a shared time axis; the critical path is outlined."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    records = list(run.tasks.values())
    if by == "auto" and _ran_on_workers(run):
        by = "worker"
    workers = by == "worker"
    lanes = by == "lane" or (by == "auto" and len(records) > MAX_ROWS)
    notes: list[tuple[float, float, str]] = []
    summary = run.summary  # once: it walks every attempt
    crit = set(summary.critical_path) if run.status == "done" else set()
    profiles: list[tuple[float, float, str, bool, list[Attempt]]] = []

    if workers:
        labels, bars, notes = _by_worker(run)
    elif lanes:
        labels, bars = _by_lane(run)
    else:
        labels, bars, profiles = _by_task(run, crit)

    n = max(len(labels), 1)
    fig = Figure(figsize=(width, min(1.2 + 0.38 * n, 14)), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for (y, height, status, outline), spans in bars.items():
        ax.broken_barh(
            spans, (y, height),
            facecolors=COLORS.get(status, _GREY),
            edgecolors="#000000" if outline else "none",
            linewidth=1.4 if outline else 0,
        )
    statuses = {status for (_, _, status, _) in bars}
    for y, height, status, outline, attempts in profiles:
        statuses |= _draw_profile(ax, y, height, attempts, outline)
    for x, y, text in notes:
        ax.text(x, y, " " + text, va="center", fontsize=7, color="#ffffff", clip_on=True)
    if not lanes and not workers:
        for row, r in enumerate(records):
            if r.status == "skipped":
                ax.text(0, row, "  skipped: " + (r.reason or ""), va="center", fontsize=8, color="#616161")
            if r.timeout and any(a.status == "timeout" for a in r.history):
                kind = "hard" if r.hard_timeout else "soft"
                ax.text(r.end or 0, row, f"  timeout {r.timeout:g}s ({kind})", va="center", fontsize=8,
                        color=COLORS["timeout"])
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first row on top
    ax.set_xlabel("seconds since start")
    s = summary
    ax.set_title(
        f"{run.id}: {len(records)} tasks, wall {s.wall_s:.2f}s, sequential {s.sequential_s:.2f}s, "
        f"speedup {s.speedup:.2f}x" + (" (lanes = concurrency slots)" if lanes else "")
        + (" (rows = dask workers)" if workers else ""),
        fontsize=9,
    )
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=COLORS.get(st, _GREY), label=st) for st in sorted(statuses)]
    if crit and not lanes and not workers:
        handles.append(Patch(facecolor="white", edgecolor="black", label="★ critical path"))
    if handles:
        # Above the axes, not inside them: inside, it hides the ends of the bars.
        ax.legend(handles=handles, fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                  ncol=len(handles), frameon=False, borderaxespad=0.2)
        ax.title.set_position((0.0, 1.0))
        ax.title.set_horizontalalignment("left")
    fig.tight_layout()
    return fig


def _span(a: Attempt, minimum: float) -> tuple[float, float]:
    end = a.end if a.end is not None else a.start
    return (a.start, max(end - a.start, minimum))


def _by_task(run: Run, crit: set[str]) -> tuple[list[str], Bars, list[tuple[float, float, str, bool, list[Attempt]]]]:
    labels: list[str] = []
    bars: Bars = {}
    profiles: list[tuple[float, float, str, bool, list[Attempt]]] = []
    for row, r in enumerate(run.tasks.values()):
        label = r.title if r.title == r.name else f"{r.title} ({r.name})"
        outline = r.name in crit
        top, height = row - 0.38, 0.76
        if r.items is not None and len(r.history) > 1:
            slots = _slots(r.history)
            count = max(slots, default=0) + 1
            label += f" [{r.items_done}/{r.items}]"
            if count > MAX_SUBLANES:
                # Too many at once for a bar each: draw how many ran at each moment.
                label += f" ≤{count} at once"
                profiles.append((top, height, r.status, outline, r.history))
            else:
                sub = height / count
                for a, slot in zip(r.history, slots):
                    key = (top + slot * sub + sub * 0.08, sub * 0.84, a.status, outline)
                    bars.setdefault(key, []).append(_span(a, 1e-3))
        else:
            if r.items is not None:
                label += f" [{r.items_done}/{r.items}]"
            for a in r.history:
                bars.setdefault((top, height, a.status, outline), []).append(_span(a, 1e-3))
        labels.append(("★ " if outline else "") + label[:56])
    return labels, bars, profiles


def _slots(attempts: list[Attempt]) -> list[int]:
    """The lowest free slot for each attempt in start order (interval partitioning)."""
    order = sorted(range(len(attempts)), key=lambda i: attempts[i].start)
    busy: list[tuple[float, int]] = []  # (end, slot) of the attempts still running
    free: list[int] = []
    slots = [0] * len(attempts)
    top = 0
    for i in order:
        a = attempts[i]
        while busy and busy[0][0] <= a.start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            slot = heapq.heappop(free)
        else:
            slot, top = top, top + 1
        slots[i] = slot
        heapq.heappush(busy, (a.end if a.end is not None else a.start, slot))
    return slots


def _draw_profile(ax: Any, top: float, height: float, attempts: list[Attempt], outline: bool) -> set[str]:
    """Fill the row with the number of attempts running over time (peak = full height).

    Attempts that did not succeed are drawn over it in their own colour, on the same
    scale, so 30 failures among 10,000 items still show where they happened.
    """
    import numpy as np

    def steps(group: list[Attempt]) -> tuple[Any, Any]:
        starts = np.fromiter((a.start for a in group), float, len(group))
        ends = np.fromiter((a.end if a.end is not None else a.start for a in group), float, len(group))
        times = np.concatenate([starts, ends])
        delta = np.concatenate([np.ones(len(group)), -np.ones(len(group))])
        # At equal times, ends (-1) before starts (+1): back-to-back attempts do not stack.
        order = np.lexsort((delta, times))
        return times[order], np.cumsum(delta[order])

    t, running = steps(attempts)
    peak = max(float(running.max()), 1.0)
    bottom = top + height
    shown = set()
    by_status: dict[str, list[Attempt]] = {}
    for a in attempts:
        by_status.setdefault(a.status, []).append(a)
    main = "done" if "done" in by_status else max(by_status, key=lambda k: len(by_status[k]))
    ax.fill_between(t, bottom, bottom - height * running / peak, step="post", linewidth=1.0 if outline else 0,
                    facecolor=COLORS.get(main, _GREY), edgecolor="#000000" if outline else "none")
    shown.add(main)
    for status, group in by_status.items():
        if status == main:
            continue
        gt, grun = steps(group)
        # Thin attempts would vanish at this scale: at least a tenth of the row.
        level = np.where(grun > 0, np.maximum(grun / peak, 0.1), 0.0)
        ax.fill_between(gt, bottom, bottom - height * level, step="post", linewidth=0,
                        facecolor=COLORS.get(status, _GREY))
        shown.add(status)
    return shown


def _by_lane(run: Run) -> tuple[list[str], Bars]:
    attempts = [a for r in run.tasks.values() for a in r.history]
    top = max((a.lane for a in attempts), default=0)
    slots = top + 1
    # More slots than rows: neighbouring slots share a row (their bars may overlap).
    per = -(-slots // MAX_LANES)
    rows = -(-slots // per)
    bars: Bars = {}
    for a in attempts:
        row = a.lane // per
        bars.setdefault((row - 0.38, 0.76, a.status, False), []).append(_span(a, 1e-4))
    if per == 1:
        labels = [f"slot {i}" for i in range(rows)]
    else:
        labels = [f"slots {i * per}-{min((i + 1) * per, slots) - 1}" for i in range(rows)]
    return labels, bars


def _ran_on_workers(run: Run) -> bool:
    # Local attempts say "loop" or "thread"; a dask worker is an address (tcp://host:port).
    return any(a.worker and "://" in a.worker for r in run.tasks.values() for a in r.history)


def _by_worker(run: Run) -> tuple[list[str], Bars, list[tuple[float, float, str]]]:
    """One row per worker; attempts that overlapped there (its threads) in sub-lanes."""
    where: dict[str, list[tuple[str, Attempt]]] = {}
    for r in run.tasks.values():
        for a in r.history:
            where.setdefault(a.worker or "", []).append((r.name, a))
    names = sorted(w for w in where if w) + ([""] if "" in where else [])
    labels = [f"worker {w.split('://', 1)[-1]}" if w else "not sent to a worker" for w in names]
    bars: Bars = {}
    notes: list[tuple[float, float, str]] = []
    named = sum(len(v) for v in where.values()) <= MAX_ROWS
    for row, w in enumerate(names):
        attempts = [a for _, a in where[w]]
        slots = _slots(attempts)
        count = max(slots, default=0) + 1
        sub = 0.76 / count
        for (task, a), slot in zip(where[w], slots):
            y = row - 0.38 + slot * sub
            bars.setdefault((y + sub * 0.08, sub * 0.84, a.status, False), []).append(_span(a, 1e-3))
            if named:
                notes.append((a.start, y + sub / 2, task if a.item is None else f"{task}[{a.item}]"))
    return labels, bars, notes


def figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
