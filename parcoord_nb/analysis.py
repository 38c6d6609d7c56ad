"""One block's reads, writes and whether it awaits, found with ``ast``.

*Writes* are the names a block binds at its top level: assignments (also augmented,
annotated and ``:=``), ``for``/``with``/``except`` targets, imports, ``def``, ``class``,
``del``, match captures, and ``x.attr = ...`` / ``x[k] = ...`` which change ``x``::

    cfg.retries = 3      # writes cfg
    rows[0] = header     # writes rows

*Reads* are the names a block takes from outside: loaded before the block binds them,
or loaded inside a function body that does not bind them itself. Names bound only
inside a function, lambda or comprehension stay local to it::

    squares = [n * n for n in data]    # reads data, writes squares; n is local
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass

__all__ = ["BlockInfo", "analyse_block", "parse_block"]

_BUILTINS = frozenset(dir(builtins))
_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


@dataclass(frozen=True)
class BlockInfo:
    """What one block takes from and gives to the namespace."""

    reads: frozenset[str]
    writes: frozenset[str]
    deletes: frozenset[str]
    is_async: bool
    has_result: bool


def parse_block(code: str, filename: str = "<block>") -> ast.Module:
    """Parse a block, allowing top-level ``await``/``async for``/``async with``."""
    tree = compile(code, filename, "exec", flags=_FLAGS, dont_inherit=True)
    assert isinstance(tree, ast.Module)
    return tree


def analyse_block(tree: ast.Module) -> BlockInfo:
    """Find a parsed block's reads, writes and deletes, and whether it awaits."""
    v = _Visitor()
    for stmt in tree.body:
        v.visit(stmt)
    # Builtins are not reads: no task provides them. (A task that rebinds a builtin
    # name still *writes* it, so a conflict over it is still caught.)
    reads = frozenset(v.all_reads - _BUILTINS)
    has_result = bool(tree.body) and isinstance(tree.body[-1], ast.Expr)
    return BlockInfo(
        reads=reads,
        writes=frozenset(v.writes),
        deletes=frozenset(v.deletes),
        is_async=v.awaits,
        has_result=has_result,
    )


class _Visitor(ast.NodeVisitor):
    """Walks the top level of a block; nested scopes are handed to _Scope."""

    def __init__(self) -> None:
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.deletes: set[str] = set()
        self.awaits = False
        # Loads inside nested scopes, resolved at the end of the block: a function
        # may be called after the block binds a name, so only names the block never
        # binds count as reads.
        self._deferred: set[str] = set()

    # -- names -------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if node.id not in self.writes:
                self.reads.add(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.writes.add(node.id)
        else:  # Del
            if node.id not in self.writes:
                self.reads.add(node.id)
            self.writes.add(node.id)
            self.deletes.add(node.id)

    def _store_target(self, target: ast.expr) -> None:
        """Attribute/subscript stores change the object bound to the base name."""
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            base = target
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                if isinstance(base, ast.Subscript):
                    self.visit(base.slice)
                base = base.value
            if isinstance(base, ast.Name):
                if base.id not in self.writes:
                    self.reads.add(base.id)
                self.writes.add(base.id)
            else:
                self.visit(base)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._store_target(elt)
        elif isinstance(target, ast.Starred):
            self._store_target(target.value)
        else:
            self.visit(target)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._store_target(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            # x += 1 reads x before writing it
            if node.target.id not in self.writes:
                self.reads.add(node.target.id)
            self.writes.add(node.target.id)
        else:
            self._store_target(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._store_target(node.target)
        self.visit(node.annotation)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        if isinstance(node, ast.AsyncFor):
            self.awaits = True
        self.visit(node.iter)
        self._store_target(node.target)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        if isinstance(node, ast.AsyncWith):
            self.awaits = True
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._store_target(item.optional_vars)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.writes.add(node.name)
        for stmt in node.body:
            self.visit(stmt)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                continue
            self.writes.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.writes.add(node.target.id)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self.writes.add(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.writes.add(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self.generic_visit(node)
        if node.rest:
            self.writes.add(node.rest)

    def visit_Await(self, node: ast.Await) -> None:
        self.awaits = True
        self.generic_visit(node)

    # -- nested scopes -----------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for deco in node.decorator_list:
            self.visit(deco)
        self._visit_arguments(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self.writes.add(node.name)
        self._nested(node.body, _arg_names(node.args))

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_arguments(node.args)
        self._nested([node.body], _arg_names(node.args))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self.writes.add(node.name)
        self._nested(node.body, set())

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        # The first iterable is evaluated in the enclosing scope; the rest is local.
        first = node.generators[0]
        self.visit(first.iter)
        if any(g.is_async for g in node.generators):
            self.awaits = True
        scope = _Scope(set())
        for i, gen in enumerate(node.generators):
            if i:
                scope.visit(gen.iter)
            scope.bind_target(gen.target)
            for cond in gen.ifs:
                scope.visit(cond)
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for elt in elts:
            scope.visit(elt)
        self._absorb(scope)
        # A comprehension at top level may await: ``[await f(x) for x in xs]``.
        self.awaits = self.awaits or scope.awaits

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def _visit_arguments(self, args: ast.arguments) -> None:
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)

    def _nested(self, body: list[ast.stmt] | list[ast.expr], params: set[str]) -> None:
        scope = _Scope(params)
        for node in body:
            scope.visit(node)
        self._absorb(scope)

    def _absorb(self, scope: _Scope) -> None:
        self._deferred |= scope.free()
        # ``global x`` in a function makes its assignments to x writes of the block.
        self.writes |= scope.globals_written

    @property
    def all_reads(self) -> set[str]:
        return self.reads | (self._deferred - self.writes)


class _Scope(ast.NodeVisitor):
    """A function, lambda, class or comprehension body: which names it leaves free."""

    def __init__(self, params: set[str]) -> None:
        self.bound: set[str] = set(params)
        self.loads: set[str] = set()
        self.declared_global: set[str] = set()
        self.globals_written: set[str] = set()
        self.awaits = False  # only meaningful for a comprehension scope
        self._children: list[_Scope] = []

    def free(self) -> set[str]:
        names = self.loads - self.bound
        for child in self._children:
            names |= child.free() - self.bound
        return names

    def bind_target(self, target: ast.expr) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                if isinstance(n.ctx, ast.Store):
                    self._bind(n.id)
                else:
                    self.loads.add(n.id)

    def _bind(self, name: str) -> None:
        if name in self.declared_global:
            self.globals_written.add(name)
        else:
            self.bound.add(name)

    def visit_Global(self, node: ast.Global) -> None:
        self.declared_global.update(node.names)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads.add(node.id)
        else:
            self._bind(node.id)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self._bind(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._bind(node.name)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in [*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d)]:
            self.visit(expr)
        self._bind(node.name)
        child = _Scope(_arg_names(node.args))
        for stmt in node.body:
            child.visit(stmt)
        self._children.append(child)
        self.globals_written |= child.globals_written

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self._bind(node.name)
        child = _Scope(set())
        for stmt in node.body:
            child.visit(stmt)
        self._children.append(child)
        self.globals_written |= child.globals_written

    def visit_Lambda(self, node: ast.Lambda) -> None:
        child = _Scope(_arg_names(node.args))
        child.visit(node.body)
        self._children.append(child)

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        child = _Scope(set())
        for gen in node.generators:
            child.visit(gen.iter)
            child.bind_target(gen.target)
            for cond in gen.ifs:
                child.visit(cond)
            if gen.is_async:
                child.awaits = True
        for elt in [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]:
            child.visit(elt)
        self._children.append(child)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target.id)

    def visit_Await(self, node: ast.Await) -> None:
        self.awaits = True
        self.generic_visit(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self.awaits = True
        self.generic_visit(node)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        self.awaits = True
        self.generic_visit(node)


def _arg_names(args: ast.arguments) -> set[str]:
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    return names
