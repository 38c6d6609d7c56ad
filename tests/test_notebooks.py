"""The notebooks, executed top to bottom on real kernels, and Binder's environment.

Each notebook runs with nbclient (as CI and ``jupyter execute`` would) in a fresh
kernel whose working directory is ``notebooks/``. A cell may fail only if it carries
the ``raises-exception`` tag, and every tagged cell must fail. After the last cell a
check cell, added here and never saved, prints the run objects' facts as JSON, so
each test asserts what the notebook's text promises the reader.

The slow test builds a virtual environment from ``binder/`` alone, the way
repo2docker does, and runs the quickstart there without ``%load_ext``.
"""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BINDER = ROOT / "binder"
RAISES = "raises-exception"
CHECK_MARK = "@@notebook-check@@"
CELL_TIMEOUT = 120  # a guard against a hung cell, not a speed requirement
PNG = b"\x89PNG\r\n\x1a\n"


# --- running a notebook ---------------------------------------------------------------


def execute(path: Path, *, check: str = "", python: str = sys.executable, drop: tuple[str, ...] = (),
            ipython_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Run a notebook; return (cells by id, executed cells' metadata by id, the check cell's JSON)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if c.get("id") not in drop]
    if check:
        probe = nbformat.v4.new_code_cell(
            "import json as _json\n"
            f"print({CHECK_MARK!r} + _json.dumps(_check(), default=str))\n"
        )
        probe.id = "test-check"
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(check)))
        nb.cells[-1].id = "test-check-def"
        nb.cells.append(probe)
    km = AsyncKernelManager(kernel_name="python3")
    # The kernel must be this interpreter (or the one under test), whatever
    # kernelspecs the machine has installed; and no user profile may load anything.
    km.kernel_spec.argv = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    km.kernel_spec.env = {"IPYTHONDIR": str(ipython_dir)}
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    # cleanup_kc: shut the kernel down and close its sockets although we made the manager.
    client.execute(cleanup_kc=True)

    cells = {c.id: c for c in nb.cells}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tagged = RAISES in cell.metadata.get("tags", [])
        failed = any(o.output_type == "error" for o in cell.outputs)
        # nbclient already stops at an untagged error; a tagged cell that does not
        # fail means the notebook no longer shows what its text says.
        assert failed == tagged, f"{path.name} cell {cell.id}: tagged {tagged}, failed {failed}\n{cell.source}"
    facts: dict[str, Any] = {}
    if check:
        line = next(ln for ln in text(cells["test-check"]).splitlines() if ln.startswith(CHECK_MARK))
        facts = json.loads(line[len(CHECK_MARK):])
    return cells, {c.id: c.metadata for c in nb.cells}, facts


def text(cell: Any) -> str:
    """What a reader sees of a cell's outputs, as text: streams, plain/markdown text, errors."""
    parts = []
    for o in cell.outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("display_data", "execute_result"):
            for mime in ("text/markdown", "text/plain"):
                if mime in o.data:
                    parts.append(o.data[mime])
                    break
        elif o.output_type == "error":
            parts.append(f"{o.ename}: {o.evalue}")
    return "\n".join(parts)


def error(cell: Any) -> tuple[str, str]:
    (err,) = [o for o in cell.outputs if o.output_type == "error"]
    return err.ename, err.evalue


def pngs(cell: Any) -> list[bytes]:
    return [base64.b64decode(o.data["image/png"]) for o in cell.outputs
            if o.output_type in ("display_data", "execute_result") and "image/png" in o.data]


def has_gantt(cell: Any) -> bool:
    images = pngs(cell)
    return bool(images) and all(img.startswith(PNG) for img in images)


def planted() -> set[tuple[str, str, int]]:
    """(kind, file, line) of every `# planted: <kind>` marker in the demo's backend service."""
    root = NOTEBOOKS / "seed_demo" / "backend_service"
    found = set()
    for file in sorted(root.rglob("*.py")):
        for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if m := re.search(r"#\s*planted:\s*(\w+)", line):
                found.add((m.group(1), file.relative_to(root).as_posix(), lineno))
    return found


@pytest.fixture
def ipython_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ipython"
    d.mkdir()
    return d


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


# --- the committed files ----------------------------------------------------------------


def test_the_five_notebooks_are_there() -> None:
    assert [p.name for p in notebook_paths()] == [
        "01-quickstart.ipynb",
        "02-multi-domain-research.ipynb",
        "03-dependencies-and-conflicts.ipynb",
        "04-failures-timeouts-cancel.ipynb",
        "05-fan-out-and-scale.ipynb",
    ]


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_committed_notebooks_are_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids))
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} {cell.id} has outputs"
            assert "execution" not in cell.metadata, f"{path.name} {cell.id} has execution timings"
    # Generated files end with a newline and use nbformat's own layout, so a re-save
    # in JupyterLab does not show up as a whole-file diff.
    raw = path.read_text(encoding="utf-8")
    assert raw == nbformat.writes(nb) + "\n"


def test_the_dask_section_runs_the_same_cell() -> None:
    nb = nbformat.read(NOTEBOOKS / "05-fan-out-and-scale.ipynb", as_version=4)
    cells = {c.id: c for c in nb.cells}
    magic, _, body = cells["shared"].source.partition("\n")
    assert magic.startswith("%%parallel ") and "--limit web=8" in magic
    tree = ast.parse(cells["dask"].source)
    (shared,) = [n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and any(getattr(t, "id", None) == "SHARED_CELL" for t in n.targets)]
    assert shared == body
    assert 'limits={"web": 8}' in cells["dask"].source


def test_binder_files_follow_repo2docker_conventions() -> None:
    requirements = [ln.strip() for ln in (BINDER / "requirements.txt").read_text().splitlines()
                    if ln.strip() and not ln.startswith("#")]
    # A local reference makes repo2docker copy the repository before installing, and
    # pip resolves it against the repository root, where repo2docker runs it.
    assert any(re.fullmatch(r"-e \.(\[[\w,]+\])?", ln) for ln in requirements), requirements
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "repo2docker runs postBuild only if it is executable"
    assert post_build.read_text().startswith("#!")
    assert "python -m parcoord_nb.install_profile --sys-prefix" in post_build.read_text()
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    assert int(runtime.split(".")[1]) >= 11, "pyproject.toml requires Python >= 3.11"


# --- executed, one test per notebook --------------------------------------------------------


@pytest.mark.kernel
def test_01_quickstart(ipython_dir: Path) -> None:
    cells, _, facts = execute(NOTEBOOKS / "01-quickstart.ipynb", ipython_dir=ipython_dir, check="""
        def _check():
            return {"status": run.status, "speedup": run.summary.speedup,
                    "statuses": {n: t.status for n, t in run.tasks.items()},
                    "baseline": baseline.status, "sequential": baseline.options["sequential"]}
        """)
    assert facts["statuses"] == {"fetch": "done", "scan": "done", "crunch": "done"}
    assert facts["speedup"] > 1, "the quickstart promises a first speedup"
    assert has_gantt(cells["run"]) and "speedup" in text(cells["run"])
    assert facts["baseline"] == "done" and facts["sequential"] is True
    assert not pngs(cells["baseline"]), "--no-gantt draws no chart"
    assert re.search(r"parallel \d+\.\d+ s, sequential \d+\.\d+ s", text(cells["compare"]))
    plan = text(cells["plan"])
    assert "report reads 'pages' written by fetch" in plan and "report reads 'line_count' written by scan" in plan


@pytest.mark.kernel
def test_02_multi_domain_research(ipython_dir: Path) -> None:
    cells, _, facts = execute(NOTEBOOKS / "02-multi-domain-research.ipynb", ipython_dir=ipython_dir, check="""
        def _check():
            t = run.tasks
            return {"statuses": {n: r.status for n, r in t.items()}, "speedup": run.summary.speedup,
                    "saved": run.summary.saved_s, "kinds": {n: r.is_async for n, r in t.items()},
                    "integrate_start": t["integrate"].start,
                    "others_end": max(t[n].end for n in ("research", "analysis", "patterns")),
                    "report_is_result": t["integrate"].result == report,
                    "estimate": run.summary.estimate_s}
        """)
    # The plan: dependency check and independence verdict, before anything ran.
    plan = text(cells["plan"])
    for line in ("1: research, analysis, patterns", "2: integrate",
                 "resource 'files' is shared read-only by analysis, patterns: safe",
                 "resource 'web' is shared read-only by research: safe",
                 "integrate reads 'rates' written by research", "Critical path (estimates)"):
        assert line in plan, line
    # The run.
    assert set(facts["statuses"].values()) == {"done"}
    assert facts["kinds"] == {"research": True, "analysis": False, "patterns": False, "integrate": False}
    assert has_gantt(cells["run"])
    assert facts["speedup"] > 1 and facts["saved"] > 0
    assert facts["estimate"] is not None
    # The planted bottlenecks, each with its file and line.
    found = text(cells["collect-bottlenecks"])
    expected = planted()
    assert {k for k, _, _ in expected} == {"n_plus_one", "blocking_in_async", "repeated_query", "double_json"}
    for kind, file, line in expected:
        assert f"{file}:{line} [{kind}]" in found, (kind, file, line)
    assert "token bucket" in text(cells["collect-research"])
    assert "circuit_breaker: 1" in text(cells["collect-patterns"])
    # Integration saw the three results: it started after them and cites all three.
    assert facts["integrate_start"] >= facts["others_end"] and facts["report_is_result"]
    integration = text(cells["integration"])
    assert "Integration recommendations" in integration
    blocking = next((f, ln) for k, f, ln in expected if k == "blocking_in_async")
    assert f"`{blocking[0]}:{blocking[1]}`" in integration and "circuit_breaker.py:" in integration
    assert "backoff" in integration
    # The performance analysis, as in the seed.
    perf = text(cells["performance"])
    assert re.search(r"speedup factor: \d+\.\d\dx", perf) and re.search(r"\d+% reduction", perf)
    assert has_gantt(cells["gantt"])


@pytest.mark.kernel
def test_03_dependencies_and_conflicts(ipython_dir: Path) -> None:
    cells, _, facts = execute(NOTEBOOKS / "03-dependencies-and-conflicts.ipynb", ipython_dir=ipython_dir, check="""
        def _check():
            span = lambda run: {n: (t.start, t.end) for n, t in run.tasks.items()}
            return {"pipeline": span(pipeline), "exported": span(exported), "schedule": span(schedule),
                    "export_waves": exported.plan.waves,
                    "critical": schedule.summary.critical_path, "estimate": schedule.summary.estimate_s,
                    "statuses": [r.status for run in (pipeline, exported, schedule) for r in run.tasks.values()]}
        """)
    assert set(facts["statuses"]) == {"done"}
    infer = text(cells["infer-plan"])
    for reason in ("totals reads 'orders' written by orders", "in_usd reads 'rates' written by rates",
                   "in_usd reads 'totals' written by totals", "best reads 'totals' written by totals"):
        assert reason in infer, reason
    p = facts["pipeline"]
    assert p["totals"][0] >= p["orders"][1]
    assert p["in_usd"][0] >= max(p["totals"][1], p["rates"][1]) and p["best"][0] >= p["totals"][1]
    assert p["rates"][0] < p["orders"][1], "orders and rates ran at the same time"
    # after=: the file hand-off the variables cannot show.
    assert "1: export, upload" in text(cells["after-plan"])
    assert facts["export_waves"] == [["export"], ["upload"]]
    assert facts["exported"]["upload"][0] >= facts["exported"]["export"][1]
    # The conflict and the cycle: refused before anything ran, with the fix.
    ename, evalue = error(cells["conflict"])
    assert ename == "ConflictError" and "both assign 'row'" in evalue and "_" in evalue
    assert text(cells["conflict-nothing-ran"]).strip() == "(False, False)"
    ename, evalue = error(cells["cycle"])
    assert ename == "CycleError" and "dependency cycle: budget -> forecast -> budget" in evalue
    for fixed in ("conflict-fixed", "cycle-fixed"):
        assert "done" in text(cells[fixed])
    # Waves and the critical path, estimated before the run and measured after it.
    assert "Critical path (estimates): fetch_a -> merge = 1.00 s" in text(cells["waves-plan"])
    assert facts["critical"] == ["fetch_a", "merge"] and facts["estimate"] == pytest.approx(1.0)
    s = facts["schedule"]
    assert s["clean_b"][0] < s["fetch_a"][1], "clean_b started before wave 1 was over"
    assert has_gantt(cells["waves-run"])


@pytest.mark.kernel
def test_04_failures_timeouts_cancel(ipython_dir: Path) -> None:
    cells, meta, facts = execute(NOTEBOOKS / "04-failures-timeouts-cancel.ipynb", ipython_dir=ipython_dir, check="""
        def _check():
            st = lambda run: {n: t.status for n, t in run.tasks.items()}
            return {"failed": st(failed), "pricing_error": type(failed.tasks["pricing"].error).__name__,
                    "skip_reason": failed.tasks["summary"].reason,
                    "retry": [(a.number, a.status) for a in retried.tasks["flaky"].history],
                    "retry_result": retried.tasks["flaky"].result,
                    "timed": {n: (t.status, t.hard_timeout) for n, t in timed.tasks.items()},
                    "job": st(job), "job_end": job.started_at + job.wall_end,
                    "long": st(long_job), "long_status": long_job.status, "long_results": long_job.results}
        """)
    ename, evalue = error(cells["failure"])
    assert ename == "RunError" and "pricing" in evalue and "skipped: summary" in evalue
    assert facts["failed"] == {"index": "done", "pricing": "failed", "summary": "skipped"}
    assert facts["pricing_error"] == "HTTPStatusError" and "pricing" in facts["skip_reason"]
    assert "response.raise_for_status()" in text(cells["failure-traceback"]), "the traceback shows the cell's code"
    assert text(cells["failure-merged"]).strip() == "(True, False)"
    assert facts["retry"] == [[1, "failed"], [2, "failed"], [3, "done"]]
    assert facts["retry_result"] == "answered on attempt 3"
    ename, _ = error(cells["timeouts"])
    assert ename == "RunError"
    assert facts["timed"] == {"slow_api": ["timeout", True], "stuck": ["timeout", False],
                              "polite": ["timeout", False], "quick": ["done", False]}
    assert "done" in text(cells["interrupt"])
    # The background cell returned while its run was still going, and `await` got the report.
    from datetime import datetime

    replied = datetime.fromisoformat(meta["background"]["execution"]["shell.execute_reply"].replace("Z", "+00:00"))
    assert replied.timestamp() < facts["job_end"]
    assert facts["job"] == {"download": "done", "wait": "done"} and "done" in text(cells["background-await"])
    assert facts["long_status"] == "cancelled" and facts["long"] == {"quick": "done", "slow": "cancelled"}
    assert facts["long_results"] == {"quick": "quick result"}


@pytest.mark.kernel
def test_05_fan_out_and_scale(ipython_dir: Path) -> None:
    cells, _, facts = execute(NOTEBOOKS / "05-fan-out-and-scale.ipynb", ipython_dir=ipython_dir, check="""
        def _check():
            d = pages.tasks["download"]
            out = {"download": (d.status, d.items, d.items_done), "sizes": size,
                   "page_sizes": {p: len((seed_demo_docs / p.rsplit("/", 1)[1]).read_bytes()) for p in docs.pages},
                   "paths": paths, "at_once": most_at_once(d), "speedup": pages.summary.speedup,
                   "shared": {n: t.status for n, t in shared.tasks.items()},
                   "web_at_once": most_at_once(shared.tasks["check"], shared.tasks["mirror"]),
                   "progress": shared.tasks["digest"].progress, "shared_speedup": shared.summary.speedup,
                   "have_dask": have_dask}
            if on_dask is not None:
                out["dask"] = {"status": on_dask.status, "note": on_dask.backend_note,
                               "same": on_dask.results == shared.results,
                               "workers": sorted({a.worker for t in on_dask.tasks.values() for a in t.history})}
            return out

        from seed_demo import DOCS_DIR as seed_demo_docs
        """)
    # 300 subtasks, results in item order, at most limit=16 at once.
    assert facts["download"] == ["done", 300, 300]
    expected = [facts["page_sizes"][p.split("?")[0]] for p in facts["paths"]]
    assert facts["sizes"] == expected
    assert 1 < facts["at_once"] <= 16
    assert facts["speedup"] > 1 and has_gantt(cells["fanout"])
    # --limit web=8 holds two tasks together; progress() from a thread is kept.
    assert facts["shared"] == {"check": "done", "mirror": "done", "digest": "done"}
    assert 1 < facts["web_at_once"] <= 8
    assert facts["progress"] == [200, 200, "record 200"]
    assert facts["shared_speedup"] > 1
    # The dask section is real wherever dask.distributed and the backend are installed.
    installed = all(importlib.util.find_spec(m) is not None for m in ("distributed", "parcoord_nb.backends.dask"))
    assert facts["have_dask"] == installed
    if installed:
        assert facts["dask"]["status"] == "done" and facts["dask"]["same"], facts["dask"]
        assert facts["dask"]["note"] and all(w and w not in ("loop", "thread") for w in facts["dask"]["workers"])
    else:
        assert "skipped: --backend dask needs dask.distributed" in text(cells["dask"])


# --- Binder -------------------------------------------------------------------------------


def _python_for(version: str) -> str | None:
    """An interpreter of this major.minor version: this one, one on PATH, or a pyenv one."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return getattr(sys, "_base_executable", sys.executable)
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(str(p) for p in Path("/root/.pyenv/versions").glob(f"{version}.*/bin/python"))
    candidates += sorted(str(p) for p in (Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python"))
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


_COPY_IGNORE = shutil.ignore_patterns(".git", ".venv*", "__pycache__", ".pytest_cache", ".hypothesis",
                                      "artifacts", "build", "dist", "*.egg-info", "results")


@pytest.mark.slow
@pytest.mark.kernel
def test_binder_environment_runs_the_quickstart(tmp_path: Path) -> None:
    # repo2docker copies the repository, installs binder/requirements.txt from its
    # root with the runtime.txt Python, then runs binder/postBuild there.
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=_COPY_IGNORE)
    version = (repo / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    base = _python_for(version)
    if base is None:
        pytest.skip(f"no Python {version} on this machine for binder/runtime.txt")
    env_dir = tmp_path / "env"
    subprocess.run([base, "-m", "venv", str(env_dir)], check=True, timeout=120)
    python = str(env_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    pip = subprocess.run([python, "-m", "pip", "install", "--no-cache-dir", "-r", "binder/requirements.txt"],
                         cwd=repo, env=env, capture_output=True, text=True, timeout=420)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    post = subprocess.run([str(repo / "binder" / "postBuild")], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    assert post.returncode == 0, post.stdout + post.stderr

    # The quickstart without its %load_ext cell: the image must load the extension itself.
    cells, _, facts = execute(repo / "notebooks" / "01-quickstart.ipynb", python=python, drop=("load",),
                              ipython_dir=Path(env["IPYTHONDIR"]), check="""
        def _check():
            import sys, parcoord_nb
            return {"prefix": sys.prefix, "module": parcoord_nb.__file__,
                    "status": run.status, "speedup": run.summary.speedup}
        """)
    assert Path(facts["prefix"]) == env_dir
    assert Path(facts["module"]).is_relative_to(repo), "parcoord_nb came from the copied repository"
    assert facts["status"] == "done" and facts["speedup"] > 1
    assert has_gantt(cells["run"])
