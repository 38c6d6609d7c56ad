"""%%parallel cells on a real ipykernel, driven over ZMQ as JupyterLab drives them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kernel_client import Kernel

pytestmark = pytest.mark.kernel


def test_three_one_second_blocks_overlap_and_report_the_speedup(kernel: Kernel) -> None:
    r = kernel.execute(
        "%%parallel --out core_run\nimport asyncio, time\n"
        "# task co: Await a second\nawait asyncio.sleep(1)\n"
        "# task t1: Sleep a second\ntime.sleep(1)\n"
        "# task t2: Sleep another\ntime.sleep(1)\n"
    )
    assert r.status == "ok", r.text
    spans = kernel.value("[(t.start, t.end) for t in core_run.tasks.values()]")
    assert max(s for s, _ in spans) < min(e for _, e in spans), "all three ran at the same time"
    speedup = kernel.value("core_run.summary.speedup")
    assert speedup > 2.0
    # The static report: summary text and HTML, then the Gantt as a PNG.
    assert any("speedup" in t for t in r.data("text/plain"))
    assert any("parcoord-final" in h for h in r.data("text/html"))
    (png,) = r.data("image/png")
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_reader_starts_after_its_writer(kernel: Kernel) -> None:
    r = kernel.execute(
        "%%parallel --out order_run --quiet\nimport time\n"
        "# task reader\nresult = payload * 2\n"
        "# task writer\ntime.sleep(0.3)\npayload = 21\n"
    )
    assert r.status == "ok", r.text
    assert kernel.value("result") == 42
    assert kernel.value("order_run.tasks['reader'].start >= order_run.tasks['writer'].end") is True


@pytest.mark.parametrize(
    "body",
    [
        "# task a\nopen(MARK, 'w').close()\nq = 1\n# task b\nq = 2\n",  # conflict
        "# task a\nopen(MARK, 'w').close()\n# task b\nx = (\n",  # syntax error in another block
    ],
)
def test_an_invalid_plan_runs_nothing(kernel: Kernel, tmp_path: Path, body: str) -> None:
    mark = tmp_path / "side-effect"
    kernel.execute(f"MARK = {str(mark)!r}")
    r = kernel.execute("%%parallel\n" + body)
    assert r.status == "error"
    assert r.error["ename"] in ("ConflictError", "CellSyntaxError")  # type: ignore[index]
    assert not mark.exists()


def test_a_failure_skips_its_dependents_and_merges_nothing(kernel: Kernel) -> None:
    r = kernel.execute(
        "%%parallel --out fail_run\n# task load\npartial = 1\nraise RuntimeError('backend down')\n"
        "# task use\nuse = partial + 1\n# task other\nother = 'fine'\n"
    )
    assert r.status == "error" and r.error["ename"] == "RunError"  # type: ignore[index]
    assert "load (RuntimeError: backend down); skipped: use" in r.error["evalue"]  # type: ignore[index]
    statuses = kernel.value("{n: t.status for n, t in fail_run.tasks.items()}")
    assert statuses == {"load": "failed", "use": "skipped", "other": "done"}
    assert kernel.value("'partial' in dir()") is False
    assert kernel.value("other") == "fine"
    # The report came before the error, with the traceback at the cell's line.
    html = "".join(r.data("text/html"))
    assert "backend down" in html and "line 4" in html


def test_interrupt_cancels_the_run_keeps_finished_results_and_the_kernel_goes_on(fresh_kernel: Kernel) -> None:
    r = fresh_kernel.execute(
        "%%parallel --out int_run\nimport asyncio, time\n"
        "# task quick\nquick = 'kept'\n"
        "# task slow_co\nawait asyncio.sleep(30)\n"
        "# task slow_thread\nimport parcoord_nb\nfor _ in range(300):\n    if parcoord_nb.cancelled():\n        break\n    time.sleep(0.1)\n",
        interrupt_after=1.5,
        timeout=30,
    )
    assert r.status == "error", r.text
    assert "interrupted" in r.error["evalue"]  # type: ignore[index]
    assert r.elapsed < 25  # nowhere near the 30 s the tasks wanted
    statuses = fresh_kernel.value("{n: t.status for n, t in int_run.tasks.items()}")
    assert statuses == {"quick": "done", "slow_co": "cancelled", "slow_thread": "cancelled"}
    assert fresh_kernel.value("quick") == "kept"
    assert r.data("image/png"), "the partial report has its Gantt"
    assert fresh_kernel.execute("1 + 1").status == "ok"
