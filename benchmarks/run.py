"""parcoord_nb against the raw primitives it is built on, side by side, in one run.

    python benchmarks/run.py            # full run, about two minutes on 2 cores
    python benchmarks/run.py --quick    # fewer repeats and sizes, under a minute
    python benchmarks/run.py --no-kernel  # without the rows that start Jupyter kernels

Every engine measurement is paired with its raw baseline (``asyncio.gather``, a
``ThreadPoolExecutor``, ``ast.parse`` plus a visitor) measured in the same process,
interleaved, after warm-ups; times are medians of several repeats and ratios the
median of the back-to-back pairs' ratios. Absolute times move by ±20 % between runs
on a shared 2-core VM, so the targets are ratios. The table goes to stdout and
everything measured to ``benchmarks/results/latest.json``.

Timings never go into unit tests; tests/test_scale.py checks the same workloads for
behaviour only.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import gc
import importlib
import json
import math
import os
import platform
import queue
import re
import statistics
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import parcoord_nb  # noqa: E402
from parcoord_nb import engine as engine_mod  # noqa: E402
plan_mod = importlib.import_module("parcoord_nb.plan")  # the module (parcoord_nb.plan is the function)  # noqa: E402
from parcoord_nb.plan import build_plan  # noqa: E402

PY = sys.executable

# -- cells --------------------------------------------------------------------
# The fan-out size comes from the namespace, so one cell text (one cached plan) serves
# every N, as when a user re-runs a cell with a different input.
TRIVIAL_ASYNC = "# task t for i in range(n)\nawait asyncio.sleep(0)\ni\n"
ASYNC_SLEEP = "# task t for i in range(n)\nawait asyncio.sleep(0.1)\ni\n"
BLOCKING_SLEEP = "# task t for i in range(n)\ntime.sleep(0.05)\ni\n"
TRIVIAL_BLOCKING = "# task t for i in range(n)\ni\n"


def many_tasks_cell(n: int) -> str:
    """n separate, independent tasks (not a fan-out): n task records, n rows."""
    return "".join(f"# task t{k}\nx{k} = {k}\n" for k in range(n))


def plan_cell(tasks: int = 20, lines: int = 200) -> str:
    """A 200-line cell of 20 tasks with imports, defs, loops and data dependencies."""
    per = lines // tasks
    out = []
    for k in range(tasks):
        dep = f" + str(len(out_{k - 2}))" if k >= 2 else ""
        body = textwrap.dedent(f"""\
            # task t{k}: Step {k} of the pipeline  retries=1
            import json as _json
            import math as _math
            def helper_{k}(x, scale={k}):
                total = 0
                for j in range(x):
                    total += _math.sqrt(j) * scale if j % 3 == 0 else 0
                return total
            values_{k} = [helper_{k}(m) for m in range(5) if m != {k}]
            out_{k} = _json.dumps({{"k": {k}, "v": values_{k}}}){dep}
            """)
        body_lines = body.splitlines(keepends=True)
        while len(body_lines) < per:
            body_lines.append(f"_pad = {len(body_lines)}  # padding\n")
        out.append("".join(body_lines[:per]))
    return "".join(out)


class _Names(ast.NodeVisitor):
    """The raw baseline for planning: what any dependency finder must do at least."""

    def __init__(self) -> None:
        self.loads: set[str] = set()
        self.stores: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        (self.stores if isinstance(node.ctx, ast.Store) else self.loads).add(node.id)


def raw_parse_visit(source: str) -> tuple[set[str], set[str]]:
    tree = ast.parse(source)
    v = _Names()
    for stmt in tree.body:
        v.visit(stmt)
    return v.loads, v.stores


# -- measuring ----------------------------------------------------------------
def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pair_ratio(engine: list[float], raw: list[float]) -> float:
    """The median of engine/raw over pairs measured back to back: drift cancels out."""
    return median([e / r for e, r in zip(engine, raw)])


class Pairs:
    """Wall and CPU seconds of engine and raw runs, measured in back-to-back pairs."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {"engine": [], "raw": []}
        self.cpu: dict[str, list[float]] = {"engine": [], "raw": []}

    def fields(self) -> dict[str, Any]:
        es, rs = self.wall["engine"], self.wall["raw"]
        return {"engine_s": median(es), "raw_s": median(rs), "ratio": pair_ratio(es, rs),
                # CPU time of this process: what the engine costs, less skewed by other
                # processes on the machine than wall time (it still includes their cache misses).
                "cpu_ratio": pair_ratio(self.cpu["engine"], self.cpu["raw"]),
                "engine_all_s": es, "raw_all_s": rs, "engine_cpu_s": self.cpu["engine"], "raw_cpu_s": self.cpu["raw"]}


async def paired(
    engine: Callable[[], Awaitable[float]],
    raw: Callable[[], Awaitable[float]],
    repeats: int,
    warmups: int = 1,
) -> Pairs:
    """Engine and raw, interleaved so drifting load hits both alike; after warm-ups."""
    for _ in range(warmups):
        await raw()
        await engine()
    out = Pairs()
    for k in range(repeats):
        # Alternate who goes first: the second of a pair inherits the first's garbage.
        order = (raw, engine) if k % 2 == 0 else (engine, raw)
        for fn in order:
            gc.collect()
            cpu = time.process_time()
            dt = await fn()
            side = "raw" if fn is raw else "engine"
            out.cpu[side].append(time.process_time() - cpu)
            out.wall[side].append(dt)
    return out


async def engine_run(source: str, ns: dict[str, Any], **options: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    run = await parcoord_nb.run_async(source, ns, **options)
    dt = time.perf_counter() - t
    if run.status != "done":
        raise RuntimeError(f"benchmark run ended {run.status}: {run.failed} {run.summary}")
    return dt, run


# -- 1. trivial async tasks: per-task overhead vs asyncio.gather --------------------
async def bench_trivial_async(n: int, repeats: int) -> dict[str, Any]:
    async def raw() -> float:
        async def f(i: int) -> int:
            await asyncio.sleep(0)
            return i

        t = time.perf_counter()
        out = await asyncio.gather(*[f(i) for i in range(n)])
        dt = time.perf_counter() - t
        assert out[-1] == n - 1
        return dt

    async def eng() -> float:
        dt, run = await engine_run(TRIVIAL_ASYNC, {"asyncio": asyncio, "n": n})
        assert run.results["t"][-1] == n - 1
        return dt

    p = (await paired(eng, raw, repeats)).fields()
    return {"n": n, **p, "engine_us_per_task": p["engine_s"] / n * 1e6, "raw_us_per_task": p["raw_s"] / n * 1e6}


# -- 2. blocking tasks: worker threads vs a raw ThreadPoolExecutor of the same size ---
async def bench_threads(n: int, repeats: int, *, sleep: float | None = 0.05) -> dict[str, Any]:
    size = engine_mod.DEFAULT_MAX_THREADS
    pool = ThreadPoolExecutor(size)
    # Warm the raw pool to full size, as the engine's pool is after its warm-up run.
    list(pool.map(time.sleep, [0.01] * size))

    def job(i: int) -> int:
        if sleep:
            time.sleep(sleep)
        return i

    async def raw() -> float:
        t = time.perf_counter()
        futures = [pool.submit(job, i) for i in range(n)]
        wait(futures)
        dt = time.perf_counter() - t
        assert futures[-1].result() == n - 1
        return dt

    async def eng() -> float:
        src = BLOCKING_SLEEP if sleep else TRIVIAL_BLOCKING
        dt, run = await engine_run(src, {"time": time, "n": n})
        assert run.results["t"][-1] == n - 1
        return dt

    try:
        p = (await paired(eng, raw, repeats)).fields()
    finally:
        pool.shutdown()
    e, r = p["engine_s"], p["raw_s"]
    ideal = math.ceil(n / size) * sleep if sleep else None
    out: dict[str, Any] = {"n": n, "pool": size, "sleep_s": sleep, **p,
                           "engine_us_per_task": e / n * 1e6, "raw_us_per_task": r / n * 1e6}
    if ideal:
        out |= {"ideal_s": ideal, "engine_vs_ideal": e / ideal, "raw_vs_ideal": r / ideal}
    return out


# -- 3. async sleepers: wall / ideal and vs raw gather ------------------------------
async def bench_sleepers(n: int, repeats: int) -> dict[str, Any]:
    async def raw() -> float:
        async def f(i: int) -> int:
            await asyncio.sleep(0.1)
            return i

        t = time.perf_counter()
        await asyncio.gather(*[f(i) for i in range(n)])
        return time.perf_counter() - t

    async def eng() -> float:
        dt, run = await engine_run(ASYNC_SLEEP, {"asyncio": asyncio, "n": n})
        assert len(run.results["t"]) == n
        return dt

    p = (await paired(eng, raw, repeats)).fields()
    return {"n": n, **p, "ideal_s": 0.1, "engine_vs_ideal": p["engine_s"] / 0.1, "raw_vs_ideal": p["raw_s"] / 0.1}


# -- 4. planning a 200-line cell vs ast.parse + visitor -----------------------------
def bench_plan(repeats: int) -> dict[str, Any]:
    src = plan_cell()
    assert src.count("\n") == 200, src.count("\n")

    def uncached() -> Any:  # the cache bypassed: a full parse, analysis and compile
        return plan_mod._build_plan(src, 1)

    def per_call(fn: Callable[[], Any], loops: int) -> float:
        t = time.perf_counter()
        for _ in range(loops):
            fn()
        return (time.perf_counter() - t) / loops

    def best_of(fn: Callable[[], Any], loops: int) -> float:
        fn()
        return median([per_call(fn, loops) for _ in range(repeats)])

    gc.collect()
    baseline = lambda: raw_parse_visit(src)  # noqa: E731
    baseline(), uncached()  # warm-up
    raws, fulls = [], []
    for k in range(repeats):  # interleaved, alternating who goes first
        for fn in ((baseline, uncached) if k % 2 == 0 else (uncached, baseline)):
            (raws if fn is baseline else fulls).append(per_call(fn, 10))
    raw, full = median(raws), median(fulls)
    build_plan.cache_clear()  # type: ignore[attr-defined]
    first = build_plan(src)
    cached = best_of(lambda: build_plan(src), 2000)
    assert build_plan(src) is first  # the cache hands back the very same plan
    # What a re-run of an unchanged cell pays before its first task starts.
    ns: dict[str, Any] = {}
    engine_cached = best_of(lambda: parcoord_nb.api.make_engine(src, ns), 200)
    return {"lines": src.count("\n"), "tasks": len(first.tasks), "raw_parse_visit_s": raw,
            "build_plan_s": full, "ratio": pair_ratio(fulls, raws), "cached_s": cached, "cached_ratio": cached / raw,
            "make_engine_cached_s": engine_cached}


# -- 5. memory per record -------------------------------------------------------------
async def bench_memory(n: int, separate: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    await engine_run(TRIVIAL_ASYNC, {"asyncio": asyncio, "n": 10})  # imports and caches first
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        _, run = await engine_run(TRIVIAL_ASYNC, {"asyncio": asyncio, "n": n})
        gc.collect()
        kept, peak = tracemalloc.get_traced_memory()
        out["fanout"] = {"n": n, "kept_bytes_per_item": (kept - base) / n, "peak_bytes_per_item": (peak - base) / n}
        del run
        gc.collect()

        src = many_tasks_cell(separate)
        build_plan(src)  # the plan is cached per cell: measure the run's records, not the plan
        # last_run() holds the previous run: replace it with a small one before the baseline.
        await engine_run(TRIVIAL_ASYNC, {"asyncio": asyncio, "n": 10})
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        _, run = await engine_run(src, {})
        gc.collect()
        kept, peak = tracemalloc.get_traced_memory()
        out["tasks"] = {"n": separate, "kept_bytes_per_task": (kept - base) / separate,
                        "peak_bytes_per_task": (peak - base) / separate}
        del run
    finally:
        tracemalloc.stop()
    return out


# -- 6. views at scale: Gantt and static report ---------------------------------------
async def bench_views(n: int, separate: int, repeats: int) -> dict[str, Any]:
    from parcoord_nb.view.gantt import figure_png, gantt_figure
    from parcoord_nb.view.report import gantt_png, report_bundle

    out: dict[str, Any] = {}
    _, fan = await engine_run(TRIVIAL_ASYNC, {"asyncio": asyncio, "n": n})
    _, many = await engine_run(many_tasks_cell(separate), {})
    for key, run in (("fanout", fan), ("tasks", many)):
        figure_png(gantt_figure(run))  # warm-up: matplotlib's imports and font cache
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            figure_png(gantt_figure(run))
            times.append(time.perf_counter() - t)
        bundle = report_bundle(run)
        png = gantt_png(run) or b""
        out[key] = {"n": n if key == "fanout" else separate, "gantt_s": median(times),
                    "report_bytes": sum(len(v) for v in bundle.values()), "png_bytes": len(png),
                    "html_bytes": len(bundle["text/html"]), "text_bytes": len(bundle["text/plain"])}
    return out


# -- 7. a real kernel: messages during a 10,000-task run, %load_ext time -------------
HEAVY = ("matplotlib", "ipywidgets", "httpx", "dask", "distributed", "numpy", "PIL", "pandas")


class _Kernel:
    """A fresh ipykernel over ZMQ, as JupyterLab talks to it."""

    def __init__(self, env: dict[str, str | None] | None = None) -> None:
        self._env = env or {}

    def __enter__(self) -> _Kernel:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_spec.argv = [PY, "-m", "ipykernel_launcher", "-f", "{connection_file}"]  # type: ignore[union-attr]
        env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline", **self._env}
        env = {k: v for k, v in env.items() if v is not None}
        self.km.start_kernel(env=env, stderr=subprocess.DEVNULL)  # its TCP warning is not ours
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def execute(self, code: str, timeout: float = 300) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        msg_id = self.kc.execute(code, allow_stdin=False)
        t0 = time.perf_counter()
        msgs: list[dict[str, Any]] = []
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(0.1, t0 + timeout - time.perf_counter()))
            except queue.Empty:
                raise TimeoutError(f"cell did not finish in {timeout}s: {code[:80]!r}") from None
            msg["_t"] = time.perf_counter() - t0
            mine = msg["parent_header"].get("msg_id") == msg_id
            if mine and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            # Widget updates can carry the parent of the cell that made the widget, or none.
            if mine or msg["msg_type"].startswith("comm_"):
                msgs.append(msg)
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        return reply, msgs

    def value(self, code: str) -> Any:
        reply, msgs = self.execute(code)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}")
        text = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
        return ast.literal_eval(text.strip().splitlines()[-1])


LOAD_EXT_PROBE = f"""
import sys, time
_before = set(sys.modules)
_t = time.perf_counter()
get_ipython().run_line_magic("load_ext", "parcoord_nb")
_dt = time.perf_counter() - _t
_heavy = {HEAVY!r}
print(repr({{"s": _dt, "new_modules": len(set(sys.modules) - _before),
            "heavy_loaded": sorted(m for m in _heavy if m in sys.modules and m not in _before),
            "heavy_before": sorted(m for m in _heavy if m in _before)}}))
"""


def bench_load_ext(repeats: int) -> dict[str, Any]:
    """%load_ext in fresh kernels: as this environment runs them, and with bytecode cached.

    With PYTHONDONTWRITEBYTECODE set (as on this VM) every kernel compiles parcoord_nb
    from source; an installed package has its .pyc files. The warm kernels keep theirs
    under a private prefix, so the checkout gets no __pycache__.
    """
    import tempfile

    def probe(env: dict[str, str | None] | None = None) -> dict[str, Any]:
        with _Kernel(env) as k:
            return k.value(LOAD_EXT_PROBE)

    probes = [probe() for _ in range(repeats)]
    with tempfile.TemporaryDirectory() as cache:
        warm_env: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": cache}
        probe(warm_env)  # writes the bytecode
        warm = [probe(warm_env) for _ in range(repeats)]
    heavy = sorted({m for p in probes + warm for m in p["heavy_loaded"]})
    return {"s": median([p["s"] for p in probes]), "all_s": [p["s"] for p in probes],
            "bytecode_cache": not sys.flags.dont_write_bytecode,
            "warm_s": median([p["s"] for p in warm]), "warm_all_s": [p["s"] for p in warm],
            "new_modules": probes[0]["new_modules"], "heavy_loaded": heavy,
            "heavy_before": probes[0]["heavy_before"]}


def bench_importtime(top: int = 8) -> dict[str, Any]:
    """What ``import parcoord_nb.magic`` costs on top of what a kernel has loaded already."""
    code = ("import IPython, ipykernel.ipkernel, ipykernel.zmqshell, sys; "
            "sys.stderr.write('@@parcoord\\n'); import parcoord_nb, parcoord_nb.magic")
    proc = subprocess.run([PY, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    after = proc.stderr.split("@@parcoord\n", 1)[1]
    rows = []
    for line in after.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            rows.append({"module": m[4], "self_us": int(m[1]), "cumulative_us": int(m[2]), "depth": len(m[3]) // 2})
    roots = [r for r in rows if r["depth"] == 0]
    total = sum(r["cumulative_us"] for r in roots)
    return {"total_us": total, "top": sorted(rows, key=lambda r: -r["self_us"])[:top],
            "modules": [r["module"] for r in rows],
            "heavy_imported": sorted({r["module"].split(".")[0] for r in rows} & set(HEAVY))}


KERNEL_RUN = """%%parallel
# task t for i in range(n) limit={limit}
await asyncio.sleep({sleep})
i
"""


def bench_kernel_messages(n: int, limit: int, sleep: float) -> dict[str, Any]:
    """Frontend traffic while a fan-out of n items runs in a real kernel (comm_msg on iopub)."""
    with _Kernel() as k:
        reply, _ = k.execute(f"import asyncio\nn = {n}\n%load_ext parcoord_nb")
        assert reply["content"]["status"] == "ok", reply["content"]
        reply, msgs = k.execute(KERNEL_RUN.format(limit=limit, sleep=sleep))
        status = reply["content"]["status"]
        done = k.value("import parcoord_nb\nprint(repr(len(parcoord_nb.last_run().results['t'])))") if status == "ok" else None
    by_type: dict[str, int] = {}
    for m in msgs:
        by_type[m["msg_type"]] = by_type.get(m["msg_type"], 0) + 1
    # What a frontend must process while the run is live: widget traffic and display updates.
    live = [m["_t"] for m in msgs if m["msg_type"] in ("comm_msg", "comm_open", "update_display_data", "clear_output")]
    wall = max((m["_t"] for m in msgs), default=0.0)
    peak = 0
    j = 0
    for i, t in enumerate(live):  # the busiest one-second window
        while live[j] < t - 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    # Refreshes: messages closer than 20 ms apart belong to one repaint.
    refreshes = [t for i, t in enumerate(live) if i == 0 or t - live[i - 1] > 0.02]
    gaps = [b - a for a, b in zip(refreshes, refreshes[1:])]
    return {"n": n, "limit": limit, "sleep_s": sleep, "status": status, "results": done, "wall_s": wall,
            "by_type": by_type, "live_messages": len(live), "msgs_per_s": len(live) / wall if wall else 0.0,
            "peak_msgs_in_1s": peak, "refreshes": len(refreshes),
            "refresh_hz": (1 / median(gaps)) if gaps else 0.0}


# -- 8. dask, when its benchmark is there ----------------------------------------------
def bench_dask_if_present(n: int) -> dict[str, Any] | None:
    if not (HERE / "dask_bench.py").exists():
        return None
    sys.path.insert(0, str(HERE))
    try:
        from dask_bench import bench_dask  # type: ignore[import-not-found]
    except ImportError as e:
        return {"skipped": f"dask_bench not importable: {e}"}
    try:
        return bench_dask(n)
    except Exception as e:  # noqa: BLE001 - the dask row must not sink the other results
        return {"error": f"{type(e).__name__}: {e}"}


# -- table ----------------------------------------------------------------------------
def fmt_s(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    if s >= 1e-5:
        return f"{s * 1e6:.0f} µs"
    return f"{s * 1e6:.2f} µs"


def table(results: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    rows: list[tuple[str, str, str, str, str, str]] = []
    checks: list[dict[str, Any]] = []

    def row(name: str, ours: str, base: str, ratio: float | None, target: float | None = None,
            *, unit: str = "x", lower_is_better: bool = True, cpu: float | None = None) -> None:
        if ratio is None:
            rtxt = "-"
        elif unit == "x":
            rtxt = f"{ratio:.2f}x" if ratio >= 0.01 else f"{ratio:.1e}x"
        else:
            rtxt = f"{ratio:.2f} {unit}" if unit == "s" else f"{ratio:.0f} {unit}"
        ok = ""
        if target is not None and ratio is not None:
            good = ratio <= target if lower_is_better else ratio >= target
            ok = ("ok" if good else "MISS") + f" ({'<=' if lower_is_better else '>='}{target:g}{'x' if unit == 'x' else ' ' + unit})"
            checks.append({"name": name, "value": ratio, "target": target, "met": good})
        rows.append((name, ours, base, rtxt, f"{cpu:.2f}x" if cpu is not None else "", ok))

    for r in results.get("trivial_async", []):
        row(f"trivial async, N={r['n']:,}", f"{r['engine_us_per_task']:.1f} µs/task",
            f"gather {r['raw_us_per_task']:.1f} µs", r["ratio"], 2.0 if r["n"] == 10_000 else None,
            cpu=r.get("cpu_ratio"))
    for r in results.get("threads", []):
        if r["sleep_s"]:
            row(f"sleep(0.05) threads, N={r['n']:,} (pool {r['pool']})", fmt_s(r["engine_s"]),
                f"TPE {fmt_s(r['raw_s'])}", r["ratio"], 1.1, cpu=r.get("cpu_ratio"))
        else:
            row(f"trivial threads, N={r['n']:,} (pool {r['pool']})", f"{r['engine_us_per_task']:.1f} µs/task",
                f"TPE {r['raw_us_per_task']:.1f} µs", r["ratio"], cpu=r.get("cpu_ratio"))
    for r in results.get("sleepers", []):
        row(f"sleep(0.1) async, N={r['n']:,}: wall/ideal", fmt_s(r["engine_s"]), "ideal 100.0 ms",
            r["engine_vs_ideal"], 1.2 if r["n"] == 1000 else None)
        row(f"sleep(0.1) async, N={r['n']:,}: vs gather", fmt_s(r["engine_s"]), f"gather {fmt_s(r['raw_s'])}",
            r["ratio"], 1.2 if r["n"] == 10_000 else None, cpu=r.get("cpu_ratio"))
    p = results.get("plan")
    if p:
        row(f"plan {p['lines']}-line {p['tasks']}-task cell", fmt_s(p["build_plan_s"]),
            f"parse+visit {fmt_s(p['raw_parse_visit_s'])}", p["ratio"], 2.5)
        row("  same cell, cached re-plan", fmt_s(p["cached_s"]), f"parse+visit {fmt_s(p['raw_parse_visit_s'])}",
            p["cached_ratio"])
        row("  make_engine, cached plan", fmt_s(p["make_engine_cached_s"]), "", None)
    m = results.get("memory")
    if m:
        f = m["fanout"]
        row(f"memory per fan-out item, N={f['n']:,}", f"{f['kept_bytes_per_item']:.0f} B kept",
            f"{f['peak_bytes_per_item']:.0f} B peak", f["kept_bytes_per_item"], 1024, unit="B")
        t = m["tasks"]
        row(f"memory per task record, {t['n']:,} tasks", f"{t['kept_bytes_per_task']:.0f} B kept",
            f"{t['peak_bytes_per_task']:.0f} B peak", t["kept_bytes_per_task"], 8192, unit="B")
    v = results.get("views")
    if v:
        for key, what in (("fanout", "fan-out items"), ("tasks", "tasks")):
            x = v[key]
            row(f"Gantt PNG, {x['n']:,} {what}", fmt_s(x["gantt_s"]), "", x["gantt_s"], 1.5, unit="s")
            row(f"report size, {x['n']:,} {what}", f"{x['report_bytes'] / 1024:.0f} KB",
                f"PNG {x['png_bytes'] / 1024:.0f} KB", x["report_bytes"] / 1024, 400, unit="KB")
    k = results.get("kernel_messages")
    if k:
        if "error" in k:
            rows.append(("frontend messages (kernel)", "error", k["error"][:40], "-", "", ""))
        else:
            row(f"frontend msgs/s, {k['n']:,}-item run", f"{k['msgs_per_s']:.1f}/s avg",
                f"peak {k['peak_msgs_in_1s']} in 1 s", k["peak_msgs_in_1s"], 100, unit="msgs")
            row("  view refresh rate", f"{k['refresh_hz']:.1f} Hz", f"{k['refreshes']} refreshes",
                k["refresh_hz"], 5, unit="Hz", lower_is_better=False)
    le = results.get("load_ext")
    if le:
        cold = "" if le.get("bytecode_cache", True) else ", no .pyc"
        row(f"%load_ext parcoord_nb (fresh kernel{cold})", fmt_s(le["s"]),
            "heavy: " + (", ".join(le["heavy_loaded"]) or "none"), le["s"] * 1e3, 150, unit="ms")
        if "warm_s" in le:
            row("  with .pyc cached (an installed package)", fmt_s(le["warm_s"]), "", le["warm_s"] * 1e3,
                150, unit="ms")
    it = results.get("importtime")
    if it:
        top = ", ".join(f"{r['module']} {r['self_us'] / 1e3:.1f}" for r in it["top"][:3])
        rows.append(("  import parcoord_nb.magic (-X importtime)", fmt_s(it["total_us"] / 1e6), top[:44], "-", "", ""))
    d = results.get("dask")
    if d:
        us = d.get("us_per_task", {})
        if "ratio_vs_submit" in d and "parcoord" in us:
            row(f"dask backend, N={d.get('n', '?'):,}", f"{us['parcoord'] / 1e3:.2f} ms/task",
                f"submit {us.get('raw_submit', float('nan')) / 1e3:.2f} ms", d["ratio_vs_submit"], d.get("target"))
            if "ratio_vs_map" in d:
                row("  vs client.map (reference)", "", f"map {us.get('raw_map', float('nan')) / 1e3:.2f} ms",
                    d["ratio_vs_map"])
        else:
            rows.append(("dask backend", "", json.dumps(d)[:60], "-", "", ""))

    head = ("benchmark", "parcoord_nb", "baseline", "ratio", "cpu", "target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(6)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    text = "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, rows)])
    return text, checks


# -- main -----------------------------------------------------------------------------
async def async_benches(quick: bool, results: dict[str, Any], log: Callable[[str], None]) -> None:
    reps = 3 if quick else 7
    results["trivial_async"] = []
    for n in (100, 1_000, 10_000):
        log(f"trivial async N={n}")
        results["trivial_async"].append(await bench_trivial_async(n, reps if n < 10_000 else max(3, reps - 2)))
    results["threads"] = []
    for n in ((100,) if quick else (100, 1_000)):
        log(f"blocking sleep threads N={n}")
        results["threads"].append(await bench_threads(n, 3 if quick or n >= 1000 else 5))
    log("trivial threads N=1000")
    results["threads"].append(await bench_threads(1_000, reps, sleep=None))
    results["sleepers"] = []
    for n in (1_000, 10_000):
        log(f"async sleepers N={n}")
        results["sleepers"].append(await bench_sleepers(n, reps + 2))  # the noisiest rows
    log("memory")
    results["memory"] = await bench_memory(10_000, 1_000)
    log("views")
    results["views"] = await bench_views(10_000, 10_000 if not quick else 2_000, 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and sizes (about a minute)")
    ap.add_argument("--json", default=str(HERE / "results" / "latest.json"), help="where to write the results")
    ap.add_argument("--no-kernel", action="store_true", help="skip the benchmarks that start Jupyter kernels")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"  … {msg}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": args.quick, "python": sys.version.split()[0],
        "platform": platform.platform(), "cpus": os.cpu_count(), "parcoord_nb": parcoord_nb.__version__,
        "loadavg_start": os.getloadavg(),  # above ~1 on this VM, other work is skewing the numbers
    }
    t0 = time.perf_counter()
    asyncio.run(async_benches(args.quick, results, log))
    log("plan")
    results["plan"] = bench_plan(5 if args.quick else 9)
    if not args.no_kernel:
        log("kernel: %load_ext")
        results["load_ext"] = bench_load_ext(2 if args.quick else 3)
        results["importtime"] = bench_importtime()
        log("kernel: frontend messages during a 10,000-item run")
        try:
            results["kernel_messages"] = bench_kernel_messages(10_000, limit=250, sleep=0.05)
        except Exception as e:  # noqa: BLE001 - report it in the table, keep the rest
            results["kernel_messages"] = {"error": f"{type(e).__name__}: {e}"}
    log("dask")
    dask = bench_dask_if_present(100 if args.quick else 1_000)
    if dask is not None:
        results["dask"] = dask
    results["elapsed_s"] = time.perf_counter() - t0
    results["loadavg_end"] = os.getloadavg()

    text, checks = table(results)
    results["checks"] = checks
    results["table"] = text
    missed = [c["name"] for c in checks if not c["met"]]
    load = f"load average {results['loadavg_start'][0]:.2f} at start, {results['loadavg_end'][0]:.2f} at end"
    print(f"parcoord_nb {parcoord_nb.__version__} benchmarks, Python {results['python']}, {results['cpus']} CPUs"
          f"{', quick' if args.quick else ''} ({results['elapsed_s']:.0f} s, {load})")
    print(text)
    print(f"\n{len(checks) - len(missed)}/{len(checks)} targets met" + (f"; missed: {', '.join(missed)}" if missed else ""))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
