"""Static detection of common backend performance bottlenecks with :mod:`ast`.

Four patterns are recognised, each reported once per occurrence:

``n_plus_one``
    a query on a database-like object inside the body of a loop or comprehension;
``blocking_in_async``
    a blocking call (``time.sleep``, ``open``, ``requests.*``, ``subprocess.*`` ...)
    directly inside an ``async def``;
``repeated_query``
    the identical query call issued twice in one function;
``double_json``
    ``json.loads`` applied twice to the same source, to an already decoded value,
    or to the output of ``json.dumps``.

The checks are deliberately syntactic: they cannot prove a problem, but each
hit points at a line worth reading.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

KINDS = ("n_plus_one", "blocking_in_async", "repeated_query", "double_json")

# Method names that usually mean "go to the database".
_QUERY_METHOD = re.compile(
    r"^(query|execute(many)?|fetch(one|all|many)?|fetch_\w+|get(_\w+)?|select(_\w+)?"
    r"|find(_\w+)?|load(_\w+)?|count(_\w+)?|filter(_by)?|scalars?|first|all)$"
)
# Receivers that look like a database handle: db, self._db, conn, cursor, session, order_repo ...
_DB_RECEIVER = re.compile(r"(^|_)(db|database|conn|connection|cursor|cur|session|repo|repository|dao)s?($|_)")
_WRITE_SQL = re.compile(r"^\s*(insert|update|delete|upsert|merge|create|drop|alter)\b", re.IGNORECASE)

_BLOCKING_EXACT = {
    "time.sleep": "await asyncio.sleep(...) instead of time.sleep(...)",
    "open": "read the file with asyncio.to_thread(...) or an async file library",
    "io.open": "read the file with asyncio.to_thread(...) or an async file library",
    "os.system": "use asyncio.create_subprocess_shell(...)",
    "urllib.request.urlopen": "use an async HTTP client such as httpx.AsyncClient",
    "socket.create_connection": "use asyncio.open_connection(...)",
}
_BLOCKING_PREFIX = {
    "requests.": "use an async HTTP client such as httpx.AsyncClient",
    "subprocess.": "use asyncio.create_subprocess_exec(...)",
}
_JSON_LOADS = {"json.loads", "orjson.loads", "ujson.loads", "simplejson.loads"}
_JSON_DUMPS = {"json.dumps", "orjson.dumps", "ujson.dumps", "simplejson.dumps"}

_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_LOOP_NODES = (ast.For, ast.AsyncFor, ast.While)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


@dataclass(frozen=True)
class Finding:
    """One suspected bottleneck: what, where (file relative to the scanned root, line, function) and the fix."""

    kind: str
    file: str
    line: int
    function: str
    detail: str
    recommendation: str

    def __str__(self) -> str:
        location = f"{self.file}:{self.line} [{self.kind}] in {self.function}()"
        return f"{location}: {self.detail}\n    fix: {self.recommendation}"


# --- helpers --------------------------------------------------------------------------


def _dotted(node: ast.AST) -> str | None:
    """`a.b.c` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> fully qualified name, so `from time import sleep as pause` resolves."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:  # import numpy.linalg as la -> la means numpy.linalg
                    aliases[alias.asname] = alias.name
                else:  # import urllib.request -> binds urllib
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _qualname(call: ast.Call, aliases: dict[str, str]) -> str | None:
    dotted = _dotted(call.func)
    if dotted is None:
        return None
    head, _, rest = dotted.partition(".")
    resolved = aliases.get(head, head)
    return f"{resolved}.{rest}" if rest else resolved


def _own_nodes(root: ast.AST) -> Iterator[ast.AST]:
    """Nodes under `root` that run in its scope: nested functions, lambdas and classes are skipped."""
    stack = list(ast.iter_child_nodes(root))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPE_NODES):
            stack.extend(ast.iter_child_nodes(node))


def _own_nodes_of_all(nodes: list[ast.AST]) -> Iterator[ast.AST]:
    for node in nodes:
        yield node
        if not isinstance(node, _SCOPE_NODES):
            yield from _own_nodes(node)


def _receiver_name(call: ast.Call) -> str:
    if not isinstance(call.func, ast.Attribute):
        return ""
    receiver = call.func.value
    if isinstance(receiver, ast.Call):  # get_db().fetch_all(...)
        receiver = receiver.func
    if isinstance(receiver, ast.Attribute):
        return receiver.attr.lstrip("_").lower()
    if isinstance(receiver, ast.Name):
        return receiver.id.lstrip("_").lower()
    return ""


def _is_query(node: ast.AST | None) -> TypeGuard[ast.Call]:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and bool(_QUERY_METHOD.match(node.func.attr))
        and bool(_DB_RECEIVER.search(_receiver_name(node)))
    )


def _is_write(call: ast.Call) -> bool:
    first = call.args[0] if call.args else None
    return isinstance(first, ast.Constant) and isinstance(first.value, str) and bool(_WRITE_SQL.match(first.value))


def _short(node: ast.AST, limit: int = 60) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _store_lines(func: ast.AST) -> dict[str, list[int]]:
    """Lines where each local name is (re)bound, to tell "same expression" from "same text"."""
    stores: dict[str, list[int]] = {}
    for node in _own_nodes(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            stores.setdefault(node.id, []).append(node.lineno)
    return stores


def _rebound_between(expr: ast.AST, start: int, end: int, stores: dict[str, list[int]]) -> bool:
    return any(start <= line < end for name in _names(expr) for line in stores.get(name, ()))


def _loop_body(loop: ast.AST) -> list[ast.AST]:
    """The parts of a loop that run once per iteration (not the iterable, which runs once)."""
    if isinstance(loop, (ast.For, ast.AsyncFor, ast.While)):
        return list(loop.body)
    assert isinstance(loop, _COMPREHENSIONS)
    parts: list[ast.AST] = [loop.key, loop.value] if isinstance(loop, ast.DictComp) else [loop.elt]
    for index, generator in enumerate(loop.generators):
        parts.extend(generator.ifs)
        if index:
            parts.append(generator.iter)
    return parts


def _iterable(loop: ast.AST) -> ast.AST | None:
    if isinstance(loop, (ast.For, ast.AsyncFor)):
        return loop.iter
    if isinstance(loop, _COMPREHENSIONS):
        return loop.generators[0].iter
    return None


def _loop_word(loop: ast.AST) -> str:
    return "comprehension" if isinstance(loop, _COMPREHENSIONS) else "loop"


# --- checks ---------------------------------------------------------------------------


class _FunctionScan:
    """Runs the four checks over one function's own statements."""

    def __init__(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, file: str, aliases: dict[str, str]
    ) -> None:
        self.func = func
        self.qualname = qualname
        self.file = file
        self.aliases = aliases
        self.nodes = list(_own_nodes(func))
        self.calls = sorted((n for n in self.nodes if isinstance(n, ast.Call)), key=lambda c: (c.lineno, c.col_offset))
        self.stores = _store_lines(func)

    def finding(self, kind: str, node: ast.AST, detail: str, recommendation: str) -> Finding:
        return Finding(kind, self.file, node.lineno, self.qualname, detail, recommendation)

    def n_plus_one(self) -> Iterator[Finding]:
        # Which query produced a local name, so the report can say what is being iterated.
        produced_by: dict[str, ast.Call] = {}
        for node in self.nodes:
            if isinstance(node, ast.Assign) and _is_query(node.value):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        produced_by[target.id] = node.value
        reported: set[int] = set()  # a query in nested loops is reported for the outermost only
        loops = sorted((n for n in self.nodes if isinstance(n, _LOOP_NODES + _COMPREHENSIONS)), key=lambda n: n.lineno)
        for loop in loops:
            queries = [n for n in _own_nodes_of_all(_loop_body(loop)) if _is_query(n) and id(n) not in reported]
            if not queries:
                continue
            query = min(queries, key=lambda c: (c.lineno, c.col_offset))
            reported.update(id(q) for q in queries)
            iterable = _iterable(loop)
            source = ""
            if isinstance(iterable, ast.Name) and iterable.id in produced_by:
                source = f" over `{iterable.id}`, itself a query result (line {produced_by[iterable.id].lineno})"
            yield self.finding(
                "n_plus_one",
                query,
                f"`{_short(query)}` runs once per iteration of the {_loop_word(loop)} at line {loop.lineno}{source}",
                "load the related rows in one batched query (WHERE ... IN (...)) or a join, then group in memory",
            )

    def blocking_in_async(self) -> Iterator[Finding]:
        if not isinstance(self.func, ast.AsyncFunctionDef):
            return
        for call in self.calls:
            name = _qualname(call, self.aliases)
            if name is None:
                continue
            advice = _BLOCKING_EXACT.get(name) or next(
                (tip for prefix, tip in _BLOCKING_PREFIX.items() if name.startswith(prefix)), None
            )
            if advice:
                yield self.finding(
                    "blocking_in_async",
                    call,
                    f"`{name}()` blocks the event loop inside `async def {self.func.name}`; every other request waits",
                    advice,
                )

    def repeated_query(self) -> Iterator[Finding]:
        first_seen: dict[str, ast.Call] = {}
        for call in self.calls:
            if not _is_query(call) or _is_write(call):
                continue
            key = ast.dump(call)
            first = first_seen.get(key)
            if first is None or _rebound_between(call, first.lineno, call.lineno, self.stores):
                first_seen[key] = call
                continue
            yield self.finding(
                "repeated_query",
                call,
                f"`{_short(call)}` was already issued at line {first.lineno} in the same function",
                "reuse the first result, or put a cache (e.g. a TTL cache or memoization) in front of the query",
            )

    def double_json(self) -> Iterator[Finding]:
        loads = [c for c in self.calls if _qualname(c, self.aliases) in _JSON_LOADS and c.args]
        decoded_names = {
            target.id: node.lineno
            for node in self.nodes
            if isinstance(node, ast.Assign) and node.value in loads
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        first_seen: dict[str, ast.Call] = {}
        for call in loads:
            arg = call.args[0]
            if isinstance(arg, ast.Call) and _qualname(arg, self.aliases) in _JSON_DUMPS:
                yield self.finding(
                    "double_json",
                    call,
                    f"`{_short(call)}` decodes JSON that was just encoded (a round trip used as a deep copy)",
                    "use copy.deepcopy() or keep the original object",
                )
                continue
            decoded_at = decoded_names.get(arg.id) if isinstance(arg, ast.Name) else None
            if decoded_at is not None and decoded_at < call.lineno and not _rebound_between(
                arg, decoded_at + 1, call.lineno, self.stores
            ):
                yield self.finding(
                    "double_json",
                    call,
                    f"`{_short(arg)}` already holds decoded JSON (line {decoded_at}); it is parsed again",
                    "pass the decoded object around instead of re-parsing it",
                )
                continue
            key = ast.dump(arg)
            first = first_seen.get(key)
            if first is None or _rebound_between(arg, first.lineno, call.lineno, self.stores):
                first_seen[key] = call
                continue
            yield self.finding(
                "double_json",
                call,
                f"`{_short(arg)}` is parsed again; it was already decoded at line {first.lineno}",
                "parse once, keep the result in a local variable and reuse it",
            )

    def run(self) -> Iterator[Finding]:
        yield from self.n_plus_one()
        yield from self.blocking_in_async()
        yield from self.repeated_query()
        yield from self.double_json()


def _functions(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    """Every function and method with a dotted qualified name (Class.method, outer.inner)."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _FUNCTION_NODES):
                yield child, prefix + child.name
                yield from visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}{child.name}.")
            else:
                yield from visit(child, prefix)

    yield from visit(tree, "")


def scan_source(source: str, file: str = "<string>") -> list[Finding]:
    """Findings for one module's source text, sorted by line."""
    tree = ast.parse(source, filename=file)
    aliases = _import_aliases(tree)
    findings = [f for func, name in _functions(tree) for f in _FunctionScan(func, name, file, aliases).run()]
    return sorted(findings, key=lambda f: (f.file, f.line, f.kind))


def find_bottlenecks(path: str | Path) -> list[Finding]:
    """Scan a .py file or every .py file under a directory; `Finding.file` is relative to `path`."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    findings: list[Finding] = []
    for file in files:
        relative = file.name if file == root else file.relative_to(root).as_posix()
        findings.extend(scan_source(file.read_text(encoding="utf-8"), relative))
    return findings
