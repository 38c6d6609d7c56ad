"""A circuit breaker: stop calling a dependency that keeps failing, then probe it again."""

from __future__ import annotations

import enum
import functools
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from .exceptions import CircuitOpenError, ValidationError

P = ParamSpec("P")
T = TypeVar("T")


class CircuitState(enum.Enum):
    CLOSED = "closed"  # calls flow normally
    OPEN = "open"  # calls are rejected without touching the dependency
    HALF_OPEN = "half_open"  # one trial call decides whether to close again


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; half-opens after `reset_timeout` seconds."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        # Client mistakes say nothing about the dependency's health, so they never trip the breaker.
        ignored: tuple[type[BaseException], ...] = (ValidationError,),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.ignored = ignored
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failure_count = 0
        self._opened_at = 0.0

    @property
    def state(self) -> CircuitState:
        with self._lock:
            if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.reset_timeout:
                self._state = CircuitState.HALF_OPEN
            return self._state

    def call(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.state is CircuitState.OPEN:
            raise CircuitOpenError(f"circuit {self.name!r} is open", context={"breaker": self.name})
        try:
            result = func(*args, **kwargs)
        except self.ignored:
            raise
        except Exception:
            self._record_failure()
            raise
        self._record_success()
        return result

    def __call__(self, func: Callable[P, T]) -> Callable[P, T]:
        """Use the breaker as a decorator."""

        @functools.wraps(func)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call(func, *args, **kwargs)

        return guarded

    def _record_failure(self) -> None:
        with self._lock:
            self._failure_count += 1
            # A failed trial call re-opens at once; otherwise wait for the threshold.
            if self._state is CircuitState.HALF_OPEN or self._failure_count >= self.failure_threshold:
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()

    def _record_success(self) -> None:
        with self._lock:
            self._failure_count = 0
            self._state = CircuitState.CLOSED


payment_breaker = CircuitBreaker("payments", failure_threshold=3, reset_timeout=60.0)
