"""Per-task stdout/stderr, ``progress()`` and ``cancelled()``, kept apart with contextvars.

Concurrent tasks share ``sys.stdout``; ``with Output():`` cannot tell them apart (all
captures share the cell's message id). Instead, while a run is active, ``sys.stdout``
and ``sys.stderr`` are proxies that look up the current task in a ContextVar. Tasks
get their own context: coroutines copy it when created, worker threads run in a copy.
Writes outside any task go to the original stream unchanged.
"""

from __future__ import annotations

import contextvars
import io
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any, TextIO

from .errors import Cancelled

__all__ = ["CancelFlag", "DisplayLog", "OutputBuffer", "TaskScope", "cancelled", "current_scope", "progress"]

_current: contextvars.ContextVar[TaskScope | None] = contextvars.ContextVar("parcoord_task", default=None)

# How much of a task's output stays in memory; the rest spills to a temporary file,
# so a task that prints 100 MB costs disk, not kernel memory.
MEMORY_LIMIT = 1 << 20


class OutputBuffer:
    """Everything one task wrote to a stream, thread-safe, bounded in memory."""

    __slots__ = ("_chunks", "_size", "_file", "_lock", "_line", "last_line", "total")

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._size = 0
        self._file: Any = None
        self._lock = threading.Lock()
        self._line = ""  # the line being written (print() writes "a", " ", "b", "\n" separately)
        self.last_line = ""  # the line being written, or else the last non-blank one
        self.total = 0  # characters written

    def write(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            self.total += len(text)
            if self._file is not None:
                self._file.write(text)
            else:
                self._chunks.append(text)
                self._size += len(text)
                if self._size > MEMORY_LIMIT:
                    self._spill()
            self._track_line(text[-4000:] if len(text) > 4000 else text)

    def _track_line(self, text: str) -> None:
        lines = (self._line + text).split("\n")
        # "\r" redraws a line in place (progress bars): what came before it is gone.
        self._line = lines[-1].rsplit("\r", 1)[-1][-500:]
        for line in reversed(lines):
            shown = next((part for part in reversed(line.split("\r")) if part.strip()), "")
            if shown:
                self.last_line = shown[-500:]
                return

    def _spill(self) -> None:
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        self._file.write("".join(self._chunks))
        self._chunks = []

    def getvalue(self) -> str:
        with self._lock:
            if self._file is None:
                return "".join(self._chunks)
            self._file.flush()
            self._file.seek(0)
            text = self._file.read()
            self._file.seek(0, os.SEEK_END)
            return text

    def tail(self, limit: int) -> str:
        """The last ``limit`` characters, cheaply, for previews."""
        with self._lock:
            if self._file is None:
                out: list[str] = []
                n = 0
                for chunk in reversed(self._chunks):
                    out.append(chunk)
                    n += len(chunk)
                    if n >= limit:
                        break
                return "".join(reversed(out))[-limit:]
            self._file.flush()
            end = self._file.seek(0, os.SEEK_END)
            # Text-mode files only seek to tell() cookies; read the last stretch bytewise.
            with open(self._file.fileno(), "rb", closefd=False) as raw:
                raw.seek(max(0, end - 4 * limit))
                data = raw.read().decode("utf-8", "replace")
            self._file.seek(0, os.SEEK_END)
            return data[-limit:]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()


class DisplayLog:
    """Rich ``display()`` outputs of one task, in order, as notebook output dicts.

    A task's ``display()`` must not land in the cell (concurrent tasks would mix, and a
    background run's cell may be gone), so the notebook's display publisher hands it
    here while a task scope is current. Bounded: past ``MAX_DISPLAYS`` the oldest go,
    so a task that displays in a loop cannot grow the kernel or the view without limit.
    ``display_id`` updates replace the output they name, as in a cell.
    """

    MAX_DISPLAYS = 50

    __slots__ = ("_items", "_lock", "dropped", "version")

    def __init__(self) -> None:
        self._items: list[tuple[str | None, dict[str, Any]]] = []  # (display_id, output)
        self._lock = threading.Lock()
        self.dropped = 0  # outputs pushed out by the bound
        self.version = 0  # bumped on every change, so views can tell cheaply

    def publish(self, data: dict[str, Any], metadata: dict[str, Any] | None = None, *,
                transient: dict[str, Any] | None = None, update: bool = False) -> None:
        display_id = (transient or {}).get("display_id")
        out: dict[str, Any] = {"output_type": "display_data", "data": _jsonable_bundle(data),
                               "metadata": dict(metadata or {})}
        with self._lock:
            self.version += 1
            if display_id is not None:
                hits = [i for i, (did, _) in enumerate(self._items) if did == display_id]
                for i in hits:
                    self._items[i] = (display_id, out)
                if hits or update:  # an update of an output we no longer hold is dropped
                    return
            self._items.append((display_id, out))
            if len(self._items) > self.MAX_DISPLAYS:
                del self._items[0]
                self.dropped += 1

    def clear(self) -> None:
        with self._lock:
            self.version += 1
            self._items.clear()

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The outputs, as ``display_data`` dicts a notebook or an Output widget can hold."""
        with self._lock:
            return [out for _, out in self._items]

    def __len__(self) -> int:
        return len(self._items)


def _jsonable_bundle(data: dict[str, Any]) -> dict[str, Any]:
    # Formatters return bytes for images; notebook outputs hold them as base64 text.
    import base64

    out: dict[str, Any] = {}
    for mime, value in data.items():
        if isinstance(value, (bytes, bytearray)):
            value = base64.b64encode(value).decode("ascii")
        out[mime] = value
    return out


class CancelFlag:
    """A task's cancel flag: ``threading.Event``'s interface at a fraction of its cost.

    Every attempt (every fan-out item) gets one, and an Event builds a Condition and
    a lock each time: 2.7 µs and seven tracked objects, more than a trivial item's
    whole budget. Setting and reading a bool is atomic under the GIL; the Event behind
    ``wait()`` is only made for code that blocks on the flag.
    """

    __slots__ = ("_set", "_event")

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        event = self._event
        if event is not None:
            event.set()

    def clear(self) -> None:
        self._set = False
        event = self._event
        if event is not None:
            event.clear()

    def wait(self, timeout: float | None = None) -> bool:
        if self._event is None:
            self._event = threading.Event()
        # Checked after the Event exists: a set() in between either saw it or set _set first.
        if self._set:
            self._event.set()
            return True
        return self._event.wait(timeout)


class TaskScope:
    """What a running task's code can reach through the context: output, progress, cancel."""

    __slots__ = ("task", "item", "stdout", "stderr", "cancel_event", "on_progress", "progress", "displays")

    def __init__(
        self,
        task: str,
        stdout: OutputBuffer,
        stderr: OutputBuffer,
        cancel_event: CancelFlag | threading.Event,
        on_progress: Callable[[float, float | None, str | None], None] | None = None,
        item: int | None = None,
        displays: DisplayLog | None = None,
    ) -> None:
        self.task = task
        self.displays = displays
        self.item = item
        self.stdout = stdout
        self.stderr = stderr
        self.cancel_event = cancel_event
        self.on_progress = on_progress
        self.progress: tuple[float, float | None, str | None] | None = None


def current_scope() -> TaskScope | None:
    return _current.get()


def enter_scope(scope: TaskScope) -> contextvars.Token[TaskScope | None]:
    return _current.set(scope)


def progress(done: float, total: float | None = None, message: str | None = None) -> None:
    """Report how far the current task has got; call it from anywhere inside a task.

    ``done`` out of ``total`` (when known), with an optional short message. Outside a
    task it does nothing. In a task whose run was cancelled it raises
    :class:`~parcoord_nb.errors.Cancelled`, so long loops that report progress stop.
    """
    scope = _current.get()
    if scope is None:
        return
    if scope.cancel_event.is_set():
        raise Cancelled(f"task '{scope.task}' was cancelled")
    scope.progress = (done, total, message)
    if scope.on_progress is not None:
        scope.on_progress(done, total, message)


def cancelled() -> bool:
    """True once the current task's run is cancelled or its timeout passed.

    Blocking code in a worker thread cannot be stopped from outside; check this in its
    loops and return early.
    """
    scope = _current.get()
    return scope is not None and scope.cancel_event.is_set()


class _StreamProxy(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: a task's writes go to its buffer."""

    def __init__(self, original: TextIO, which: str) -> None:
        self._original = original
        self._which = which

    def write(self, text: str) -> int:
        scope = _current.get()
        if scope is None:
            return self._original.write(text)
        getattr(scope, self._which).write(text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self._original.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


_install_lock = threading.Lock()
_installed = 0
_saved: tuple[TextIO, TextIO] | None = None


def install() -> None:
    """Route task output while at least one run is active (reference counted)."""
    global _installed, _saved
    with _install_lock:
        _installed += 1
        if _installed == 1:
            _saved = (sys.stdout, sys.stderr)
            sys.stdout = _StreamProxy(sys.stdout, "stdout")  # type: ignore[assignment]
            sys.stderr = _StreamProxy(sys.stderr, "stderr")  # type: ignore[assignment]


def uninstall() -> None:
    global _installed, _saved
    with _install_lock:
        _installed -= 1
        if _installed == 0 and _saved is not None:
            # Only undo our own proxies: if someone replaced them since, leave theirs.
            if isinstance(sys.stdout, _StreamProxy):
                sys.stdout = _saved[0]
            if isinstance(sys.stderr, _StreamProxy):
                sys.stderr = _saved[1]
            _saved = None
