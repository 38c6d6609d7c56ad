"""The exceptions parcoord_nb raises, and what each one means.

::

    ParcoordError                  base of everything raised here
    ├── PlanError                  the cell is wrong; nothing ran
    │   ├── CellSyntaxError        a header or a block does not parse
    │   ├── OptionError            an unknown or malformed option (header or magic line)
    │   ├── DuplicateTaskError     two headers use one name
    │   ├── UnknownTaskError       ``after=`` names a task that does not exist
    │   ├── ConflictError          two unordered tasks assign the same name
    │   └── CycleError             tasks depend on each other in a loop
    ├── RunError                   the run happened and some tasks did not succeed
    └── Cancelled                  raised inside a task whose run was cancelled
                                   (a BaseException, so ``except Exception`` in user
                                   code cannot swallow it)

Plan errors carry ``.task`` and ``.line`` (cell line numbers count the ``%%parallel``
line as line 1) and, where a variable is at fault, ``.names``. Every exception here
pickles, because the dask backend sends them across processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "Cancelled",
    "CellSyntaxError",
    "ConflictError",
    "CycleError",
    "DuplicateTaskError",
    "OptionError",
    "ParcoordError",
    "PlanError",
    "RunError",
        "UnknownTaskError",
]


class ParcoordError(Exception):
    """Base class of the errors parcoord_nb raises."""


class PlanError(ParcoordError):
    """The cell cannot be run as written: nothing was run."""

    def __init__(
        self,
        message: str,
        *,
        task: str | None = None,
        line: int | None = None,
        names: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.task = task
        self.line = line
        self.names = tuple(names)

    def __reduce__(self) -> Any:
        return _rebuild, (type(self), self.message, self.__dict__)

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        # In a notebook the message says all there is to say: where, what, and the fix.
        # (IPython calls this instead of printing a traceback into parcoord_nb's code.)
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines())]


def _rebuild(cls: type, message: str, state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    Exception.__init__(obj, message)
    obj.__dict__.update(state)
    return obj


class CellSyntaxError(PlanError):
    """A task header or the code of a block is not valid."""

    def __init__(
        self,
        message: str,
        *,
        task: str | None = None,
        line: int | None = None,
        offset: int | None = None,
        text: str | None = None,
    ) -> None:
        super().__init__(message, task=task, line=line)
        self.offset = offset
        self.text = text

    def __str__(self) -> str:
        if not self.text:
            return self.message
        caret = ""
        if self.offset:
            caret = "\n    " + " " * (self.offset - 1) + "^"
        return f"{self.message}\n    {self.text.rstrip()}{caret}"


class OptionError(PlanError):
    """An option in a task header or on the ``%%parallel`` line is unknown or malformed."""


class DuplicateTaskError(PlanError):
    """Two task headers use the same name."""


class UnknownTaskError(PlanError):
    """``after=`` names a task that the cell does not define."""


class ConflictError(PlanError):
    """Two tasks that may run at the same time assign the same variable."""


class CycleError(PlanError):
    """The tasks' dependencies form a loop, so no order can satisfy them."""

    def __init__(
        self, message: str, *, path: Sequence[str], names: Sequence[str] = (), line: int | None = None
    ) -> None:
        super().__init__(message, task=path[0] if path else None, line=line, names=names)
        self.path = tuple(path)


class RunError(ParcoordError):
    """Some tasks of a run failed, timed out or were cancelled.

    The run object (``.run``) holds every result, error and timing; this error only
    makes the cell stop so that Run All does not go on with missing values.
    """

    def __init__(self, message: str, *, failed: Sequence[str] = (), run: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.failed = tuple(failed)
        self.run = run

    def __reduce__(self) -> Any:
        return _rebuild, (type(self), self.message, {**self.__dict__, "run": None})

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback: the report above the
        # error already shows each task's traceback, so one line is enough here.
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self.message}"]


class Cancelled(BaseException):
    """Raised in a task by :func:`parcoord_nb.progress` once its run is cancelled."""
