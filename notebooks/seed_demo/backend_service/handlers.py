"""HTTP handlers of the order service, on a tiny dependency-free router."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import TTLCache
from .db import demo_database
from .repository import OrderRepository, ProductRepository
from .serializers import EventFormatError, encode_reply, parse_order_event

EXPORT_DIR = Path("/var/lib/orders/exports")
POLL_INTERVAL = 0.25
POLL_ATTEMPTS = 8


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return encode_reply(self.status, self.body)


Handler = Callable[[Request], Awaitable[Response]]
ROUTES: dict[tuple[str, str], Handler] = {}


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES[(method, pattern)] = handler
        return handler

    return register


_db = demo_database()
orders = OrderRepository(_db)
products = ProductRepository(_db, TTLCache(ttl=30))
_finished_exports: set[str] = set()


@route("GET", "/customers/{id}/orders")
async def customer_orders(request: Request) -> Response:
    # Repository calls are synchronous; run them in a worker thread to keep the loop free.
    history = await asyncio.to_thread(orders.customer_orders, int(request.params["id"]))
    return Response(200, history)


@route("GET", "/products/{id}")
async def product_page(request: Request) -> Response:
    try:
        page = await asyncio.to_thread(products.product_page, int(request.params["id"]))
    except LookupError:
        return Response(404, {"error": "product not found"})
    return Response(200, page, headers={"Cache-Control": "max-age=30"})


@route("POST", "/events")
async def ingest_event(request: Request) -> Response:
    try:
        event = parse_order_event(request.body)
    except (EventFormatError, KeyError, ValueError) as exc:
        return Response(400, {"error": str(exc)})
    return Response(202, {"accepted": event.order_id})


@route("GET", "/exports/{job}")
async def export_status(request: Request) -> Response:
    job = request.params["job"]
    for _ in range(POLL_ATTEMPTS):
        if job in _finished_exports:
            return Response(200, {"job": job, "state": "done"})
        time.sleep(POLL_INTERVAL)  # planted: blocking_in_async
    return Response(202, {"job": job, "state": "running"})


@route("GET", "/exports/{job}/download")
async def export_download(request: Request) -> Response:
    def read_export() -> str:
        # Runs in a worker thread (see below), so plain blocking file I/O is fine.
        return (EXPORT_DIR / f"{request.params['job']}.csv").read_text(encoding="utf-8")

    try:
        text = await asyncio.to_thread(read_export)
    except FileNotFoundError:
        return Response(404, {"error": "export not found"})
    return Response(200, text, headers={"Content-Type": "text/csv"})


@route("GET", "/health")
async def health(request: Request) -> Response:
    await asyncio.sleep(0)  # yield once so a wedged event loop shows up as a slow probe
    return Response(200, {"status": "ok", "queries": _db.stats.queries})


async def dispatch(request: Request) -> Response:
    """Match `request.path` against the registered patterns and call the handler."""
    parts = request.path.strip("/").split("/")
    for (method, pattern), handler in ROUTES.items():
        names = pattern.strip("/").split("/")
        if method != request.method or len(names) != len(parts):
            continue
        if all(name.startswith("{") or name == part for name, part in zip(names, parts)):
            request.params.update({n.strip("{}"): p for n, p in zip(names, parts) if n.startswith("{")})
            return await handler(request)
    return Response(404, {"error": f"no route for {request.method} {request.path}"})
