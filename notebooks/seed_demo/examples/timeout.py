"""Timeouts and deadlines: bound how long a call to a dependency may take."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from .exceptions import UpstreamTimeout

T = TypeVar("T")


async def with_timeout(awaitable: Awaitable[T], seconds: float, *, operation: str) -> T:
    """Await `awaitable` for at most `seconds`, turning a timeout into a service error."""
    try:
        return await asyncio.wait_for(awaitable, timeout=seconds)
    except asyncio.TimeoutError as exc:
        raise UpstreamTimeout(f"{operation} timed out after {seconds}s", context={"operation": operation}) from exc


class Deadline:
    """A time budget for a whole request, shared by every downstream call it makes."""

    def __init__(self, seconds: float) -> None:
        self._expires_at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._expires_at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() == 0.0

    async def run(self, awaitable: Awaitable[T], *, operation: str) -> T:
        # Each call gets what is left of the budget, not a fresh timeout of its own.
        if self.expired():
            raise UpstreamTimeout(f"no time left for {operation}", context={"operation": operation})
        return await with_timeout(awaitable, self.remaining(), operation=operation)
