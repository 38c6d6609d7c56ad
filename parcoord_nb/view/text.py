"""Plain-text renderings of plans and runs: the fallback everywhere, and ``repr``."""

from __future__ import annotations

import reprlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..plan import Plan
    from ..run import Run, Summary, TaskRecord

_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8

MARK = {"done": "✓", "failed": "✗", "timeout": "⏱", "skipped": "↷", "cancelled": "■",
        "running": "▶", "retrying": "↻", "queued": "·"}


def preview(value: Any, limit: int = 120) -> str:
    """A short, safe repr: a result whose repr raises or is huge cannot break the report."""
    try:
        text = _repr.repr(value)
    except Exception as e:  # noqa: BLE001 - any repr failure becomes a placeholder
        return f"<repr failed: {type(e).__name__}: {e}>"[:limit]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


def plan_text(plan: Plan) -> str:
    lines = [f"Plan: {len(plan.tasks)} tasks in {len(plan.waves)} waves"]
    for t in plan.tasks.values():
        kind = "async" if t.is_async else "thread"
        fan = f" for {t.spec.fanout.target} in {t.spec.fanout.expr}" if t.spec.fanout else ""
        lines.append(f"  {t.name}{fan} [{kind}] (line {t.spec.line}) {t.spec.title}".rstrip())
        lines.append(f"      reads: {', '.join(sorted(t.reads)) or '-'}; writes: {', '.join(sorted(t.writes)) or '-'}"
                     + (f"; uses: {', '.join(map(str, t.uses))}" if t.uses else ""))
    lines.append("Dependencies:")
    if not plan.edges:
        lines.append("  none")
    for e in plan.edges:
        lines.append(f"  {e.src} -> {e.dst}: {e.reason}")
    lines.append("Independence check:")
    for ok, text in plan.verdict:
        lines.append(f"  {'✓' if ok else '✗'} {text}")
    lines.append("Waves:")
    for i, wave in enumerate(plan.waves, 1):
        lines.append(f"  {i}: {', '.join(wave)}")
    path, est = plan.critical_path()
    if est:
        lines.append(f"Critical path (estimates): {' -> '.join(path)} = {seconds(est)}")
    return "\n".join(lines)


def summary_text(s: Summary) -> str:
    text = (f"sequential {seconds(s.sequential_s)} · parallel {seconds(s.wall_s)} · "
            f"saved {seconds(max(s.saved_s, 0.0))} · speedup {s.speedup:.2f}x · "
            f"critical path {seconds(s.critical_path_s)} ({' -> '.join(s.critical_path)})")
    if s.estimate_s is not None:
        text += f" · estimated {seconds(s.estimate_s)}"
    return text


def task_line(r: TaskRecord) -> str:
    status = r.status if r.items is None else f"{r.status} {r.items_done}/{r.items}"
    tail = ""
    if r.error is not None:
        tail = f"{type(r.error).__name__}: {_clip(str(r.error), 100)}"
    elif r.reason and r.status != "done":
        tail = r.reason
    elif r.status == "done":
        tail = f"-> {preview(r.result, 80)}"
    att = f" ×{r.attempts}" if r.attempts > 1 else ""
    return f"  {MARK.get(r.status, '?')} {r.name:<14} {status:<12} {seconds(r.duration):>9}{att}  {tail}".rstrip()


def run_text(run: Run) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(run.summary.counts.items()))
    lines = [f"<Run {run.id} {run.status}: {counts}>"]
    lines += [task_line(r) for r in run.tasks.values()]
    if run.error is not None:
        lines.append(f"  prelude failed: {type(run.error).__name__}: {run.error}")
    lines.append("  " + summary_text(run.summary))
    return "\n".join(lines)
