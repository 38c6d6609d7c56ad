"""Static search for error-handling patterns in Python sources with :mod:`ast`.

Recognised patterns (the keys of :func:`find_patterns`'s result):

``exception_hierarchy``
    exception classes derived from another exception class of the same file,
    at least two levels deep (base -> subclass);
``retry_backoff``
    a loop that catches exceptions and sleeps for a delay that grows
    (``base * 2 ** attempt``, ``delay *= 2``, ``delay = min(delay * 2, cap)``);
``circuit_breaker``
    a class that counts failures and compares them to a threshold, or that
    moves between open / closed / half-open states;
``context_propagation``
    ``raise NewError(...) from exc``, which keeps the original error as the cause.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PATTERN_KINDS = ("exception_hierarchy", "retry_backoff", "circuit_breaker", "context_propagation")
_MAX_SNIPPET_LINES = 8

_BUILTIN_EXCEPTIONS = {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
}
_GROWING_OPS = (ast.Pow, ast.LShift)  # always exponential
_STATE_NAMES = {"open", "closed", "half_open"}
_FAILURE_COUNTER = re.compile(r"fail")
_THRESHOLD = re.compile(r"threshold|max_fail|fail_max")


@dataclass(frozen=True)
class PatternExample:
    """One occurrence of a pattern: file (relative to the scanned root), line, a name and a source snippet."""

    file: str
    line: int
    name: str
    snippet: str

    def __str__(self) -> str:
        body = "\n".join(f"    {line}" for line in self.snippet.splitlines())
        return f"{self.file}:{self.line} {self.name}\n{body}"


def _snippet(lines: list[str], node: ast.AST, max_lines: int = _MAX_SNIPPET_LINES) -> str:
    start, end = node.lineno, getattr(node, "end_lineno", None) or node.lineno
    chunk = lines[start - 1 : min(end, start + max_lines - 1)]
    indent = min((len(text) - len(text.lstrip()) for text in chunk if text.strip()), default=0)
    text = "\n".join(line[indent:] for line in chunk)
    return text + ("\n..." if end - start + 1 > max_lines else "")


def _enclosing_functions(tree: ast.Module) -> dict[int, str]:
    """id(node) -> name of the innermost function containing it (for naming examples)."""
    owner: dict[int, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else name
            owner[id(child)] = inner
            visit(child, inner)

    visit(tree, "<module>")
    return owner


# --- exception hierarchies --------------------------------------------------------------


def _base_names(cls: ast.ClassDef) -> list[str]:
    names = []
    for base in cls.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def _exception_hierarchies(tree: ast.Module, lines: list[str], file: str) -> Iterator[PatternExample]:
    classes = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    parent: dict[str, str | None] = {}  # local exception class -> its local exception parent

    def is_exception(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name in _BUILTIN_EXCEPTIONS:
            return True
        cls = classes.get(name)
        return cls is not None and name not in seen and any(is_exception(b, seen | {name}) for b in _base_names(cls))

    for name, cls in classes.items():
        if is_exception(name):
            local = [b for b in _base_names(cls) if b in classes and is_exception(b)]
            parent[name] = local[0] if local else None

    def root_and_depth(name: str) -> tuple[str, int]:
        depth = 1
        while (up := parent.get(name)) is not None:
            name, depth = up, depth + 1
        return name, depth

    members: dict[str, list[str]] = {}
    depth: dict[str, int] = {}
    for name in parent:
        root, level = root_and_depth(name)
        members.setdefault(root, []).append(name)
        depth[root] = max(depth.get(root, 0), level)
    for root, names in members.items():
        if depth[root] >= 2:
            # The class statements themselves show the shape of the tree best.
            headers = [lines[classes[n].lineno - 1].strip() for n in sorted(names, key=lambda n: classes[n].lineno)]
            yield PatternExample(
                file,
                classes[root].lineno,
                f"{root} hierarchy: {len(names)} classes, {depth[root]} levels",
                "\n".join(headers[:_MAX_SNIPPET_LINES]) + ("\n..." if len(headers) > _MAX_SNIPPET_LINES else ""),
            )


# --- retry with backoff -----------------------------------------------------------------


def _is_sleep(call: ast.Call) -> bool:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return name == "sleep"


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _grows(expr: ast.AST, varying: set[str], grown: set[str]) -> bool:
    """Whether `expr` gets larger from one iteration to the next."""
    for node in ast.walk(expr):
        if isinstance(node, ast.Name) and node.id in grown:
            return True
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, _GROWING_OPS):
                return True
            # base * attempt, delay * 2: a product with something that changes per iteration.
            if isinstance(node.op, ast.Mult) and (_names(node.left) | _names(node.right)) & varying:
                return True
    return False


def _is_backoff_loop(loop: ast.For | ast.AsyncFor | ast.While) -> bool:
    body = [node for stmt in loop.body for node in ast.walk(stmt)]
    if not any(isinstance(node, ast.Try) and node.handlers for node in body):
        return False
    varying = _names(loop.target) if isinstance(loop, (ast.For, ast.AsyncFor)) else set()
    grown: set[str] = set()
    assignments: list[tuple[str, ast.AST]] = []
    for node in body:
        if isinstance(node, ast.Assign):
            assignments += [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            varying.add(node.target.id)
            if isinstance(node.op, (ast.Mult, *_GROWING_OPS)):  # delay *= 2
                grown.add(node.target.id)
    varying |= {name for name, _ in assignments}
    for _ in range(2):  # a second pass catches names grown via other grown names
        grown |= {name for name, value in assignments if _grows(value, varying, grown)}
    sleeps = [n for n in body if isinstance(n, ast.Call) and _is_sleep(n) and n.args]
    return any(_grows(call.args[0], varying, grown) for call in sleeps)


def _retry_loops(tree: ast.Module, lines: list[str], file: str, owner: dict[int, str]) -> Iterator[PatternExample]:
    loops = [n for n in ast.walk(tree) if isinstance(n, (ast.For, ast.AsyncFor, ast.While)) and _is_backoff_loop(n)]
    for loop in loops:
        # An outer loop around a retry loop (e.g. "for each item") is not itself the retry.
        nested = {id(node) for node in ast.walk(loop) if node is not loop}
        if any(id(other) in nested for other in loops):
            continue
        name = f"{owner.get(id(loop), '<module>')}: retry loop with growing sleep"
        yield PatternExample(file, loop.lineno, name, _snippet(lines, loop, max_lines=12))


# --- circuit breakers -------------------------------------------------------------------


def _identifiers(cls: ast.ClassDef) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 20:
            found.add(node.value)
    return {name.lower().replace("-", "_") for name in found}


def _circuit_breakers(tree: ast.Module, lines: list[str], file: str) -> Iterator[PatternExample]:
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef):
            continue
        # A state enum alone names the states but has no behaviour; require methods.
        if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in cls.body):
            continue
        names = _identifiers(cls)
        counts_failures = any(_FAILURE_COUNTER.search(n) for n in names)
        has_threshold = any(_THRESHOLD.search(n) for n in names)
        states = sorted(_STATE_NAMES & names)
        if counts_failures and (has_threshold or len(states) >= 2):
            traits = ["failure counter"]
            if has_threshold:
                traits.append("threshold")
            if states:
                traits.append("states " + "/".join(states))
            yield PatternExample(file, cls.lineno, f"{cls.name}: {', '.join(traits)}", _snippet(lines, cls))


# --- context propagation ----------------------------------------------------------------


def _raise_from(tree: ast.Module, lines: list[str], file: str, owner: dict[int, str]) -> Iterator[PatternExample]:
    handlers = [n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)]
    for node in ast.walk(tree):
        # `raise ... from None` deliberately drops the context, so it does not count.
        if not isinstance(node, ast.Raise) or node.cause is None:
            continue
        if isinstance(node.cause, ast.Constant) and node.cause.value is None:
            continue
        raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        label = ast.unparse(raised) if raised is not None else "?"
        handler = next((h for h in handlers if h.lineno <= node.lineno <= (h.end_lineno or h.lineno)), None)
        yield PatternExample(
            file,
            node.lineno,
            f"{owner.get(id(node), '<module>')}: raise {label} from {ast.unparse(node.cause)}",
            _snippet(lines, handler or node),
        )


def scan_patterns(source: str, file: str = "<string>") -> dict[str, list[PatternExample]]:
    """Pattern examples in one module's source text."""
    tree = ast.parse(source, filename=file)
    lines = source.splitlines()
    owner = _enclosing_functions(tree)
    return {
        "exception_hierarchy": list(_exception_hierarchies(tree, lines, file)),
        "retry_backoff": list(_retry_loops(tree, lines, file, owner)),
        "circuit_breaker": list(_circuit_breakers(tree, lines, file)),
        "context_propagation": list(_raise_from(tree, lines, file, owner)),
    }


def find_patterns(path: str | Path) -> dict[str, list[PatternExample]]:
    """Search a .py file or every .py file under a directory; keys are PATTERN_KINDS, lists sorted by location."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    result: dict[str, list[PatternExample]] = {kind: [] for kind in PATTERN_KINDS}
    for file in files:
        relative = file.name if file == root else file.relative_to(root).as_posix()
        for kind, examples in scan_patterns(file.read_text(encoding="utf-8"), relative).items():
            result[kind].extend(examples)
    for examples in result.values():
        examples.sort(key=lambda e: (e.file, e.line))
    return result
