"""Amazon Beauty as a second store: the public data set read once, and written as import files.

The data set (Amazon "Beauty" 5-core, as used by S3-Rec and ICLRec; its folder's SOURCE.md
says where each file comes from) has 12,101 items, 22,363 customers and 198,502 purchases:

- `Amazon_Beauty_5core.item`: TSV, one row per item: ASIN, title, categories, price, brand.
- `item_id_to_asin_DERIVED.tsv`: the item numbers the sequences use -> ASIN.
- `Beauty_S3Rec_ICLRec_userseq.txt`: "user item item ...", integer ids, oldest first.
- `Beauty_user_sequence_ASIN_GRAM.txt`: the same customers, line for line, with the data set's
  own user ids and ASINs ("A1YJEY40YUW4SE B004756YJA ..."). `read_beauty` checks that both
  files tell the same sequences and takes the customer ids from it.

`read_beauty` parses the files (the recommender's `load_beauty` reads through it too), and
`convert_beauty` writes the store's `catalog.jsonl`, `customers.jsonl` and `orders.jsonl`; the
store reuses the demo store's help articles (`faq.jsonl`), by path. Every row is validated
with the shop's models before it is written.

What the store keeps from the data set, exactly:

- Products in the data set's item-number order, id = ASIN, the title and brand with HTML
  entities unescaped ("Crabtree &amp; Evelyn" -> "Crabtree & Evelyn"); the brand "Unknown"
  becomes "" (no brand known).
- The category path, "Beauty > Makeup > Face > Concealers & Neutralizers": `category` is the
  level below "Beauty" ("Makeup"), `subcategory` the most specific level ("Concealers &
  Neutralizers"; "" when the path stops at the category), and the levels in between go, in
  order and as written, into `attributes` ("Face"; "Fragrance > Women's > Eau de Parfum" gives
  "Women's"). Matching against attributes ignores case, so a customer asking for a "face"
  cream or a "women's" perfume finds them. The path is ("Beauty", category, *attributes
  without PRICE_ESTIMATED, subcategory when not "").
- Each customer's purchases, oldest first, as orders: reading a customer's orders by
  `placed_at` (ties by order id), line by line, gives back the data set's sequence, whatever
  the orders' statuses (a few are returned; none is cancelled, since the recommender skips
  cancelled orders and would lose purchases). So a recommender trained from this store sees
  the same items and the same sequences as the data set (items numbered in id order).

Prices: 585 items have none, and 7,170 purchases (of 5,019 customers) are of them. Leaving them
out would change those customers' sequences and the recommender comparison with them, so they
keep their place, with the median price of the priced items on the same category path (or the
nearest shorter path), rounded to cents, and the attribute PRICE_ESTIMATED, which says so.

Simulated, deterministically from `seed` (same seed, byte-identical files): stock (mostly in
stock), customer names, cities and join dates, how consecutive purchases group into orders of
1-3 lines, order dates (increasing along each sequence, 2023-2025), shipping and statuses.
Unknown in the data: ratings (None) and review counts (0), descriptions ("").
"""

from __future__ import annotations

import ast
import csv
import html
import logging
import random
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from core.infra.logs import event
from core.shop.catalog import Product
from core.shop.customers import Customer
from core.shop.demo.generator import (
    CARRIERS,
    CITIES,
    FIRST_NAMES,
    LAST_NAMES,
    PROMISED_DAYS,
    TRANSIT_DAYS,
)
from core.shop.orders import Order, OrderItem, OrderStatus, ShippingMethod

log = logging.getLogger(__name__)

BEAUTY_ITEMS = "Amazon_Beauty_5core.item"
BEAUTY_ASIN_MAP = "item_id_to_asin_DERIVED.tsv"
BEAUTY_SEQUENCES = "Beauty_S3Rec_ICLRec_userseq.txt"
BEAUTY_USER_SEQUENCES = "Beauty_user_sequence_ASIN_GRAM.txt"

ROOT_CATEGORY = "Beauty"
PRICE_ESTIMATED = "price-estimated"  # attribute of a product whose price the data set lacks
NO_BRAND = frozenset({"Unknown"})  # the data set's word for a brand it does not know

# The store's clock: orders span 2023-2025; the latest order of a few customers is on its way.
STORE_START = datetime(2023, 1, 1, 9, 0, tzinfo=UTC)
STORE_NOW = datetime(2025, 12, 31, 12, 0, tzinfo=UTC)
LAST_JOINED = date(2025, 6, 30)
HISTORY_END = STORE_NOW - timedelta(days=14)  # orders before it have all arrived
RECENT_SHOPPER_SHARE = 0.06  # customers whose latest order was placed in the last 6 days
# Every purchase in the data set happened (a review follows it), so no order is cancelled:
# the recommender learns from the orders that were not, and must see all of them.
RETURNED_SHARE = 0.015
EXPRESS_SHARE = 0.2
OUT_OF_STOCK_SHARE, LOW_STOCK_SHARE = 0.04, 0.06  # of products; the rest have 5-250 in stock
ONE_LINE_SHARE, TWO_LINES_SHARE = 0.65, 0.25  # of orders; the rest have three lines
ORDER_ID_PREFIX = "B-"


@dataclass(frozen=True)
class BeautyItem:
    """One item of the data set, as its files give it."""

    asin: str
    title: str  # stripped; "Beauty product <ASIN>" when the data set has none
    brand: str
    categories: tuple[str, ...]  # the path, most general first: ("Beauty", "Makeup", ...)
    price: float | None  # None: the data set gives no price


@dataclass(frozen=True)
class BeautySource:
    """The data set's items and every customer's purchases."""

    items: tuple[BeautyItem, ...]  # item number n is items[n - 1]
    sequences: dict[str, tuple[int, ...]]  # S3-Rec user number -> item numbers, oldest first
    user_ids: dict[str, str]  # S3-Rec user number -> the data set's own user id


@dataclass(frozen=True)
class BeautyFiles:
    """What `convert_beauty` wrote: the three files and what they hold."""

    catalog: Path
    customers: Path
    orders: Path
    product_count: int
    estimated_price_count: int  # products whose price is estimated (PRICE_ESTIMATED)
    customer_count: int
    order_count: int
    line_count: int  # order lines: one per purchase in the data set
    statuses: tuple[tuple[str, int], ...]  # (status, orders), most frequent first

    def summary(self) -> dict[str, object]:
        """The folder and the counts as one JSON-able record (what the store command prints)."""
        return {
            "out": str(self.catalog.parent),
            "products": self.product_count,
            "estimated_prices": self.estimated_price_count,
            "customers": self.customer_count,
            "orders": self.order_count,
            "order_lines": self.line_count,
            "statuses": dict(self.statuses),
        }


def read_beauty(folder: Path) -> BeautySource:
    """Parse the data set in `folder`; ValueError when its files disagree with each other.

    The user-id file is optional: without it, customers keep their S3-Rec numbers as ids.
    """
    asin_of: dict[int, str] = {}
    with (folder / BEAUTY_ASIN_MAP).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            asin_of[int(row["item_id"])] = row["asin"]
    meta: dict[str, dict[str, str]] = {}
    with (folder / BEAUTY_ITEMS).open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = [name.split(":")[0] for name in next(reader)]  # "price:float" -> "price"
        for values in reader:
            fields = dict(zip(header, values, strict=True))
            meta[fields["item_id"]] = fields
    items: list[BeautyItem] = []
    for number in range(1, max(asin_of) + 1):
        if number not in asin_of:
            raise ValueError(f"{folder / BEAUTY_ASIN_MAP}: no ASIN for item {number}")
        asin = asin_of[number]
        record = meta.get(asin, {})
        price = record.get("price", "")
        items.append(
            BeautyItem(
                asin=asin,
                title=record.get("title", "").strip() or f"Beauty product {asin}",
                brand=record.get("brand", "").strip(),
                categories=_category_path(record.get("categories", "")),
                price=float(price) if price else None,
            )
        )
    sequences: dict[str, tuple[int, ...]] = {}
    with (folder / BEAUTY_SEQUENCES).open(encoding="utf-8") as handle:
        for line in handle:
            user, *rest = line.split()
            sequences[user] = tuple(int(token) for token in rest)
    return BeautySource(tuple(items), sequences, _user_ids(folder, sequences, asin_of))


def _user_ids(
    folder: Path, sequences: dict[str, tuple[int, ...]], asin_of: dict[int, str]
) -> dict[str, str]:
    """The data set's user ids, line by line, once their sequences match the numbered ones."""
    path = folder / BEAUTY_USER_SEQUENCES
    if not path.exists():
        return {user: user for user in sequences}
    with path.open(encoding="utf-8") as handle:
        named = [line.split() for line in handle if line.strip()]
    if len(named) != len(sequences):
        raise ValueError(f"{path}: {len(named)} users, but {len(sequences)} in {BEAUTY_SEQUENCES}")
    user_ids: dict[str, str] = {}
    for number, ((user, sequence), (user_id, *asins)) in enumerate(
        zip(sequences.items(), named, strict=True), start=1
    ):
        if asins != [asin_of[item] for item in sequence]:
            raise ValueError(f"{path}:{number}: not the purchases of user {user}")
        user_ids[user] = user_id
    if len(set(user_ids.values())) != len(user_ids):
        raise ValueError(f"{path}: a user id repeats")
    return user_ids


def _category_path(text: str) -> tuple[str, ...]:
    """ "'Beauty', 'Fragrance', "Women's"" -> ("Beauty", "Fragrance", "Women's")."""
    if not text.strip():
        return ()
    try:
        value = ast.literal_eval(f"({text},)")
    except (ValueError, SyntaxError):
        return tuple(part.strip(" '\"") for part in text.split(","))
    return tuple(str(part) for part in value)


def convert_beauty(source: Path, out: Path, seed: int = 7) -> BeautyFiles:
    """Write the Amazon Beauty data set in `source` as a store's import files into `out`:
    catalog.jsonl, customers.jsonl and orders.jsonl (see the module docstring)."""
    data = read_beauty(source)
    rng = random.Random(seed)
    products = _products(data.items, rng)
    # Keyed by the S3-Rec user number, in the data set's order.
    customers = {user: _customer(data.user_ids[user], rng) for user in data.sequences}
    orders = _orders(data, products, customers, rng)

    out.mkdir(parents=True, exist_ok=True)
    files = BeautyFiles(
        catalog=out / "catalog.jsonl",
        customers=out / "customers.jsonl",
        orders=out / "orders.jsonl",
        product_count=len(products),
        estimated_price_count=sum(PRICE_ESTIMATED in p.attributes for p in products),
        customer_count=len(customers),
        order_count=len(orders),
        line_count=sum(len(order.items) for order in orders),
        statuses=tuple(Counter(order.status for order in orders).most_common()),
    )
    _write(files.catalog, [product.model_dump_json() for product in products])
    _write(files.customers, [customer.model_dump_json() for customer in customers.values()])
    _write(files.orders, [order.model_dump_json() for order in orders])
    event(
        log,
        "shop.beauty.converted",
        out=str(out),
        products=files.product_count,
        estimated_prices=files.estimated_price_count,
        customers=files.customer_count,
        orders=files.order_count,
        order_lines=files.line_count,
    )
    return files


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


def _clean(text: str) -> str:
    """HTML entities unescaped, runs of white space made one space."""
    return " ".join(html.unescape(text).split())


def _products(items: tuple[BeautyItem, ...], rng: random.Random) -> list[Product]:
    paths = [tuple(_clean(level) for level in _below_root(item.categories)) for item in items]
    prices_on: dict[tuple[str, ...], list[float]] = {}
    for item, path in zip(items, paths, strict=True):
        if item.price is not None:
            for depth in range(len(path) + 1):
                prices_on.setdefault(path[:depth], []).append(item.price)
    products = []
    for item, path in zip(items, paths, strict=True):
        attributes = list(path[1:-1])
        price = item.price
        if price is None:
            if not prices_on:
                raise ValueError("no item of the data set has a price to estimate others from")
            nearest = next(path[:depth] for depth in range(len(path), -1, -1)
                           if path[:depth] in prices_on)
            price = round(statistics.median(prices_on[nearest]), 2)
            attributes.append(PRICE_ESTIMATED)
        draw = rng.random()
        stock = (
            0 if draw < OUT_OF_STOCK_SHARE
            else rng.randint(1, 4) if draw < OUT_OF_STOCK_SHARE + LOW_STOCK_SHARE
            else rng.randint(5, 250)
        )
        brand = _clean(item.brand)
        products.append(
            Product(
                id=item.asin,
                title=_clean(item.title),
                brand="" if brand in NO_BRAND else brand,
                category=path[0] if path else "",
                subcategory=path[-1] if len(path) > 1 else "",
                price=price,
                attributes=tuple(attributes),
                stock=stock,
            )
        )
    return products


def _below_root(categories: tuple[str, ...]) -> tuple[str, ...]:
    return categories[1:] if categories[:1] == (ROOT_CATEGORY,) else categories


def _customer(user_id: str, rng: random.Random) -> Customer:
    span = (LAST_JOINED - STORE_START.date()).days
    return Customer(
        id=user_id,
        name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        email=f"{user_id.lower()}@example.com",
        city=rng.choice(CITIES),
        joined=STORE_START.date() + timedelta(days=rng.randint(0, span)),
    )


@dataclass(frozen=True)
class _Draft:
    """An order before its id: whose, when, and which products (in sequence order)."""

    customer: Customer
    placed_at: datetime
    products: tuple[Product, ...]
    sort_key: tuple[datetime, int, int]  # (placed_at, customer number, position): the id order


def _orders(
    data: BeautySource,
    products: list[Product],
    customers: dict[str, Customer],
    rng: random.Random,
) -> list[Order]:
    drafts: list[_Draft] = []
    for number, (user, sequence) in enumerate(data.sequences.items()):
        customer = customers[user]
        groups = _groups(len(sequence), rng)
        moments = _moments(customer.joined, len(groups), rng)
        start = 0
        for position, (size, moment) in enumerate(zip(groups, moments, strict=True)):
            lines = tuple(products[item - 1] for item in sequence[start : start + size])
            drafts.append(_Draft(customer, moment, lines, (moment, number, position)))
            start += size
    drafts.sort(key=lambda draft: draft.sort_key)
    width = max(6, len(str(len(drafts))))  # one width, so ids sort as their numbers
    return [
        _order(draft, f"{ORDER_ID_PREFIX}{number:0{width}d}", rng)
        for number, draft in enumerate(drafts, start=1)
    ]


def _groups(length: int, rng: random.Random) -> list[int]:
    """Sizes of consecutive groups of a sequence of `length` items: 1-3 lines per order."""
    sizes: list[int] = []
    left = length
    while left > 0:
        draw = rng.random()
        size = 1 if draw < ONE_LINE_SHARE else 2 if draw < ONE_LINE_SHARE + TWO_LINES_SHARE else 3
        sizes.append(min(left, size))
        left -= size
    return sizes


def _moments(joined: date, count: int, rng: random.Random) -> list[datetime]:
    """`count` increasing order times after `joined`: before HISTORY_END, except for recent
    shoppers, whose latest order was placed in the last days before STORE_NOW."""
    recent = count > 0 and rng.random() < RECENT_SHOPPER_SHARE
    past = count - 1 if recent else count
    start = datetime.combine(joined, time(9, 0), tzinfo=UTC)
    span = HISTORY_END - start
    # Gaps of at least 2% of an average gap keep the times apart, even after rounding.
    gaps = [rng.random() + 0.02 for _ in range(past + 1)]
    scale = span / sum(gaps)
    moments: list[datetime] = []
    elapsed = timedelta()
    for gap in gaps[:past]:
        elapsed += gap * scale
        moments.append((start + elapsed).replace(second=0, microsecond=0))
    if recent:
        latest = STORE_NOW - timedelta(hours=rng.uniform(1, 6 * 24))
        moments.append(latest.replace(second=0, microsecond=0))
    return moments


def _order(draft: _Draft, order_id: str, rng: random.Random) -> Order:
    """Lay out the order's timeline with the demo store's shipping promises (the FAQ's) and
    read its status off the store's clock; orders long arrived are sometimes returned."""
    method: ShippingMethod = "express" if rng.random() < EXPRESS_SHARE else "standard"
    carrier = rng.choice(CARRIERS[method])
    dispatch_hours = rng.uniform(2, 20) if method == "express" else rng.uniform(4, 40)
    shipped = (draft.placed_at + timedelta(hours=dispatch_hours)).replace(second=0, microsecond=0)
    low, high = TRANSIT_DAYS[method]
    delivered_day = shipped.date() + timedelta(days=rng.randint(low, high))
    delivered = datetime.combine(delivered_day, time(rng.randint(9, 18), rng.randint(0, 59)), UTC)
    estimated = shipped.date() + timedelta(days=PROMISED_DAYS[method] - 1)
    today = STORE_NOW.date()

    status: OrderStatus
    if shipped > STORE_NOW:
        status = "processing"
    elif delivered.date() > today:
        status = "shipped" if STORE_NOW - shipped < timedelta(days=1) else "in_transit"
    elif delivered > STORE_NOW:
        status = "out_for_delivery"
    else:
        status = "delivered"
        draw = rng.random()
        if draft.placed_at < HISTORY_END and draw < RETURNED_SHARE:
            status = "returned"

    items = tuple(
        OrderItem(item_id=p.id, title=p.title, quantity=1, unit_price=p.price)
        for p in draft.products
    )
    not_shipped = status in ("processing", "cancelled")
    return Order(
        id=order_id,
        customer_id=draft.customer.id,
        items=items,
        total=round(sum(item.unit_price for item in items), 2),
        status=status,
        placed_at=draft.placed_at,
        shipped_at=None if not_shipped else shipped,
        delivered_at=delivered if status in ("delivered", "returned") else None,
        estimated_delivery=None if status == "cancelled" else estimated,
        carrier=carrier,
        tracking_number=None if not_shipped else _tracking_number(carrier, rng),
        shipping_address_city=draft.customer.city,
        shipping_method=method,
    )


_TRACKING_LETTERS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def _tracking_number(carrier: str, rng: random.Random) -> str:
    """A tracking number in the carrier's format, as the demo store writes them, but drawn
    with one call per part: the demo's draw per character would take seconds here."""
    if carrier == "UPS":
        return f"1Z{''.join(rng.choices(_TRACKING_LETTERS, k=6))}{rng.randrange(10**10):010d}"
    if carrier == "USPS":
        return f"9400{rng.randrange(10**18):018d}"
    if carrier == "DHL":
        return f"{rng.randrange(10**10):010d}"
    return f"{rng.randrange(10**12):012d}"  # FedEx
