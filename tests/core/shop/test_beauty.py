"""The Amazon Beauty store: parsing the data set, and the import files written from it."""

from __future__ import annotations

import csv
import re
import shutil
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.infra.settings import Settings
from core.shop.beauty import (
    BEAUTY_ASIN_MAP,
    BEAUTY_ITEMS,
    BEAUTY_SEQUENCES,
    BEAUTY_USER_SEQUENCES,
    PRICE_ESTIMATED,
    convert_beauty,
    read_beauty,
)
from core.shop.catalog import JsonlCatalog, Product
from core.shop.files import load_shop
from core.shop.jsonl import read_jsonl
from core.shop.orders import DELIVERED, ON_THE_WAY, Order

BEAUTY = Settings().data_dir / "amazon_beauty"
START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
WOMENS_EDP = "'Beauty', 'Fragrance', \"Women's\", 'Eau de Parfum'"
# (ASIN, title, categories, price, brand), in the data set's formats.
ITEMS = [
    ("B00000HAND", "Crabtree &amp; Evelyn Hand Therapy", "'Beauty', 'Skin Care', "
     "'Hands & Nails', 'Hand Creams & Lotions'", "12.5", "Crabtree &amp; Evelyn"),
    ("B0000PRADA", "Prada Candy  Eau de Parfum", WOMENS_EDP, "65.86", "Prada"),
    ("B00NOPRICE", "Stella McCartney Stella", WOMENS_EDP, "", ""),
    ("B0000ROSES", "Rose Eau de Parfum", WOMENS_EDP, "40.0", "Roses"),
    ("B000SHALLOW", "Fragrance Sampler", "'Beauty', 'Fragrance'", "", "Sampler Co"),
    ("B0000TITLE", "", "'Beauty', 'Makeup', 'Face', 'Concealers & Neutralizers'", "5.04",
     "Unknown"),
    ("9788072216", "Brush Set", "'Beauty', 'Tools & Accessories', 'Makeup Brushes & Tools', "
     "'Brushes & Applicators'", "0.01", "Brushy"),
]
ASINS = [item[0] for item in ITEMS]
# The data set's user ids and their purchases (indices into ITEMS), oldest first.
USERS = {
    "A1YJEY40YUW4SE": [0, 1, 2, 3, 4],
    "A60XNB876KYML": [5],
    "A3G6XNM240RMWA": [6, 5, 4, 3, 2, 1, 0, 2, 3, 6, 1],
    "AWUO9P6PL1SY8": [3, 6, 0],
    "A2LONGHISTORY": [n % 7 for n in range(40)],
}


def write_source(folder: Path, users: dict[str, list[int]] = USERS) -> Path:
    """The data set's four files for ITEMS and `users`, items numbered by first purchase."""
    folder.mkdir(parents=True, exist_ok=True)
    number: dict[str, int] = {}
    for purchases in users.values():
        for index in purchases:
            number.setdefault(ASINS[index], len(number) + 1)
    with (folder / BEAUTY_ITEMS).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["item_id:token", "title:token", "sales_type:token", "sales_rank:float",
                         "categories:token_seq", "price:float", "brand:token"])
        for asin, title, categories, price, brand in ITEMS:
            writer.writerow([asin, title, "Beauty", "1000.0", categories, price, brand])
    (folder / BEAUTY_ASIN_MAP).write_text(
        "item_id\tasin\n" + "".join(f"{n}\t{asin}\n" for asin, n in number.items())
    )
    (folder / BEAUTY_SEQUENCES).write_text("".join(
        f"{user} " + " ".join(str(number[ASINS[i]]) for i in purchases) + "\n"
        for user, purchases in enumerate(users.values(), start=1)
    ))
    (folder / BEAUTY_USER_SEQUENCES).write_text("".join(
        f"{user} " + " ".join(ASINS[i] for i in purchases) + "\n"
        for user, purchases in users.items()
    ))
    return folder


def sequences_from_orders(orders: list[Order]) -> dict[str, list[str]]:
    """Each customer's products, reading the orders by placed_at (ties by id), line by line."""
    by_customer: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        by_customer[order.customer_id].append(order)
    return {
        customer: [
            item.item_id
            for order in sorted(orders, key=lambda order: (order.placed_at, order.id))
            for item in order.items
        ]
        for customer, orders in by_customer.items()
    }


def check_orders(orders: list[Order]) -> None:
    """Order lines, totals, ids, dates and statuses as the store describes them."""
    by_customer: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        assert re.fullmatch(r"B-\d{6,}", order.id)
        assert 1 <= len(order.items) <= 3
        assert all(item.quantity == 1 for item in order.items)
        assert order.total == round(sum(item.unit_price for item in order.items), 2)
        assert START <= order.placed_at < END
        by_customer[order.customer_id].append(order)
    for orders in by_customer.values():
        orders.sort(key=lambda order: order.id)
        placed = [order.placed_at for order in orders]
        assert placed == sorted(set(placed)), "ids follow the dates, which never repeat"
        # Only a customer's latest order may still be on its way.
        assert all(order.status in DELIVERED for order in orders[:-1])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("beauty")
    convert_beauty(write_source(root / "source"), root / "store")
    return root / "store"


def test_read_beauty_numbers_items_by_first_purchase_and_names_users(tmp_path: Path) -> None:
    data = read_beauty(write_source(tmp_path))
    assert [item.asin for item in data.items][:3] == ["B00000HAND", "B0000PRADA", "B00NOPRICE"]
    assert list(data.user_ids.values()) == list(USERS)
    assert data.sequences["1"] == (1, 2, 3, 4, 5)
    first = data.items[0]
    assert first.categories == ("Beauty", "Skin Care", "Hands & Nails", "Hand Creams & Lotions")
    assert first.price == 12.5 and first.brand == "Crabtree &amp; Evelyn"  # as in the file
    assert data.items[2].price is None
    assert data.items[5].title == "Beauty product B0000TITLE"


def test_user_file_that_disagrees_is_refused(tmp_path: Path) -> None:
    source = write_source(tmp_path)
    lines = (source / BEAUTY_USER_SEQUENCES).read_text().splitlines()
    lines[1] = "A60XNB876KYML B0000PRADA"
    (source / BEAUTY_USER_SEQUENCES).write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r":2: not the purchases of user 2"):
        read_beauty(source)


def test_without_the_user_file_customers_keep_their_numbers(tmp_path: Path) -> None:
    source = write_source(tmp_path / "source")
    (source / BEAUTY_USER_SEQUENCES).unlink()
    assert list(read_beauty(source).user_ids.values()) == ["1", "2", "3", "4", "5"]
    convert_beauty(source, tmp_path / "store")
    orders = read_jsonl(tmp_path / "store" / "orders.jsonl", Order)
    assert set(sequences_from_orders(orders)) == {"1", "2", "3", "4", "5"}


def test_writes_three_files_that_load_as_a_shop(store: Path, tmp_path: Path) -> None:
    assert sorted(path.name for path in store.iterdir()) == [
        "catalog.jsonl", "customers.jsonl", "orders.jsonl"
    ]
    shop_dir = tmp_path / "shop"
    shutil.copytree(store, shop_dir)
    shutil.copy(Settings().demo_dir / "faq.jsonl", shop_dir)  # the store reuses the demo's
    shop = load_shop(shop_dir)
    customer = shop.customers.get("A1YJEY40YUW4SE")
    assert customer is not None and customer.email == "a1yjey40yuw4se@example.com"
    history = shop.orders.for_customer("A1YJEY40YUW4SE")
    assert sum(len(order.items) for order in history) == 5
    assert shop.orders.get(history[0].id.lower()) == history[0]
    check_orders(read_jsonl(store / "orders.jsonl", Order))


def test_catalog_keeps_the_category_path_and_flags_estimated_prices(store: Path) -> None:
    products = {p.id: p for p in read_jsonl(store / "catalog.jsonl", Product)}
    assert list(products) == [ASINS[i] for i in (0, 1, 2, 3, 4, 5, 6)]  # by item number
    hand = products["B00000HAND"]
    assert hand.title == "Crabtree & Evelyn Hand Therapy" and hand.brand == "Crabtree & Evelyn"
    assert (hand.category, hand.subcategory) == ("Skin Care", "Hand Creams & Lotions")
    assert hand.attributes == ("Hands & Nails",)
    assert hand.rating is None and hand.review_count == 0 and hand.description == ""
    prada = products["B0000PRADA"]
    assert prada.title == "Prada Candy Eau de Parfum" and prada.price == 65.86
    assert prada.attributes == ("Women's",)
    # No price in the data: the median of its category path, said so.
    assert products["B00NOPRICE"].price == 52.93  # median of 65.86 and 40.0
    assert products["B00NOPRICE"].attributes == ("Women's", PRICE_ESTIMATED)
    shallow = products["B000SHALLOW"]
    assert (shallow.category, shallow.subcategory) == ("Fragrance", "")
    assert shallow.price == 52.93 and shallow.attributes == (PRICE_ESTIMATED,)
    untitled = products["B0000TITLE"]
    assert untitled.title == "Beauty product B0000TITLE" and untitled.brand == ""
    assert sum(PRICE_ESTIMATED in p.attributes for p in products.values()) == 2
    assert all(p.stock >= 0 for p in products.values())
    catalog = JsonlCatalog.load(store / "catalog.jsonl")
    assert catalog.categories() == ("Fragrance", "Makeup", "Skin Care", "Tools & Accessories")


def test_orders_give_back_every_customer_sequence(store: Path) -> None:
    expected = {user: [ASINS[i] for i in purchases] for user, purchases in USERS.items()}
    assert sequences_from_orders(read_jsonl(store / "orders.jsonl", Order)) == expected


def test_same_seed_same_files(store: Path, tmp_path: Path) -> None:
    source = write_source(tmp_path / "source")
    again = convert_beauty(source, tmp_path / "again")
    for name in ("catalog.jsonl", "customers.jsonl", "orders.jsonl"):
        assert (tmp_path / "again" / name).read_bytes() == (store / name).read_bytes(), name
    other = convert_beauty(source, tmp_path / "other", seed=8)
    assert other.orders.read_bytes() != again.orders.read_bytes()
    assert sequences_from_orders(read_jsonl(other.orders, Order)) == sequences_from_orders(
        read_jsonl(again.orders, Order)
    )
    assert again.summary()["order_lines"] == sum(len(p) for p in USERS.values())


@pytest.mark.skipif(not BEAUTY.exists(), reason=f"Amazon Beauty data set not at {BEAUTY}")
def test_real_data_orders_give_back_the_data_set_sequences(tmp_path: Path) -> None:
    files = convert_beauty(BEAUTY, tmp_path)
    assert (files.product_count, files.customer_count, files.line_count) == (12101, 22363, 198502)
    assert files.estimated_price_count == 585
    with (BEAUTY / BEAUTY_USER_SEQUENCES).open(encoding="utf-8") as handle:
        expected = {user: asins for user, *asins in (line.split() for line in handle)}
    orders = read_jsonl(files.orders, Order)
    assert sequences_from_orders(orders) == expected
    check_orders(orders)
    statuses = {status for status, _ in files.statuses}
    assert ON_THE_WAY | {"processing", "delivered", "returned"} <= statuses
    assert "cancelled" not in statuses  # every purchase is one the recommender learns from
