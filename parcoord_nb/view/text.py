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


def error_text(err: BaseException) -> str:
    """``str(err)``, or a placeholder when that raises: a broken exception cannot break the report."""
    try:
        return str(err)
    except Exception as e:  # noqa: BLE001
        return f"<str() failed: {type(e).__name__}>"


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
        tail = f"{type(r.error).__name__}: {_clip(error_text(r.error), 100)}"
    elif r.reason and r.status != "done":
        tail = r.reason
    elif r.status == "done":
        tail = f"-> {preview(r.result, 80)}"
    if r.abandoned:
        tail += f" · {r.abandoned} thread(s) abandoned, still running; late results are discarded"
    att = f" ×{r.attempts}" if r.attempts > 1 else ""
    return f"  {MARK.get(r.status, '?')} {r.name:<14} {status:<12} {seconds(r.duration):>9}{att}  {tail}".rstrip()


# Tasks a report lists one by one; a cell of 10,000 tasks gets these rows and a count
# of the rest, so its report stays a few hundred KB (run.tasks still has every one).
ROW_LIMIT = 50


def rows_to_show(run: Run, limit: int = ROW_LIMIT) -> tuple[list[TaskRecord], dict[str, int]]:
    """The tasks to list, in cell order, and how many of the others there are per status.

    Tasks that did not succeed are listed first, then the others, up to ``limit``.
    """
    records = list(run.tasks.values())
    if len(records) <= limit:
        return records, {}
    first = [r for r in records if r.status != "done"] + [r for r in records if r.status == "done"]
    chosen = {id(r) for r in first[:limit]}
    hidden: dict[str, int] = {}
    for r in first[limit:]:
        hidden[r.status] = hidden.get(r.status, 0) + 1
    return [r for r in records if id(r) in chosen], hidden


def hidden_text(hidden: dict[str, int]) -> str:
    """'9,950 more tasks (9,940 done, 10 skipped)': the rows a report did not list."""
    total = sum(hidden.values())
    parts = ", ".join(f"{n:,} {k}" for k, n in sorted(hidden.items(), key=lambda kv: -kv[1]))
    return f"{total:,} more task{'s' if total != 1 else ''} ({parts}); run.tasks has them all"


def run_text(run: Run) -> str:
    summary = run.summary  # computed once: it walks every attempt of every task
    counts = ", ".join(f"{n} {k}" for k, n in sorted(summary.counts.items()))
    lines = [f"<Run {run.id} {run.status}: {counts}>"]
    shown, hidden = rows_to_show(run)
    lines += [task_line(r) for r in shown]
    if hidden:
        lines.append(f"  … {hidden_text(hidden)}")
    if run.error is not None:
        lines.append(f"  prelude failed: {type(run.error).__name__}: {run.error}")
    lines.append("  " + summary_text(summary))
    return "\n".join(lines)
