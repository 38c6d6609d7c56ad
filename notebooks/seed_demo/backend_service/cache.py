"""A small TTL cache used in front of slow repository reads."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class TTLCache:
    """Entries expire `ttl` seconds after they were stored."""

    def __init__(self, ttl: float = 60.0, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            self._entries.pop(key, None)
            self.misses += 1
            return default
        self.hits += 1
        return entry[1]

    def set(self, key: Hashable, value: Any) -> None:
        if len(self._entries) >= self.max_entries:
            self._evict_expired()
        if len(self._entries) >= self.max_entries:
            # Still full: drop the oldest insertion; dicts keep insertion order.
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (self._clock() + self.ttl, value)

    def get_or_set(self, key: Hashable, load: Callable[[], T]) -> T:
        sentinel = object()
        value = self.get(key, sentinel)
        if value is sentinel:
            value = load()
            self.set(key, value)
        return value

    def invalidate(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def _evict_expired(self) -> None:
        now = self._clock()
        expired = [key for key, (expires_at, _) in self._entries.items() if expires_at <= now]
        for key in expired:
            del self._entries[key]


def memoize(cache: TTLCache) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Cache a function's results in `cache`, keyed by its positional arguments."""

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def wrapper(*args: Hashable) -> T:
            return cache.get_or_set((func.__qualname__, args), lambda: func(*args))

        return wrapper

    return decorate
