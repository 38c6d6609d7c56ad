"""The dask backend against raw ``client.submit`` on the same cluster, per task.

    python benchmarks/dask_bench.py               # N = 100 and 1,000
    python benchmarks/dask_bench.py 200 2000      # other sizes

Both sides use the same cluster (a scheduler in this process, 2 worker processes x 1
thread, as ``--backend dask`` starts for a kernel on this machine) and the same
asynchronous client on the same loop, so the difference is what parcoord_nb adds per
task: the engine's bookkeeping, pickling the values a block reads and writes,
compiling the block on the worker (cached), capturing its output, timings. The
workload is a fan-out of N trivial items (``# task t for i in range(n)``) against N
``client.submit`` calls of a trivial function, each awaited on its own as the engine
does; ``client.map`` plus one ``gather`` is shown for reference. Medians of several
interleaved repeats after a warm-up; the target is a ratio (within 1.1x), because
absolute times move by +-20 % between runs on a shared 2-core VM.

``bench_dask(n)`` returns the numbers as a dict, for the main benchmark entry point.
"""

from __future__ import annotations

import asyncio
import operator
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent))

import parcoord_nb  # noqa: E402

CELL = "# task t for i in range(n)\nv = i + 1\nv\n"
# The raw side runs operator.add: a function every worker can import, so the benchmark
# works the same whether this file is run or imported.
TARGET = 1.1


async def _raw_submit(client: Any, n: int) -> float:
    token = uuid.uuid4().hex
    t0 = time.perf_counter()
    futures = [client.submit(operator.add, i, 1, key=f"raw-{i}-{token}", pure=False) for i in range(n)]
    results = await asyncio.gather(*(_await(f) for f in futures))
    t = time.perf_counter() - t0
    assert results == [i + 1 for i in range(n)]
    return t


async def _await(future: Any) -> Any:
    return await future


async def _raw_map(client: Any, n: int) -> float:
    token = uuid.uuid4().hex
    t0 = time.perf_counter()
    futures = client.map(operator.add, range(n), [1] * n, key=[f"map-{i}-{token}" for i in range(n)], pure=False)
    results = await client.gather(futures)
    t = time.perf_counter() - t0
    assert results == [i + 1 for i in range(n)]
    return t


async def _parcoord(address: str, n: int) -> float:
    ns: dict[str, Any] = {"n": n}
    t0 = time.perf_counter()
    run = await parcoord_nb.run_async(CELL, ns, backend="dask", scheduler=address)
    t = time.perf_counter() - t0
    assert run.status == "done", run.raise_for_status()
    assert ns["v"] == [i + 1 for i in range(n)]
    return t


async def _measure(address: str, n: int, repeats: int) -> dict[str, list[float]]:
    from parcoord_nb.backends.dask import _client_for

    client = await _client_for(address)  # the client the backend itself uses on this loop
    times: dict[str, list[float]] = {"raw_submit": [], "raw_map": [], "parcoord": []}
    await _raw_submit(client, min(n, 50))  # warm-up: worker imports, compile caches, connections
    await _parcoord(address, min(n, 50))
    for _ in range(repeats):
        times["raw_submit"].append(await _raw_submit(client, n))
        times["parcoord"].append(await _parcoord(address, n))
        times["raw_map"].append(await _raw_map(client, n))
    return times


def bench_dask(n: int, *, repeats: int = 5, address: str | None = None) -> dict[str, Any]:
    """Per-task microseconds of the dask backend and of raw dask, and their ratio.

    Starts (and closes) a 2 x 1 local cluster unless ``address`` names a scheduler.
    """
    cluster = None
    if address is None:
        from distributed import Client

        from parcoord_nb.backends.dask import start_local_cluster

        cluster = start_local_cluster(n_workers=2, threads_per_worker=1, memory_limit="1GiB")
        address = cluster.scheduler_address
        with Client(address, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=60)
    try:
        times = asyncio.run(_measure(address, n, repeats))
    finally:
        if cluster is not None:
            cluster.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    us = {k: v / n * 1e6 for k, v in med.items()}
    ratio = med["parcoord"] / med["raw_submit"]
    return {
        "n": n,
        "repeats": repeats,
        "us_per_task": us,
        "ratio_vs_submit": ratio,
        "ratio_vs_map": med["parcoord"] / med["raw_map"],
        "target": TARGET,
        "ok": ratio <= TARGET,
        "raw_seconds": times,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "dask backend vs raw dask, same cluster (2 workers x 1 thread), µs per task (median)",
        f"{'N':>6}  {'raw submit':>11}  {'raw map':>9}  {'parcoord':>9}  {'ratio':>6}  {'vs map':>6}  target",
    ]
    for r in rows:
        u = r["us_per_task"]
        lines.append(
            f"{r['n']:>6}  {u['raw_submit']:>11.0f}  {u['raw_map']:>9.0f}  {u['parcoord']:>9.0f}  "
            f"{r['ratio_vs_submit']:>5.2f}x  {r['ratio_vs_map']:>5.2f}x  <= {r['target']}x "
            f"{'ok' if r['ok'] else 'MISSED'}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [100, 1000]
    from distributed import Client

    from parcoord_nb.backends.dask import start_local_cluster

    cluster = start_local_cluster(n_workers=2, threads_per_worker=1, memory_limit="1GiB")
    try:
        with Client(cluster.scheduler_address, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=60)
        rows = [bench_dask(n, address=cluster.scheduler_address) for n in sizes]
    finally:
        cluster.close()
    print(table(rows))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
