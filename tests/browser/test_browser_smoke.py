"""Smoke tests for the browser harness: live widgets, image outputs, interrupt."""

import time

import pytest

pytestmark = pytest.mark.browser

WIDGET_CELL = """\
import time
import ipywidgets as widgets
from IPython.display import display

bar = widgets.IntProgress(min=0, max=20, description="smoke")
bar.add_class("smoke-bar")
display(bar)
for i in range(20):
    time.sleep(0.1)
    bar.value = i + 1
print("loop done")
"""

FIGURE_CELL = """\
import io
from matplotlib.figure import Figure
from IPython.display import Image, display

fig = Figure(figsize=(3, 2), dpi=80)
fig.subplots().plot([0, 1, 2, 3], [0, 1, 4, 9])
buf = io.BytesIO()
fig.savefig(buf, format="png")
display(Image(buf.getvalue()))
"""


def _bar_width(lab_page) -> str:
    return lab_page.page.locator(".smoke-bar .progress-bar").first.evaluate("el => el.style.width")


def test_widget_renders_live_and_image_output(lab_page, lab_server):
    lab_server.write_notebook("smoke.ipynb", [WIDGET_CELL, FIGURE_CELL])
    lab_page.open_notebook("smoke.ipynb")
    lab_page.screenshot("smoke-opened")

    lab_page.run_all()
    bar = lab_page.cell(0).locator(".smoke-bar")
    bar.wait_for(state="visible", timeout=10_000)
    # Seen while the loop still runs: the widget is live, not rendered at the end.
    assert lab_page.cell_output_text(0).find("loop done") == -1
    first = _bar_width(lab_page)
    lab_page.page.wait_for_function(
        "w => { const el = document.querySelector('.smoke-bar .progress-bar'); return el && el.style.width !== w; }",
        arg=first,
        timeout=5_000,
    )
    assert "loop done" not in lab_page.cell_output_text(0), "progress only moved after the loop ended"
    lab_page.screenshot("smoke-running")

    lab_page.wait_for_idle(timeout=30)
    assert "loop done" in lab_page.cell_output_text(0)
    assert _bar_width(lab_page) == "100%"
    img = lab_page.output(1).locator("img")
    img.wait_for(state="visible", timeout=10_000)
    assert img.evaluate("el => el.complete && el.naturalWidth") > 0
    lab_page.screenshot("smoke-done")


def test_interrupt_kernel(lab_page, lab_server):
    lab_server.write_notebook(
        "interrupt.ipynb",
        ["import time\nprint('sleeping', flush=True)\ntime.sleep(30)", "print('still alive')"],
    )
    lab_page.open_notebook("interrupt.ipynb")
    assert len(lab_server.kernels()) == 1, "a tab from an earlier test was restored"
    lab_page.run_cell(0)
    lab_page.page.wait_for_function(
        "() => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-OutputArea-output')"
        "?.innerText.includes('sleeping')",
        timeout=15_000,
    )
    started = time.monotonic()
    lab_page.interrupt_kernel()
    lab_page.wait_for_idle(timeout=15)
    assert time.monotonic() - started < 15
    assert "KeyboardInterrupt" in lab_page.cell_output_text(0)
    lab_page.screenshot("interrupted")

    lab_page.run_cell(1)
    lab_page.wait_for_idle(timeout=15)
    assert lab_page.cell_output_text(1) == "still alive"
