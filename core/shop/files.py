"""The shop's data read from files: catalog, orders, customers and help articles, each checked
(ids unique, every order's customer and products known) before anything is served."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.shop.catalog import Catalog, JsonlCatalog
from core.shop.customers import Customers, JsonlCustomers
from core.shop.jsonl import StoreDataError, read_jsonl
from core.shop.knowledge import Bm25KnowledgeBase, KnowledgeBase
from core.shop.orders import JsonlOrders, Order, Orders


@dataclass(frozen=True)
class Shop:
    """Everything the conversation core reads about the store."""

    catalog: Catalog
    orders: Orders
    customers: Customers
    knowledge: KnowledgeBase


def load_shop(directory: Path) -> Shop:
    """Load catalog, orders, customers and FAQ from `directory`; StoreDataError when bad."""
    if not directory.is_dir():
        raise StoreDataError(directory, "store data directory not found")
    catalog = JsonlCatalog.load(directory / "catalog.jsonl")
    customers = JsonlCustomers.load(directory / "customers.jsonl")
    orders_path = directory / "orders.jsonl"
    orders = read_jsonl(orders_path, Order)
    for number, order in enumerate(orders, start=1):
        if customers.get(order.customer_id) is None:
            raise StoreDataError(orders_path, f"unknown customer {order.customer_id}", number)
        for item in order.items:
            if catalog.get(item.item_id) is None:
                raise StoreDataError(orders_path, f"unknown product {item.item_id}", number)
    try:
        order_book = JsonlOrders(orders)
    except ValueError as error:
        raise StoreDataError(orders_path, str(error)) from error
    knowledge = Bm25KnowledgeBase.load(directory / "faq.jsonl")
    return Shop(catalog=catalog, orders=order_book, customers=customers, knowledge=knowledge)
