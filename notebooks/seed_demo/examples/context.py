"""Propagating error context: chained causes and a request id that follows the request."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from .exceptions import ExternalServiceError, NotFoundError, ServiceError, ValidationError, error_response

logger = logging.getLogger("orders")
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class HttpClient(Protocol):
    def get(self, path: str) -> Mapping[str, Any]: ...


def fetch_customer(client: HttpClient, customer_id: int) -> Mapping[str, Any]:
    try:
        return client.get(f"/customers/{customer_id}")
    except (ConnectionError, TimeoutError) as exc:
        # `from exc` keeps the network error as __cause__, so the traceback shows both.
        raise ExternalServiceError(
            "customer service unreachable",
            context={"customer_id": customer_id, "request_id": request_id.get()},
        ) from exc


def parse_amount(raw: str) -> Decimal:
    try:
        return Decimal(raw)
    except InvalidOperation as exc:
        raise ValidationError(f"not a decimal amount: {raw!r}", context={"field": "amount"}) from exc


def lookup_sku(catalog: Mapping[str, str], sku: str) -> str:
    try:
        return catalog[sku]
    except KeyError:
        # `from None`: the KeyError is an implementation detail, not context worth keeping.
        raise NotFoundError(f"unknown SKU {sku}", context={"sku": sku}) from None


def handle(headers: Mapping[str, str], handler: Callable[[], Any]) -> tuple[int, Any]:
    """Run `handler` with the caller's request id bound, turning service errors into responses."""
    token = request_id.set(headers.get("X-Request-ID") or uuid.uuid4().hex)
    try:
        return 200, handler()
    except ServiceError as exc:
        logger.warning("request %s failed: %s", request_id.get(), exc.code, exc_info=exc)
        status, body = error_response(exc)
        return status, {**body, "request_id": request_id.get()}
    finally:
        request_id.reset(token)
