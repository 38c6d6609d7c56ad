"""What the live view shows at a given moment, and which updates it may send now.

No ipywidgets here: :mod:`.dashboard` is a thin widget layer over these functions, and
:mod:`.progress_text` the fallback without widgets. Everything reads the run object;
engine events only tell the view that a run started, ended, or which tasks ended last.

The message budget (brief fact 4: jupyter_server drops iopub messages above
1000/s, and every widget update is one): a timer on the run's loop ticks
``1 / TICK_S`` times a second. Each tick the view works out what every visible part
should show, compares it with what it last sent, and sends at most
``MESSAGES_PER_TICK`` widget messages (all changes to one widget are batched with
``hold_sync`` into one). The header goes first; then the parts that have waited
longest, rows whose status changed counting as waiting longer, so urgent changes go
soon and no part waits for ever. Beyond ``MAX_ROWS`` tasks the view shows
``AGGREGATE_ROWS`` of them (running tasks first) and counts the rest, so its cost
does not grow with the run: at most ``MESSAGES_PER_TICK / TICK_S`` = 40 messages a
second, for 3 tasks or 10,000. Widgets are few and made once (two per row), so
showing the view costs a few dozen comm_open messages; the final state is sent in
full, outside the budget, once.
"""

from __future__ import annotations

import heapq
import html
import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .text import MARK, error_text, preview, seconds, summary_text

if TYPE_CHECKING:
    from ..run import Run, TaskRecord

__all__ = [
    "AGGREGATE_ROWS",
    "MAX_ROWS",
    "MESSAGES_PER_TICK",
    "TICK_S",
    "Coalescer",
    "RowView",
    "axis_end",
    "choose_rows",
    "clock_text",
    "columns_html",
    "header_html",
    "more_html",
    "row_view",
    "status_of",
    "tally",
]

TICK_S = 0.125  # 8 refreshes a second: smooth to the eye, cheap on the wire
MAX_ROWS = 20  # up to this many tasks, one row each
AGGREGATE_ROWS = 12  # beyond MAX_ROWS: a screenful of rows (running first), the rest counted
MESSAGES_PER_TICK = 5  # header + 4 row updates: at most 40 widget messages a second
OUTPUT_TAIL = 4000  # characters of a task's stdout/stderr shown in its area (the rest stays on the run)

STATUS_TEXT = {
    "queued": "queued", "running": "running", "retrying": "retrying", "done": "done",
    "failed": "failed", "skipped": "skipped", "cancelled": "cancelled", "timeout": "timed out",
}
LIVE = frozenset({"running", "retrying"})
_ORDER = ("running", "retrying", "queued", "done", "failed", "timeout", "skipped", "cancelled")
_AXIS_STEPS = (1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 2700, 3600)
_SPAN_BUCKETS = 200  # a row with many attempts (a fan-out) is drawn as coverage, not bar by bar
_SPAN_DETAIL = 60
# When two statuses cover the same stretch of a fan-out row, the first one wins.
_SPAN_PRIORITY = ("failed", "timeout", "running", "cancelled", "done")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def axis_end(t: float) -> float:
    """A round end for the shared time axis, a little past ``t``.

    The axis only moves when the run outgrows it, so finished rows' timelines do not
    change (and are not re-sent) every tick.
    """
    want = t * 1.05
    for step in _AXIS_STEPS:
        if want <= step:
            return float(step)
    return float(math.ceil(want / 3600) * 3600)


def clock_text(s: float) -> str:
    """Elapsed time the way a clock shows it: ``4.2 s``, ``2:05``, ``1:02:03``."""
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}:{sec:02d}"
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}"


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.1f}"


# -- which tasks get a row ------------------------------------------------------
def status_of(r: TaskRecord) -> str:
    """The status to show: a task the engine has taken but that waits for a free slot
    (``--max-concurrency``, a resource limit) shows as queued until an attempt starts."""
    st = r.status
    if st == "running" and not r.history:
        return "queued"
    if st == "running" and r.items is None and r.history[-1].end is not None:
        return "queued"  # between attempts, waiting for a slot again
    return st


@dataclass
class Tally:
    """One pass over the run's tasks, shared by everything a tick draws."""

    counts: dict[str, int]
    live: list[TaskRecord]  # running or retrying
    bad: list[TaskRecord]  # failed or timed out
    queued: list[TaskRecord]  # the first few still queued, in cell order
    ended: list[TaskRecord] | None  # done, cancelled or skipped (only when asked for)


def tally(run: Run, k: int = AGGREGATE_ROWS, *, ended: bool = True) -> Tally:
    counts: dict[str, int] = {}
    live: list[TaskRecord] = []
    bad: list[TaskRecord] = []
    queued: list[TaskRecord] = []
    rest: list[TaskRecord] | None = [] if ended else None
    for r in run.tasks.values():  # 10,000 tasks: about two milliseconds
        st = status_of(r)
        counts[st] = counts.get(st, 0) + 1
        if st in LIVE:
            live.append(r)
        elif st == "queued":
            if len(queued) < k:
                queued.append(r)
        elif st in ("failed", "timeout"):
            bad.append(r)
        elif rest is not None:
            rest.append(r)
    return Tally(counts, live, bad, queued, rest)


def counts(run: Run) -> dict[str, int]:
    c: dict[str, int] = {}
    for r in run.tasks.values():
        st = status_of(r)
        c[st] = c.get(st, 0) + 1
    return c


def choose_rows(run: Run, max_rows: int = MAX_ROWS, previous: Sequence[str | None] = (), *,
                final: bool = False, aggregate_rows: int = AGGREGATE_ROWS, seen: Tally | None = None,
                recent: Iterable[str] | None = None) -> list[str]:
    """The tasks to show, one per row slot.

    Up to ``max_rows`` tasks: all of them, in cell order, always in the same slot.
    Beyond that, ``aggregate_rows`` of them in order of interest: while running, the
    running tasks (longest-running first), then failures, then the latest to end,
    then the next queued; at the end, failures, cancelled, the slowest done, skipped.
    A task that is still wanted keeps its slot, so rows do not jump around.
    ``recent`` (names, latest first, as a view learns them from events) spares a
    sort of every finished task on each tick.
    """
    tasks = run.tasks
    if len(tasks) <= max_rows:
        return list(tasks)
    k = aggregate_rows
    if seen is None or (seen.ended is None and (final or recent is None)):
        seen = tally(run, k, ended=True)
    wanted = _interesting(seen, k, final, recent, tasks)
    keep = set(wanted)
    slots: list[str | None] = [n if n in keep else None for n in list(previous)[:k]]
    slots += [None] * (k - len(slots))
    placed = {n for n in slots if n is not None}
    fill = iter(n for n in wanted if n not in placed)
    for i, n in enumerate(slots):
        if n is None:
            slots[i] = next(fill, None)
    return [n for n in slots if n is not None]


def _interesting(seen: Tally, k: int, final: bool, recent: Iterable[str] | None,
                 tasks: dict[str, TaskRecord]) -> list[str]:
    def end(r: TaskRecord) -> float:
        return r.end if r.end is not None else 0.0

    groups: list[Iterable[TaskRecord]]
    if final:
        ended = seen.ended or []
        groups = [heapq.nlargest(k, seen.bad, key=end),
                  [r for r in ended if r.status == "cancelled"][:k],
                  heapq.nlargest(k, (r for r in ended if r.status == "done"), key=lambda r: r.duration or 0.0),
                  [r for r in ended if r.status == "skipped"][:k], seen.queued]
    else:
        live = sorted(seen.live, key=lambda r: r.start if r.start is not None else 0.0)
        if recent is not None:
            latest: Iterable[TaskRecord] = (tasks[n] for n in recent if tasks[n].status not in LIVE)
        else:
            latest = heapq.nlargest(k, seen.ended or [], key=end)
        groups = [live[:k], heapq.nlargest(k, seen.bad, key=end), latest, seen.queued]
    out: list[str] = []
    taken: set[str] = set()
    for group in groups:
        for r in group:
            if len(out) == k:
                return out
            if r.name not in taken:
                taken.add(r.name)
                out.append(r.name)
    return out


# -- one row ------------------------------------------------------------------------
@dataclass(frozen=True)
class RowView:
    """What one row shows: its HTML and its DOM classes (for users' CSS and tests)."""

    name: str
    html: str
    classes: tuple[str, ...]
    has_details: bool


def row_classes(r: TaskRecord) -> tuple[str, ...]:
    return ("parcoord-task", f"parcoord-status-{status_of(r)}", f"parcoord-task-{r.name}")


def _fraction(r: TaskRecord) -> tuple[float | None, str]:
    """(fraction done or None when unknown, the text beside the bar)."""
    if r.items is not None:
        total = r.items
        if status_of(r) == "done":
            return 1.0, f"{_num(r.items_done)}/{_num(total)}"
        if total:
            return r.items_done / total, f"{_num(r.items_done)}/{_num(total)}"
        return (None if status_of(r) in LIVE else 0.0), ""
    if status_of(r) == "done":
        return 1.0, ""
    if r.progress is not None:
        done, total, _ = r.progress
        if total:
            frac = max(0.0, min(1.0, done / total))
            return frac, f"{_num(done)}/{_num(total)}"
        return None, _num(done)
    if status_of(r) in LIVE:
        return None, ""
    return 0.0, ""


def _latest(r: TaskRecord, final: bool) -> tuple[str, str]:
    """(the row's text column, its CSS class)."""
    if final or status_of(r) not in LIVE | {"queued"}:
        if r.error is not None:
            first = error_text(r.error).strip().splitlines()
            return f"{type(r.error).__name__}: {first[0] if first else ''}", "pc-err"
        if status_of(r) == "done" and r.result is not None:
            return "→ " + preview(r.result, 160), "pc-res"
        if r.reason and status_of(r) != "done":
            return r.reason, "pc-why"
    if status_of(r) == "retrying" and r.history and r.history[-1].error is not None:
        err = r.history[-1].error
        return f"retrying after {type(err).__name__}: {error_text(err)[:120]}", "pc-err"
    if r.progress is not None and r.progress[2]:
        return str(r.progress[2]), "pc-msg"
    out, err = r.stdout_buffer, r.stderr_buffer
    if err.last_line and (not out.last_line or err.total > out.total):
        return err.last_line, "pc-errout"
    return out.last_line, "pc-out"


def _spans(r: TaskRecord, now: float, axis: float) -> list[tuple[float, float, str]]:
    """(left %, width %, status) bars of the row's timeline, on the shared axis."""
    if not r.history or axis <= 0:
        return []
    scale = 100.0 / axis
    if len(r.history) <= _SPAN_DETAIL:
        out = []
        for a in r.history:
            end = a.end if a.end is not None else now
            left = min(100.0, a.start * scale)
            width = max(0.6, (end - a.start) * scale)
            out.append((round(left, 1), round(min(width, 100.0 - left + 0.6), 1), a.status))
        return out
    # Many attempts (a fan-out): per status, how many attempts cover each bucket
    # (difference arrays, so 10,000 attempts cost 10,000 steps, not 10,000 x 200).
    n = _SPAN_BUCKETS
    diff: dict[str, list[int]] = {}
    for a in r.history:
        end = a.end if a.end is not None else now
        b0 = min(n - 1, int(a.start * scale * n / 100))
        b1 = min(n - 1, max(b0, int(end * scale * n / 100)))
        d = diff.get(a.status)
        if d is None:
            d = diff[a.status] = [0] * (n + 1)
        d[b0] += 1
        d[b1 + 1] -= 1
    cover: list[str | None] = [None] * n
    for status in sorted(diff, key=lambda s: _SPAN_PRIORITY.index(s) if s in _SPAN_PRIORITY else 99, reverse=True):
        run_sum = 0
        d = diff[status]
        for i in range(n):
            run_sum += d[i]
            if run_sum > 0:
                cover[i] = status
    out = []
    i = 0
    width = 100.0 / n
    while i < n:
        st = cover[i]
        j = i
        while j < n and cover[j] == st:
            j += 1
        if st is not None:
            out.append((round(i * width, 1), round((j - i) * width, 1), st))
        i = j
    return out


def row_view(r: TaskRecord, now: float, axis: float, *, final: bool = False) -> RowView:
    """The row of one task: icon, title, status badge, bar, elapsed, latest line, timeline."""
    frac, count = _fraction(r)
    if r.start is None:
        elapsed = ""
    elif status_of(r) in LIVE and not final:
        elapsed = clock_text(max(0.0, now - r.start))
    else:
        elapsed = seconds(r.duration)
    text, text_cls = _latest(r, final)
    title = r.title if r.title and r.title != r.name else ""
    if frac is None:
        bar = '<span class="pc-bar pc-indet"><span></span></span>'
    else:
        bar = f'<span class="pc-bar pc-bar-{status_of(r)}"><span style="width:{int(frac * 100)}%"></span></span>'
    spans = "".join(
        f'<i class="pc-s-{st}" style="left:{left}%;width:{width}%"></i>' for left, width, st in _spans(r, now, axis)
    )
    tip = f"{r.name}: {title}" if title else r.name
    line = _e(text[:300])
    html_ = (
        f'<div class="pc-row">'
        f'<span class="pc-icon pc-c-{status_of(r)}">{MARK.get(status_of(r), "")}</span>'
        f'<span class="pc-title" title="{_e(tip)}"><b>{_e(r.name)}</b>'
        + (f' <span class="pc-sub">{_e(title)}</span>' if title else "")
        + "</span>"
        f'<span class="pc-badge pc-b-{status_of(r)}">{STATUS_TEXT.get(status_of(r), status_of(r))}</span>'
        f'{bar}<span class="pc-count">{count}</span>'
        f'<span class="pc-time">{elapsed}</span>'
        f'<span class="pc-line {text_cls}" title="{line}">{line}</span>'
        f'<span class="pc-tl">{spans}</span>'
        "</div>"
    )
    # Something to show beyond the row: output, displays, at the end a traceback.
    # (A plain result is in the row already; the view adds rich results itself.)
    has = bool(r.stdout_buffer.total or r.stderr_buffer.total or len(r.displays)
               or (final and r.error is not None))
    return RowView(r.name, html_, row_classes(r), has)


# -- header and the hidden-rows line ----------------------------------------------------
def header_html(run: Run, now: float, axis: float, *, final: bool = False,
                notes: Iterable[str] = (), counted: dict[str, int] | None = None) -> str:
    """The run's line (done/total, running, elapsed or the summary) and notes."""
    c = counted if counted is not None else counts(run)
    total = len(run.tasks)
    finished = sum(c.get(s, 0) for s in ("done", "failed", "timeout", "skipped", "cancelled"))
    running = c.get("running", 0) + c.get("retrying", 0)
    status = run.status if final else "running"
    bits = [f'<b class="pc-done">{_num(c.get("done", 0))}/{_num(total)} done</b>']
    if not final:
        bits.append(f'<span class="pc-running">{_num(running)} running</span>')
    for st in ("retrying", "failed", "timeout", "skipped", "cancelled"):
        if c.get(st):
            bits.append(f'<span class="pc-c-{st}">{_num(c[st])} {STATUS_TEXT[st]}</span>')
    if final:
        bits.append(f'<span class="pc-elapsed">wall {seconds(run.summary.wall_s)}</span>')
    else:
        bits.append(f'<span class="pc-elapsed">{clock_text(now)} elapsed</span>')
        if finished < total and c.get("queued"):
            bits.append(f'<span class="pc-c-queued">{_num(c["queued"])} queued</span>')
    head = (
        f'<div class="pc-head"><span class="pc-runid">{_e(run.id)}</span> '
        f'<span class="pc-badge pc-b-{status}">{_e(STATUS_TEXT.get(status, status))}</span> '
        + " · ".join(bits) + "</div>"
    )
    if final:
        head += f'<div class="pc-summary">{_e(summary_text(run.summary))}</div>'
        if run.error is not None:
            head += (f'<div class="pc-note pc-err">the prelude failed, so no task ran: '
                     f'{_e(type(run.error).__name__)}: {_e(error_text(run.error))}</div>')
        if run.cancel_reason and run.status == "cancelled":
            head += f'<div class="pc-note">{_e(run.cancel_reason)}; finished results are kept</div>'
    for note in notes:
        head += f'<div class="pc-note">{_e(note)}</div>'
    return head


def columns_html(axis: float) -> str:
    """The column captions above the rows, with the shared time axis of the timelines."""
    ticks = "".join(
        f'<i style="left:{p}%">{_e(_tick_label(axis * p / 100))}</i>' for p in (0, 50, 100)
    )
    return (
        '<div class="pc-row pc-cols"><span></span><span>task</span><span>status</span>'
        '<span>progress</span><span></span><span>time</span><span>latest</span>'
        f'<span class="pc-axis">{ticks}</span></div>'
    )


def _tick_label(t: float) -> str:
    if t == 0:
        return "0"
    if t >= 120:
        return clock_text(t)
    return f"{t:.2g} s" if t < 10 else f"{t:.0f} s"


def more_html(run: Run, shown: Iterable[str], counted: dict[str, int] | None = None) -> str:
    """The line under the rows that counts the tasks without a row (empty if none)."""
    shown = set(shown)
    hidden = len(run.tasks) - len(shown)
    if hidden <= 0:
        return ""
    c = dict(counted if counted is not None else counts(run))
    for n in shown:
        st = run.tasks[n].status
        c[st] = c.get(st, 0) - 1
    parts = [f'<span class="pc-c-{st}">{_num(c[st])} {STATUS_TEXT.get(st, st)}</span>'
             for st in _ORDER if c.get(st, 0) > 0]
    return (f'<div class="pc-more">… and {_num(hidden)} more tasks without a row: '
            + " · ".join(parts) + " (all of them are in run.tasks)</div>")


# -- the budget ---------------------------------------------------------------------
class Coalescer:
    """Chooses which parts of the view to send this tick: changed ones, within a budget.

    ``select`` gets every visible part as ``(key, value, priority, cost)``: ``value`` is
    what the widget would be set to (compared with what was last sent), ``cost`` the
    number of comm messages sending it takes. Priority 0 (the header) goes first; the
    others go by how long they have waited, a higher ``priority`` counting as two
    ticks less each, so urgent parts go soon and no part waits for ever. Nothing is sent for a
    part whose value did not change; the caller reports what it sent with ``sent``.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._sent: dict[Hashable, Any] = {}
        self._when: dict[Hashable, int] = {}
        self.ticks = 0

    def select(self, parts: Iterable[tuple[Hashable, Any, int, int]], *,
               final: bool = False) -> list[tuple[Hashable, Any]]:
        self.ticks += 1
        missing = object()
        changed = [part for part in parts if self._sent.get(part[0], missing) != part[1]]
        if final:
            return [(k, v) for k, v, _, _ in changed]
        # Lower priority means a later turn, never none: each level is worth two ticks
        # of waiting, so a part that keeps losing (the counts line under 10,000 busy
        # rows) still goes out a few ticks later.
        changed.sort(key=lambda part: (part[2] > 0, self._when.get(part[0], -1) + 2 * part[2]))
        out: list[tuple[Hashable, Any]] = []
        spent = 0
        for key, value, _, cost in changed:
            if spent + cost > self.budget:
                continue  # a cheaper part further down may still fit
            spent += cost
            out.append((key, value))
            if spent == self.budget:
                break
        return out

    def sent(self, key: Hashable, value: Any) -> None:
        self._sent[key] = value
        self._when[key] = self.ticks

    def last(self, key: Hashable, default: Any = None) -> Any:
        return self._sent.get(key, default)


# -- a task's area: output tail, displays, and at the end its result or traceback --------
def area_key(r: TaskRecord, final: bool) -> tuple[Any, ...]:
    """Changes whenever the task's area would show something new (cheap to compute)."""
    return (r.name, r.status, r.stdout_buffer.total, r.stderr_buffer.total, r.displays.version, final)


def area_outputs(r: TaskRecord, *, final: bool = False, formatter: Any = None) -> list[dict[str, Any]]:
    """The task's area as notebook outputs (what an Output widget holds).

    Bounded: the last ``OUTPUT_TAIL`` characters of each stream (the full text stays
    on ``run.tasks[name].stdout``), and at most ``DisplayLog.MAX_DISPLAYS`` displays.
    """
    outs: list[dict[str, Any]] = []
    for name, buf in (("stdout", r.stdout_buffer), ("stderr", r.stderr_buffer)):
        if not buf.total:
            continue
        text = buf.tail(OUTPUT_TAIL)
        if buf.total > OUTPUT_TAIL:
            cut = text.find("\n")
            text = text[cut + 1:] if 0 <= cut < 200 else text
            text = (f"… {buf.total - len(text):,} earlier characters are in "
                    f"run.tasks[{r.name!r}].{name}\n") + text
        outs.append({"output_type": "stream", "name": name, "text": text})
    if r.displays.dropped:
        outs.append({"output_type": "stream", "name": "stdout",
                     "text": f"… {r.displays.dropped} earlier display() outputs were dropped\n"})
    outs.extend(r.displays.outputs)
    if not final:
        return outs
    if r.error is not None:
        tb = r.traceback.rstrip("\n").splitlines() or [f"{type(r.error).__name__}: {error_text(r.error)}"]
        outs.append({"output_type": "error", "ename": type(r.error).__name__,
                     "evalue": error_text(r.error), "traceback": tb})
    elif r.status == "done" and r.result is not None:
        data = rich_bundle(r.result, formatter)
        outs.append({"output_type": "display_data", "data": data, "metadata": {}})
    return outs


def rich_bundle(value: Any, formatter: Any = None) -> dict[str, Any]:
    """The value's mime bundle (the notebook's formatter when given), never raising."""
    import base64

    data: dict[str, Any] = {}
    if formatter is not None:
        try:
            data = dict(formatter(value) or {})
        except Exception:  # noqa: BLE001 - a broken _repr_html_ must not break the report
            data = {}
    out = {}
    for mime, v in data.items():
        if isinstance(v, (bytes, bytearray)):
            v = base64.b64encode(v).decode("ascii")
        if isinstance(v, (str, dict, list)):
            out[mime] = v
    out.setdefault("text/plain", preview(value, 2000))
    return out


def is_rich(bundle: dict[str, Any]) -> bool:
    return any(m != "text/plain" for m in bundle)
