"""%%parallel in-process, through IPython's own shell (no kernel, no frontend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import parcoord_nb
from parcoord_nb.errors import ConflictError, RunError
from parcoord_nb.magic import transform_cell


@pytest.fixture(scope="module")
def ip() -> Iterator[InteractiveShell]:
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    assert shell is not None
    shell.run_line_magic("load_ext", "parcoord_nb")
    yield shell


def run_cell(ip: InteractiveShell, source: str) -> tuple[Any, Any]:
    with capture_output() as out:
        result = ip.run_cell(source)
    return result, out


def test_cell_runs_merges_and_reports(ip: InteractiveShell) -> None:
    result, out = run_cell(ip, "%%parallel --out r\nimport asyncio, time\n# task a: Sleep\nawait asyncio.sleep(0.05)\nx = 1\n"
                               "# task b\ntime.sleep(0.05)\ny = 2\n# task c\nz = x + y\nz\n")
    assert result.success, result.error_in_exec
    assert ip.user_ns["z"] == 3
    r = ip.user_ns["r"]
    assert r is parcoord_nb.last_run() and r.results["c"] == 3
    mimes = [set(o.data) for o in out.outputs]
    assert {"text/html", "text/plain"} <= mimes[0] and "image/png" in mimes[1]
    assert "speedup" in out.outputs[0].data["text/plain"]


def test_cell_runs_on_the_shells_loop_as_a_coroutine(ip: InteractiveShell) -> None:
    lines = transform_cell(["%%parallel --max-concurrency 2\n", "# task a\n", "x = 1\n"])
    assert lines == ["await __import__('parcoord_nb.magic').magic.run_cell_async('--max-concurrency 2', '# task a\\nx = 1\\n')\n"]
    assert transform_cell(["%%parallelism\n", "x\n"]) == ["%%parallelism\n", "x\n"]
    assert transform_cell(["x = 1\n"]) == ["x = 1\n"]


def test_plan_runs_nothing(ip: InteractiveShell, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result, out = run_cell(ip, f"%%parallel --plan\n# task a\nopen({str(marker)!r}, 'w').close()\n# task b\ny = 1\n")
    assert result.success
    assert not marker.exists()
    assert "Independence check" in out.outputs[0].data["text/plain"]


def test_conflict_runs_nothing_and_says_how_to_fix(ip: InteractiveShell, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result, _ = run_cell(ip, f"%%parallel\n# task a\nopen({str(marker)!r}, 'w').close()\nq = 1\n# task b\nq = 2\n")
    assert isinstance(result.error_in_exec, ConflictError)
    assert "add after=a to 'b'" in str(result.error_in_exec)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("--max-concurency 2", "unrecognized"),
        ("--limit web", "--limit RES=N"),
        ("--limit web=x", "not a whole number"),
        ("--on-error ignore", "invalid choice"),
        ("--sequential --max-concurrency 4", "drop --max-concurrency"),
        ("--scheduler tcp://127.0.0.1:1", "--backend dask"),
        ("--out 3x", "identifier"),
    ],
)
def test_bad_options_are_usage_errors(ip: InteractiveShell, line: str, words: str) -> None:
    with capture_output():
        result = ip.run_cell(f"%%parallel {line}\n# task a uses=web\nx = 1\n")
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert words in str(result.error_in_exec)


def test_failure_renders_the_report_then_raises_one_short_error(ip: InteractiveShell) -> None:
    result, out = run_cell(ip, "%%parallel\n# task bad\n1 / 0\n# task ok\nfine = True\n")
    assert isinstance(result.error_in_exec, RunError)
    assert str(result.error_in_exec) == "1 task failed: bad (ZeroDivisionError: division by zero)"
    assert ip.user_ns["fine"] is True
    html = out.outputs[0].data["text/html"]
    assert "ZeroDivisionError" in html and "1 / 0" in html  # the traceback quotes the cell


def test_quiet_and_no_gantt(ip: InteractiveShell) -> None:
    _, out = run_cell(ip, "%%parallel --quiet\n# task a\nx = 1\n")
    assert out.outputs == []
    _, out = run_cell(ip, "%%parallel --no-gantt\n# task a\nx = 1\n")
    assert ["image/png" in o.data for o in out.outputs] == [False]


def test_the_magic_called_directly_uses_a_private_loop(ip: InteractiveShell) -> None:
    with capture_output():
        ip.run_cell_magic("parallel", "--quiet", "import asyncio\n# task a\nawait asyncio.sleep(0.01)\nviamagic = 1\n")
    assert ip.user_ns["viamagic"] == 1


def test_without_autoawait_the_cell_still_runs(ip: InteractiveShell) -> None:
    ip.run_line_magic("autoawait", "off")
    try:
        assert transform_cell(["%%parallel\n", "x = 1\n"])[0].startswith("__import__")
        result, _ = run_cell(ip, "%%parallel --quiet\nimport asyncio\n# task a\nawait asyncio.sleep(0.01)\nnoawait = 2\n")
    finally:
        ip.run_line_magic("autoawait", "on")
    assert result.success and ip.user_ns["noawait"] == 2
