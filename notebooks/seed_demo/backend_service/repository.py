"""Data access for orders and products."""

from __future__ import annotations

from typing import Any

from .cache import TTLCache
from .db import FakeDatabase, Row

ORDERS_BY_CUSTOMER = "SELECT * FROM orders WHERE customer_id = ?"
ORDERS_BY_CUSTOMERS = "SELECT * FROM orders WHERE customer_id IN (?)"
ITEMS_BY_ORDER = "SELECT * FROM order_items WHERE order_id = ?"
ITEMS_BY_ORDERS = "SELECT * FROM order_items WHERE order_id IN (?)"
PRODUCT_BY_ID = "SELECT * FROM products WHERE id = ?"
PRODUCTS_BY_CATEGORY = "SELECT * FROM products WHERE category = ?"
STOCK_BY_PRODUCT = "SELECT * FROM inventory WHERE product_id = ?"
INSERT_ORDER = "INSERT INTO orders (id, customer_id, status) VALUES (?, ?, ?)"


class OrderRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def customer_orders(self, customer_id: int) -> list[Row]:
        """Order history page: all orders of one customer with their line items."""
        orders = self._db.fetch_all(ORDERS_BY_CUSTOMER, (customer_id,))
        for order in orders:
            order["items"] = self._db.fetch_all(ITEMS_BY_ORDER, (order["id"],))  # planted: n_plus_one
        return orders

    def orders_for_customers(self, customer_ids: list[int]) -> list[Row]:
        """Support dashboard: orders of several customers, items loaded in one batch."""
        orders = self._db.fetch_all(ORDERS_BY_CUSTOMERS, tuple(customer_ids))
        items = self._db.fetch_all(ITEMS_BY_ORDERS, tuple(order["id"] for order in orders))
        items_by_order: dict[int, list[Row]] = {}
        for item in items:
            items_by_order.setdefault(item["order_id"], []).append(item)
        for order in orders:
            order["items"] = items_by_order.get(order["id"], [])
        return orders

    def place_order(self, order_id: int, customer_id: int) -> None:
        self._db.execute(INSERT_ORDER, (order_id, customer_id, "placed"))


class ProductRepository:
    def __init__(self, db: FakeDatabase, cache: TTLCache) -> None:
        self._db = db
        self._cache = cache

    def product(self, product_id: int) -> Row | None:
        # Product rows change a few times a day; a short TTL keeps prices fresh enough.
        return self._cache.get_or_set(
            ("product", product_id), lambda: self._db.fetch_one(PRODUCT_BY_ID, (product_id,))
        )

    def product_page(self, product_id: int) -> dict[str, Any]:
        """Product detail page: product, stock level and a price quote for one unit."""
        product = self._db.fetch_one(PRODUCT_BY_ID, (product_id,))
        if product is None:
            raise LookupError(f"unknown product {product_id}")
        stock = self._db.fetch_one(STOCK_BY_PRODUCT, (product_id,))
        quote = self._db.fetch_one(PRODUCT_BY_ID, (product_id,))  # planted: repeated_query
        return {
            "name": product["name"],
            "category": product["category"],
            "in_stock": bool(stock and stock["quantity"] > 0),
            "unit_price": round(quote["price"] * 1.2, 2) if quote else None,
        }

    def category_listing(self, category: str) -> list[Row]:
        rows = self._db.fetch_all(PRODUCTS_BY_CATEGORY, (category,))
        for row in rows:
            # Warm the per-product cache so detail pages opened from the listing are hits.
            self._cache.set(("product", row["id"]), row)
        return sorted(rows, key=lambda row: row["price"])
