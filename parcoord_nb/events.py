"""What happened during a run, as small frozen records, and who gets told.

The engine calls every observer with each event, on the event loop's thread, in the
order things happened. ``t`` is seconds since the run started. An observer must be
quick and must not raise (an observer that raises is reported once and dropped, so
a broken view never breaks a run). For many small tasks, use the run object's live
state (``run.tasks[...]``) at a steady rate instead of reacting to every event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "AttemptFailed",
    "Event",
    "Observer",
    "RunFinished",
    "RunStarted",
    "TaskCancelled",
    "TaskFailed",
    "TaskFinished",
    "TaskProgress",
    "TaskQueued",
    "TaskSkipped",
    "TaskStarted",
    "TaskTimedOut",
]


@dataclass(frozen=True, slots=True)
class Event:
    t: float


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    run_id: str
    tasks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TaskQueued(Event):
    task: str


@dataclass(frozen=True, slots=True)
class TaskStarted(Event):
    task: str
    attempt: int
    item: int | None = None  # index of a fan-out subtask


@dataclass(frozen=True, slots=True)
class TaskProgress(Event):
    task: str
    done: float
    total: float | None
    message: str | None


@dataclass(frozen=True, slots=True)
class AttemptFailed(Event):
    task: str
    attempt: int
    error: BaseException
    retry_in: float  # seconds until the next attempt
    item: int | None = None


@dataclass(frozen=True, slots=True)
class TaskFinished(Event):
    task: str
    duration: float


@dataclass(frozen=True, slots=True)
class TaskFailed(Event):
    task: str
    error: BaseException


@dataclass(frozen=True, slots=True)
class TaskTimedOut(Event):
    task: str
    timeout: float
    hard: bool  # True: the coroutine was cancelled; False: a thread was left to finish


@dataclass(frozen=True, slots=True)
class TaskSkipped(Event):
    task: str
    reason: str


@dataclass(frozen=True, slots=True)
class TaskCancelled(Event):
    task: str
    reason: str


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    status: str


Observer: TypeAlias = Callable[[Event], Any]
