"""In-memory stand-in for the service's SQL database.

Every query is charged a simulated network round trip, because that cost is
what makes the access patterns in ``repository.py`` matter.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]

# Only the small SQL subset the repositories use is understood.
_SELECT = re.compile(
    r"^SELECT \* FROM (?P<table>\w+)(?: WHERE (?P<column>\w+) (?:=|IN) .+)?$", re.IGNORECASE
)
_INSERT = re.compile(r"^INSERT INTO (?P<table>\w+) \((?P<columns>[\w, ]+)\) VALUES", re.IGNORECASE)


@dataclass
class QueryStats:
    queries: int = 0
    seconds: float = 0.0


class FakeDatabase:
    """Tables are lists of dict rows; `?` parameters are matched by equality."""

    def __init__(self, tables: dict[str, list[Row]] | None = None, round_trip: float = 0.002) -> None:
        self._tables = {name: list(rows) for name, rows in (tables or {}).items()}
        self.round_trip = round_trip
        self.stats = QueryStats()

    def fetch_all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        self._round_trip()
        match = _SELECT.match(sql.strip())
        if match is None:
            raise ValueError(f"unsupported query: {sql!r}")
        rows = self._tables.get(match["table"], [])
        if match["column"] is None:
            return [dict(row) for row in rows]
        # "col = ?" and "col IN (?)" both reduce to membership in the parameters.
        wanted = set(params)
        return [dict(row) for row in rows if row.get(match["column"]) in wanted]

    def fetch_one(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        rows = self.fetch_all(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        self._round_trip()
        match = _INSERT.match(sql.strip())
        if match is None:
            raise ValueError(f"unsupported statement: {sql!r}")
        columns = [column.strip() for column in match["columns"].split(",")]
        self._tables.setdefault(match["table"], []).append(dict(zip(columns, params)))
        return 1

    def _round_trip(self) -> None:
        started = time.perf_counter()
        time.sleep(self.round_trip)
        self.stats.queries += 1
        self.stats.seconds += time.perf_counter() - started


def demo_database(customers: int = 20, orders_per_customer: int = 5) -> FakeDatabase:
    """A populated database: customers, orders, order items, products and stock."""
    products = [
        {"id": pid, "name": f"Product {pid}", "price": 5.0 + pid, "category": "tools" if pid % 2 else "garden"}
        for pid in range(1, 11)
    ]
    inventory = [{"product_id": p["id"], "quantity": (p["id"] * 7) % 13} for p in products]
    orders: list[Row] = []
    items: list[Row] = []
    for customer_id in range(1, customers + 1):
        for n in range(orders_per_customer):
            order_id = customer_id * 100 + n
            orders.append({"id": order_id, "customer_id": customer_id, "status": "shipped"})
            items.append({"order_id": order_id, "product_id": 1 + order_id % 10, "quantity": 1 + n})
    return FakeDatabase(
        {
            "customers": [{"id": c, "name": f"Customer {c}"} for c in range(1, customers + 1)],
            "orders": orders,
            "order_items": items,
            "products": products,
            "inventory": inventory,
        }
    )
