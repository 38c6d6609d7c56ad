"""Cell text -> a prelude and task specs, with each block mapped back to cell lines.

A header is a comment at column 0::

    # task NAME [for TARGET in EXPR] [: Title] [key=value ...]

Everything before the first header is the prelude. Line numbers in specs and errors
are *cell* line numbers: ``first_line`` says which cell line the text starts on (2 for
a ``%%parallel`` cell, whose magic line is line 1).
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field

from .errors import CellSyntaxError, DuplicateTaskError, OptionError, PlanError, UnknownTaskError

__all__ = ["FanOut", "ParsedCell", "TaskOptions", "TaskSpec", "Use", "parse_cell"]

_HEADER = re.compile(r"#\s*task\b(?P<rest>.*)$")
_NAME = re.compile(r"\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>.*)$")
_OPTION = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_-]*)=(?P<value>\S*)$")
# An option starts where whitespace is followed by ``key=`` (but not ``key==``).
_OPTION_START = re.compile(r"\s(?=[A-Za-z_][A-Za-z0-9_-]*=(?!=))")

OPTION_NAMES = ("after", "uses", "timeout", "retries", "backoff", "estimate", "limit")
_EXAMPLE = {"after": "after=load", "uses": "uses=web", "timeout": "timeout=30", "retries": "retries=2",
            "backoff": "backoff=0.5", "estimate": "estimate=10", "limit": "limit=4"}


@dataclass(frozen=True)
class Use:
    """A task's claim on a named resource: shared (read) or exclusive (write)."""

    resource: str
    write: bool = False

    def __str__(self) -> str:
        return f"{self.resource}:write" if self.write else self.resource


@dataclass(frozen=True)
class TaskOptions:
    """The ``key=value`` options of one header, validated."""

    after: tuple[str, ...] = ()
    after_all: bool = False
    uses: tuple[Use, ...] = ()
    timeout: float | None = None
    retries: int | None = None  # None: the run's --retries (default 0)
    backoff: float | None = None
    estimate: float | None = None
    limit: int | None = None


@dataclass(frozen=True)
class FanOut:
    """``for TARGET in EXPR``: one subtask per item of EXPR, TARGET bound to the item."""

    target: str
    expr: str
    target_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """One named block of the cell, as written."""

    name: str
    title: str
    code: str
    line: int  # cell line of the header
    body_line: int  # cell line of the block's first line
    options: TaskOptions = field(default_factory=TaskOptions)
    fanout: FanOut | None = None

    @property
    def label(self) -> str:
        return self.title or self.name


@dataclass(frozen=True)
class ParsedCell:
    """A cell split into its prelude and its tasks."""

    source: str
    prelude: str
    prelude_line: int
    tasks: tuple[TaskSpec, ...]
    first_line: int = 1

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        raise KeyError(name)


def parse_cell(source: str, *, first_line: int = 1) -> ParsedCell:
    """Split cell text into a prelude and task specs, validating every header."""
    lines = source.splitlines()
    headers: list[tuple[int, re.Match[str]]] = []
    for i, text in enumerate(lines):
        m = _HEADER.match(text)
        if m and (not m["rest"] or m["rest"][0].isspace()):
            headers.append((i, m))
    if not source.strip():
        raise PlanError("the %%parallel cell is empty: write tasks as '# task NAME' followed by their code")
    if not headers:
        raise PlanError(
            "the cell has no tasks: start each task with a header line '# task NAME', "
            "for example '# task load' above the code that loads",
            line=first_line,
        )

    prelude = "\n".join(lines[: headers[0][0]])
    specs: list[TaskSpec] = []
    seen: dict[str, int] = {}
    for k, (i, m) in enumerate(headers):
        line = first_line + i
        end = headers[k + 1][0] if k + 1 < len(headers) else len(lines)
        code = "\n".join(lines[i + 1 : end])
        spec = _parse_header(m["rest"], lines[i], line, code)
        if spec.name in seen:
            raise DuplicateTaskError(
                f"task '{spec.name}' is defined twice, at cell lines {seen[spec.name]} and {line}: "
                "rename one of them",
                task=spec.name,
                line=line,
            )
        seen[spec.name] = line
        if not _has_code(code):
            raise PlanError(
                f"task '{spec.name}' (cell line {line}) has no code: put its code under the header, "
                "or remove the header",
                task=spec.name,
                line=line,
            )
        specs.append(spec)

    _check_after(specs)
    return ParsedCell(source, prelude, first_line, tuple(specs), first_line)


def _has_code(code: str) -> bool:
    return any(s.strip() and not s.lstrip().startswith("#") for s in code.splitlines())


def _parse_header(rest: str, text: str, line: int, code: str) -> TaskSpec:
    m = _NAME.match(rest)
    if not m:
        raise CellSyntaxError(
            f"cell line {line}: a task header needs a name, like '# task load'",
            line=line,
            text=text,
        )
    name, rest = m["name"], m["rest"]
    fanout = None
    fan = re.match(r"\s+for\s+(?P<target>.+?)\s+in\s+(?P<rest>.*)$", rest)
    if fan and re.match(r"\s+for\s", rest):
        expr, rest = _split_expr(fan["rest"])
        fanout = _parse_fanout(name, fan["target"], expr, line, text)
    title, option_text = _split_title(rest)
    if title is None:
        # No ':' — only options may follow the name.
        stray = [t for t in option_text.split() if not _OPTION.match(t)]
        if stray:
            raise CellSyntaxError(
                f"task '{name}' (cell line {line}): unexpected {stray[0]!r} in the header; "
                "a title goes after ':' (\"# task load: Load the data\"), options are key=value",
                task=name,
                line=line,
                text=text,
            )
    options = _parse_options(name, option_text.split(), line, text, fanout)
    return TaskSpec(
        name=name,
        title=(title or "").strip(),
        code=code,
        line=line,
        body_line=line + 1,
        options=options,
        fanout=fanout,
    )


def _split_expr(text: str) -> tuple[str, str]:
    """Cut a fan-out expression at the first top-level ':' or option."""
    depth = 0
    quote: str | None = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and c == ":":
            return text[:i].strip(), text[i:]
        elif depth == 0 and _OPTION_START.match(text, i):
            return text[:i].strip(), text[i:]
        i += 1
    return text.strip(), ""


def _parse_fanout(name: str, target: str, expr: str, line: int, text: str) -> FanOut:
    try:
        tree = ast.parse(f"for {target} in _: pass")
    except SyntaxError:
        raise CellSyntaxError(
            f"task '{name}' (cell line {line}): {target!r} cannot be a loop variable; "
            "write 'for item in items'",
            task=name,
            line=line,
            text=text,
        ) from None
    loop = tree.body[0]
    assert isinstance(loop, ast.For)
    targets = tuple(n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name))
    if not expr:
        raise CellSyntaxError(
            f"task '{name}' (cell line {line}): 'for {target} in' needs something to loop over",
            task=name,
            line=line,
            text=text,
        )
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise CellSyntaxError(
            f"task '{name}' (cell line {line}): the fan-out expression {expr!r} is not valid "
            f"Python ({e.msg})",
            task=name,
            line=line,
            text=text,
        ) from None
    # A literal that cannot be looped over is wrong before anything runs.
    node = tree.body
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, (ast.Constant, ast.Lambda)) and not isinstance(getattr(node, "value", None), (str, bytes)):
        kind = "a function" if isinstance(node, ast.Lambda) else type(node.value).__name__
        example = f", like 'for {target.strip()} in range({expr})'" if kind == "int" else ""
        raise CellSyntaxError(
            f"task '{name}' (cell line {line}): 'for {target.strip()} in {expr}' loops over {kind}, "
            f"which cannot be iterated: give it a list, a range or another iterable{example}",
            task=name,
            line=line,
            text=text,
        )
    return FanOut(target=target.strip(), expr=expr, target_names=targets)


def _split_title(rest: str) -> tuple[str | None, str]:
    """Return (title or None when there is no ':', option text)."""
    stripped = rest.strip()
    if not stripped.startswith(":"):
        return None, stripped
    words = stripped[1:].split()
    n = len(words)
    while n and _OPTION.match(words[n - 1]):
        n -= 1
    return " ".join(words[:n]), " ".join(words[n:])


def _parse_options(
    name: str, tokens: list[str], line: int, text: str, fanout: FanOut | None
) -> TaskOptions:
    values: dict[str, object] = {}

    def bad(message: str) -> OptionError:
        return OptionError(f"task '{name}' (cell line {line}): {message}", task=name, line=line)

    for token in tokens:
        m = _OPTION.match(token)
        assert m, token
        key, value = m["key"], m["value"]
        if key not in OPTION_NAMES:
            hint = difflib.get_close_matches(key, OPTION_NAMES, n=1)
            tip = f"did you mean '{hint[0]}'?" if hint else "known options: " + ", ".join(OPTION_NAMES)
            raise bad(f"unknown option '{key}': {tip}")
        if key in values:
            raise bad(f"option '{key}' is given twice")
        if not value:
            raise bad(f"option '{key}=' needs a value, like {_EXAMPLE[key]}")
        if key == "after":
            values[key] = value
        elif key == "uses":
            values[key] = tuple(_parse_use(u, bad) for u in value.split(","))
        elif key in ("timeout", "backoff", "estimate"):
            values[key] = _parse_seconds(key, value, bad)
        else:  # retries, limit
            try:
                n = int(value)
            except ValueError:
                raise bad(f"{key}={value} is not a whole number (write {_EXAMPLE[key]})") from None
            if n < (0 if key == "retries" else 1):
                raise bad(f"{key}={value} must be at least {0 if key == 'retries' else 1}")
            values[key] = n

    after: tuple[str, ...] = ()
    after_all = False
    raw_after = values.pop("after", None)
    if isinstance(raw_after, str):
        parts = [p for p in raw_after.split(",") if p]
        if "*" in parts:
            if len(parts) > 1:
                raise bad("after=* already means every other task; list names or use *, not both")
            after_all = True
        else:
            if not parts:
                raise bad(f"after={raw_after} names no task: write after=NAME or after=a,b")
            for p in parts:
                if not p.isidentifier():
                    raise bad(f"after={raw_after}: {p!r} is not a task name")
            if name in parts:
                raise bad("a task cannot run after itself: remove its own name from after=")
            after = tuple(dict.fromkeys(parts))
    if "limit" in values and fanout is None:
        raise bad("limit= caps the subtasks of a fan-out ('# task NAME for x in items limit=4'); "
                  "this task has no 'for ... in ...'")
    return TaskOptions(after=after, after_all=after_all, **values)  # type: ignore[arg-type]


def _parse_use(text: str, bad) -> Use:  # type: ignore[no-untyped-def]
    resource, _, mode = text.partition(":")
    if not resource.isidentifier():
        raise bad(f"uses={text}: a resource is a name like 'web' or 'db:write'")
    if mode not in ("", "read", "write"):
        raise bad(f"uses={text}: the mode after ':' is 'read' or 'write', not {mode!r}")
    return Use(resource, mode == "write")


def _parse_seconds(key: str, value: str, bad) -> float:  # type: ignore[no-untyped-def]
    text = value[:-1] if value.endswith("s") else value
    try:
        seconds = float(text)
    except ValueError:
        raise bad(f"{key}={value} is not a number of seconds (write {key}=30 or {key}=0.5)") from None
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise bad(f"{key}={value} must be a positive number of seconds")
    return seconds


def _check_after(specs: list[TaskSpec]) -> None:
    names = [s.name for s in specs]
    for spec in specs:
        for target in spec.options.after:
            if target not in names:
                hint = difflib.get_close_matches(target, names, n=1)
                tip = f"did you mean '{hint[0]}'?" if hint else "tasks in this cell: " + ", ".join(names)
                raise UnknownTaskError(
                    f"task '{spec.name}' (cell line {spec.line}) has after={target}, but there is no "
                    f"task '{target}': {tip}",
                    task=spec.name,
                    line=spec.line,
                    names=(target,),
                )
