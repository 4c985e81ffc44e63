from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from core.shop.catalog import JsonlCatalog, Product
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.jsonl import StoreDataError

REQUIRED_CATEGORIES = {
    "outerwear",
    "footwear",
    "hiking-camping",
    "running-fitness",
    "skincare",
    "haircare",
    "makeup",
    "headphones-audio",
    "phones-accessories",
    "smart-home",
    "kitchen",
    "coffee-tea",
    "home-decor",
    "bags-travel",
    "toys-games",
    "books",
}


@pytest.fixture(scope="module")
def catalog() -> JsonlCatalog:
    return JsonlCatalog.load(DEFAULT_DEMO_DIR / "catalog.jsonl")


def test_catalog_size_and_categories(catalog: JsonlCatalog) -> None:
    products = catalog.all()
    assert len(products) >= 300
    assert set(catalog.categories()) == REQUIRED_CATEGORIES
    per_category = Counter(product.category for product in products)
    assert min(per_category.values()) >= 15


def test_ids_unique_sorted_and_well_formed(catalog: JsonlCatalog) -> None:
    ids = [product.id for product in catalog.all()]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"P\d{4}", item_id) for item_id in ids)
    titles = [product.title for product in catalog.all()]
    assert len(set(titles)) == len(titles)


def test_fields_are_plausible(catalog: JsonlCatalog) -> None:
    for product in catalog.all():
        assert product.currency == "USD"
        assert 1 <= product.rating <= 5 and round(product.rating, 1) == product.rating
        assert 2 <= len(re.findall(r"[.!?](?:\s|$)", product.description)) <= 4, product
        assert all(tag == tag.lower() and " " not in tag for tag in product.attributes)
        if product.category == "books":
            assert product.sizes == () and product.colors == ()
        if product.category in ("outerwear", "footwear"):
            assert product.sizes, product
        if product.category == "headphones-audio":
            assert product.colors, product
    stock = [product.stock for product in catalog.all()]
    assert 0 in stock and sum(1 for level in stock if level > 0) > 0.8 * len(stock)


def test_prices_fit_their_category(catalog: JsonlCatalog) -> None:
    by_category: dict[str, list[float]] = {}
    for product in catalog.all():
        by_category.setdefault(product.category, []).append(product.price)
    assert max(by_category["coffee-tea"]) < 200
    assert max(by_category["books"]) < 50
    assert max(by_category["outerwear"]) > 250
    assert min(by_category["outerwear"]) < 60


def test_descriptions_are_not_copies(catalog: JsonlCatalog) -> None:
    descriptions = [product.description for product in catalog.all()]
    assert len(set(descriptions)) == len(descriptions)


def test_demo_requests_have_answers(catalog: JsonlCatalog) -> None:
    products = catalog.all()
    jackets = [p for p in products if p.category == "outerwear" and "Jacket" in p.title]
    waterproof_cheap = [p for p in jackets if "waterproof" in p.attributes and p.price < 100]
    assert waterproof_cheap
    assert len({round(p.price, -1) for p in jackets}) >= 5  # "something cheaper" can work
    moisturizers = [p for p in products if p.subcategory == "moisturizers"]
    dry_skin = [p for p in moisturizers if "dry skin" in p.description]
    assert len(dry_skin) >= 3
    assert any("gift-idea" in p.attributes for p in products if p.category == "hiking-camping")
    assert any("wireless" in p.attributes for p in products if p.category == "headphones-audio")


def test_vocabularies(catalog: JsonlCatalog) -> None:
    attributes = catalog.attributes()
    assert {"waterproof", "vegan", "wireless", "fragrance-free", "noise-cancelling"} <= set(
        attributes
    )
    assert list(attributes) == sorted(set(attributes))
    assert {"black", "navy"} <= set(catalog.colors())


def test_get(catalog: JsonlCatalog) -> None:
    first = catalog.all()[0]
    assert catalog.get(first.id) == first
    assert catalog.get(first.id.lower()) == first
    assert catalog.get("P9999") is None


def test_find_by_title_full_and_partial_mentions(catalog: JsonlCatalog) -> None:
    for product in catalog.all()[::37]:
        assert catalog.find_by_title(f"is the {product.title} any good?") == product
    jacket = next(p for p in catalog.all() if p.subcategory == "rain-jackets")
    brand, model, *noun = jacket.title.split()
    found = catalog.find_by_title(f"does the {model} {' '.join(noun).lower()} by {brand} run big")
    assert found == jacket


def test_find_by_title_returns_none_for_unrelated_text(catalog: JsonlCatalog) -> None:
    assert catalog.find_by_title("where is my order?") is None
    assert catalog.find_by_title("I need a jacket") is None
    assert catalog.find_by_title("") is None


def test_bad_catalog_line_names_file_and_line(tmp_path: Path) -> None:
    good = (DEFAULT_DEMO_DIR / "catalog.jsonl").read_text().splitlines()[0]
    path = tmp_path / "catalog.jsonl"
    path.write_text(good + "\n{not json\n")
    with pytest.raises(StoreDataError, match=r"catalog.jsonl:2"):
        JsonlCatalog.load(path)
    path.write_text(good + "\n" + good.replace('"rating":', '"rating":9,"x":') + "\n")
    with pytest.raises(StoreDataError, match=r":2: invalid Product"):
        JsonlCatalog.load(path)
    with pytest.raises(StoreDataError, match="not found"):
        JsonlCatalog.load(tmp_path / "missing.jsonl")


def test_product_is_frozen(catalog: JsonlCatalog) -> None:
    product: Product = catalog.all()[0]
    with pytest.raises(ValueError):
        product.price = 1.0
