"""Customers: the frozen model, the `Customers` protocol and a JSON-lines loader."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.shop.jsonl import read_unique


class Customer(BaseModel):
    """A registered customer of the store."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    id: str = Field(min_length=1)  # opaque: any format the store uses
    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]+$")
    city: str
    joined: date


class Customers(Protocol):
    """Read access to customers."""

    def get(self, customer_id: str) -> Customer | None: ...


class JsonlCustomers:
    """`Customers` held in memory, loaded from a customers.jsonl file."""

    def __init__(self, customers: Sequence[Customer]) -> None:
        self._by_id = {customer.id.upper(): customer for customer in customers}

    @classmethod
    def load(cls, path: Path) -> JsonlCustomers:
        return cls(read_unique(path, Customer, "customer"))

    def get(self, customer_id: str) -> Customer | None:
        return self._by_id.get(customer_id.strip().upper())

    def all(self) -> Sequence[Customer]:
        return tuple(self._by_id.values())
