"""The live view in-process: real runs, real ipywidgets, a comm that records messages.

No kernel and no frontend: ``comm.create_comm`` is replaced by a comm that keeps every
message a widget would send to the frontend, so the tests count exactly what a
browser would receive. Timing is never asserted; ticks are driven by hand (or by the
view's own timer, whose rate is not what is tested).
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Iterator
from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm

import parcoord_nb
from parcoord_nb import api
from parcoord_nb import events as ev
from parcoord_nb.run import Run
from parcoord_nb.view import live
from parcoord_nb.view.live import AGGREGATE_ROWS, MESSAGES_PER_TICK, Coalescer, area_outputs, choose_rows
from parcoord_nb.view.progress_text import TextProgress, make_view


class Wire:
    """Every message the widgets sent, in order: (msg_type, comm_id, data)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict[str, Any]]] = []
        self.models: dict[str, str] = {}

    def updates(self, since: int = 0) -> list[tuple[str, str, dict[str, Any]]]:
        return [m for m in self.messages[since:] if m[0] == "comm_msg"]

    def state(self, comm_id: str) -> dict[str, Any]:
        """The model's state as the frontend would hold it after all messages."""
        out: dict[str, Any] = {}
        for kind, cid, data in self.messages:
            if cid == comm_id and kind in ("comm_open", "comm_msg"):
                out.update((data or {}).get("state", {}))
        return out


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    w = Wire()

    class RecordingComm(BaseComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:
            w.messages.append((msg_type, self.comm_id, data or {}))

    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: RecordingComm(*a, **k))
    yield w


def dashboard(run: Run, **kw: Any) -> Any:
    from parcoord_nb.view.dashboard import Dashboard

    return Dashboard(run, **kw)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def many_tasks(n: int) -> str:
    return "".join(f"# task t{i}\nv{i} = {i}\n" for i in range(n))


# -- the budget -----------------------------------------------------------------------
def test_coalescer_sends_changes_only_highest_priority_first_within_budget() -> None:
    c = Coalescer(budget=3)
    parts = [("h", 1, 0, 1), ("a", 1, 2, 1), ("big", 1, 2, 2), ("b", 1, 2, 1), ("s", 1, 1, 1)]
    first = c.select(parts)
    # Priority, then order; "big" costs two messages and does not fit after h, s, a.
    assert [k for k, _ in first] == ["h", "s", "a"]
    for k, v in first:
        c.sent(k, v)
    # Unchanged parts are not sent again; the ones left out last tick go first now.
    second = c.select(parts)
    assert [k for k, _ in second] == ["big", "b"]


def test_coalescer_never_starves_a_low_priority_part() -> None:
    # Ten urgent parts change every tick, more than the budget: the counts line still goes.
    c = Coalescer(budget=3)
    sent_at = None
    for tick in range(20):
        parts = [(f"row{i}", tick, 1, 1) for i in range(10)] + [("more", "x", 2, 1)]
        chosen = c.select(parts)
        for k, v in chosen:
            c.sent(k, v)
        if any(k == "more" for k, _ in chosen):
            sent_at = tick
            break
    assert sent_at is not None and sent_at <= 5


def test_coalescer_final_selection_ignores_the_budget() -> None:
    c = Coalescer(budget=1)
    parts = [(i, "v", 2, 1) for i in range(50)]
    assert len(c.select(parts)) == 1
    assert len(c.select(parts, final=True)) == 50


def test_view_sends_what_changed_and_never_more_than_the_budget_per_tick(wire: Wire) -> None:
    async def main() -> tuple[Any, list[int]]:
        clock = FakeClock()
        gate = asyncio.Event()
        engine = api.make_engine(
            "import asyncio\n"
            + "".join(f"# task t{i}\nprint('working', {i})\nawait gate.wait()\n" for i in range(12)),
            {"gate": gate},
        )
        view = dashboard(engine.run, clock=clock, tick_s=None)
        engine.observers.append(view.observe)
        run = engine.start()
        while sum(r.status == "running" for r in run.tasks.values()) < 12:
            await asyncio.sleep(0)
        per_tick = []
        for _ in range(12):
            clock.t += 0.125
            n = len(wire.messages)
            view.tick()
            per_tick.append(len(wire.messages) - n)  # comm_open of new widgets counts too
        rows = {s.name: wire.state(s.box.model_id)["_dom_classes"] for s in view._slots}
        gate.set()
        await run
        return per_tick, rows

    per_tick, rows = asyncio.run(main())
    # 12 rows turned running and printed at once: more than one tick can carry, so the
    # updates are spread over several ticks, each within the budget...
    assert all(n <= MESSAGES_PER_TICK for n in per_tick), per_tick
    assert per_tick.count(MESSAGES_PER_TICK) >= 2
    # ...and the rows that lost out went first later: every row got there.
    assert all("parcoord-status-running" in classes for classes in rows.values()), rows


def test_ten_thousand_tasks_cost_a_screenful_and_the_budget(wire: Wire) -> None:
    """10,000 tasks: a screenful of rows, the rest counted; each tick within the budget."""

    async def main() -> Any:
        engine = api.make_engine("import asyncio\n" + "".join(
            f"# task t{i}\nawait asyncio.sleep(0)\nv{i} = {i}\n" for i in range(10_000)), {},
            max_concurrency=50)
        view = dashboard(engine.run, tick_s=0.01)  # the view's own timer, ticking fast
        per_tick: list[int] = []
        tick = view.tick

        def counted_tick() -> int:
            n = tick()
            per_tick.append(n)
            return n

        view.tick = counted_tick  # type: ignore[method-assign]
        opened = len(wire.messages)
        engine.observers.append(view.observe)
        await engine.start()
        return view, per_tick, opened

    view, per_tick, opened = asyncio.run(main())
    run = view.run
    assert run.status == "done"
    assert per_tick, "the timer never ticked"
    assert max(per_tick) <= MESSAGES_PER_TICK
    # The widgets themselves: two per row of a screenful, not one per task.
    assert opened < 60
    rows = [s for s in view._slots]
    assert len(rows) == AGGREGATE_ROWS
    # Whatever was skipped on the way, the final state is complete.
    assert "10,000/10,000 done" in wire.state(view._header.model_id)["value"]
    assert all("parcoord-status-done" in wire.state(s.box.model_id)["_dom_classes"] for s in rows)
    assert f"{10_000 - AGGREGATE_ROWS:,} more tasks" in wire.state(view._more.model_id)["value"]


def test_final_state_is_sent_even_when_every_tick_was_over_budget(wire: Wire) -> None:
    async def main() -> Any:
        engine = api.make_engine("".join(f"# task t{i}\nv{i} = {i}\n" for i in range(8)), {})
        view = dashboard(engine.run, tick_s=None, budget=1)  # only the header ever fits
        engine.observers.append(view.observe)
        run = engine.start()
        for _ in range(3):
            await asyncio.sleep(0.01)
            view.tick()
        await run
        return view

    view = asyncio.run(main())
    for slot in view._slots:
        state = wire.state(slot.box.model_id)
        assert "parcoord-status-done" in state["_dom_classes"], state
        assert "pc-b-done" in wire.state(slot.line.model_id)["value"]  # the row says done
    root = wire.state(view.root.model_id)
    assert {"parcoord-run", "parcoord-ended", "parcoord-run-done"} <= set(root["_dom_classes"])
    gantt = wire.state(view._gantt.model_id)["value"]
    assert "data:image/png;base64," in gantt


# -- what a row shows -------------------------------------------------------------------
def test_rows_show_status_progress_fanout_and_output_as_the_run_goes(wire: Wire) -> None:
    async def main() -> Any:
        clock = FakeClock()
        step = asyncio.Event()
        engine = api.make_engine(
            "import asyncio, parcoord_nb\n"
            "# task crunch: Crunch numbers\nparcoord_nb.progress(3, 10, 'chunk 3')\nawait step.wait()\n"
            "# task chatty\nprint('hello', 'world')\nawait step.wait()\n"
            "# task pages for u in range(4)\nawait asyncio.sleep(0.01 * u)\nif u == 3: await step.wait()\n",
            {"step": step},
        )
        view = dashboard(engine.run, clock=clock, tick_s=None, budget=100)
        engine.observers.append(view.observe)
        run = engine.start()
        while run.tasks["pages"].items_done < 3:
            await asyncio.sleep(0.005)
        clock.t += 1.5
        view.tick()
        live_rows = {s.name: (s.box._dom_classes, s.line.value) for s in view._slots}
        step.set()
        await run
        return view, live_rows

    view, rows = asyncio.run(main())
    classes, html = rows["crunch"]
    assert "parcoord-status-running" in classes and "parcoord-task-crunch" in classes
    assert "width:30%" in html and "3/10" in html and "chunk 3" in html and "Crunch numbers" in html
    assert "hello world" in rows["chatty"][1]
    assert "3/4" in rows["pages"][1]  # a fan-out is one row with n/N
    assert 'class="pc-tl"><i class="pc-s-running"' in rows["chatty"][1]  # its bar on the timeline
    final = {s.name: s.line.value for s in view._slots}
    assert "4/4" in final["pages"] and "→ [None, None, None, None]" in final["pages"]


def start_attempt(r: Any, t: float) -> None:
    from parcoord_nb.run import Attempt

    r.status, r.start = "running", t
    r.history.append(Attempt(1, t))


def test_a_task_waiting_for_a_free_slot_shows_as_queued_until_it_starts() -> None:
    run = parcoord_nb.run("# task a\nx = 1\n", {})  # any record will do
    r = run.tasks["a"]
    r.status, r.history, r.start, r.end = "running", [], None, None  # taken, waiting on --max-concurrency
    assert live.status_of(r) == "queued"
    assert "parcoord-status-queued" in live.row_view(r, 1.0, 2.0).classes
    start_attempt(r, 1.0)
    assert live.status_of(r) == "running"
    assert "parcoord-status-running" in live.row_view(r, 1.5, 2.0).classes


def test_choose_rows_puts_running_tasks_first_and_keeps_their_slots() -> None:
    plan = parcoord_nb.plan(many_tasks(200))
    run = Run("run-x", plan, {})
    for i, r in enumerate(run.tasks.values()):
        if i < 150:
            r.status, r.start, r.end = "done", 0.0, float(i)
        elif i in (160, 170, 180):
            start_attempt(r, float(i))
    run.tasks["t7"].status = "failed"
    rows = choose_rows(run)
    assert len(rows) == AGGREGATE_ROWS
    assert rows[:4] == ["t160", "t170", "t180", "t7"]  # running (oldest first), then failures
    assert "t149" in rows  # then the latest to finish
    # t170 finishes and t190 starts: the others keep their slots, t190 takes a free one.
    run.tasks["t170"].status, run.tasks["t170"].end = "done", 500.0
    start_attempt(run.tasks["t190"], 190.0)
    again = choose_rows(run, previous=rows)
    assert again[0] == "t160" and again[2] == "t180" and again[3] == "t7"
    assert "t190" in again and "t170" in again
    assert len(set(again)) == AGGREGATE_ROWS


def test_fanout_of_ten_thousand_draws_a_bounded_timeline() -> None:
    run = parcoord_nb.run("# task f for i in range(10_000)\ny = i\n", {})
    rec = run.tasks["f"]
    view = live.row_view(rec, run.wall_end or 1.0, run.wall_end or 1.0, final=True)
    assert "10,000/10,000" in view.html
    assert view.html.count("<i class=") <= 200


def test_a_tasks_area_holds_a_bounded_tail_and_the_full_output_stays_on_the_run() -> None:
    run = parcoord_nb.run("# task loud\nfor _i in range(20_000):\n    print('line', _i)\n", {})
    rec = run.tasks["loud"]
    assert rec.stdout.count("\n") == 20_000
    (stream,) = area_outputs(rec, final=False)
    assert len(stream["text"]) < live.OUTPUT_TAIL + 200
    assert stream["text"].rstrip().endswith("line 19999")
    assert "earlier characters are in run.tasks['loud'].stdout" in stream["text"]


def test_final_area_holds_the_traceback_and_rich_results() -> None:
    class Table:
        def _repr_html_(self) -> str:
            return "<table><tr><td>1</td></tr></table>"

    run = parcoord_nb.run("# task bad\nraise KeyError('missing')\n# task tab\nTable()\n", {"Table": Table})

    def formatter(value: Any) -> dict[str, Any]:
        return {"text/plain": repr(value), "text/html": value._repr_html_()}

    bad = area_outputs(run.tasks["bad"], final=True)
    assert bad[-1]["output_type"] == "error" and bad[-1]["ename"] == "KeyError"
    assert any("raise KeyError" in line for line in bad[-1]["traceback"])
    tab = area_outputs(run.tasks["tab"], final=True, formatter=formatter)
    assert tab[-1]["data"]["text/html"].startswith("<table>")


def test_toggle_opens_a_tasks_output_area(wire: Wire) -> None:
    async def main() -> Any:
        engine = api.make_engine("# task a\nprint('from a')\n# task b\nx = 2\n", {})
        view = dashboard(engine.run, tick_s=None)
        engine.observers.append(view.observe)
        await engine.start()
        return view

    view = asyncio.run(main())
    a = next(s for s in view._slots if s.name == "a")
    assert a.area is None
    a.toggle.value = True  # what a click does
    assert a.area is not None and a.area in view._rows.children
    texts = [o.get("text", "") for o in a.area.outputs]
    assert "from a\n" in texts


def test_cancel_button_cancels_the_run_and_keeps_finished_results(wire: Wire) -> None:
    async def main() -> Any:
        engine = api.make_engine(
            "import asyncio\n# task quick\nq = 1\n# task slow\nawait asyncio.sleep(30)\n"
            "# task blocked\nimport time\nfor _ in range(300):\n    if parcoord_nb.cancelled(): break\n"
            "    time.sleep(0.01)\n",
            {"parcoord_nb": parcoord_nb},
        )
        view = dashboard(engine.run, tick_s=None)
        engine.observers.append(view.observe)
        run = engine.start()
        while run.tasks["quick"].status != "done" or run.tasks["slow"].status != "running":
            await asyncio.sleep(0.01)
        view._cancel.click()
        await run
        return view

    view = asyncio.run(main())
    run = view.run
    assert run.status == "cancelled"
    assert run.tasks["slow"].status == "cancelled" and run.tasks["quick"].status == "done"
    assert run.results == {"quick": None}
    assert view._cancel not in view._top.children  # the button goes with the live view
    assert "parcoord-run-cancelled" in wire.state(view.root.model_id)["_dom_classes"]


# -- without widgets -------------------------------------------------------------------
def test_text_progress_prints_a_line_per_change_at_a_low_rate() -> None:
    plan = parcoord_nb.plan("# task a\nx = 1\n# task b\ny = 2\n# task c\nz = 3\n")
    run = Run("run-t", plan, {})
    clock = FakeClock()
    out = io.StringIO()
    view = TextProgress(run, stream=out, clock=clock, min_interval=1.0)
    view.observe(ev.RunStarted(0.0, run.id, tuple(run.tasks)))
    start_attempt(run.tasks["a"], 0.0)
    view.observe(ev.TaskStarted(0.0, "a", 1))
    start_attempt(run.tasks["b"], 0.1)
    view.observe(ev.TaskStarted(0.1, "b", 1))  # within a second of the last line: no line
    clock.t += 2
    run.tasks["a"].status = "done"
    view.observe(ev.TaskFinished(2.0, "a", 2.0))
    view.observe(ev.TaskProgress(2.1, "b", 1, 2, None))  # progress alone prints nothing
    clock.t += 0.2
    run.tasks["b"].status = "failed"
    run.tasks["c"].status = "skipped"
    view.observe(ev.TaskFailed(2.2, "b", ValueError("x")))  # too soon: folded into the last line
    run.status = "failed"
    view.observe(ev.RunFinished(2.3, "failed"))
    lines = out.getvalue().splitlines()
    assert lines == view.lines
    assert len(lines) == 3
    assert lines[0].startswith("run-t: 0/3 done · 1 running (a)")
    assert lines[1].startswith("run-t: 1/3 done · 1 running (b)")
    assert lines[2].startswith("run-t failed: 1/3 done · 1 failed · 1 skipped")


def test_text_progress_lines_stay_out_of_the_tasks_output(monkeypatch: pytest.MonkeyPatch) -> None:
    # Observers are also called from inside tasks (a task's own events), while
    # sys.stdout routes by task: the view's lines must reach the user, not the task.
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    engine = api.make_engine("import asyncio\n# task a\nprint('inside a')\nawait asyncio.sleep(0)\n"
                             "# task b\nprint('inside b')\n", {})
    view = TextProgress(engine.run, min_interval=0.0)
    engine.observers.append(view.observe)
    api.run_engine_blocking(engine)
    assert engine.run.tasks["a"].stdout == "inside a\n"
    assert engine.run.tasks["b"].stdout == "inside b\n"
    assert out.getvalue().splitlines()[-1].startswith(f"{engine.run.id} done: 2/2 done")


def test_without_ipywidgets_the_view_falls_back_to_text(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run("run-w", parcoord_nb.plan("# task a\nx = 1\n"), {})
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    monkeypatch.delitem(sys.modules, "parcoord_nb.view.dashboard", raising=False)
    view = make_view(run, widgets=True)
    assert isinstance(view, TextProgress)
    assert view.bundle() is None


def test_without_a_frontend_the_view_is_text_and_quiet_in_the_background() -> None:
    run = Run("run-f", parcoord_nb.plan("# task a\nx = 1\n"), {})
    assert isinstance(make_view(run, widgets=False), TextProgress)
    view = make_view(run, widgets=False, background=True, in_kernel=True)
    assert view.live is False  # a background run's prints would land in whatever cell runs next


# -- a task's displays, and what the magic tells the view ----------------------------------
def test_display_log_keeps_order_updates_by_display_id_and_is_bounded() -> None:
    from parcoord_nb.capture import DisplayLog

    log = DisplayLog()
    log.publish({"text/plain": "first", "image/png": b"\x89PNG"})
    log.publish({"text/plain": "progress 1"}, transient={"display_id": "p"})
    log.publish({"text/plain": "progress 2"}, transient={"display_id": "p"}, update=True)
    assert [o["data"]["text/plain"] for o in log.outputs] == ["first", "progress 2"]
    assert log.outputs[0]["data"]["image/png"] == "iVBORw=="  # base64, as notebooks hold images
    for i in range(DisplayLog.MAX_DISPLAYS + 5):
        log.publish({"text/plain": f"n{i}"})
    assert len(log) == DisplayLog.MAX_DISPLAYS and log.dropped == 7
    log.clear()
    assert log.outputs == []


def test_the_view_says_when_cancel_cannot_act_during_a_cell(wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from parcoord_nb import magic

    def header_for(version: str, *, sync: bool) -> str:
        monkeypatch.setattr(magic, "_ipykernel_version", lambda: version)
        engine = api.make_engine("# task a\nx = 1\n", {})
        shell = SimpleNamespace(kernel=object(), display_formatter=None)
        args = SimpleNamespace(quiet=False, background=False, out=None, no_gantt=True)
        monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
        view = magic._show_view(engine, args, shell, sync=sync)
        return view._header.value

    assert "ipykernel 7.4 or later (this kernel has 7.3.0)" in header_for("7.3.0", sync=False)
    assert "Interrupt" in header_for("6.29.5", sync=False)
    assert "pc-note" not in header_for("7.4.0", sync=False)
    assert "%autoawait is off" in header_for("7.4.0", sync=True)


def test_wait_on_the_loop_that_runs_the_run_says_to_await_instead() -> None:
    async def main() -> str:
        run = api.start("import asyncio\n# task a\nawait asyncio.sleep(0.05)\n", {})
        try:
            run.wait()  # would block the loop the run needs: never returns
        except RuntimeError as e:
            message = str(e)
        await run
        return message

    assert "`await run`" in asyncio.run(main())


def test_wait_hooks_run_in_the_waiting_code_each_time() -> None:
    seen: list[str] = []
    engine = api.make_engine("# task a\nx = 1\n", {})
    engine.run._wait_hooks.append(lambda r: seen.append(r.status))
    import threading

    worker = threading.Thread(target=api.run_engine_blocking, args=(engine,))
    worker.start()
    assert engine.run.wait(30) is engine.run  # a private loop in a thread: wait() works
    worker.join()

    async def again() -> None:
        await engine.run

    asyncio.run(again())
    assert seen == ["done", "done"]


def test_text_progress_does_not_count_the_run_on_every_event(monkeypatch: pytest.MonkeyPatch) -> None:
    import parcoord_nb.view.progress_text as pt

    calls = 0
    real = pt.counts

    def counting(run: Run) -> dict[str, int]:
        nonlocal calls
        calls += 1
        return real(run)

    monkeypatch.setattr(pt, "counts", counting)
    ticks = iter(range(10**9))
    engine = api.make_engine(many_tasks(2000), {})
    view = TextProgress(engine.run, stream=io.StringIO(), clock=lambda: next(ticks) * 0.001)  # 1 ms per event
    events = 0

    def observe(event: ev.Event) -> None:
        nonlocal events
        events += 1
        view.observe(event)

    engine.observers.append(observe)
    api.run_engine_blocking(engine)
    assert events > 4000
    assert calls <= events * 0.001 / pt.CHECK_INTERVAL_S + 2  # once per check interval, not per event
    assert view.lines[-1].startswith(f"{engine.run.id} done: 2,000/2,000 done")
