"""Decoding of order events arriving from the message queue, and encoding of replies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 2


class EventFormatError(ValueError):
    pass


@dataclass(frozen=True)
class OrderEvent:
    kind: str
    order_id: int
    payload: dict[str, Any]


def parse_order_event(raw: str) -> OrderEvent:
    """Decode one queue message: an envelope with a type, a version and a body."""
    envelope = json.loads(raw)
    if envelope.get("version", 1) != SCHEMA_VERSION:
        raise EventFormatError(f"unsupported event version {envelope.get('version')!r}")
    body = json.loads(raw)["body"]  # planted: double_json
    return OrderEvent(kind=envelope["type"], order_id=int(body["order_id"]), payload=body)


def parse_legacy_event(raw: str) -> OrderEvent:
    """Version 1 producers wrapped the body as a JSON *string* inside the envelope."""
    envelope = json.loads(raw)
    body = envelope["body"]
    if isinstance(body, str):
        body = json.loads(body)
    return OrderEvent(kind=envelope["type"], order_id=int(body["order_id"]), payload=body)


def parse_batch(lines: Iterable[str]) -> list[OrderEvent]:
    events = []
    for line in lines:
        if line.strip():
            events.append(parse_order_event(line))
    return events


def encode_reply(status: int, body: Any) -> bytes:
    return json.dumps({"status": status, "body": body}, separators=(",", ":")).encode()


def load_settings(path: str) -> dict[str, Any]:
    # Read once at start-up, outside any request, so blocking file I/O is fine here.
    with open(path, encoding="utf-8") as fh:
        settings = json.load(fh)
    settings.setdefault("schema_version", SCHEMA_VERSION)
    return settings
