"""Orders: frozen models, the `Orders` protocol and a JSON-lines loader."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.shop.jsonl import read_unique

OrderStatus = Literal[
    "processing",
    "shipped",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "cancelled",
    "returned",
    "refunded",
]
ShippingMethod = Literal["standard", "express"]
NOT_SHIPPED: frozenset[str] = frozenset({"processing", "cancelled"})
ON_THE_WAY: frozenset[str] = frozenset({"shipped", "in_transit", "out_for_delivery"})
DELIVERED: frozenset[str] = frozenset({"delivered", "returned", "refunded"})


class OrderItem(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    item_id: str
    title: str
    quantity: int = Field(ge=1)
    unit_price: float = Field(gt=0)


class Order(BaseModel):
    """A customer's order, with dates that agree with its status."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    id: str = Field(min_length=1)  # opaque: any format the store uses
    customer_id: str = Field(min_length=1)
    items: tuple[OrderItem, ...] = Field(min_length=1)
    total: float = Field(ge=0)
    status: OrderStatus
    placed_at: datetime
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    estimated_delivery: date | None = None
    carrier: str
    tracking_number: str | None = None
    shipping_address_city: str
    shipping_method: ShippingMethod

    @model_validator(mode="after")
    def _dates_agree_with_status(self) -> Order:
        subtotal = sum(item.quantity * item.unit_price for item in self.items)
        if not math.isclose(subtotal, self.total, abs_tol=0.005):
            raise ValueError(f"total {self.total} is not the sum of the items ({subtotal:.2f})")
        shipped = self.shipped_at is not None
        if self.status in NOT_SHIPPED and (shipped or self.tracking_number is not None):
            raise ValueError(f"a {self.status} order has no shipping date or tracking number")
        if self.status not in NOT_SHIPPED and not (shipped and self.tracking_number):
            raise ValueError(f"a {self.status} order needs shipped_at and a tracking number")
        if (self.delivered_at is not None) != (self.status in DELIVERED):
            raise ValueError(f"delivered_at must be set exactly when delivered ({self.status})")
        if self.shipped_at is not None and self.shipped_at < self.placed_at:
            raise ValueError("shipped before it was placed")
        if (
            self.delivered_at is not None
            and self.shipped_at is not None
            and self.delivered_at < self.shipped_at
        ):
            raise ValueError("delivered before it was shipped")
        if (self.status == "cancelled") == (self.estimated_delivery is not None):
            raise ValueError("estimated_delivery is set for every order that was not cancelled")
        return self


def normalize_order_id(order_id: str) -> str:
    """'#48213', ' 48213 ' and 'order 48213' all become '48213'; letters become lower case,
    so ids match whatever their case ('B-000123' -> 'b-000123')."""
    text = order_id.strip().lower()
    text = text.removeprefix("order").strip().removeprefix("no.").strip()
    return text.lstrip("#").strip()


class Orders(Protocol):
    """Read access to orders."""

    def get(self, order_id: str) -> Order | None: ...

    def for_customer(self, customer_id: str) -> Sequence[Order]: ...


class JsonlOrders:
    """`Orders` held in memory, loaded from an orders.jsonl file."""

    def __init__(self, orders: Sequence[Order]) -> None:
        # Keyed as customers write them: "#B-000123" and "b-000123" find order B-000123.
        self._by_id = {normalize_order_id(order.id): order for order in orders}
        if len(self._by_id) != len(orders):
            raise ValueError("duplicate order ids")
        by_customer: dict[str, list[Order]] = {}
        for order in orders:
            by_customer.setdefault(order.customer_id.upper(), []).append(order)
        self._by_customer = {
            customer: tuple(sorted(found, key=lambda order: (order.placed_at, order.id))[::-1])
            for customer, found in by_customer.items()
        }

    @classmethod
    def load(cls, path: Path) -> JsonlOrders:
        return cls(read_unique(path, Order, "order"))

    def get(self, order_id: str) -> Order | None:
        return self._by_id.get(normalize_order_id(order_id))

    def for_customer(self, customer_id: str) -> Sequence[Order]:
        """The customer's orders, newest first."""
        return self._by_customer.get(customer_id.strip().upper(), ())

    def all(self) -> Sequence[Order]:
        return tuple(self._by_id.values())
