"""The demo store: a seeded simulator that writes its data files, and a loader for them.

`generate(out_dir, seed)` writes, deterministically (same seed, byte-identical files):

- catalog.jsonl            products, sorted by id
- customers.jsonl          customers as the store knows them
- customer_profiles.jsonl  the latent preferences the simulator drew each customer from
                           (simulator ground truth, for evaluation only; never read by the bot)
- orders.jsonl             each customer's simulated purchase history, oldest order first
- interactions.csv         user_id,item_id,timestamp,rating: one row per purchased order line

The FAQ (faq.jsonl) and the synonyms (synonyms.jsonl) are written by hand and are not
touched by `generate`.

Run: python -m core.shop.demo.generator --out data/demo

The shop reads these files with `core.shop.files.load_shop`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from core.infra.settings import packaged_data
from core.shop.catalog import Product
from core.shop.customers import Customer
from core.shop.demo.assortment import ATTRIBUTE_NOTES, COMPLEMENTS, DEPARTMENTS, MODEL_NAMES, Kind
from core.shop.orders import Order, OrderItem, OrderStatus, ShippingMethod

DEFAULT_DEMO_DIR = packaged_data("demo")

# The simulation's fixed "today": recent orders are still on their way relative to it.
SIMULATION_TODAY = date(2026, 11, 20)
SIMULATION_NOW = datetime.combine(SIMULATION_TODAY, time(12, 0), tzinfo=UTC)
HISTORY_DAYS = 548  # about 18 months of orders

CUSTOMER_COUNT = 220
# Share of customers with an extra order in the last day or so, so some orders are in flight.
RECENT_SHOPPER_SHARE = 0.07
# Shipping promises, shared with the FAQ: dispatch within 1 business day, standard arrives
# 3-5 business days after dispatch, express 1-2 business days.
TRANSIT_DAYS = {"standard": (3, 6), "express": (1, 2)}
PROMISED_DAYS = {"standard": 7, "express": 3}
CARRIERS = {"standard": ("USPS", "UPS", "FedEx"), "express": ("UPS", "DHL", "FedEx")}

FIRST_NAMES = (
    "Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Priya", "Lucas", "Hannah", "Omar",
    "Grace", "Mateo", "Chloe", "Daniel", "Aisha", "Leo", "Nora", "Samuel", "Elena", "Jonah",
    "Fatima", "Owen", "Mia", "Caleb", "Sofia", "Isaac", "Layla", "Henry", "Yuki", "Ruby",
)
LAST_NAMES = (
    "Nguyen", "Garcia", "Smith", "Patel", "Kim", "Johnson", "Okafor", "Rossi", "Martin",
    "Chen", "Lopez", "Brown", "Novak", "Haddad", "Walker", "Silva", "Murphy", "Schmidt",
    "Tanaka", "Reyes", "Cohen", "Baker", "Lindqvist", "Moreau", "Adeyemi", "Fischer",
)
CITIES = (
    "Seattle", "Portland", "Denver", "Austin", "Chicago", "Boston", "Atlanta", "Minneapolis",
    "San Diego", "Phoenix", "Salt Lake City", "Raleigh", "Nashville", "Pittsburgh", "Madison",
    "Boise", "Burlington", "Asheville", "Santa Fe", "Anchorage", "Columbus", "Sacramento",
)


@dataclass(frozen=True)
class _Profile:
    """A customer's latent tastes (simulator ground truth)."""

    customer_id: str
    favorite_categories: tuple[str, ...]
    price_sensitivity: float  # 0 = buys premium, 1 = hunts bargains
    favorite_attributes: tuple[str, ...]
    favorite_brands: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "customer_id": self.customer_id,
                "favorite_categories": list(self.favorite_categories),
                "price_sensitivity": self.price_sensitivity,
                "favorite_attributes": list(self.favorite_attributes),
                "favorite_brands": list(self.favorite_brands),
            },
            ensure_ascii=False,
        )


# ---------------------------------------------------------------------------- catalog


def _with_articles(text: str) -> str:
    """Fix 'a'/'A' before a vowel sound that templates produced ('a insulated' -> 'an ...')."""
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", lambda match: match.group(1) + "n ", text)


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _price(kind: Kind, stratum: int, rng: random.Random) -> float:
    """A price in the kind's band, one product per stratum so the band is covered evenly."""
    low, high = kind.price
    raw = low + (high - low) * (stratum + rng.random()) / kind.count
    return max(round(raw) - 0.01, 4.99)


def _size_run(kind: Kind, rng: random.Random) -> tuple[str, ...]:
    if len(kind.sizes) <= 2:
        return kind.sizes
    length = rng.randint(max(2, len(kind.sizes) - 3), len(kind.sizes))
    start = rng.randint(0, len(kind.sizes) - length)
    return kind.sizes[start : start + length]


def _description(
    kind: Kind, noun: str, material: str, tags: Sequence[str], rng: random.Random
) -> str:
    spec_low, spec_high, spec_step = kind.spec
    number = rng.randrange(spec_low, spec_high + 1, spec_step)
    shown = f"{number:,}" if number >= 10000 else str(number)  # "20,000 mm" but "1080p"
    fields = {"noun": noun.lower(), "material": material, "n": shown}
    eligible: list[str] = []
    for feature in kind.features:
        match = re.match(r"\[([a-z-]+)\] ", feature)
        if match is None:
            eligible.append(feature)
        elif match.group(1) in tags:
            eligible.append(feature[match.end() :])
    sentences = [kind.lead.format(**fields)]
    sentences += [feature.format(**fields) for feature in rng.sample(eligible, rng.randint(1, 2))]
    notes = [ATTRIBUTE_NOTES[tag] for tag in tags if tag in ATTRIBUTE_NOTES]
    if notes and rng.random() < 0.7:
        sentences.append(rng.choice(notes))
    return " ".join(_with_articles(_capitalized(sentence)) for sentence in sentences)


def _products(rng: random.Random) -> list[Product]:
    products: list[Product] = []
    descriptions: set[str] = set()
    for department in DEPARTMENTS:
        total = sum(kind.count for kind in department.kinds)
        models = rng.sample(MODEL_NAMES, total)
        for kind in department.kinds:
            strata = rng.sample(range(kind.count), kind.count)
            for index in range(kind.count):
                brand = rng.choice(department.brands)
                if kind.titles:
                    title, noun = kind.titles[index], "book"
                else:
                    noun = kind.nouns[index % len(kind.nouns)]
                    title = f"{brand} {models.pop()} {noun}"
                material = rng.choice(kind.materials)
                extra = rng.sample(kind.optional, rng.randint(1, min(2, len(kind.optional))))
                tags = tuple(sorted(set(kind.attributes) | set(extra)))
                colors = tuple(rng.sample(kind.colors, min(len(kind.colors), rng.randint(1, 4))))
                rating = round(min(5.0, max(2.6, rng.gauss(4.25, 0.4))), 1)
                description = _description(kind, noun, material, tags, rng)
                while description in descriptions:  # every product reads differently
                    description = _description(kind, noun, material, tags, rng)
                descriptions.add(description)
                products.append(
                    Product(
                        id=f"P{len(products) + 1:04d}",
                        title=title,
                        brand=brand,
                        category=department.slug,
                        subcategory=kind.subcategory,
                        price=_price(kind, strata[index], rng),
                        colors=colors,
                        sizes=_size_run(kind, rng),
                        description=description,
                        attributes=tags,
                        rating=rating,
                        review_count=int(rng.paretovariate(1.3) * 12) % 3000,
                        stock=0 if rng.random() < 0.1 else rng.randint(1, 140),
                        materials=material,
                        warranty_months=kind.warranty_months,
                    )
                )
    return products


# ---------------------------------------------------------------------------- customers


def _customers(rng: random.Random, products: Sequence[Product]) -> list[tuple[Customer, _Profile]]:
    categories = [department.slug for department in DEPARTMENTS]
    brands_by_category = {department.slug: department.brands for department in DEPARTMENTS}
    people: list[tuple[Customer, _Profile]] = []
    for number in range(1, CUSTOMER_COUNT + 1):
        customer_id = f"C{number:04d}"
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        joined = date(2023, 1, 1) + timedelta(days=rng.randint(0, 1000))
        customer = Customer(
            id=customer_id,
            name=f"{first} {last}",
            email=f"{first}.{last}{number}@example.com".lower(),
            city=rng.choice(CITIES),
            joined=joined,
        )
        favorites = tuple(rng.sample(categories, rng.randint(2, 3)))
        in_favorites = [product for product in products if product.category in favorites]
        tag_pool = sorted({tag for product in in_favorites for tag in product.attributes})
        brand_pool = [brand for category in favorites for brand in brands_by_category[category]]
        profile = _Profile(
            customer_id=customer_id,
            favorite_categories=favorites,
            price_sensitivity=round(rng.betavariate(2, 2), 2),
            favorite_attributes=tuple(rng.sample(tag_pool, min(3, len(tag_pool)))),
            favorite_brands=tuple(rng.sample(brand_pool, 2)),
        )
        people.append((customer, profile))
    return people


# ---------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class _Line:
    product: Product
    quantity: int
    fit: float


@dataclass(frozen=True)
class _Draft:
    customer_id: str
    city: str
    placed_at: datetime
    lines: tuple[_Line, ...]


def _price_rank(products: Sequence[Product]) -> dict[str, float]:
    """Each product's price percentile within its category (0 cheapest, 1 dearest)."""
    ranks: dict[str, float] = {}
    for department in DEPARTMENTS:
        members = sorted(
            (p for p in products if p.category == department.slug), key=lambda p: (p.price, p.id)
        )
        for position, product in enumerate(members):
            ranks[product.id] = position / max(1, len(members) - 1)
    return ranks


def _fit(product: Product, profile: _Profile, price_rank: float) -> float:
    """How well a product suits a customer's latent tastes (roughly -2 .. +3)."""
    score = 1.2 if product.brand in profile.favorite_brands else 0.0
    score += 0.6 * len(set(product.attributes) & set(profile.favorite_attributes))
    score -= 2.5 * abs(price_rank - (1.0 - profile.price_sensitivity))
    if product.rating is not None:  # always set in the demo's own catalog
        score += 0.4 * (product.rating - 4.0)
    return score


def _pick_category(profile: _Profile, previous: str | None, rng: random.Random) -> str:
    draw = rng.random()
    if previous is not None and draw < 0.2:
        return rng.choice(COMPLEMENTS[previous])
    if draw < 0.85:
        weights = [3.0, 2.0, 1.0][: len(profile.favorite_categories)]
        return rng.choices(profile.favorite_categories, weights=weights)[0]
    return rng.choice(DEPARTMENTS).slug


def _pick_line(
    category: str,
    profile: _Profile,
    by_category: dict[str, list[Product]],
    ranks: dict[str, float],
    chosen: set[str],
    rng: random.Random,
) -> _Line:
    candidates = [product for product in by_category[category] if product.id not in chosen]
    fits = [_fit(product, profile, ranks[product.id]) for product in candidates]
    weights = [math.exp(1.6 * fit) for fit in fits]
    index = rng.choices(range(len(candidates)), weights=weights)[0]
    product = candidates[index]
    quantity = 2 if product.price < 30 and rng.random() < 0.2 else 1
    return _Line(product, quantity, fits[index])


def _drafts(
    people: Sequence[tuple[Customer, _Profile]], products: Sequence[Product], rng: random.Random
) -> list[_Draft]:
    by_category: dict[str, list[Product]] = {}
    for product in products:
        by_category.setdefault(product.category, []).append(product)
    ranks = _price_rank(products)
    history_start = SIMULATION_NOW - timedelta(days=HISTORY_DAYS)
    drafts: list[_Draft] = []
    for customer, profile in people:
        start = max(history_start, datetime.combine(customer.joined, time(9, 0), tzinfo=UTC))
        span = (SIMULATION_NOW - start).total_seconds()
        count = rng.randint(4, 15)
        moments = [start + timedelta(seconds=rng.uniform(0, span)) for _ in range(count)]
        if rng.random() < RECENT_SHOPPER_SHARE:
            moments.append(SIMULATION_NOW - timedelta(hours=rng.uniform(1, 30)))
        moments.sort()
        previous: str | None = None
        for moment in moments:
            category = _pick_category(profile, previous, rng)
            chosen: set[str] = set()
            lines: list[_Line] = []
            for position in range(rng.choices((1, 2, 3), weights=(65, 25, 10))[0]):
                if position > 0 and rng.random() < 0.5:
                    category = rng.choice(COMPLEMENTS[category])
                line = _pick_line(category, profile, by_category, ranks, chosen, rng)
                chosen.add(line.product.id)
                lines.append(line)
            previous = category
            placed = moment.replace(second=0, microsecond=0)
            drafts.append(_Draft(customer.id, customer.city, placed, tuple(lines)))
    drafts.sort(key=lambda draft: (draft.placed_at, draft.customer_id))
    return drafts


def _tracking_number(carrier: str, rng: random.Random) -> str:
    digits = "0123456789"
    if carrier == "UPS":
        alphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
        return "1Z" + "".join(rng.choice(alphabet) for _ in range(6)) + "".join(
            rng.choice(digits) for _ in range(10)
        )
    if carrier == "USPS":
        return "9400" + "".join(rng.choice(digits) for _ in range(18))
    if carrier == "DHL":
        return "".join(rng.choice(digits) for _ in range(10))
    return "".join(rng.choice(digits) for _ in range(12))  # FedEx


def _order(draft: _Draft, order_id: str, rng: random.Random) -> Order:
    """Lay out the order's timeline and read its status off the simulation clock."""
    method: ShippingMethod = "express" if rng.random() < 0.2 else "standard"
    carrier = rng.choice(CARRIERS[method])
    dispatch_hours = rng.uniform(2, 20) if method == "express" else rng.uniform(4, 40)
    shipped = draft.placed_at + timedelta(hours=dispatch_hours)
    low, high = TRANSIT_DAYS[method]
    transit = rng.randint(low, high) + (rng.randint(2, 4) if rng.random() < 0.05 else 0)
    delivered_day = shipped.date() + timedelta(days=transit)
    delivered = datetime.combine(delivered_day, time(rng.randint(9, 18), rng.randint(0, 59)), UTC)
    estimated = shipped.date() + timedelta(days=PROMISED_DAYS[method] - 1)
    poor_fit = min(line.fit for line in draft.lines) < -0.8

    status: OrderStatus
    if shipped > SIMULATION_NOW:
        status = "processing"
    elif delivered_day > SIMULATION_TODAY:
        status = "shipped" if SIMULATION_NOW - shipped < timedelta(days=1) else "in_transit"
    elif delivered_day == SIMULATION_TODAY and delivered > SIMULATION_NOW:
        status = "out_for_delivery"
    else:
        status = "delivered"
        days_since = (SIMULATION_TODAY - delivered_day).days
        returns = 0.15 if poor_fit else 0.03
        draw = rng.random()
        if draw < 0.03 and days_since > 2:
            status = "cancelled"
        elif draw < 0.03 + returns and 3 <= days_since <= 30:
            status = "returned"
        elif draw < 0.03 + returns and days_since > 14:
            status = "refunded"

    items = tuple(
        OrderItem(
            item_id=line.product.id,
            title=line.product.title,
            quantity=line.quantity,
            unit_price=line.product.price,
        )
        for line in draft.lines
    )
    total = round(sum(item.quantity * item.unit_price for item in items), 2)
    tracking = _tracking_number(carrier, rng)
    is_cancelled = status == "cancelled"
    not_shipped = status in ("processing", "cancelled")
    return Order(
        id=order_id,
        customer_id=draft.customer_id,
        items=items,
        total=total,
        status=status,
        placed_at=draft.placed_at,
        shipped_at=None if not_shipped else shipped.replace(second=0, microsecond=0),
        delivered_at=delivered if status in ("delivered", "returned", "refunded") else None,
        estimated_delivery=None if is_cancelled else estimated,
        carrier=carrier,
        tracking_number=None if not_shipped else tracking,
        shipping_address_city=draft.city,
        shipping_method=method,
    )


def _rating(fit: float, status: str, rng: random.Random) -> int:
    if status in ("returned", "refunded"):
        return rng.choice((1, 2))
    return max(1, min(5, round(3.4 + 0.8 * fit + rng.gauss(0, 0.6))))


# ---------------------------------------------------------------------------- writing


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


def generate(out_dir: Path, seed: int = 7) -> None:
    """Simulate the demo store with `seed` and write its data files into `out_dir`."""
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    products = _products(rng)
    people = _customers(rng, products)
    drafts = _drafts(people, products, rng)
    order_ids = sorted(rng.sample(range(10000, 100000), len(drafts)))
    orders = [
        _order(draft, str(order_id), rng)
        for draft, order_id in zip(drafts, order_ids, strict=True)
    ]

    rows: list[tuple[str, str, int, int]] = []
    for draft, order in zip(drafts, orders, strict=True):
        if order.status == "cancelled":
            continue
        stamp = int(order.placed_at.timestamp())
        for line in draft.lines:
            rows.append(
                (order.customer_id, line.product.id, stamp, _rating(line.fit, order.status, rng))
            )
    rows.sort(key=lambda row: (row[0], row[2], row[1]))

    _write_lines(out_dir / "catalog.jsonl", [product.model_dump_json() for product in products])
    _write_lines(out_dir / "customers.jsonl", [person.model_dump_json() for person, _ in people])
    _write_lines(out_dir / "customer_profiles.jsonl", [profile.to_json() for _, profile in people])
    _write_lines(out_dir / "orders.jsonl", [order.model_dump_json() for order in orders])
    _write_lines(
        out_dir / "interactions.csv",
        ["user_id,item_id,timestamp,rating"] + [",".join(map(str, row)) for row in rows],
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the simulated demo store data files.")
    parser.add_argument("--out", type=Path, default=DEFAULT_DEMO_DIR, help="output directory")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    generate(args.out, seed=args.seed)
    print(f"wrote demo store data to {args.out}")


if __name__ == "__main__":
    main()
