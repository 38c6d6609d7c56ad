"""``%%parallel``: the IPython side. The only module that imports IPython.

IPython has no async magics: a cell magic is a plain function called while the
kernel's event loop is already running, so it can neither ``await`` nor start a loop
(``asyncio.run`` fails there, and nest-asyncio breaks ipykernel 7: it drops queued
cells and widget clicks, and leaves coroutines running after an interrupt).

So ``%load_ext parcoord_nb`` also registers an input transformer that rewrites a
``%%parallel`` cell, before IPython looks at it, into::

    await parcoord_nb.magic.run_cell_async(line, body)

IPython then runs the cell as a coroutine on the kernel's own loop: tasks run there,
an interrupt cancels them, and widget events are handled while the cell runs. Where
the shell cannot await (``%autoawait off``), the rewrite calls ``run_cell_sync``
instead, which runs a private loop in a worker thread, and the registered magic
does the same if it is ever called directly.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import api
from .engine import Engine
from .errors import OptionError, PlanError
from .run import Run

__all__ = ["ParallelMagics", "load", "run_cell_async", "run_cell_sync", "unload"]

_HEADER = re.compile(r"%%parallel(?:[ \t]+(?P<line>.*))?$")


@magics_class
class ParallelMagics(Magics):
    @magic_arguments()
    @argument("--plan", action="store_true", help="show the plan and the independence check; run nothing")
    @argument("--max-concurrency", type=int, metavar="N", help="at most N blocks at once")
    @argument("--limit", action="append", default=[], metavar="RES=N",
              help="at most N tasks at once that use resource RES (repeatable)")
    @argument("--timeout", type=float, metavar="S", help="default timeout per task, in seconds")
    @argument("--retries", type=int, default=0, metavar="N", help="default retries per task")
    @argument("--on-error", choices=("continue", "cancel"), default="continue",
              help="when a task fails: let independent tasks finish (default) or cancel the rest")
    @argument("--sequential", action="store_true", help="one task at a time, in plan order (the baseline)")
    @argument("--background", action="store_true", help="return at once; `await run` waits later")
    @argument("--backend", choices=("local", "dask"), default="local", help="where blocks run")
    @argument("--scheduler", metavar="ADDR", help="dask scheduler address (with --backend dask)")
    @argument("--out", metavar="NAME", help="bind the run object to NAME in the notebook")
    @argument("--quiet", action="store_true", help="no report (errors still raise)")
    @argument("--no-gantt", action="store_true", help="no Gantt chart in the report")
    @cell_magic
    def parallel(self, line: str, cell: str) -> None:
        """Run the named task blocks of this cell concurrently.

        Start each task with a header line ``# task NAME [for X in ITEMS] [: Title] [key=value ...]``.
        Code before the first header is the prelude and runs first. See the README.
        """
        run_cell_sync(line, cell, shell=self.shell)


def _parse_line(line: str) -> Any:
    args = parse_argstring(ParallelMagics.parallel, line)
    limits: dict[str, int] = {}
    for item in args.limit:
        res, sep, n = item.partition("=")
        if not sep or not res.isidentifier():
            raise UsageError(f"--limit {item}: write --limit RES=N, for example --limit web=4")
        try:
            limits[res] = int(n)
        except ValueError:
            raise UsageError(f"--limit {item}: {n!r} is not a whole number") from None
    args.limits = limits
    if args.out is not None and not args.out.isidentifier():
        raise UsageError(f"--out {args.out}: the name to bind the run to must be a Python identifier")
    return args


def _prepare(line: str, cell: str, shell: Any) -> tuple[Any, Engine | None]:
    args = _parse_line(line)
    try:
        engine = None
        plan = api.build_plan(cell, first_line=2)
        if args.plan:
            from IPython.display import display

            display(plan)
            return args, None
        engine = api.make_engine(
            plan,
            shell.user_ns,
            max_concurrency=args.max_concurrency,
            limits=args.limits,
            timeout=args.timeout,
            retries=args.retries,
            on_error=args.on_error,
            sequential=args.sequential,
            backend=args.backend,
            scheduler=args.scheduler,
        )
    except OptionError as e:
        raise UsageError(str(e)) from None
    except PlanError as e:
        raise e.with_traceback(None) from None
    if args.out:
        shell.user_ns[args.out] = engine.run
    return args, engine


async def run_cell_async(line: str, cell: str, shell: Any = None) -> None:
    """Run a ``%%parallel`` cell on the running loop (what the input transformer calls)."""
    shell = shell or _shell()
    args, engine = _prepare(line, cell, shell)
    if engine is None:
        return
    run = engine.start()
    if args.background:
        _announce_background(run, args)
        return
    try:
        await run
    except asyncio.CancelledError:
        # The kernel was interrupted: the engine has cancelled the tasks and kept what
        # finished. Report it and end the cell with a short error instead of a traceback.
        run.cancel_reason = "the kernel was interrupted"
    _finish(run, args)


def run_cell_sync(line: str, cell: str, shell: Any = None) -> None:
    """Run a ``%%parallel`` cell from synchronous code, on a private loop if one is running."""
    shell = shell or _shell()
    args, engine = _prepare(line, cell, shell)
    if engine is None:
        return
    if args.background:
        import threading

        threading.Thread(target=api.run_engine_blocking, args=(engine,), daemon=True,
                         name=f"parcoord-bg-{engine.run.id}").start()
        _announce_background(engine.run, args)
        return
    try:
        api.run_engine_blocking(engine)
    except KeyboardInterrupt:
        engine.run.cancel_reason = "the kernel was interrupted"
    _finish(engine.run, args)


def _finish(run: Run, args: Any) -> None:
    if not args.quiet:
        render(run, gantt=not args.no_gantt)
    run.raise_for_status()


def render(run: Run, *, gantt: bool = True) -> None:
    """Display the final report as ordinary outputs (HTML + text, then the Gantt PNG)."""
    from IPython.display import display

    from .view.report import gantt_png, run_html
    from .view.text import run_text

    display({"text/plain": run_text(run), "text/html": run_html(run)}, raw=True)
    if gantt:
        png = gantt_png(run)
        if png is not None:
            display({"image/png": png, "text/plain": f"<Gantt chart of {run.id}>"}, raw=True)


def _announce_background(run: Run, args: Any) -> None:
    from IPython.display import display

    name = args.out or "parcoord_nb.last_run()"
    text = f"{run.id} runs in the background: `await {name}` in a later cell waits for it and shows the report"
    display({"text/plain": text}, raw=True)


def _shell() -> Any:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("%%parallel needs an IPython shell; outside one, use parcoord_nb.run()")
    return shell


def transform_cell(lines: list[str]) -> list[str]:
    """IPython input transformer: ``%%parallel`` cells become one awaited call."""
    if not lines or not lines[0].startswith("%%parallel"):
        return lines
    m = _HEADER.match(lines[0].rstrip("\r\n"))
    if m is None:  # %%parallelism or similar: not ours
        return lines
    line = (m["line"] or "").strip()
    body = "".join(lines[1:])
    shell = _shell_or_none()
    if shell is not None and getattr(shell, "autoawait", False):
        call = f"await __import__('parcoord_nb.magic').magic.run_cell_async({line!r}, {body!r})"
    else:
        call = f"__import__('parcoord_nb.magic').magic.run_cell_sync({line!r}, {body!r})"
    return [call + "\n"]


transform_cell._parcoord = True  # type: ignore[attr-defined]


def _shell_or_none() -> Any:
    from IPython import get_ipython

    return get_ipython()


def load(shell: Any) -> None:
    shell.register_magics(ParallelMagics)
    cleanup = shell.input_transformers_cleanup
    if not any(getattr(t, "_parcoord", False) for t in cleanup):
        cleanup.append(transform_cell)


def unload(shell: Any) -> None:
    shell.input_transformers_cleanup[:] = [
        t for t in shell.input_transformers_cleanup if not getattr(t, "_parcoord", False)
    ]
