"""Where blocks run. The engine decides *when*; a backend decides *where*.

A backend runs one attempt of one block (:class:`Unit`) and returns its result, with
the names the block bound left in ``unit.namespace``. The local backend runs
coroutines on the current event loop and blocking blocks in daemon worker threads;
the dask backend (``parcoord_nb[dask]``) ships blocks to a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..capture import TaskScope
from ..plan import PlannedTask

__all__ = ["Backend", "Unit", "get_backend"]


@dataclass(slots=True, eq=False)
class Unit:
    """One attempt of one block: what to run, in which namespace, for which task."""

    task: PlannedTask
    namespace: dict[str, Any]
    scope: TaskScope
    attempt: int
    item: int | None = None
    worker: str | None = None  # set by the backend: where it ran
    abandoned: bool = False  # set by the backend: left running after cancel/timeout
    # Set by a backend that knows when the block really ran (a dask worker's clock,
    # epoch seconds); the engine then draws the attempt from start to end of the work,
    # not from submission to the arrival of the result.
    started: float | None = None
    ended: float | None = None


class Backend(Protocol):
    name: str
    #: True when a timeout really stops a blocking block (False: the thread runs on).
    hard_thread_timeouts: bool

    async def execute(self, unit: Unit) -> Any:
        """Run one attempt; return the block's result (the value of its last expression)."""
        ...

    def close(self) -> None: ...


def get_backend(name: str, **options: Any) -> Backend:
    if name == "local":
        from .local import LocalBackend

        return LocalBackend()
    if name == "dask":
        try:
            from .dask import DaskBackend
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "--backend dask needs dask.distributed: pip install 'parcoord_nb[dask]'"
            ) from e
        return DaskBackend(**options)
    raise ValueError(f"unknown backend {name!r}: use 'local' or 'dask'")
