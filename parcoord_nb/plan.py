"""The dependency graph of a cell: edges and their reasons, conflicts, cycles, waves.

``build_plan`` turns parsed cell text into a :class:`Plan` or raises a
:class:`~parcoord_nb.errors.PlanError` that names the tasks, the variable and the fix.
A plan is immutable and cached by cell text, so re-running an unchanged cell pays
neither parsing nor compiling again.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import linecache
import re
from collections.abc import Iterator, Iterable, Mapping
from dataclasses import dataclass, field
from types import CodeType

from .analysis import BlockInfo, analyse_block, parse_block
from .errors import CellSyntaxError, ConflictError, CycleError, PlanError
from .parse import ParsedCell, TaskSpec, Use, parse_cell

__all__ = ["Edge", "Plan", "PlannedTask", "build_plan", "compile_source", "plan"]

RESULT_NAME = "__parcoord_result__"


@dataclass(frozen=True)
class Edge:
    """``src`` must finish before ``dst`` starts, because of ``names`` or ``after=``."""

    src: str
    dst: str
    names: tuple[str, ...] = ()
    explicit: bool = False

    @property
    def reason(self) -> str:
        if self.names:
            names = ", ".join(f"'{n}'" for n in self.names)
            return f"{self.dst} reads {names} written by {self.src}"
        return f"{self.dst} has after={self.src}" if self.explicit else f"{self.dst} runs after all tasks"


@dataclass(frozen=True)
class CompiledBlock:
    """A block compiled for execution: its code object and where it came from."""

    code: CodeType
    filename: str
    is_async: bool


@dataclass(frozen=True)
class PlannedTask:
    """A task spec with what analysis found and what the graph says about it."""

    spec: TaskSpec
    info: BlockInfo
    block: CompiledBlock
    fanout_code: CodeType | None
    reads: frozenset[str]
    writes: frozenset[str]
    deps: tuple[str, ...]
    wave: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_async(self) -> bool:
        return self.block.is_async

    @property
    def uses(self) -> tuple[Use, ...]:
        return self.spec.options.uses


@dataclass(frozen=True)
class Plan:
    """What will run, in which order, and why; ``str(plan)`` explains it."""

    cell: ParsedCell
    prelude: CompiledBlock | None
    prelude_info: BlockInfo | None
    tasks: Mapping[str, PlannedTask]
    edges: tuple[Edge, ...]
    waves: tuple[tuple[str, ...], ...]
    order: tuple[str, ...]
    dependents: Mapping[str, tuple[str, ...]] = field(repr=False)

    @property
    def resources(self) -> dict[str, dict[str, list[str]]]:
        """resource -> {'read': [tasks], 'write': [tasks]}."""
        out: dict[str, dict[str, list[str]]] = {}
        for t in self.tasks.values():
            for use in t.uses:
                out.setdefault(use.resource, {"read": [], "write": []})[
                    "write" if use.write else "read"
                ].append(t.name)
        return out

    def critical_path(self, durations: Mapping[str, float] | None = None) -> tuple[list[str], float]:
        """The longest chain of dependent tasks and its length in seconds.

        Without ``durations`` the tasks' ``estimate=`` are used (tasks without one count 0).
        """
        weight = {
            name: (durations.get(name, 0.0) if durations is not None else (t.spec.options.estimate or 0.0))
            for name, t in self.tasks.items()
        }
        best: dict[str, tuple[float, str | None]] = {}
        for name in self.order:
            deps = self.tasks[name].deps
            prev = max(deps, key=lambda d: best[d][0], default=None)
            best[name] = (weight[name] + (best[prev][0] if prev else 0.0), prev)
        if not best:
            return [], 0.0
        end = max(self.order, key=lambda n: best[n][0])
        path: list[str] = []
        node: str | None = end
        while node is not None:
            path.append(node)
            node = best[node][1]
        return path[::-1], best[end][0]

    @property
    def verdict(self) -> list[tuple[bool, str]]:
        """The independence check, one line each: (fine, text)."""
        lines: list[tuple[bool, str]] = []
        data = [e for e in self.edges if e.names]
        if not self.edges:
            lines.append((True, "no task needs another task's output: all can run at once"))
        for e in data:
            lines.append((True, f"{e.dst} waits for {e.src}: {e.reason}"))
        for e in self.edges:
            if not e.names:
                lines.append((True, f"{e.dst} waits for {e.src}: {e.reason}"))
        lines.append((True, "no two unordered tasks write the same variable; no cycles"))
        for res, use in sorted(self.resources.items()):
            if use["write"]:
                who = ", ".join(use["write"] + use["read"])
                lines.append((True, f"resource '{res}' is written by {', '.join(use['write'])}: "
                                    f"{who} take it one at a time"))
            else:
                lines.append((True, f"resource '{res}' is shared read-only by {', '.join(use['read'])}: safe"))
        return lines

    def __str__(self) -> str:
        from .view.text import plan_text

        return plan_text(self)

    def _repr_mimebundle_(self, include=None, exclude=None):  # type: ignore[no-untyped-def]
        from .view.report import plan_html

        return {"text/plain": str(self), "text/html": plan_html(self)}


def plan(source: str, *, first_line: int = 1) -> Plan:
    """Parse and check a cell's text without running it."""
    return build_plan(source, first_line=first_line)


def build_plan(source: str, *, first_line: int = 1) -> Plan:
    """Parse cell text, analyse each block and check that the tasks can run together.

    Cached by text and first line, so re-running an unchanged cell costs a dict lookup
    and the very same Plan (and compiled blocks) comes back.
    """
    # One positional key: lru_cache would cache f(s) and f(s, first_line=1) apart.
    plan = _cached_plan(source, first_line)
    blocks = [t.block for t in plan.tasks.values()] or ([plan.prelude] if plan.prelude else [])
    if blocks and blocks[0].filename not in linecache.cache:
        _register_source(source, first_line)  # linecache was cleared: tracebacks need the lines
    return plan


@functools.lru_cache(maxsize=128)
def _cached_plan(source: str, first_line: int) -> Plan:
    return _build_plan(source, first_line)


build_plan.cache_clear = _cached_plan.cache_clear  # type: ignore[attr-defined]
build_plan.cache_info = _cached_plan.cache_info  # type: ignore[attr-defined]


def _build_plan(source: str, first_line: int) -> Plan:
    """build_plan without the cache (benchmarks measure this)."""
    cell = parse_cell(source, first_line=first_line)
    filename = _register_source(source, first_line)

    prelude = prelude_info = None
    if cell.prelude.strip():
        tree = _parse(cell.prelude, first_line, filename, task=None)
        try:
            prelude_info = analyse_block(tree)
            prelude = _compile(tree, filename, prelude_info)
        except _COMPILE_ERRORS as e:
            raise _compile_error(e, None, first_line) from None

    analysed: dict[str, tuple[TaskSpec, BlockInfo, CompiledBlock, CodeType | None, frozenset[str], frozenset[str]]] = {}
    for spec in cell.tasks:
        tree = _parse(spec.code, spec.body_line, filename, task=spec.name)
        try:
            info = analyse_block(tree)
        except _COMPILE_ERRORS as e:
            raise _compile_error(e, spec.name, spec.body_line) from None
        reads = set(info.reads)
        # A name that starts with an underscore stays local to its block (as in marimo):
        # loop counters and scratch values of two tasks then never conflict.
        writes = {w for w in info.writes if not w.startswith("_")}
        fanout_code = None
        if spec.fanout is not None:
            local = set(spec.fanout.target_names)
            reads -= local
            writes -= local
            try:
                expr_tree = compile(spec.fanout.expr, filename, "eval", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                ast.increment_lineno(expr_tree, spec.line - 1)
                reads |= {n.id for n in ast.walk(expr_tree) if isinstance(n, ast.Name)} - _builtins()
                fanout_code = compile(expr_tree, filename, "eval", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            except _COMPILE_ERRORS as e:
                raise _compile_error(e, spec.name, spec.line, what="the fan-out expression") from None
        try:
            block = _compile(tree, filename, info)
        except _COMPILE_ERRORS as e:
            raise _compile_error(e, spec.name, spec.body_line) from None
        analysed[spec.name] = (spec, info, block, fanout_code, frozenset(reads), frozenset(writes))

    edges = _edges(cell.tasks, {n: (a[4], a[5]) for n, a in analysed.items()})
    names = [s.name for s in cell.tasks]
    deps: dict[str, list[str]] = {n: [] for n in names}
    dependents: dict[str, list[str]] = {n: [] for n in names}
    for e in edges:
        deps[e.dst].append(e.src)
        dependents[e.src].append(e.dst)

    order = _toposort(names, deps, edges, {s.name: s.line for s in cell.tasks})
    _check_conflicts(cell.tasks, {n: a[5] for n, a in analysed.items()}, deps, order)

    wave_of: dict[str, int] = {}
    for n in order:
        wave_of[n] = 1 + max((wave_of[d] for d in deps[n]), default=-1)
    waves = [[] for _ in range(max(wave_of.values(), default=-1) + 1)]  # type: list[list[str]]
    for n in names:
        waves[wave_of[n]].append(n)

    tasks = {
        n: PlannedTask(
            spec=a[0], info=a[1], block=a[2], fanout_code=a[3], reads=a[4], writes=a[5],
            deps=tuple(deps[n]), wave=wave_of[n],
        )
        for n, a in analysed.items()
    }
    return Plan(
        cell=cell,
        prelude=prelude,
        prelude_info=prelude_info,
        tasks=tasks,
        edges=tuple(edges),
        waves=tuple(tuple(w) for w in waves),
        order=tuple(order),
        dependents={n: tuple(v) for n, v in dependents.items()},
    )


@functools.cache
def _builtins() -> frozenset[str]:
    import builtins

    return frozenset(dir(builtins))


def _register_source(source: str, first_line: int) -> str:
    """Put the cell in linecache so tracebacks quote the user's lines by cell number."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    filename = f"<parallel-cell-{digest}>"
    lines = ["%%parallel\n"] * (first_line - 1) + [ln + "\n" for ln in source.splitlines()]
    linecache.cache[filename] = (len(source), None, lines, filename)
    return filename


def _parse(code: str, first_line: int, filename: str, *, task: str | None) -> ast.Module:
    where = f"task '{task}'" if task else "the prelude (the code before the first task)"
    try:
        tree = _parse_at(code, first_line, filename)
    except (ValueError, RecursionError, MemoryError) as e:  # NUL bytes; nesting too deep for the parser
        raise _compile_error(e, task, first_line) from None
    except SyntaxError as e:
        line = first_line + (e.lineno or 1) - 1
        kind = type(e).__name__
        # Python counts lines from the block's start ("... after 'if' statement on line 2");
        # say the cell line instead, as everywhere else.
        msg = re.sub(r"\bline (\d+)", lambda m: f"cell line {first_line + int(m[1]) - 1}", e.msg or "")
        fix = ("indent the lines under if/for/def/with/try, and start the block's other lines at column 0"
               if isinstance(e, IndentationError) else "correct that line")
        raise CellSyntaxError(
            f"{kind} in {where} at cell line {line}: {msg}; {fix} (nothing was run)",
            task=task,
            line=line,
            offset=e.offset,
            text=e.text,
        ) from None
    return tree


# Newlines put in front of a block cost the tokenizer about 0.03 µs each, while
# ast.increment_lineno walks every node in Python (about 1 µs per character of code).
PAD_PER_CHAR = 20


def _parse_at(code: str, first_line: int, filename: str) -> ast.Module:
    """parse_block, with the node line numbers of the cell (the block starts at first_line).

    Blank lines in front give the parser the right numbers for free; for a small block
    deep in a huge cell, shifting the tree afterwards is cheaper. A SyntaxError always
    comes from the plain parse, with line numbers counted from the block's start.
    """
    shift = first_line - 1
    if 0 < shift <= PAD_PER_CHAR * len(code):
        try:
            return parse_block("\n" * shift + code, filename)
        except SyntaxError:
            pass  # parse again below, for the error with block-relative lines
    tree = parse_block(code, filename)
    if shift:
        ast.increment_lineno(tree, shift)
    return tree


# ast.parse accepts some code that compile() rejects ('return' or 'yield' outside a
# function, 'break' outside a loop); deeply nested code exhausts the recursion limit.
_COMPILE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def _compile_error(e: BaseException, task: str | None, first_line: int, what: str = "") -> CellSyntaxError:
    where = f"task '{task}'" if task else "the prelude (the code before the first task)"
    if what:
        where = f"{what} of {where}"
    if isinstance(e, SyntaxError):
        # Blocks are compiled with cell line numbers already; fall back to the block's start.
        line = e.lineno if e.lineno and e.lineno >= first_line else first_line
        return CellSyntaxError(
            f"{type(e).__name__} in {where} at cell line {line}: {e.msg}; correct that line (nothing was run)",
            task=task, line=line, offset=e.offset, text=e.text,
        )
    if isinstance(e, ValueError):
        reason = f"it cannot be compiled ({e})"
    else:
        reason = "it is nested too deeply for Python to compile"
    return CellSyntaxError(
        f"{where} (from cell line {first_line}): {reason}; split it into smaller pieces (nothing was run)",
        task=task, line=first_line,
    )


def compile_source(code: str, filename: str, first_line: int) -> CompiledBlock:
    """Compile one block's text as :func:`build_plan` does, in another process.

    Same cell line numbers and the same rewrite of the last expression into the result,
    so a backend that ships a block as source (dask) runs exactly what the plan checked.
    """
    tree = parse_block(code, filename)
    ast.increment_lineno(tree, first_line - 1)
    return _compile(tree, filename, analyse_block(tree))


def _compile(tree: ast.Module, filename: str, info: BlockInfo) -> CompiledBlock:
    body = list(tree.body)
    if info.has_result:
        last = body[-1]
        assert isinstance(last, ast.Expr)
        # Both new nodes get the expression's location, so the tree needs no
        # fix_missing_locations (a walk over every node, a quarter of planning).
        target = ast.copy_location(ast.Name(RESULT_NAME, ast.Store()), last)
        assign = ast.Assign(targets=[target], value=last.value)
        body[-1] = ast.copy_location(assign, last)
    module = ast.Module(body=body, type_ignores=[])
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if info.is_async else 0
    code = compile(module, filename, "exec", flags=flags, dont_inherit=True)
    return CompiledBlock(code=code, filename=filename, is_async=info.is_async)


def _edges(specs: Iterable[TaskSpec], rw: Mapping[str, tuple[frozenset[str], frozenset[str]]]) -> list[Edge]:
    specs = list(specs)
    writers: dict[str, list[str]] = {}
    for s in specs:
        for name in sorted(rw[s.name][1]):
            writers.setdefault(name, []).append(s.name)
    edges: dict[tuple[str, str], Edge] = {}
    for s in specs:
        found: dict[str, list[str]] = {}
        for name in sorted(rw[s.name][0]):
            for w in writers.get(name, ()):
                if w != s.name:
                    found.setdefault(w, []).append(name)
        for w, names in found.items():
            edges[(w, s.name)] = Edge(w, s.name, tuple(names))
        for target in s.options.after:
            edges.setdefault((target, s.name), Edge(target, s.name, explicit=True))
        if s.options.after_all:
            for other in specs:
                if other.name != s.name and not other.options.after_all:
                    edges.setdefault((other.name, s.name), Edge(other.name, s.name, explicit=True))
    order = {s.name: i for i, s in enumerate(specs)}
    return sorted(edges.values(), key=lambda e: (order[e.dst], order[e.src]))


def _toposort(
    names: list[str], deps: Mapping[str, list[str]], edges: list[Edge], lines: Mapping[str, int] | None = None
) -> list[str]:
    """Order tasks so each comes after its dependencies; cell order breaks ties."""
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    order: list[str] = []
    # Depth-first with an explicit stack, not recursion: a chain of thousands of
    # dependent tasks must not hit the interpreter's recursion limit.
    for root in names:
        if root in state:
            continue
        path: list[str] = [root]
        todo: list[Iterator[str]] = [iter(deps[root])]
        state[root] = 1
        while todo:
            for d in todo[-1]:
                if state.get(d) == 1:
                    raise _cycle_error(path[path.index(d):] + [d], edges, lines or {})
                if d not in state:
                    state[d] = 1
                    path.append(d)
                    todo.append(iter(deps[d]))
                    break
            else:
                todo.pop()
                done = path.pop()
                state[done] = 2
                order.append(done)
    return order


def _cycle_error(path: list[str], edges: list[Edge], lines: Mapping[str, int]) -> CycleError:
    # ``path`` runs from a task to what it depends on; show it in the order things run.
    path = path[::-1]
    by_pair = {(e.src, e.dst): e for e in edges}
    reasons = [by_pair[(a, b)].reason for a, b in zip(path, path[1:])]
    names = sorted({n for a, b in zip(path, path[1:]) for n in by_pair[(a, b)].names})
    where = ", ".join(f"'{n}' at cell line {lines[n]}" for n in path[:-1] if n in lines)
    return CycleError(
        "dependency cycle: " + " -> ".join(path) + " (" + "; ".join(reasons) + ")"
        + (f" [{where}]" if where else "") + ". "
        "Each of these tasks waits for the next, so none can start: move the shared "
        "code into one task, rename a variable, or drop an after=",
        path=path,
        names=names,
        line=lines.get(path[0]),
    )


def _check_conflicts(
    specs: tuple[TaskSpec, ...],
    writes: Mapping[str, frozenset[str]],
    deps: Mapping[str, list[str]],
    order: list[str],
) -> None:
    # Ancestor sets as bitmasks (bit i = the i-th task in cell order): a long chain of
    # n tasks costs n ints instead of n sets of up to n names each.
    bit = {s.name: 1 << i for i, s in enumerate(specs)}
    ancestors: dict[str, int] = {}
    for n in order:
        acc = 0
        for d in deps[n]:
            acc |= bit[d] | ancestors[d]
        ancestors[n] = acc
    by_line = {s.name: s for s in specs}
    writers: dict[str, list[str]] = {}
    for s in specs:
        for name in writes[s.name]:
            writers.setdefault(name, []).append(s.name)
    for var in sorted(writers):
        ws = writers[var]
        for i, a in enumerate(ws):
            for b in ws[i + 1 :]:
                if not (ancestors[b] & bit[a] or ancestors[a] & bit[b]):
                    raise ConflictError(
                        f"tasks '{a}' (cell line {by_line[a].line}) and '{b}' (cell line "
                        f"{by_line[b].line}) both assign '{var}' and neither runs after the other: "
                        f"rename one (a name starting with _ stays local to its task), or add after={a} to '{b}'",
                        task=b,
                        line=by_line[b].line,
                        names=(var,),
                    )

