"""The Gantt chart of a run, as a ``matplotlib.figure.Figure`` (no pyplot).

pyplot would register the figure with the inline backend, which then shows it a
second time when the cell ends. A bare Figure is shown exactly where we display it.

Up to ``MAX_ROWS`` tasks get a row each (fan-out subtasks share their task's row);
beyond that, rows are concurrency lanes, like a task stream, so 10,000 tasks draw
as fast as 10.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..run import Run

MAX_ROWS = 40
COLORS = {
    "done": "#2e7d32",
    "failed": "#c62828",
    "timeout": "#ef6c00",
    "cancelled": "#757575",
    "running": "#1565c0",
}


def gantt_figure(run: Run, *, width: float = 9.0, by: str = "auto") -> Figure:
    """Draw one bar per attempt on a shared time axis; the critical path is outlined."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    records = list(run.tasks.values())
    lanes = by == "lane" or (by == "auto" and len(records) > MAX_ROWS)
    crit = set(run.summary.critical_path) if run.status == "done" else set()

    if lanes:
        labels, bars = _by_lane(run)
    else:
        labels, bars = _by_task(run)

    n = max(len(labels), 1)
    fig = Figure(figsize=(width, min(1.2 + 0.38 * n, 14)), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for (row, status, outline), spans in bars.items():
        ax.broken_barh(
            spans, (row - 0.38, 0.76),
            facecolors=COLORS.get(status, "#9e9e9e"),
            edgecolors="#000000" if outline else "none",
            linewidth=1.4 if outline else 0,
        )
    if not lanes:
        for row, r in enumerate(records):
            if r.status == "skipped":
                ax.text(0, row, "  skipped: " + (r.reason or ""), va="center", fontsize=8, color="#616161")
            if r.timeout and any(a.status == "timeout" for a in r.history):
                kind = "hard" if r.hard_timeout else "soft"
                ax.text(r.end or 0, row, f"  timeout {r.timeout:g}s ({kind})", va="center", fontsize=8,
                        color=COLORS["timeout"])
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since start")
    s = run.summary
    ax.set_title(
        f"{run.id}: {len(records)} tasks, wall {s.wall_s:.2f}s, sequential {s.sequential_s:.2f}s, "
        f"speedup {s.speedup:.2f}x" + (" (lanes = concurrency slots)" if lanes else ""),
        fontsize=9,
    )
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    used = sorted({status for (_, status, _) in bars})
    handles = [Patch(color=COLORS.get(st, "#9e9e9e"), label=st) for st in used]
    if crit and not lanes:
        handles.append(Patch(facecolor="white", edgecolor="black", label="★ critical path"))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _by_task(run: Run) -> tuple[list[str], dict[tuple[int, str, bool], list[tuple[float, float]]]]:
    crit = set(run.summary.critical_path) if run.status == "done" else set()
    labels: list[str] = []
    bars: dict[tuple[int, str, bool], list[tuple[float, float]]] = {}
    for row, r in enumerate(run.tasks.values()):
        label = r.title if r.title == r.name else f"{r.title} ({r.name})"
        if r.items is not None:
            label += f" [{r.items_done}/{r.items}]"
        labels.append(("★ " if r.name in crit else "") + label[:48])
        for a in r.history:
            end = a.end if a.end is not None else a.start
            bars.setdefault((row, a.status, r.name in crit), []).append((a.start, max(end - a.start, 1e-3)))
    return labels, bars


def _by_lane(run: Run) -> tuple[list[str], dict[tuple[int, str, bool], list[tuple[float, float]]]]:
    bars: dict[tuple[int, str, bool], list[tuple[float, float]]] = {}
    top = 0
    for r in run.tasks.values():
        for a in r.history:
            end = a.end if a.end is not None else a.start
            bars.setdefault((a.lane, a.status, False), []).append((a.start, max(end - a.start, 1e-4)))
            top = max(top, a.lane)
    return [f"slot {i}" for i in range(top + 1)], bars


def figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
