"""The live view in a real JupyterLab (headless Chromium): what a user sees and clicks."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

THREE_TASKS = """\
%%parallel --out browser_run
import asyncio, time
# task fetch: Fetch the index
for _i in range(10):
    print('fetched page', _i)
    await asyncio.sleep(0.2)
# task crunch: Crunch numbers
for _j in range(10):
    parcoord_nb.progress(_j + 1, 10, f'chunk {_j + 1}')
    time.sleep(0.2)
# task wait: Wait a bit
await asyncio.sleep(2.2)
"""

LONG_RUN = """\
%%parallel --out long_run
import asyncio, time
# task quick: Finishes at once
q = 1
# task sleeper: Sleeps a minute
await asyncio.sleep(60)
# task worker: Works a minute in a thread
for _ in range(6000):
    if parcoord_nb.cancelled():
        break
    time.sleep(0.01)
"""

ROW_STATUSES = """() => Object.fromEntries([...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .parcoord-task')].map(el => [
    [...el.classList].find(c => c.startsWith('parcoord-task-')).slice('parcoord-task-'.length),
    [...el.classList].find(c => c.startsWith('parcoord-status-')).slice('parcoord-status-'.length)]))"""


def statuses(lab_page) -> dict[str, str]:
    return lab_page.page.evaluate(ROW_STATUSES)


def wait_for_statuses(lab_page, want: dict[str, str], timeout_s: float) -> None:
    lab_page.page.wait_for_function(
        f"want => {{ const got = ({ROW_STATUSES})(); return Object.keys(want).every(k => got[k] === want[k]); }}",
        arg=want, timeout=timeout_s * 1000,
    )


def open_with_extension(lab_page, lab_server, name: str, cell: str) -> None:
    lab_server.write_notebook(name, ["%load_ext parcoord_nb\nimport parcoord_nb", cell])
    lab_page.open_notebook(name)
    lab_page.run_cell(0)
    lab_page.wait_for_idle()


def test_rows_go_from_running_to_done_and_the_gantt_shows_at_the_end(lab_page, lab_server) -> None:
    open_with_extension(lab_page, lab_server, "dashboard.ipynb", THREE_TASKS)
    lab_page.run_cell(1)
    rows = lab_page.cell(1).locator(".parcoord-run .parcoord-task")
    rows.first.wait_for(state="visible", timeout=20_000)
    # While the cell runs: three rows, all running, their bars and latest lines moving.
    wait_for_statuses(lab_page, {"fetch": "running", "crunch": "running", "wait": "running"}, 10)
    assert rows.count() == 3
    assert lab_page.state()["running"] == [1], "the rows were seen only after the cell ended"
    lab_page.page.wait_for_function(
        "() => [...document.querySelectorAll('.parcoord-task-crunch .pc-count')].some(e => /^[1-9]\\d*\\/10$/.test(e.textContent))",
        timeout=10_000,
    )
    lab_page.cell(1).locator(".parcoord-run").scroll_into_view_if_needed()
    lab_page.screenshot("dashboard-running")
    assert "fetched page" in lab_page.cell(1).locator(".parcoord-task-fetch .pc-line").inner_text()

    wait_for_statuses(lab_page, {"fetch": "done", "crunch": "done", "wait": "done"}, 20)
    lab_page.wait_for_idle(timeout=30)
    gantt = lab_page.cell(1).locator(".parcoord-run.parcoord-ended img.parcoord-gantt-img")
    gantt.wait_for(state="visible", timeout=10_000)
    assert gantt.evaluate("el => el.complete && el.naturalWidth") > 0
    header = lab_page.cell(1).locator(".parcoord-header").inner_text()
    assert "3/3 done" in header and "speedup" in header
    # The static copy of the report is in the notebook (for nbconvert and GitHub) but
    # JupyterLab shows the widget's report only, not both.
    static = lab_page.cell(1).locator(".parcoord-report.parcoord-final")
    assert static.count() == 1 and not static.is_visible()
    lab_page.cell(1).locator(".parcoord-run").scroll_into_view_if_needed()
    lab_page.screenshot("dashboard-done")


def test_clicking_cancel_turns_running_rows_to_cancelled(lab_page, lab_server) -> None:
    open_with_extension(lab_page, lab_server, "cancel.ipynb", LONG_RUN)
    lab_page.run_cell(1)
    wait_for_statuses(lab_page, {"quick": "done", "sleeper": "running", "worker": "running"}, 20)
    lab_page.screenshot("cancel-before")
    lab_page.cell(1).locator(".parcoord-cancel").click()
    # ipykernel 7.4 handles the click while the cell awaits (brief fact 2).
    wait_for_statuses(lab_page, {"quick": "done", "sleeper": "cancelled", "worker": "cancelled"}, 15)
    lab_page.wait_for_idle(timeout=20)
    text = lab_page.cell_output_text(1)
    assert "RunError" in text and "cancelled" in text
    assert lab_page.cell(1).locator(".parcoord-run.parcoord-run-cancelled").count() == 1
    lab_page.cell(1).locator(".parcoord-run").scroll_into_view_if_needed()
    lab_page.screenshot("cancel-after")
