"""The live view on a real ipykernel: the widget messages a frontend would receive.

Cells are sent over ZMQ as JupyterLab sends them, and every iopub message is kept
with its arrival time, including widget updates parented to other cells (background
runs). Widget state is rebuilt from comm_open/comm_msg the way a frontend holds it.
"""

from __future__ import annotations

import json
import queue
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from kernel_client import CellResult, Kernel

pytestmark = pytest.mark.kernel

BUDGET_PER_S = 100  # the ceiling; the view's own design stays near half of it


def execute(kernel: Kernel, code: str, *, timeout: float = 120.0, cell_id: str | None = None,
            on_message: Callable[[dict[str, Any]], None] | None = None) -> CellResult:
    """Run a cell; keep every iopub message (any parent) with ``_t`` and ``_mine``.

    ``cell_id`` is sent as JupyterLab sends it, in the request's metadata.
    """
    client = kernel.client
    started = time.perf_counter()
    if cell_id is None:
        msg_id = client.execute(code, allow_stdin=False)
    else:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        request = client.session.msg("execute_request", content, metadata={"cellId": cell_id})
        client.shell_channel.send(request)
        msg_id = request["header"]["msg_id"]
    messages: list[dict[str, Any]] = []
    while True:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"cell did not finish within {timeout}s:\n{code[:500]}")
        try:
            msg = client.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            continue
        msg["_t"] = time.perf_counter() - started
        msg["_mine"] = msg["parent_header"].get("msg_id") == msg_id
        if msg["_mine"] and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        if msg["_mine"] or msg["msg_type"].startswith("comm_"):
            messages.append(msg)
            if on_message is not None:
                on_message(msg)
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=timeout)
    return CellResult(reply=reply, messages=messages, started=started, finished=time.perf_counter())


class Widgets:
    """Widget models as the frontend holds them, from the comm messages seen so far."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}

    def feed(self, messages: list[dict[str, Any]]) -> Widgets:
        for m in messages:
            if m["msg_type"] in ("comm_open", "comm_msg"):
                data = m["content"].get("data", {})
                self.state.setdefault(m["content"]["comm_id"], {}).update(data.get("state", {}))
        return self

    def rows(self) -> dict[str, str]:
        """task name -> status, from the row containers' DOM classes."""
        out = {}
        for s in self.state.values():
            classes = s.get("_dom_classes") or []
            if "parcoord-task" in classes:
                name = next(c for c in classes if c.startswith("parcoord-task-"))[len("parcoord-task-"):]
                out[name] = next(c for c in classes if c.startswith("parcoord-status-"))[len("parcoord-status-"):]
        return out

    def header(self) -> str:
        (head,) = [s["value"] for s in self.state.values() if "parcoord-header" in (s.get("_dom_classes") or [])]
        return head

    def with_class(self, cls: str) -> list[dict[str, Any]]:
        return [s for s in self.state.values() if cls in (s.get("_dom_classes") or [])]


def html_values(widgets: Widgets) -> list[str]:
    return [s["value"] for s in widgets.state.values() if isinstance(s.get("value"), str)]


def comm_messages(r: CellResult) -> list[dict[str, Any]]:
    return [m for m in r.messages if m["msg_type"] in ("comm_open", "comm_msg")]


def peak_rate(times: list[float], window: float = 1.0) -> float:
    """The most messages in any ``window`` seconds, per second."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best / window


THREE_TASKS = """%%parallel --out live_run
import asyncio, time, parcoord_nb
# task fetch: Fetch pages
for _i in range(8):
    print('page', _i)
    await asyncio.sleep(0.15)
8
# task crunch: Crunch
for _j in range(8):
    parcoord_nb.progress(_j + 1, 8)
    time.sleep(0.15)
'crunched'
# task report after=fetch
await asyncio.sleep(0.2)
"""


def test_live_updates_arrive_during_the_run_and_the_final_state_is_sent(kernel: Kernel) -> None:
    r = execute(kernel, THREE_TASKS)
    assert r.status == "ok", r.text
    # The live view is the first output, before any task ends; the static report follows.
    outputs = r.of_type("display_data")
    assert "application/vnd.jupyter.widget-view+json" in outputs[0]["content"]["data"]
    report_at = next(m["_t"] for m in outputs if "text/html" in m["content"]["data"])
    updates = [m for m in r.of_type("comm_msg") if m["_t"] < report_at]
    heads = [m["content"]["data"]["state"]["value"] for m in updates
             if "pc-head" in m["content"]["data"].get("state", {}).get("value", "")]
    # Several refreshes while it ran (1.4 s of work at 8 a second), each a single message.
    assert len(heads) >= 4, heads
    assert any("0/3 done" in h for h in heads) and any("2/3 done" in h for h in heads)
    widgets = Widgets().feed(r.messages)
    seen = []  # every status a row showed, in order
    for m in updates:
        for c in m["content"]["data"].get("state", {}).get("_dom_classes", []):
            if c.startswith("parcoord-status-"):
                seen.append(c)
    assert "parcoord-status-running" in seen and seen.index("parcoord-status-running") < seen.index("parcoord-status-done")
    # Final values, as the frontend ends up holding them.
    assert widgets.rows() == {"fetch": "done", "crunch": "done", "report": "done"}
    assert "3/3 done" in widgets.header() and "speedup" in widgets.header()
    (root,) = widgets.with_class("parcoord-run")
    assert "parcoord-ended" in root["_dom_classes"] and "parcoord-run-done" in root["_dom_classes"]
    (gantt,) = widgets.with_class("parcoord-gantt")
    assert "data:image/png;base64," in gantt["value"]
    # The static report is still emitted as ordinary outputs for nbconvert/GitHub.
    assert any("parcoord-final" in h for h in r.data("text/html"))
    assert len(r.data("image/png")) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "cell",
    [
        pytest.param("%%parallel --out big_run\nimport asyncio\n# task f for i in range(10_000): Fan out   limit=500\n"
                     "await asyncio.sleep(0.3)\ny = i\n", id="fanout-10000"),
        pytest.param("%%parallel --out big_run --max-concurrency 500\nimport asyncio\n" + "".join(
            f"# task t{i}\nawait asyncio.sleep(0.3)\n" for i in range(10_000)), id="tasks-10000"),
    ],
)
def test_ten_thousand_tasks_stay_well_under_the_message_budget(kernel: Kernel, cell: str) -> None:
    r = execute(kernel, cell, timeout=300)
    assert r.status == "ok", r.text
    wall = kernel.value("big_run.summary.wall_s")
    msgs = comm_messages(r)
    report_at = next(m["_t"] for m in r.of_type("display_data") if "text/html" in m["content"]["data"])
    during = [m["_t"] for m in msgs if m["_t"] < report_at]
    # The three parts: showing the view (its widgets' comm_open), the live updates, and
    # the final state (from the final header on, which goes first).
    shown = [m for m in msgs if m["msg_type"] == "comm_open" and m["_t"] <= msgs[0]["_t"] + 0.05]
    final_at = next(m["_t"] for m in msgs if m["msg_type"] == "comm_msg"
                    and 'class="pc-summary"' in str(m["content"]["data"].get("state", {}).get("value", "")))
    live = [m["_t"] for m in msgs[len(shown):] if m["_t"] < final_at]
    live_rate = len(live) / (live[-1] - live[0]) if len(live) > 1 else 0.0
    final = [m for m in msgs if final_at <= m["_t"] < report_at]
    peak = peak_rate(during)
    print(f"\n{len(during)} widget messages for {wall:.2f} s of run: {len(shown)} to show the view, "
          f"{len(live)} live updates ({live_rate:.1f}/s), {len(final)} for the final state; "
          f"busiest second {peak:.0f}, over 3 s {peak_rate(during, 3.0):.0f}/s, "
          f"{len(during) / wall:.1f}/s overall")
    assert peak < BUDGET_PER_S and live_rate < BUDGET_PER_S and len(during) / wall < BUDGET_PER_S
    widgets = Widgets().feed(r.messages)
    assert "10,000/10,000 done" in widgets.header() or "1/1 done" in widgets.header()
    assert set(widgets.rows().values()) == {"done"}
    if "fanout" in cell:
        (line,) = [v for v in html_values(widgets) if v.startswith("<div class=\"pc-row\">") and "Fan out" in v]
        assert "10,000/10,000" in line


def test_prints_from_two_coroutines_and_two_threads_stay_apart(kernel: Kernel) -> None:
    r = execute(kernel, """%%parallel --out cap_run
import asyncio, time
# task co1
for _i in range(40):
    print('co1', _i)
    await asyncio.sleep(0.02)
# task co2
for _i in range(40):
    print('co2', _i)
    await asyncio.sleep(0.02)
# task th1
for _i in range(40):
    print('th1', _i)
    time.sleep(0.02)
# task th2
for _i in range(40):
    print('th2', _i)
    time.sleep(0.02)
""")
    assert r.status == "ok", r.text
    spans = kernel.value("[(t.start, t.end) for t in cap_run.tasks.values()]")
    assert max(s for s, _ in spans) < min(e for _, e in spans), "the four printed at the same time"
    for name in ("co1", "co2", "th1", "th2"):
        assert kernel.value(f"cap_run.tasks[{name!r}].stdout") == "".join(f"{name} {i}\n" for i in range(40))
    assert "co1 0" not in r.stdout and "th1 0" not in r.stdout  # none of it landed in the cell
    # Every row update the frontend got showed that task's own latest line, never another's.
    seen = {name: set() for name in ("co1", "co2", "th1", "th2")}
    for m in r.of_type("comm_msg"):
        value = m["content"]["data"].get("state", {}).get("value")
        if isinstance(value, str) and value.startswith("<div class=\"pc-row\">"):
            name = re.search(r"<b>(\w+)</b>", value).group(1)  # type: ignore[union-attr]
            line = re.search(r'class="pc-line [\w-]+" title="([^"]*)"', value).group(1)  # type: ignore[union-attr]
            seen[name].add(line.split(" ")[0])
    assert {n: s - {"", "→"} for n, s in seen.items()} == {n: {n} for n in seen}


def test_display_from_a_task_lands_in_that_task(kernel: Kernel) -> None:
    r = execute(kernel, """%%parallel --out disp_run
import asyncio
from IPython.display import display, HTML
# task left
display(HTML('<b id="from-left">left</b>'))
await asyncio.sleep(0.3)
# task right
import time
display(HTML('<i id="from-right">right</i>'))
time.sleep(0.3)
""")
    assert r.status == "ok", r.text
    assert not any("from-left" in h or "from-right" in h for h in r.data("text/html") if "parcoord-final" not in h)
    left = kernel.value("[d['data']['text/html'] for d in disp_run.tasks['left'].displays.outputs]")
    right = kernel.value("[d['data']['text/html'] for d in disp_run.tasks['right'].displays.outputs]")
    assert left == ['<b id="from-left">left</b>'] and right == ['<i id="from-right">right</i>']
    # In the live view each display shows in its own task's area, opened for it.
    areas = Widgets().feed(r.messages).with_class("parcoord-area")
    held = sorted(json.dumps(a["outputs"]) for a in areas)
    assert len(held) == 2
    assert ("from-left" in held[0]) != ("from-left" in held[1])
    assert all(("from-left" in h) != ("from-right" in h) for h in held)
    # The static report keeps them too, in their tasks' rows, for nbconvert and GitHub.
    (report,) = [h for h in r.data("text/html") if "parcoord-final" in h]
    assert '<b id="from-left">left</b>' in report and '<i id="from-right">right</i>' in report


def test_background_run_stays_live_and_await_reports_in_the_later_cell(kernel: Kernel) -> None:
    r1 = execute(kernel, """%%parallel --background --out bg_run
import asyncio, time
# task slow: Slow one
await asyncio.sleep(1.5)
'slow done'
# task thread
time.sleep(1.0)
print('thread finished')
""")
    assert r1.status == "ok", r1.text
    assert kernel.value("bg_run.status") == "running"  # the cell returned while it runs
    r2 = execute(kernel, "import asyncio\nawait asyncio.sleep(0.6)\n")
    assert any(not m["_mine"] and m["msg_type"] == "comm_msg" for m in r2.messages), \
        "the view stopped updating while another cell ran"
    r3 = execute(kernel, "await bg_run")
    assert r3.status == "ok", r3.text
    assert kernel.value("bg_run.status") == "done"
    assert kernel.value("bg_run.results") == {"slow": "slow done", "thread": None}
    # The report is rendered in the waiting cell, once (the execute_result is a short line)...
    html = [h for h in r3.data("text/html") if "parcoord-final" in h]
    assert len(html) == 1 and len(r3.data("image/png")) == 1
    assert r3.of_type("execute_result")[0]["content"]["data"]["text/plain"].startswith("<Run run-")
    # ...and the final widget state is re-sent from it, so nbclient would save final values.
    mine = [m for m in r3.messages if m["_mine"]]
    widgets = Widgets().feed(r1.messages + r2.messages).feed(mine)
    assert widgets.rows() == {"slow": "done", "thread": "done"}
    resent = Widgets().feed([m for m in mine if m["msg_type"] == "comm_msg"])
    assert "2/2 done" in resent.header()


def test_a_cell_with_a_live_background_run_refuses_to_start_another(kernel: Kernel) -> None:
    cell = "%%parallel --background --out again_run {}\nimport asyncio\n# task long\nawait asyncio.sleep(30)\n"
    assert execute(kernel, cell.format("")).status == "ok"
    first = kernel.value("again_run.id")
    r = execute(kernel, cell.format(""))
    assert r.status == "error"
    assert first in r.error["evalue"] and "--cancel-previous" in r.error["evalue"]  # type: ignore[index]
    assert kernel.value("again_run.id") == first and kernel.value("again_run.status") == "running"
    r = execute(kernel, cell.format("--cancel-previous"))
    assert r.status == "ok", r.text
    assert kernel.value("again_run.id") != first
    assert execute(kernel, "again_run.cancel(); await again_run").status == "ok"


def test_the_live_run_is_found_by_cell_id_when_the_frontend_sends_one(kernel: Kernel) -> None:
    cell = "%%parallel --background --out id_run\nimport asyncio\n# task long\nawait asyncio.sleep({})\n"
    assert execute(kernel, cell.format(30), cell_id="cell-A").status == "ok"
    # The same cell, edited: still the cell with the live run.
    r = execute(kernel, cell.format(31), cell_id="cell-A")
    assert r.status == "error" and "--cancel-previous" in r.error["evalue"]  # type: ignore[index]
    # Another cell with the same text is another cell.
    assert execute(kernel, cell.format(30).replace("id_run", "id_run2"), cell_id="cell-B").status == "ok"
    assert execute(kernel, "id_run.cancel(); id_run2.cancel(); await id_run; await id_run2").status == "ok"


def test_cancel_a_background_run_from_a_later_cell(kernel: Kernel) -> None:
    r1 = execute(kernel, """%%parallel --background --out cancel_run
import asyncio
# task quick
q = 1
# task long: Waits a long time
await asyncio.sleep(60)
""")
    assert r1.status == "ok", r1.text
    r2 = execute(kernel, "import asyncio\nwhile cancel_run.tasks['quick'].status != 'done' or cancel_run.tasks['long'].status != 'running':\n"
                         "    await asyncio.sleep(0.05)\ncancel_run.cancel()")
    assert r2.status == "ok", r2.text
    r3 = execute(kernel, "await cancel_run")
    assert r3.status == "ok", r3.text
    assert kernel.value("cancel_run.status") == "cancelled"
    assert kernel.value("{n: t.status for n, t in cancel_run.tasks.items()}") == {"quick": "done", "long": "cancelled"}
    widgets = Widgets().feed(r1.messages).feed([m for m in r3.messages if m["_mine"]])
    assert widgets.rows() == {"quick": "done", "long": "cancelled"}


def test_the_cancel_button_stops_a_running_cell(fresh_kernel: Kernel) -> None:
    """A click on Cancel, sent as the frontend sends it, while the cell still runs."""
    client = fresh_kernel.client
    clicked: list[float] = []

    def click_cancel(msg: dict[str, Any]) -> None:
        if msg["msg_type"] != "comm_open" or clicked:
            return
        state = msg["content"]["data"]["state"]
        if state.get("_model_name") == "ButtonModel" and "parcoord-cancel" in state.get("_dom_classes", []):
            clicked.append(msg["_t"])
            comm_msg = client.session.msg("comm_msg", {"comm_id": msg["content"]["comm_id"],
                                                       "data": {"method": "custom", "content": {"event": "click"}}})
            client.shell_channel.send(comm_msg)

    r = execute(fresh_kernel, """%%parallel --out btn_run
import asyncio, time, parcoord_nb
# task quick
q = 1
# task slow
await asyncio.sleep(60)
# task blocked
for _ in range(6000):
    if parcoord_nb.cancelled():
        break
    time.sleep(0.01)
""", on_message=click_cancel)
    assert clicked, "no Cancel button was shown"
    assert r.elapsed < 30, "the click did not stop the run"
    assert r.status == "error" and r.error["ename"] == "RunError"  # type: ignore[index]
    assert "cancelled" in r.error["evalue"]  # type: ignore[index]
    statuses = fresh_kernel.value("{n: t.status for n, t in btn_run.tasks.items()}")
    assert statuses == {"quick": "done", "slow": "cancelled", "blocked": "cancelled"}
    assert Widgets().feed(r.messages).rows() == statuses


def test_nbclient_saves_the_final_widget_state_of_a_background_run() -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "%load_ext parcoord_nb",
        "%%parallel --background --out nb_run\nimport asyncio\n# task a\nawait asyncio.sleep(0.5)\n# task b\nawait asyncio.sleep(0.8)\n",
        "await nb_run",
    )]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = [m["state"] for m in state.values()]
    rows = {next(c for c in s["_dom_classes"] if c.startswith("parcoord-task-")): s["_dom_classes"]
            for s in models if "parcoord-task" in (s.get("_dom_classes") or [])}
    assert rows and all("parcoord-status-done" in classes for classes in rows.values()), rows
    (head,) = [s["value"] for s in models if "parcoord-header" in (s.get("_dom_classes") or [])]
    assert "2/2 done" in head
    # And the report is in the waiting cell's outputs, for nbconvert and GitHub.
    assert any("parcoord-final" in o.get("data", {}).get("text/html", "") for o in nb.cells[2].outputs)


def test_quiet_shows_no_live_view_and_clear_output_in_a_task_clears_only_that_task(kernel: Kernel) -> None:
    r = execute(kernel, """%%parallel --quiet --out quiet_run
from IPython.display import display, clear_output
# task a
display('old')
clear_output()
display('new')
# task b
display('b stays')
""")
    assert r.status == "ok", r.text
    assert not comm_messages(r) and not r.of_type("display_data", "clear_output")
    shown = kernel.value("{n: [d['data']['text/plain'] for d in t.displays.outputs] for n, t in quiet_run.tasks.items()}")
    assert shown == {"a": ["'new'"], "b": ["'b stays'"]}


def test_with_autoawait_off_run_wait_reports_in_the_later_cell(fresh_kernel: Kernel) -> None:
    assert execute(fresh_kernel, "%autoawait off").status == "ok"
    r1 = execute(fresh_kernel, "%%parallel --background --out sync_run\nimport time\n# task a\ntime.sleep(0.8)\n'a'\n")
    assert r1.status == "ok", r1.text
    assert fresh_kernel.value("sync_run.status") == "running"
    r2 = execute(fresh_kernel, "sync_run.wait(30).status")
    assert r2.status == "ok", r2.text
    assert r2.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "'done'"
    assert len([h for h in r2.data("text/html") if "parcoord-final" in h]) == 1
    resent = Widgets().feed([m for m in r2.messages if m["_mine"] and m["msg_type"] == "comm_msg"])
    assert resent.rows() == {"a": "done"} and "1/1 done" in resent.header()


def test_the_cancel_button_stops_a_background_run(kernel: Kernel) -> None:
    r1 = execute(kernel, "%%parallel --background --out bgbtn_run\nimport asyncio\n# task long\nawait asyncio.sleep(60)\n")
    assert r1.status == "ok", r1.text
    (button,) = [m["content"]["comm_id"] for m in r1.of_type("comm_open")
                 if "parcoord-cancel" in m["content"]["data"]["state"].get("_dom_classes", [])]
    client = kernel.client
    client.shell_channel.send(client.session.msg(
        "comm_msg", {"comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}}))
    r2 = execute(kernel, "await bgbtn_run")
    assert r2.status == "ok", r2.text
    assert kernel.value("(bgbtn_run.status, bgbtn_run.tasks['long'].status)") == ("cancelled", "cancelled")
