"""What `concierge bench store` measures: import throughput, and order lookups and the
customer's order list at a store's real size and at a million orders.

The extra orders are generated straight into the table (their import speed is what the
store's own files measure); each is a real order of one of the store's customers for one of
its products, with a consistent timeline.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.infra.percentiles import percentile
from core.shopdb.database import ShopDatabase, upsert
from core.shopdb.tables import customers, orders, products

GENERATED_PREFIX = "G-"


def timed_ms(call: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def lookup_figures(database: ShopDatabase, samples: int = 2000, seed: int = 7) -> dict[str, Any]:
    """p50/p99 of reading one order by id (as a customer asks for it) and of a customer's
    order list, over random orders and customers of the store."""
    rng = random.Random(seed)
    with database.engine.connect() as connection:
        count = database.counts()["orders"]
        step = max(1, count // samples)
        ids = list(connection.scalars(select(orders.c.id).order_by(orders.c.id)))[::step]
        people = list(connection.scalars(select(customers.c.id)))
    rng.shuffle(ids)
    chosen = iter(ids[:samples] * 2)
    by_id = timed_ms(lambda: database.order(next(chosen)), min(samples, len(ids)))
    who = iter(rng.choices(people, k=samples))
    lists = timed_ms(lambda: database.orders_of(next(who)), samples // 4)
    return {
        "orders": count,
        "order_lookup_p50_ms": round(percentile(by_id, 50), 3),
        "order_lookup_p99_ms": round(percentile(by_id, 99), 3),
        "customer_orders_p50_ms": round(percentile(lists, 50), 3),
    }


def generate_orders(database: ShopDatabase, total: int, seed: int = 7,
                    batch: int = 5000) -> tuple[int, float]:
    """Add generated delivered orders until the store holds `total`; (added, seconds)."""
    with database.engine.connect() as connection:
        people = list(connection.scalars(select(customers.c.id)))
        catalog: Sequence[Any] = list(connection.execute(
            select(products.c.id, products.c.title, products.c.price)))
    missing = total - database.counts()["orders"]
    if missing <= 0:
        return 0, 0.0
    rng = random.Random(seed)
    start = datetime(2021, 1, 1, 9, tzinfo=UTC)
    started = time.perf_counter()
    with database.engine.begin() as connection:
        rows: list[dict[str, Any]] = []
        for number in range(missing):
            item_id, title, price = rng.choice(catalog)
            placed = start + timedelta(minutes=number)
            shipped = placed + timedelta(hours=20)
            rows.append({
                "id": f"{GENERATED_PREFIX}{number:07d}", "customer_id": rng.choice(people),
                "items": [{"item_id": item_id, "title": title, "quantity": 1,
                           "unit_price": price}],
                "total": price, "status": "delivered", "placed_at": placed,
                "shipped_at": shipped, "delivered_at": shipped + timedelta(days=3),
                "estimated_delivery": (shipped + timedelta(days=4)).date(), "carrier": "UPS",
                "tracking_number": f"1Z{number:016d}", "shipping_address_city": "Austin",
                "shipping_method": "standard",
            })
            if len(rows) == batch:
                upsert(connection, orders, rows)
                rows = []
        upsert(connection, orders, rows)
    return missing, time.perf_counter() - started
