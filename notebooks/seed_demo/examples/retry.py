"""Retrying transient upstream failures with exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .exceptions import ExternalServiceError, UpstreamRateLimited

T = TypeVar("T")


def retry_with_backoff(
    call: Callable[[], T],
    *,
    attempts: int = 4,
    base_delay: float = 0.1,
    max_delay: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `call` until it succeeds; wait up to base_delay * 2**attempt between tries."""
    for attempt in range(attempts):
        try:
            return call()
        except ExternalServiceError as exc:
            if not exc.retryable or attempt == attempts - 1:
                raise
            # Full jitter: random waits keep many clients from retrying in lockstep.
            delay = random.uniform(0, min(max_delay, base_delay * 2**attempt))
            if isinstance(exc, UpstreamRateLimited) and exc.retry_after:
                delay = max(delay, exc.retry_after)  # never retry earlier than the upstream asked
            sleep(delay)
    raise AssertionError("unreachable: the last attempt either returns or raises")


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 4,
    base_delay: float = 0.1,
    max_delay: float = 5.0,
) -> T:
    """Async variant: the delay doubles after every failure, capped at `max_delay`."""
    delay = base_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except ExternalServiceError as exc:
            if not exc.retryable or attempt >= attempts:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


def wait_until_ready(probe: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.5) -> bool:
    """Poll a readiness probe at a fixed interval (polling, not backoff: the wait never grows)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return True
        except ConnectionError:
            pass  # the dependency is still starting up
        time.sleep(interval)
    return False
