"""Run the named task blocks of a notebook cell concurrently, and see how it went.

In a notebook::

    %load_ext parcoord_nb

    %%parallel
    # task fetch: Download the index
    index = await client.get(url)
    # task scan uses=files
    findings = scan("src/")

From Python: :func:`run`, :func:`run_async` and :func:`plan` take the same cell text.
"""

from __future__ import annotations

from typing import Any

from .api import last_run, run, run_async, start
from .capture import cancelled, progress
from .errors import (
    Cancelled,
    CellSyntaxError,
    ConflictError,
    CycleError,
    DuplicateTaskError,
    OptionError,
    ParcoordError,
    PlanError,
    RunError,
    UnknownTaskError,
)
from .plan import Plan, plan
from .run import Run, Summary, TaskRecord

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "CellSyntaxError",
    "ConflictError",
    "CycleError",
    "DuplicateTaskError",
    "OptionError",
    "ParcoordError",
    "Plan",
    "PlanError",
    "Run",
    "RunError",
    "Summary",
    "TaskRecord",
    "UnknownTaskError",
    "cancelled",
    "last_run",
    "load_ipython_extension",
    "plan",
    "progress",
    "run",
    "run_async",
    "start",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext parcoord_nb``: register ``%%parallel``."""
    from .magic import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magic import unload

    unload(ipython)
