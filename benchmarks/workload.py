"""The event every client sends: one track, 8 properties, user ids cycling over 1,000 users."""

from __future__ import annotations

from typing import Any

EVENT = "Order Completed"
USERS = 1_000
WRITE_KEY = "bench-write-key"

Pool = list[tuple[str, dict[str, Any]]]


def make_pool(users: int = USERS) -> Pool:
    """One ``(user_id, properties)`` pair per user; event ``i`` uses ``pool[i % users]``.

    The 8 properties cover the JSON types: str, float, int, bool, a nested dict, a list,
    a second str and None. Built once, before timing, and shared by every client.
    """
    pool: Pool = []
    for user in range(users):
        properties: dict[str, Any] = {
            "order_id": f"ord-{user:06d}-{user * 7919 % 100_000:05d}",
            "revenue": round(19.99 + (user % 97) * 1.37, 2),
            "quantity": 1 + user % 5,
            "coupon_applied": user % 3 == 0,
            "product": {"sku": f"SKU-{user % 50:03d}", "category": "books", "price": 9.99},
            "tags": ["gift", "express", f"campaign-{user % 12}"],
            "currency": "EUR",
            "referrer": None,
        }
        pool.append((f"user-{user:05d}", properties))
    return pool
