from __future__ import annotations

import csv
import json
import shutil
from collections import Counter, defaultdict
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, get_args

import pytest

from core.shop.catalog import Product
from core.shop.demo.assortment import COMPLEMENTS
from core.shop.demo.generator import (
    DEFAULT_DEMO_DIR,
    SIMULATION_NOW,
    SIMULATION_TODAY,
    generate,
    main,
)
from core.shop.files import Shop, load_shop
from core.shop.jsonl import StoreDataError
from core.shop.orders import Order, OrderStatus

GENERATED = (
    "catalog.jsonl",
    "customers.jsonl",
    "customer_profiles.jsonl",
    "orders.jsonl",
    "interactions.csv",
)


@pytest.fixture(scope="module")
def store() -> Shop:
    return load_shop(DEFAULT_DEMO_DIR)


@pytest.fixture(scope="module")
def orders(store: Shop) -> list[Order]:
    return [order for customer in _customer_ids() for order in store.orders.for_customer(customer)]


@pytest.fixture(scope="module")
def products(store: Shop) -> dict[str, Product]:
    return {product.id: product for product in store.catalog.all()}


@pytest.fixture(scope="module")
def profiles() -> dict[str, dict[str, Any]]:
    lines = (DEFAULT_DEMO_DIR / "customer_profiles.jsonl").read_text().splitlines()
    return {record["customer_id"]: record for record in map(json.loads, lines)}


def _customer_ids() -> list[str]:
    lines = (DEFAULT_DEMO_DIR / "customers.jsonl").read_text().splitlines()
    return [json.loads(line)["id"] for line in lines]


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=7)
    generate(tmp_path / "b", seed=7)
    generate(tmp_path / "c", seed=8)
    for name in GENERATED:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "orders.jsonl").read_bytes() != (
        tmp_path / "c" / "orders.jsonl"
    ).read_bytes()


def test_committed_data_is_what_the_simulator_writes(tmp_path: Path) -> None:
    main(["--out", str(tmp_path), "--seed", "7"])
    for name in GENERATED:
        assert (tmp_path / name).read_bytes() == (DEFAULT_DEMO_DIR / name).read_bytes(), name


def test_sizes(store: Shop, orders: list[Order]) -> None:
    customers = _customer_ids()
    assert len(customers) >= 200
    assert 5 <= len(orders) / len(customers) <= 15
    ids = [order.id for order in orders]
    assert len(set(ids)) == len(ids)
    assert all(len(order_id) == 5 and order_id.isdigit() for order_id in ids)
    total_bytes = sum(path.stat().st_size for path in DEFAULT_DEMO_DIR.iterdir())
    assert total_bytes < 3_000_000


def test_order_items_match_the_catalog(orders: list[Order], products: dict[str, Product]) -> None:
    for order in orders:
        for item in order.items:
            product = products[item.item_id]
            assert item.title == product.title
            assert item.unit_price == product.price


def test_statuses_follow_the_simulation_clock(orders: list[Order]) -> None:
    statuses = Counter(order.status for order in orders)
    assert set(statuses) == set(get_args(OrderStatus))  # every status occurs
    assert statuses["delivered"] > 0.8 * len(orders)
    for order in orders:
        assert order.placed_at <= SIMULATION_NOW
        age = SIMULATION_NOW - order.placed_at
        if order.status == "processing":
            assert age < timedelta(days=2)
        if order.status in ("shipped", "in_transit", "out_for_delivery"):
            assert order.shipped_at is not None and order.shipped_at <= SIMULATION_NOW
            assert age < timedelta(days=14)
        if order.status == "out_for_delivery":
            assert order.estimated_delivery is not None
        if order.delivered_at is not None:
            assert order.delivered_at <= SIMULATION_NOW
        if order.status == "returned":
            assert order.delivered_at is not None
            assert SIMULATION_TODAY - order.delivered_at.date() <= timedelta(days=30)
        if age > timedelta(days=20):
            assert order.status in ("delivered", "cancelled", "returned", "refunded")


def test_shipping_times_keep_the_faq_promises(orders: list[Order]) -> None:
    """The FAQ promises dispatch within 1 business day and 3-5 (express 1-2) days in transit."""
    delivered = [order for order in orders if order.delivered_at and order.shipped_at]
    late = 0
    for order in delivered:
        assert order.shipped_at is not None and order.delivered_at is not None
        assert order.shipped_at - order.placed_at <= timedelta(days=2)
        assert order.estimated_delivery is not None
        late += order.delivered_at.date() > order.estimated_delivery
        if order.shipping_method == "express":
            assert order.estimated_delivery - order.placed_at.date() <= timedelta(days=4)
    assert 0 < late < 0.1 * len(delivered)


def test_tracking_numbers_look_like_the_carrier(orders: list[Order]) -> None:
    for order in orders:
        number = order.tracking_number
        if number is None:
            continue
        if order.carrier == "UPS":
            assert number.startswith("1Z") and len(number) == 18
        elif order.carrier == "USPS":
            assert number.startswith("94") and len(number) == 22 and number.isdigit()
        elif order.carrier == "DHL":
            assert len(number) == 10 and number.isdigit()
        else:
            assert order.carrier == "FedEx" and len(number) == 12 and number.isdigit()


def test_histories_favour_latent_categories(
    orders: list[Order], products: dict[str, Product], profiles: dict[str, dict[str, Any]]
) -> None:
    in_favourites = total = 0
    uniform = 0.0
    categories = len({product.category for product in products.values()})
    for order in orders:
        favourites = profiles[order.customer_id]["favorite_categories"]
        for item in order.items:
            total += 1
            in_favourites += products[item.item_id].category in favourites
            uniform += len(favourites) / categories
    assert in_favourites / total > 3 * (uniform / total)


def test_histories_show_brand_loyalty_and_price_band(
    orders: list[Order], products: dict[str, Product], profiles: dict[str, dict[str, Any]]
) -> None:
    loyal = chances = 0
    brands_per_category: dict[str, set[str]] = defaultdict(set)
    for product in products.values():
        brands_per_category[product.category].add(product.brand)
    uniform = 0.0
    prices: dict[str, list[float]] = {"bargain": [], "premium": []}
    by_category: dict[str, list[float]] = defaultdict(list)
    for product in products.values():
        by_category[product.category].append(product.price)
    for order in orders:
        profile = profiles[order.customer_id]
        for item in order.items:
            product = products[item.item_id]
            favourite_here = [
                brand
                for brand in profile["favorite_brands"]
                if brand in brands_per_category[product.category]
            ]
            if favourite_here:
                chances += 1
                loyal += product.brand in favourite_here
                uniform += len(favourite_here) / len(brands_per_category[product.category])
            cheaper = sum(price < product.price for price in by_category[product.category])
            rank = cheaper / len(by_category[product.category])
            if profile["price_sensitivity"] >= 0.7:
                prices["bargain"].append(rank)
            elif profile["price_sensitivity"] <= 0.3:
                prices["premium"].append(rank)
    assert loyal / chances > 1.5 * uniform / chances
    mean = {band: sum(ranks) / len(ranks) for band, ranks in prices.items()}
    assert mean["premium"] - mean["bargain"] > 0.25


def test_histories_follow_complementary_categories(
    store: Shop, products: dict[str, Product]
) -> None:
    after_outerwear = follows = 0
    base = Counter[str]()
    for customer in _customer_ids():
        history = list(reversed(store.orders.for_customer(customer)))
        for earlier, later in pairwise(history):
            later_categories = {products[item.item_id].category for item in later.items}
            base.update(later_categories)
            if any(products[item.item_id].category == "outerwear" for item in earlier.items):
                after_outerwear += 1
                follows += bool(later_categories & set(COMPLEMENTS["outerwear"]))
    share_after = follows / after_outerwear
    share_overall = sum(base[c] for c in COMPLEMENTS["outerwear"]) / sum(base.values())
    assert share_after > 1.3 * share_overall


def test_interactions_file(orders: list[Order]) -> None:
    with (DEFAULT_DEMO_DIR / "interactions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["user_id", "item_id", "timestamp", "rating"]
    lines = sum(len(order.items) for order in orders if order.status != "cancelled")
    assert len(rows) == lines
    previous: tuple[str, int] = ("", 0)
    for row in rows:
        assert 1 <= int(row["rating"]) <= 5
        key = (row["user_id"], int(row["timestamp"]))
        assert key >= previous
        previous = key
    returned = {
        (order.customer_id, item.item_id)
        for order in orders
        if order.status in ("returned", "refunded")
        for item in order.items
    }
    ratings = [int(row["rating"]) for row in rows if (row["user_id"], row["item_id"]) in returned]
    assert ratings and sum(ratings) / len(ratings) < 2.5


def test_load_store_gives_working_services(store: Shop) -> None:
    assert store.catalog.get("P0001") is not None
    assert store.customers.get("C0001") is not None
    assert store.orders.for_customer("C0001")
    answer = store.knowledge.answer("what is your return policy?")
    assert answer is not None and answer.article.topic == "returns"


def test_load_store_reports_missing_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(StoreDataError, match="not found"):
        load_shop(tmp_path / "nowhere")
    copy = tmp_path / "copy"
    shutil.copytree(DEFAULT_DEMO_DIR, copy)
    (copy / "faq.jsonl").unlink()
    with pytest.raises(StoreDataError, match=r"faq.jsonl: file not found"):
        load_shop(copy)
    shutil.copy(DEFAULT_DEMO_DIR / "faq.jsonl", copy / "faq.jsonl")
    lines = (copy / "orders.jsonl").read_text().splitlines()
    lines[4] = lines[4].replace('"item_id":"P', '"item_id":"X', 1)
    (copy / "orders.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(StoreDataError, match=r"orders.jsonl:5: unknown product X"):
        load_shop(copy)
    lines[4] = lines[4][:40]
    (copy / "orders.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(StoreDataError, match=r"orders.jsonl:5: invalid JSON"):
        load_shop(copy)
