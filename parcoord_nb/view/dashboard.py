"""The live view of a run in a notebook: ipywidgets over the model in :mod:`.live`.

Shown before the engine starts; updated by a timer on the run's loop, never per
event (see :mod:`.live` for the message budget); turned into the final report when
the run ends. Import it only where ipywidgets may be missing behind a try: the
magic falls back to :mod:`.progress_text`.

The widget tree (DOM classes in brackets, for users' CSS and for tests)::

    VBox [parcoord-run parcoord-live | parcoord-ended parcoord-run-<status>]
      HTML  the stylesheet (sent once)
      HBox  header HTML [parcoord-header] + Cancel Button [parcoord-cancel]
      HTML  column captions and the shared time axis of the rows' timelines
      VBox  the rows, each
            HBox [parcoord-task parcoord-status-<status> parcoord-task-<name>]
              HTML  the row: title, badge, bar, elapsed, latest line, timeline
              ToggleButton [parcoord-toggle], once the task has output to show
            Output [parcoord-area]  after its row, made when first opened: a bounded
                  tail of the task's stdout/stderr, its display() outputs, at the
                  end its result's rich repr or its traceback
      HTML  tasks without a row, counted [parcoord-more] (only beyond MAX_ROWS tasks)
      HTML  the Gantt chart, at the end [parcoord-gantt]

Per-task output never goes through ``with Output():`` (brief fact 5): the area's
``outputs`` are set from the task's buffers, at most once a tick.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
import threading
import time
import warnings
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

import ipywidgets as W
from ipywidgets.widgets.widget_bool import ToggleButtonStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from .. import events as ev
from .live import (
    AGGREGATE_ROWS,
    MAX_ROWS,
    MESSAGES_PER_TICK,
    TICK_S,
    Coalescer,
    area_key,
    area_outputs,
    axis_end,
    choose_rows,
    columns_html,
    header_html,
    is_rich,
    more_html,
    rich_bundle,
    row_view,
    tally,
)

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["CSS", "Dashboard"]

CSS = """<style>
.parcoord-run{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:12.5px;
  color:var(--jp-ui-font-color1,#1f1f1f);border:1px solid var(--jp-border-color2,#e0e0e0);
  border-radius:6px;padding:6px 10px 8px;margin:2px 0;max-width:1180px;
  background:var(--jp-layout-color1,#fff);box-sizing:border-box}
.parcoord-run .widget-html,.parcoord-run .widget-html-content,
.parcoord-run .jupyter-widget-html,.parcoord-run .jupyter-widget-html-content{line-height:1.4;margin:0;height:auto}
.parcoord-run .pc-style{display:none}
.parcoord-run .pc-head{font-size:13px;padding:2px 0 1px}
.parcoord-run .pc-runid{font-weight:600;margin-right:2px}
.parcoord-run .pc-summary{color:var(--jp-ui-font-color1,#333);padding:1px 0}
.parcoord-run .pc-note{color:var(--jp-ui-font-color2,#666);font-style:italic;padding:1px 0}
.parcoord-run .pc-row{display:grid;grid-template-columns:16px minmax(130px,1.5fr) 66px minmax(60px,90px) 44px 52px minmax(90px,1.6fr) minmax(110px,190px);
  gap:0 8px;align-items:center;padding:3px 0;white-space:nowrap}
.parcoord-run .pc-row>span{overflow:hidden;text-overflow:ellipsis;min-width:0}
.parcoord-run .pc-cols{color:var(--jp-ui-font-color2,#777);font-size:11px;padding:4px 0 2px;
  border-bottom:1px solid var(--jp-border-color2,#e5e5e5);margin-right:70px}
.parcoord-run .parcoord-task>.widget-html:only-child,.parcoord-run .parcoord-task>.jupyter-widget-html:only-child{margin-right:70px}
.parcoord-run .parcoord-task{border-bottom:1px solid var(--jp-border-color3,#f0f0f0)}
.parcoord-run .parcoord-task.parcoord-status-failed,.parcoord-run .parcoord-task.parcoord-status-timeout{background:rgba(198,40,40,.045)}
.parcoord-run .pc-title b{font-weight:600}
.parcoord-run .pc-sub{color:var(--jp-ui-font-color2,#666)}
.parcoord-run .pc-badge{display:inline-block;box-sizing:border-box;min-width:60px;text-align:center;border-radius:9px;
  padding:0 6px;font-size:11px;line-height:17px;color:#fff;background:#9e9e9e}
.parcoord-run .pc-head .pc-badge{min-width:0}
.pc-b-running{background:#1565c0!important}.pc-b-retrying{background:#f9a825!important;color:#222!important}
.pc-b-done{background:#2e7d32!important}.pc-b-failed{background:#c62828!important}
.pc-b-timeout{background:#ef6c00!important}.pc-b-cancelled{background:#616161!important}
.pc-b-skipped{background:transparent!important;color:#757575!important;box-shadow:inset 0 0 0 1px #bdbdbd}
.pc-b-queued{background:#ececec!important;color:#616161!important}
.parcoord-run .pc-icon{text-align:center}
.pc-c-running{color:#1565c0}.pc-c-retrying{color:#b28704}.pc-c-done{color:#2e7d32}.pc-c-failed{color:#c62828}
.pc-c-timeout{color:#ef6c00}.pc-c-cancelled,.pc-c-skipped,.pc-c-queued{color:#757575}
.parcoord-run .pc-bar{position:relative;display:block;height:8px;background:var(--jp-layout-color3,#e6e6e6);border-radius:4px;overflow:hidden}
.parcoord-run .pc-bar>span{position:absolute;left:0;top:0;bottom:0;background:#1565c0;border-radius:4px}
.pc-bar-done>span{background:#2e7d32!important}.pc-bar-failed>span,.pc-bar-timeout>span{background:#c62828!important}
.pc-bar-cancelled>span,.pc-bar-skipped>span{background:#9e9e9e!important}
.parcoord-run .pc-indet>span{width:35%;animation:pc-slide 1.3s ease-in-out infinite}
@keyframes pc-slide{0%{left:-35%}100%{left:100%}}
.parcoord-run .pc-count,.parcoord-run .pc-time{font-variant-numeric:tabular-nums;color:var(--jp-ui-font-color2,#555);font-size:11.5px;text-align:right}
.parcoord-run .pc-line{font-family:var(--jp-code-font-family,monospace);font-size:11.5px;color:var(--jp-ui-font-color2,#555)}
.parcoord-run .pc-err,.parcoord-run .pc-errout{color:#c62828}.parcoord-run .pc-res{color:var(--jp-ui-font-color1,#1b5e20)}
.parcoord-run .pc-why{color:#757575;font-style:italic}.parcoord-run .pc-msg{color:#1565c0}
.parcoord-run .pc-tl{position:relative;display:block;height:12px;border-left:1px solid #c8c8c8;border-right:1px solid #c8c8c8;
  background:repeating-linear-gradient(to right,transparent 0,transparent calc(25% - 1px),#ececec calc(25% - 1px),#ececec 25%)}
.parcoord-run .pc-tl>i{position:absolute;top:2px;bottom:2px;background:#1565c0;border-radius:2px;min-width:2px}
.pc-s-done{background:#2e7d32!important}.pc-s-failed{background:#c62828!important}.pc-s-timeout{background:#ef6c00!important}
.pc-s-cancelled{background:#9e9e9e!important}.pc-s-running{background:#1565c0!important}
.parcoord-run .pc-axis{position:relative;display:block;height:14px;overflow:visible!important}
.parcoord-run .pc-axis>i{position:absolute;font-style:normal;transform:translateX(-50%)}
.parcoord-run .pc-axis>i:first-child{transform:none}.parcoord-run .pc-axis>i:last-child{transform:translateX(-100%)}
.parcoord-run .pc-more{color:var(--jp-ui-font-color2,#666);padding:4px 0 0 24px}
.parcoord-run .parcoord-toggle{height:20px;line-height:18px;font-size:11px;padding:0 4px;margin:2px 0 0 6px;width:64px;flex:0 0 64px}
.parcoord-run .pc-hidden{visibility:hidden}
.parcoord-run .parcoord-area{margin:0 0 6px 24px;padding-left:8px;border-left:3px solid var(--jp-border-color2,#e0e0e0);
  max-height:360px;overflow:auto}
.parcoord-run .parcoord-gantt img{max-width:100%;margin-top:6px}
.parcoord-run .parcoord-cancel{margin-left:8px}
/* When this view holds the final report, JupyterLab need not also show the static copy
   that follows it in the same cell; the copy stays in the notebook for nbconvert/GitHub. */
.jp-OutputArea-child:has(.parcoord-run.parcoord-ended)~.jp-OutputArea-child:has(.parcoord-report.parcoord-final),
.jp-OutputArea-child:has(.parcoord-run.parcoord-ended)~.jp-OutputArea-child:has(.parcoord-report.parcoord-final)+.jp-OutputArea-child:has(.jp-RenderedImage){display:none}
</style>"""


class _Slot:
    """One row of the view; beyond a screenful of tasks it shows different tasks over time.

    The row is an HBox (the task's DOM classes) holding the row's HTML, plus a toggle
    once the task has output to show; the task's area, made when first opened, sits
    right after it in the rows box.
    """

    __slots__ = ("box", "line", "toggle", "area", "name", "open", "user_set")

    def __init__(self, box: Any, line: Any) -> None:
        self.box = box
        self.line = line
        self.toggle: Any = None
        self.area: Any = None
        self.name: str | None = None
        self.open = False
        self.user_set = False  # the user opened or closed it: no automatic opening


class Dashboard:
    """The live view of one run; an engine observer. Display ``bundle()``; the timer does the rest.

    ``clock``, ``tick_s=None`` (no timer) and ``tick()`` are there for tests: a fake
    clock and explicit ticks make the message count exact. ``sent`` counts the widget
    messages sent after the view was first shown (comm_msg updates, and comm_open of
    widgets made later); ``ticks`` counts refreshes.
    """

    def __init__(
        self,
        run: Run,
        *,
        background: bool = False,
        notes: Iterable[str] = (),
        formatter: Callable[[Any], dict[str, Any]] | None = None,
        gantt: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        max_rows: int = MAX_ROWS,
        aggregate_rows: int = AGGREGATE_ROWS,
        budget: int = MESSAGES_PER_TICK,
        tick_s: float | None = TICK_S,
    ) -> None:
        self.run = run
        self.background = background
        self.notes = list(notes)
        self.formatter = formatter
        self.gantt = gantt
        self.clock = clock
        self.max_rows = max_rows
        self.aggregate_rows = aggregate_rows
        self.tick_s = tick_s
        self.coalescer = Coalescer(budget)
        self.sent = 0
        self.ticks = 0
        self.final = False
        self.gantt_png: bytes | None = None
        self._lock = threading.RLock()
        self._t0: float | None = None
        self._axis = 1.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        # Timer callbacks run in the context the view was made in: in a kernel that
        # carries the cell's parent header, so updates are parented to the cell that
        # started the run (what nbclient records for a foreground run).
        self._ctx = contextvars.copy_context()
        self._failed = False
        # Names of tasks as they end, latest first (from the engine's events), so a
        # tick need not sort 10,000 finished tasks to find the latest.
        self._recent: deque[str] = deque(maxlen=4 * aggregate_rows)
        self._events = False
        self._widgets: list[Any] = []
        self._built = False
        self._build()
        self._built = True

    # -- building ----------------------------------------------------------------------
    def _w(self, widget: Any) -> Any:
        """Remember a widget (and its own layout/style) so resend() reaches all of them,
        and count the messages it sends: its comm_open when made after the view was
        built, each comm_msg always."""
        seen = {id(w) for w in self._widgets}
        for w in (widget, getattr(widget, "layout", None), getattr(widget, "style", None)):
            if isinstance(w, W.Widget) and id(w) not in seen:
                self._widgets.append(w)
                seen.add(id(w))
                if self._built:
                    self.sent += 1
                w._send = self._counting(w._send)
        return widget

    def _counting(self, send: Callable[..., Any]) -> Callable[..., Any]:
        def counted(msg: Any, buffers: Any = None) -> Any:
            self.sent += 1
            return send(msg, buffers=buffers)

        return counted

    def _build(self) -> None:
        run = self.run
        # Rows share layouts and styles: each widget made is one comm_open, and a
        # screenful of rows should not cost hundreds of them. Every widget gets its
        # first contents in its constructor, where they travel in its comm_open.
        self._line_layout = self._w(W.Layout(flex="1 1 auto", min_width="0"))
        self._html_style = self._w(HTMLStyle())
        self._box_layout = self._w(W.Layout(width="100%"))
        self._toggle_layout = self._w(W.Layout(flex="0 0 auto"))
        self._toggle_style = self._w(ToggleButtonStyle())
        self._area_layout = self._w(W.Layout())

        style = self._w(W.HTML(CSS, layout=self._area_layout, style=self._html_style, _dom_classes=("pc-style",)))
        self._header = self._w(W.HTML(self._header_value(), layout=W.Layout(flex="1 1 auto", min_width="0"),
                                      style=self._html_style, _dom_classes=("parcoord-header",)))
        self._cancel = self._w(W.Button(description="Cancel", icon="stop", button_style="",
                                        tooltip="Cancel the run: running tasks are cancelled, "
                                                "finished results are kept",
                                        layout=W.Layout(width="auto", flex="0 0 auto"),
                                        _dom_classes=("parcoord-cancel",)))
        self._cancel.on_click(self._on_cancel)
        self._top = self._w(W.HBox([self._header, self._cancel], layout=W.Layout(align_items="flex-start")))
        self._cols = self._w(W.HTML(columns_html(self._axis), layout=self._area_layout, style=self._html_style))
        self.coalescer.sent("cols", self._cols.value)
        names = self._choose([])
        self._slots = [self._slot(i, name) for i, name in enumerate(names)]
        self._rows = self._w(W.VBox([s.box for s in self._slots], layout=self._box_layout))
        self.coalescer.sent("rows", self._rows_value())
        children = [style, self._top, self._cols, self._rows]
        self._more: Any = None
        if len(run.tasks) > self.max_rows:
            self._more = self._w(W.HTML(more_html(run, names), layout=self._area_layout, style=self._html_style,
                                        _dom_classes=("parcoord-more",)))
            self.coalescer.sent("more", self._more.value)
            children.append(self._more)
        self._gantt: Any = None
        self.root = self._w(W.VBox(children, layout=W.Layout(width="100%"),
                                   _dom_classes=("parcoord-run", "parcoord-live")))
        self.coalescer.sent("header", self._header.value)

    def _choose(self, previous: list[str | None], final: bool = False, seen: Any = None) -> list[str]:
        return choose_rows(self.run, self.max_rows, previous, final=final, aggregate_rows=self.aggregate_rows,
                           seen=seen, recent=self._recent if self._events else None)

    def _slot(self, i: int, name: str) -> _Slot:
        view = row_view(self.run.tasks[name], 0.0, self._axis)
        line = self._w(W.HTML(view.html, layout=self._line_layout, style=self._html_style))
        box = self._w(W.HBox([line], layout=self._box_layout, _dom_classes=view.classes))
        slot = _Slot(box, line)
        slot.name = name
        self.coalescer.sent(("line", i), view.html)
        self.coalescer.sent(("box", i), (view.classes, False))
        return slot

    def _make_toggle(self, slot: _Slot, open_: bool, final: bool) -> Any:
        toggle = self._w(W.ToggleButton(value=open_, description=_toggle_label(open_, final),
                                        tooltip="show or hide this task's output",
                                        layout=self._toggle_layout, style=self._toggle_style,
                                        _dom_classes=("parcoord-toggle",)))
        toggle.observe(lambda change, slot=slot: self._on_toggle(slot, change["new"]), names="value")
        return toggle

    def _make_area(self, slot: _Slot, final: bool) -> Any:
        rec = self.run.tasks[slot.name] if slot.name is not None else None
        outputs = tuple(area_outputs(rec, final=final, formatter=self.formatter)) if rec is not None else ()
        return self._w(W.Output(layout=self._area_layout, outputs=outputs, _dom_classes=("parcoord-area",)))

    def _rows_value(self) -> tuple[bool, ...]:
        return tuple(s.open for s in self._slots)

    def _rows_children(self) -> tuple[Any, ...]:
        children: list[Any] = []
        for s in self._slots:
            children.append(s.box)
            if s.open and s.area is not None:
                children.append(s.area)
        return tuple(children)

    # -- what the magic uses -------------------------------------------------------------
    def bundle(self) -> dict[str, Any]:
        """The mime bundle to display: the widget, with a line of text for viewers without widgets."""
        data = dict(self.root._repr_mimebundle_() or {})
        data["text/plain"] = (f"<parcoord_nb live view of {self.run.id}: {len(self.run.tasks)} tasks "
                              "(the report follows when the run ends)>")
        return data

    def observe(self, event: ev.Event) -> None:
        """Engine observer: start the timer with the run, send the final state at its end."""
        if isinstance(event, ev.RunStarted):
            self._t0 = self.clock() - event.t
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._loop = None
            self._schedule()
        elif isinstance(event, ev.RunFinished):
            self._ctx.copy().run(self.finish)
        elif isinstance(event, _ENDED):
            self._events = True
            self._recent.appendleft(event.task)  # type: ignore[attr-defined]

    def tick(self) -> int:
        """One refresh: send what changed, within the budget. Returns the messages sent."""
        with self._lock:
            if self.final:
                return 0
            return self._refresh(final=False)

    def finish(self) -> None:
        """Send the final state in full and turn the view into the final report."""
        with self._lock:
            if self.final:
                return
            self.final = True
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            self._refresh(final=True)
            run = self.run
            if self.gantt:
                self.gantt_png = _gantt_png(run)
                if self.gantt_png is not None:
                    import base64

                    self._gantt = self._w(W.HTML(
                        f'<img class="parcoord-gantt-img" alt="Gantt chart of {run.id}" '
                        f'src="data:image/png;base64,{base64.b64encode(self.gantt_png).decode()}">',
                        layout=self._area_layout, style=self._html_style, _dom_classes=("parcoord-gantt",)))
            with self._top.hold_sync():
                self._top.children = (self._header,)
            with self.root.hold_sync():
                if self._gantt is not None:
                    self.root.children = (*self.root.children, self._gantt)
                self.root._dom_classes = ("parcoord-run", "parcoord-ended", f"parcoord-run-{run.status}")

    def resend(self) -> None:
        """Send every widget's whole state again, from the caller's context.

        For ``await run`` in a later cell: nbclient records widget state only from
        messages parented to the cell it is running (brief fact 6).
        """
        with self._lock:
            for w in self._widgets:
                if w.comm is not None:
                    w.send_state()

    def close(self) -> None:
        with self._lock:
            self.final = True
            if self._handle is not None:
                self._handle.cancel()

    # -- the timer --------------------------------------------------------------------------
    def _schedule(self) -> None:
        if self.final or self._loop is None or self._failed or not self.tick_s:
            return
        self._handle = self._loop.call_later(self.tick_s, self._on_timer, context=self._ctx.copy())

    def _on_timer(self) -> None:
        self._handle = None
        if self.final:
            return
        try:
            self.tick()
        except Exception as e:  # noqa: BLE001 - a broken refresh must not break the run
            self._failed = True
            warnings.warn(f"parcoord_nb: the live view of {self.run.id} stopped refreshing: "
                          f"{type(e).__name__}: {e}", RuntimeWarning, stacklevel=1)
            return
        self._schedule()

    def _now(self) -> float:
        if self._t0 is None:
            return 0.0
        return max(0.0, self.clock() - self._t0)

    # -- one refresh ------------------------------------------------------------------------
    def _header_value(self, now: float = 0.0, *, final: bool = False, counted: Any = None) -> str:
        # The notes are about the live view (background, Cancel): gone with it.
        return header_html(self.run, now, self._axis, final=final, notes=() if final else self.notes,
                           counted=counted)

    def _refresh(self, *, final: bool) -> int:
        run = self.run
        if final:
            now = run.wall_end if run.wall_end is not None else self._now()
            ends = [a.end for r in run.tasks.values() for a in r.history if a.end is not None]
            self._axis = max([now, *ends, 1e-3])
        else:
            now = self._now()
            self._axis = max(self._axis, axis_end(now))
        aggregate = len(run.tasks) > self.max_rows
        seen = tally(run, self.aggregate_rows, ended=final)  # one pass over the tasks per tick
        names = self._choose([s.name for s in self._slots], final=final, seen=seen)
        parts: list[tuple[Hashable, Any, int, int]] = [
            ("header", self._header_value(now, final=final, counted=seen.counts), 0, 1),
            ("cols", columns_html(self._axis), 0, 1),  # changes only when the axis grows
        ]
        rows: dict[int, Any] = {}
        creating = 0
        auto_opened = 0
        for i, slot in enumerate(self._slots):
            if i >= len(names):
                continue
            name = names[i]
            rec = run.tasks[name]
            view = row_view(rec, now, self._axis, final=final)
            rich = final and rec.status == "done" and rec.result is not None and is_rich(
                rich_bundle(rec.result, self.formatter))
            details = view.has_details or rich
            rows[i] = (name, view)
            if name != slot.name:
                slot.name = name
                if not slot.user_set:
                    slot.open = False
            if not slot.user_set and not slot.open and details:
                # Open what a user would open anyway: a task's display() output while it
                # runs (not while rows change tasks), and at the end failures and rich results.
                if final:
                    # A few at most: a thousand failures should not bury the summary.
                    slot.open = auto_opened < AUTO_OPEN and (rec.error is not None or len(rec.displays) > 0 or rich)
                    auto_opened += slot.open
                elif not aggregate:
                    slot.open = len(rec.displays) > 0
            status_changed = self.coalescer.last(("box", i), ((),))[0] != view.classes
            want_toggle = details or slot.toggle is not None
            parts.append((("box", i), (view.classes, want_toggle), 1, 1 + (want_toggle and slot.toggle is None)))
            parts.append((("line", i), view.html, 1 if status_changed else 2, 1))
            if want_toggle:
                parts.append((("toggle", i), (details, slot.open, final), 3, 1))
            if slot.open and slot.area is None:
                creating += 1
            if slot.open:
                parts.append((("area", i), area_key(rec, final), 3, 1))
        parts.append(("rows", self._rows_value(), 2, 1 + creating))
        if self._more is not None:
            parts.append(("more", more_html(run, names, seen.counts), 2, 1))
        before = self.sent
        for key, value in self.coalescer.select(parts, final=final):
            self._apply(key, value, rows, final)
            self.coalescer.sent(key, value)
        self.ticks += 1
        return self.sent - before

    def _apply(self, key: Hashable, value: Any, rows: dict[int, Any], final: bool) -> None:
        if key == "header":
            self._header.value = value
        elif key == "cols":
            self._cols.value = value
        elif key == "more":
            self._more.value = value
        elif key == "rows":
            for slot in self._slots:
                if slot.open and slot.area is None:
                    slot.area = self._make_area(slot, final)  # its comm_open carries its contents
            with self._rows.hold_sync():
                self._rows.children = self._rows_children()
        else:
            kind, i = key  # type: ignore[misc]
            slot = self._slots[i]
            if kind == "line":
                slot.line.value = value
            elif kind == "box":
                classes, want_toggle = value
                if want_toggle and slot.toggle is None:
                    slot.toggle = self._make_toggle(slot, slot.open, final)
                with slot.box.hold_sync():
                    slot.box._dom_classes = classes
                    slot.box.children = (slot.line, slot.toggle) if slot.toggle is not None else (slot.line,)
            elif kind == "toggle":
                details, open_, is_final = value
                if slot.toggle is None:
                    return
                with slot.toggle.hold_sync():
                    slot.toggle._dom_classes = ("parcoord-toggle",) if details or open_ else ("parcoord-toggle", "pc-hidden")
                    slot.toggle.description = _toggle_label(open_, is_final)
                    if slot.toggle.value != open_:
                        slot.toggle.value = open_
            elif kind == "area":
                if slot.area is not None and slot.name is not None:
                    slot.area.outputs = tuple(area_outputs(self.run.tasks[slot.name], final=final,
                                                           formatter=self.formatter))

    # -- user actions (not budgeted: a click is one person, not ten thousand tasks) ------------
    def _on_cancel(self, _button: Any = None) -> None:
        self.run.cancel()
        with self._lock:
            if not self.final:
                self._cancel.description = "Cancelling…"
                self._cancel.disabled = True

    def _on_toggle(self, slot: _Slot, value: bool) -> None:
        with self._lock:
            if bool(value) == slot.open:
                return
            slot.open = bool(value)
            slot.user_set = True
            if slot.name is None:
                return
            i = self._slots.index(slot)
            rec = self.run.tasks[slot.name]
            if slot.open and slot.area is None:
                slot.area = self._make_area(slot, self.final)
            elif slot.open:
                slot.area.outputs = tuple(area_outputs(rec, final=self.final, formatter=self.formatter))
            self.coalescer.sent(("area", i), area_key(rec, self.final))
            with self._rows.hold_sync():
                self._rows.children = self._rows_children()
            self.coalescer.sent("rows", self._rows_value())
            if slot.toggle is not None:
                slot.toggle.description = _toggle_label(slot.open, self.final)
                last = self.coalescer.last(("toggle", i), (True, False, False))
                self.coalescer.sent(("toggle", i), (last[0], slot.open, self.final))


AUTO_OPEN = 3  # task areas opened by themselves at the end of a run

_ENDED = (ev.TaskFinished, ev.TaskFailed, ev.TaskTimedOut, ev.TaskCancelled, ev.TaskSkipped)


def _toggle_label(open_: bool, final: bool) -> str:
    return ("▾ " if open_ else "▸ ") + ("details" if final else "output")


def _gantt_png(run: Run) -> bytes | None:
    from .report import gantt_png

    return gantt_png(run)
