"""The static report: HTML and text that survive nbconvert and GitHub, plus the Gantt PNG."""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING, Any

from .text import MARK, error_text, hidden_text, plan_text, preview, rows_to_show, run_text, seconds, summary_text

if TYPE_CHECKING:
    from ..plan import Plan
    from ..run import Run

_STYLE = """<style>
.parcoord-report table{border-collapse:collapse;font-size:13px;margin:4px 0}
.parcoord-report th,.parcoord-report td{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.parcoord-report .st-done{color:#2e7d32}.parcoord-report .st-failed{color:#c62828}
.parcoord-report .st-timeout{color:#ef6c00}.parcoord-report .st-skipped,.parcoord-report .st-cancelled{color:#757575}
.parcoord-report pre{margin:2px 0;font-size:12px;white-space:pre-wrap}
.parcoord-summary{font-weight:600;margin:6px 0}
</style>"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def plan_html(plan: Plan) -> str:
    rows = []
    for t in plan.tasks.values():
        fan = f" for {t.spec.fanout.target} in {t.spec.fanout.expr}" if t.spec.fanout else ""
        rows.append(
            f"<tr><td><b>{_e(t.name)}</b>{_e(fan)}</td><td>{_e(t.spec.title)}</td><td>{t.wave + 1}</td>"
            f"<td>{'async' if t.is_async else 'thread'}</td>"
            f"<td>{_e(', '.join(sorted(t.reads)) or '-')}</td><td>{_e(', '.join(sorted(t.writes)) or '-')}</td>"
            f"<td>{_e(', '.join(map(str, t.uses)) or '-')}</td></tr>"
        )
    edges = "".join(f"<li>{_e(e.src)} → {_e(e.dst)}: {_e(e.reason)}</li>" for e in plan.edges) or "<li>none</li>"
    verdict = "".join(f"<li>{'✓' if ok else '✗'} {_e(text)}</li>" for ok, text in plan.verdict)
    waves = " | ".join(", ".join(w) for w in plan.waves)
    path, est = plan.critical_path()
    crit = f"<p>Critical path (estimates): {_e(' → '.join(path))} = {seconds(est)}</p>" if est else ""
    return (
        f'{_STYLE}<div class="parcoord-report parcoord-plan"><p class="parcoord-summary">Plan: '
        f"{len(plan.tasks)} tasks in {len(plan.waves)} waves (nothing was run)</p>"
        "<table><tr><th>task</th><th>title</th><th>wave</th><th>runs as</th><th>reads</th>"
        f"<th>writes</th><th>uses</th></tr>{''.join(rows)}</table>"
        f"<p>Dependencies:</p><ul>{edges}</ul><p>Independence check:</p><ul>{verdict}</ul>"
        f"<p>Waves: {_e(waves)}</p>{crit}</div>"
    )


def run_html(run: Run, *, gantt_png: bytes | None = None) -> str:
    rows = []
    estimates = any(t.spec.options.estimate for t in run.plan.tasks.values())
    shown, hidden = rows_to_show(run)
    tracebacks = 0
    for r in shown:
        status = r.status if r.items is None else f"{r.status} ({r.items_done}/{r.items})"
        if r.error is not None:
            # Full tracebacks for the first few failures; a cell where hundreds fail the
            # same way would otherwise make a report of megabytes.
            tb = f"<pre>{_e(_clip_traceback(r.traceback))}</pre>" if tracebacks < MAX_TRACEBACKS else ""
            tracebacks += 1
            detail = f"<details><summary>{_e(type(r.error).__name__)}: {_e(preview(error_text(r.error), 160))}</summary>{tb}</details>"
        elif r.status == "done":
            detail = f"<code>{_e(preview(r.result, 160))}</code>"
        else:
            detail = _e(r.reason or "")
        if r.abandoned:
            detail += f"<br><i>{r.abandoned} worker thread(s) abandoned, still running; late results are discarded</i>"
        out = r.stdout_buffer.tail(2000) if r.stdout_buffer.total else ""
        if out:
            more = " (end of output)" if r.stdout_buffer.total > 2000 else ""
            detail += f"<details><summary>output{more}</summary><pre>{_e(out)}</pre></details>"
        if len(r.displays):
            detail += _displays_html(r.displays.outputs)
        estimate = ""
        if estimates:
            est = run.plan.tasks[r.name].spec.options.estimate
            estimate = f"<td>{seconds(est) if est else '-'}</td>"
        rows.append(
            f'<tr class="parcoord-row"><td>{MARK.get(r.status, "")} <b>{_e(r.name)}</b><br><small>{_e(r.title if r.title != r.name else "")}</small></td>'
            f'<td class="st-{_e(r.status)}">{_e(status)}</td><td>{seconds(r.duration)}</td>{estimate}'
            f"<td>{r.attempts}</td><td>{detail}</td></tr>"
        )
    if hidden:
        rows.append(f'<tr class="parcoord-more"><td colspan="{6 if estimates else 5}"><i>… {_e(hidden_text(hidden))}</i></td></tr>')
    prelude = ""
    if run.error is not None:
        from ..run import format_error

        prelude = f"<p class='st-failed'>The prelude failed, so no task ran:</p><pre>{_e(format_error(run.error))}</pre>"
    img = ""
    if gantt_png is not None:
        img = f'<img alt="Gantt chart" src="data:image/png;base64,{base64.b64encode(gantt_png).decode()}">'
    note = f"<p><i>{_e(run.backend_note)}</i></p>" if run.backend_note else ""
    return (
        f'{_STYLE}<div class="parcoord-report parcoord-final"><p class="parcoord-summary">{_e(run.id)} '
        f"{_e(run.status)}: {_e(summary_text(run.summary))}</p>{note}{prelude}"
        "<table><tr><th>task</th><th>status</th><th>duration</th>"
        + ("<th>estimate</th>" if estimates else "")
        + "<th>attempts</th><th>result / error</th></tr>"
        f"{''.join(rows)}</table>{img}</div>"
    )


MAX_TRACEBACKS = 10  # failures shown with their full traceback in one report
TRACEBACK_CHARS = 8000  # the end of a longer traceback (the frames nearest the error)


def _clip_traceback(text: str) -> str:
    if len(text) <= TRACEBACK_CHARS:
        return text
    return f"… ({len(text) - TRACEBACK_CHARS:,} characters above not shown)\n" + text[-TRACEBACK_CHARS:]


def _displays_html(outputs: list[dict[str, Any]]) -> str:
    """A task's display() outputs, in the static report: HTML as is, images, else text."""
    parts = []
    for out in outputs:
        data = out.get("data", {})
        if "text/html" in data:
            parts.append(f"<div>{data['text/html']}</div>")
        elif "image/png" in data or "image/jpeg" in data:
            mime = "image/png" if "image/png" in data else "image/jpeg"
            parts.append(f'<img alt="displayed image" src="data:{mime};base64,{data[mime]}">')
        elif "text/plain" in data:
            parts.append(f"<pre>{_e(data['text/plain'])}</pre>")
    return f'<div class="parcoord-displays">{"".join(parts)}</div>' if parts else ""


def gantt_png(run: Run) -> bytes | None:
    if not any(r.history for r in run.tasks.values()):
        return None
    from .gantt import figure_png, gantt_figure

    return figure_png(gantt_figure(run))


def report_bundle(run: Run) -> dict[str, Any]:
    """One output holding everything, for ``run`` or ``await run`` as a cell's last line."""
    return {"text/plain": run_text(run), "text/html": run_html(run, gantt_png=gantt_png(run))}


__all__ = ["gantt_png", "plan_html", "plan_text", "report_bundle", "run_html"]
