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
import hashlib
import os
import re
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import api, capture
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
    @argument("--cancel-previous", action="store_true",
              help="cancel a background run this cell started that is still running, then start again")
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
    args.cell_key = _cell_key(shell, cell)
    args.previous = None if args.plan else _claim_cell(args, shell)
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
    if args.previous is not None:
        await _wind_down(args.previous)
    # The view exists before the engine starts, so it sees every event from the first.
    view = _show_view(engine, args, shell, sync=False)
    run = engine.start()
    if args.background:
        _run_in_background(run, view, args, shell)
        return
    try:
        await run
    except asyncio.CancelledError:
        # The kernel was interrupted: the engine has cancelled the tasks and kept what
        # finished. Report it and end the cell with a short error instead of a traceback.
        run.cancel_reason = run.cancel_reason or "the kernel was interrupted"
    _finish(run, args, view)


def run_cell_sync(line: str, cell: str, shell: Any = None) -> None:
    """Run a ``%%parallel`` cell from synchronous code, on a private loop if one is running."""
    shell = shell or _shell()
    args, engine = _prepare(line, cell, shell)
    if engine is None:
        return
    if args.previous is not None and not _on_this_loop(args.previous):
        args.previous._done.wait(5.0)  # the wind-down takes half a second at most
    view = _show_view(engine, args, shell, sync=not args.background)
    if args.background:
        import threading

        threading.Thread(target=api.run_engine_blocking, args=(engine,), daemon=True,
                         name=f"parcoord-bg-{engine.run.id}").start()
        _run_in_background(engine.run, view, args, shell)
        return
    try:
        api.run_engine_blocking(engine)
    except KeyboardInterrupt:
        engine.run.cancel_reason = engine.run.cancel_reason or "the kernel was interrupted"
    _finish(engine.run, args, view)


def _finish(run: Run, args: Any, view: Any = None) -> None:
    if not args.quiet:
        render(run, gantt=not args.no_gantt, png=getattr(view, "gantt_png", None))
    run.raise_for_status()


def render(run: Run, *, gantt: bool = True, png: bytes | None = None) -> None:
    """Display the final report as ordinary outputs (HTML + text, then the Gantt PNG).

    ``png``: the Gantt chart when the live view has drawn it already.
    """
    from IPython.display import display

    from .view.report import gantt_png, run_html
    from .view.text import run_text

    display({"text/plain": run_text(run), "text/html": run_html(run)}, raw=True)
    if gantt:
        png = png if png is not None else gantt_png(run)
        if png is not None:
            display({"image/png": png, "text/plain": f"<Gantt chart of {run.id}>"}, raw=True)


# -- the live view -----------------------------------------------------------------
def _show_view(engine: Engine, args: Any, shell: Any, *, sync: bool) -> Any:
    """Make the run's live view, register it with the engine and display it (None if --quiet)."""
    if args.quiet:
        return None
    from IPython.display import display

    from .view.progress_text import make_view

    in_kernel = getattr(shell, "kernel", None) is not None
    notes: list[str] = []
    if args.background:
        notes.append(f"runs in the background: `await {_run_name(engine.run, args)}` in a later cell "
                     "waits for it and shows the report there")
    elif in_kernel and sync:
        notes.append("this cell runs synchronously (%autoawait is off), so Cancel only acts once it "
                     "has ended: use Kernel > Interrupt to stop it")
    elif in_kernel and not _clicks_while_running():
        notes.append(f"Cancel acts during a running cell on ipykernel 7.4 or later (this kernel has "
                     f"{_ipykernel_version()}): use Kernel > Interrupt to stop it")
    formatter = getattr(shell, "display_formatter", None)
    view = make_view(
        engine.run,
        widgets=in_kernel and os.environ.get("PARCOORD_VIEW") != "text",
        background=args.background,
        in_kernel=in_kernel,
        notes=tuple(notes),
        formatter=(lambda value: formatter.format(value)[0]) if formatter is not None else None,
        gantt=not args.no_gantt,
    )
    engine.observers.append(view.observe)
    bundle = view.bundle()
    if bundle is not None:
        display(bundle, raw=True)
    return view


def _run_in_background(run: Run, view: Any, args: Any, shell: Any) -> None:
    """Remember the cell's live run; make `await run` report in the waiting cell."""
    _live[args.cell_key] = (run, args.out)

    def report_here(r: Run) -> None:
        # Runs in the waiting cell: its messages are parented to that cell, so the
        # final widget state and the report are what a saved notebook keeps (fact 6).
        if view is not None:
            view.resend()
        if not args.quiet:
            render(r, gantt=not args.no_gantt, png=getattr(view, "gantt_png", None))
        count = getattr(shell, "execution_count", None)
        # `await run` as the cell's last line would show the whole report a second time.
        r._repr_hook = lambda: (
            {"text/plain": f"<Run {r.id} {r.status}: the report is above>"}
            if getattr(shell, "execution_count", None) == count else None
        )

    run._wait_hooks.append(report_here)
    if view is None or view.bundle() is None:
        _announce_background(run, args)


async def _wind_down(previous: Run) -> None:
    """Wait (briefly) for a cancelled run to end, without reporting it here."""
    task = previous._task
    if task is not None and previous._loop is asyncio.get_running_loop():
        await asyncio.wait([task], timeout=5.0)
    else:
        await asyncio.get_running_loop().run_in_executor(None, previous._done.wait, 5.0)


def _on_this_loop(run: Run) -> bool:
    # Blocking here for a run on the loop this thread runs would stop it winding down.
    try:
        return run._loop is asyncio.get_running_loop()
    except RuntimeError:
        return False


# A cell's background run that may still be running: cell key -> (run, --out name).
_live: dict[str, tuple[Run, str | None]] = {}


def _cell_key(shell: Any, cell: str) -> str:
    """Which notebook cell this is: its id when the frontend sends one, else its text."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else {}
    except Exception:  # noqa: BLE001 - no parent outside a request
        parent = {}
    cell_id = (parent.get("metadata") or {}).get("cellId") if isinstance(parent, dict) else None
    if cell_id:
        return f"cell:{cell_id}"
    # The body only: adding --cancel-previous to the line must still find the old run.
    return "source:" + hashlib.sha1(cell.encode("utf-8", "replace")).hexdigest()


def _claim_cell(args: Any, shell: Any) -> Run | None:
    """Refuse to start while this cell's background run is live, or cancel it if asked."""
    entry = _live.get(args.cell_key)
    if entry is None or entry[0].done:
        _live.pop(args.cell_key, None)
        return None
    previous, name = entry
    if args.cancel_previous:
        previous.cancel()
        del _live[args.cell_key]
        return previous
    done = sum(r.status == "done" for r in previous.tasks.values())
    ref = name or ("parcoord_nb.last_run()" if api.last_run() is previous else "the run object")
    raise UsageError(
        f"{previous.id}, started by this cell, is still running in the background ({done} of "
        f"{len(previous.tasks)} tasks done): wait for it with `await {ref}` or stop it with "
        f"`{ref}.cancel()` in another cell, or run this cell with --cancel-previous to cancel it "
        "and start again"
    )


def _run_name(run: Run, args: Any) -> str:
    return args.out or "parcoord_nb.last_run()"


def _ipykernel_version() -> str:
    try:
        import ipykernel

        return str(ipykernel.__version__)
    except Exception:  # noqa: BLE001
        return "unknown"


def _clicks_while_running() -> bool:
    """ipykernel 7.4 handles widget messages while an async cell awaits (brief fact 2)."""
    numbers = [int(x) for x in re.findall(r"\d+", _ipykernel_version())[:2]]
    return len(numbers) == 2 and tuple(numbers) >= (7, 4)


# -- display() from inside a task ----------------------------------------------------------
def _route_displays(shell: Any) -> None:
    """Send ``display()`` / ``clear_output()`` called inside a task to that task.

    Concurrent tasks share the cell, and a background run's cell may be long gone
    (brief facts 5 and 6), so while a task scope is current its display goes to
    ``run.tasks[name].displays``, which the live view and the report show in the
    task's area. Everything else goes to the notebook as before.
    """
    pub = getattr(shell, "display_pub", None)
    if pub is None or getattr(pub, "_parcoord_routed", False):
        return
    original_publish, original_clear = pub.publish, pub.clear_output

    def publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
        scope = capture.current_scope()
        if scope is not None and scope.displays is not None:
            scope.displays.publish(data, metadata, transient=kwargs.get("transient"),
                                   update=bool(kwargs.get("update", False)))
            return None
        return original_publish(data, metadata, *args, **kwargs)

    def clear_output(wait: bool = False) -> Any:
        scope = capture.current_scope()
        if scope is not None and scope.displays is not None:
            scope.displays.clear()
            return None
        return original_clear(wait)

    pub.publish = publish
    pub.clear_output = clear_output
    pub._parcoord_routed = True


def _unroute_displays(shell: Any) -> None:
    pub = getattr(shell, "display_pub", None)
    if pub is None or not getattr(pub, "_parcoord_routed", False):
        return
    for name in ("publish", "clear_output", "_parcoord_routed"):
        pub.__dict__.pop(name, None)


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


def _show_figures(shell: Any) -> None:
    """Let ``run.gantt()`` as a cell's last line show the chart, not ``<Figure size ...>``.

    The Gantt is a bare ``matplotlib.figure.Figure`` (pyplot would make the inline
    backend show it twice), and IPython only knows how to draw figures once pyplot's
    inline backend is active. Registering by name imports nothing now; an inline
    backend set up later replaces this with its own formatter.
    """
    png = shell.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type("matplotlib.figure.Figure")
    except (KeyError, AttributeError):
        from .view.gantt import figure_png

        png.for_type_by_name("matplotlib.figure", "Figure", figure_png)


def load(shell: Any) -> None:
    shell.register_magics(ParallelMagics)
    _route_displays(shell)
    _show_figures(shell)
    cleanup = shell.input_transformers_cleanup
    if not any(getattr(t, "_parcoord", False) for t in cleanup):
        cleanup.append(transform_cell)


def unload(shell: Any) -> None:
    _unroute_displays(shell)
    shell.input_transformers_cleanup[:] = [
        t for t in shell.input_transformers_cleanup if not getattr(t, "_parcoord", False)
    ]
