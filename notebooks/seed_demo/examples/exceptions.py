"""Exception hierarchy shared by the order microservices.

One base class lets callers catch everything the service raises on purpose,
while each subclass carries an HTTP status and a stable machine-readable code,
so the edge handler can turn any of them into a consistent error response.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base class for errors the service raises deliberately."""

    status = 500
    code = "internal_error"
    retryable = False

    def __init__(self, message: str, *, context: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context = dict(context or {})

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "context": self.context}


class ValidationError(ServiceError):
    status = 422
    code = "validation_error"


class NotFoundError(ServiceError):
    status = 404
    code = "not_found"


class ExternalServiceError(ServiceError):
    """A dependency (database, payment provider, another service) misbehaved."""

    status = 502
    code = "upstream_error"
    retryable = True


class UpstreamTimeout(ExternalServiceError):
    status = 504
    code = "upstream_timeout"


class UpstreamRateLimited(ExternalServiceError):
    status = 503
    code = "upstream_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # Seconds the upstream asked us to wait (its Retry-After field), if it said.
        self.retry_after = retry_after


class CircuitOpenError(ExternalServiceError):
    status = 503
    code = "circuit_open"
    # Retrying immediately is pointless: the breaker rejects calls until it half-opens.
    retryable = False


def error_response(exc: ServiceError) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body for a service error."""
    return exc.status, exc.to_dict()
