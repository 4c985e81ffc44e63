from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.shop.customers import JsonlCustomers
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.jsonl import StoreDataError
from core.shop.orders import JsonlOrders, Order, normalize_order_id


@pytest.fixture(scope="module")
def orders() -> JsonlOrders:
    return JsonlOrders.load(DEFAULT_DEMO_DIR / "orders.jsonl")


@pytest.fixture(scope="module")
def customers() -> JsonlCustomers:
    return JsonlCustomers.load(DEFAULT_DEMO_DIR / "customers.jsonl")


def _delivered_order(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "12345",
        "customer_id": "C0001",
        "items": [{"item_id": "P0001", "title": "Jacket", "quantity": 2, "unit_price": 10.5}],
        "total": 21.0,
        "status": "delivered",
        "placed_at": datetime(2026, 1, 1, 10, tzinfo=UTC),
        "shipped_at": datetime(2026, 1, 2, 10, tzinfo=UTC),
        "delivered_at": datetime(2026, 1, 5, 10, tzinfo=UTC),
        "estimated_delivery": date(2026, 1, 8),
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "shipping_address_city": "Denver",
        "shipping_method": "standard",
    }
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    "variant", ["{id}", "#{id}", " {id} ", "# {id}", "order {id}", "Order #{id}"]
)
def test_get_accepts_id_variants(orders: JsonlOrders, variant: str) -> None:
    order = orders.all()[100]
    assert orders.get(variant.format(id=order.id)) == order


def test_get_unknown_order(orders: JsonlOrders) -> None:
    assert orders.get("00000") is None
    assert orders.get("") is None
    assert orders.get("#") is None


def test_normalize_order_id() -> None:
    assert normalize_order_id(" #48213 ") == "48213"
    assert normalize_order_id("order no. 48213") == "48213"


def test_for_customer_newest_first(orders: JsonlOrders) -> None:
    customer_id = orders.all()[0].customer_id
    history = orders.for_customer(customer_id)
    assert len(history) >= 2
    assert all(order.customer_id == customer_id for order in history)
    placed = [order.placed_at for order in history]
    assert placed == sorted(placed, reverse=True)
    assert sum(1 for order in orders.all() if order.customer_id == customer_id) == len(history)
    assert orders.for_customer("C9999") == ()


def test_customers_get(customers: JsonlCustomers) -> None:
    customer = customers.get("C0001")
    assert customer is not None and customer.email.endswith("@example.com")
    assert customers.get(" c0001 ") == customer
    assert customers.get("C9999") is None
    assert len(customers.all()) >= 200


def test_valid_order_passes() -> None:
    order = Order.model_validate(_delivered_order())
    assert order.total == 21.0


@pytest.mark.parametrize(
    "changes",
    [
        {"total": 30.0},
        {"delivered_at": None},
        {"status": "processing"},
        {"status": "in_transit"},
        {"status": "cancelled", "shipped_at": None, "delivered_at": None, "tracking_number": None},
        {"status": "shipped", "delivered_at": None, "tracking_number": None},
        {"shipped_at": datetime(2025, 12, 31, tzinfo=UTC)},
        {"delivered_at": datetime(2026, 1, 1, 12, tzinfo=UTC)},
        {"id": ""},
        {"items": []},
        {"status": "lost"},
    ],
)
def test_inconsistent_orders_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Order.model_validate(_delivered_order(**changes))


def test_bad_orders_file_names_the_line(tmp_path: Path) -> None:
    lines = (DEFAULT_DEMO_DIR / "orders.jsonl").read_text().splitlines()[:3]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join([lines[0], lines[1], lines[2].replace('"total":', '"total":-')]))
    with pytest.raises(StoreDataError, match=r"orders.jsonl:3: invalid Order"):
        JsonlOrders.load(path)
    path.write_text("\n".join([lines[0], lines[0]]))
    with pytest.raises(StoreDataError, match=r"orders.jsonl:2: duplicate order id"):
        JsonlOrders.load(path)


def test_ids_of_any_format_are_found_whatever_their_case() -> None:
    order = Order.model_validate(_delivered_order(id="B-000123", customer_id="A1YJEY40YUW4SE"))
    book = JsonlOrders([order])
    assert book.get("B-000123") == order
    assert book.get("#b-000123") == order
    assert book.for_customer("a1yjey40yuw4se") == (order,)
