"""Slot extraction tables: each row is a message and the slots it must (and must not) yield."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.shop.catalog import JsonlCatalog, Product
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.synonyms import Synonym, read_synonyms
from core.turn.slots import SlotVocabulary, extract_slots

# A shop's words for this small vocabulary (the demo store's live in data/demo/synonyms.jsonl).
SYNONYMS = tuple(
    Synonym(phrase=phrase, category=category, attributes=attributes)
    for phrase, category, attributes in (
        ("rain jacket", "outerwear", ("waterproof",)),
        ("raincoat", "outerwear", ("waterproof",)),
        ("rain shell", "outerwear", ("waterproof",)),
        ("jacket", "outerwear", ()),
        ("headphones", "audio", ()),
        ("earbuds", "audio", ("wireless",)),
        ("boots", "footwear", ()),
        ("backpack", "bags", ()),
        ("moisturizer", "skincare", ()),
        ("warm", None, ("insulated",)),
    )
)
VOCABULARY = SlotVocabulary(
    categories=("outerwear", "footwear", "audio", "skincare", "bags"),
    attributes=("waterproof", "vegan", "wireless", "noise-cancelling", "insulated"),
    colors=("black", "blue", "red", "grey", "white", "green"),
    titles=(
        ("p-101", "Trailblazer Waterproof Jacket"),
        ("p-102", "Summit Rain Shell"),
        ("p-201", "Quietwave Noise-Cancelling Headphones"),
        ("p-301", "Daily Hydra Moisturizer"),
    ),
    synonyms=SYNONYMS,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I need a waterproof jacket under $100", {"budget_max": 100.0, "currency": "USD"}),
        ("between 50 and 80 euros", {"budget_min": 50.0, "budget_max": 80.0, "currency": "EUR"}),
        ("something between $20 and $35", {"budget_min": 20.0, "budget_max": 35.0}),
        ("100 bucks max for headphones", {"budget_max": 100.0, "currency": "USD"}),
        ("can't spend more than £60", {"budget_max": 60.0, "currency": "GBP"}),
        ("budget around 80 euros", {"budget_min": 64.0, "budget_max": 96.0, "currency": "EUR"}),
        ("less than 49.99 please", {"budget_max": 49.99}),
        ("over 200 dollars is fine", {"budget_min": 200.0, "budget_max": None}),
        ("a gift for my 10 year old niece", {"budget_min": None, "budget_max": None}),
        ("size 42 sneakers", {"budget_max": None, "sizes": ("42",)}),
        ("it weighs under 2 kg?", {"budget_max": None}),
        ("where is order 48213?", {"budget_max": None, "order_id": "48213"}),
    ],
)
def test_budget(text: str, expected: dict[str, Any]) -> None:
    slots = extract_slots(text, VOCABULARY)
    for key, value in expected.items():
        assert getattr(slots, key) == value, (text, key, slots)


@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("where is order 48213?", "48213"),
        ("any update on #51872", "51872"),
        ("order no. 30914 hasn't arrived", "30914"),
        ("my order number is: 77120", "77120"),
        ("40021 still not here", "40021"),
        ("cancel it please", None),
        ("I paid $12345 for this?", None),
        ("the second one", None),
        ("call me on 0151 496 0123", None),
        ("order 123456789", None),
        ("where is my order B-000123?", "b-000123"),  # a shop's own form (looked up as typed
        ("any news on #ORD48213", "ord48213"),  # or upper-cased)
        ("the wh-1000 headphones", None),  # a model number is not an order
    ],
)
def test_order_id(text: str, order_id: str | None) -> None:
    assert extract_slots(text, VOCABULARY).order_id == order_id


@pytest.mark.parametrize(
    ("text", "ordinal"),
    [
        ("the second one", 2),
        ("more like the first", 1),
        ("is the 3rd one waterproof?", 3),
        ("#2 please", 2),
        ("number 4 looks nice", 4),
        ("the last one in black?", -1),
        ("I like the last one", -1),
        ("first time ordering here", None),
        ("my last order never came", None),
        ("I ordered last week", None),
        ("where is order #48213", None),
        ("a jacket please", None),
    ],
)
def test_ordinal(text: str, ordinal: int | None) -> None:
    assert extract_slots(text, VOCABULARY).ordinal == ordinal


@pytest.mark.parametrize(
    ("text", "category", "attributes", "colors"),
    [
        ("rain jacket in navy", "outerwear", ("waterproof",), ("blue",)),
        ("need a raincoat", "outerwear", ("waterproof",), ()),
        ("good headphones for the gym", "audio", (), ()),
        ("earbuds with noise cancelling", "audio", ("wireless", "noise-cancelling"), ()),
        ("vegan boots in black", "footwear", ("vegan",), ("black",)),
        ("a grey backpack", "bags", (), ("grey",)),
        ("a gray backpack", "bags", (), ("grey",)),
        ("something warm for winter", None, ("insulated",), ()),
        ("waterproof please", None, ("waterproof",), ()),
        ("moisturizer for dry skin", "skincare", (), ()),
        ("tell me a joke", None, (), ()),
    ],
)
def test_vocabulary(
    text: str, category: str | None, attributes: tuple[str, ...], colors: tuple[str, ...]
) -> None:
    slots = extract_slots(text, VOCABULARY)
    assert slots.category == category
    assert slots.attributes == attributes
    assert slots.colors == colors


@pytest.mark.parametrize(
    ("text", "product_id"),
    [
        ("does the Trailblazer come in XL", "p-101"),
        ("is the summit rain shell breathable", "p-102"),
        ("quietwave battery life?", "p-201"),
        ("tell me about the Daily Hydra Moisturizer", "p-301"),
        ("is the jacket waterproof", None),  # names no product, only a category
        ("a moisturizer for dry skin", None),
    ],
)
def test_product_mentioned(text: str, product_id: str | None) -> None:
    assert extract_slots(text, VOCABULARY).product_id == product_id


@pytest.mark.parametrize(
    ("text", "cheaper"),
    [
        ("something cheaper", True),
        ("those are too expensive", True),
        ("anything more affordable?", True),
        ("show me more like the second", False),
    ],
)
def test_cheaper(text: str, cheaper: bool) -> None:
    assert extract_slots(text, VOCABULARY).cheaper is cheaper


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("do you have it in size M", ("M",)),
        ("need an XL", ("XL",)),
        ("fleece jacket, in medium", ("M",)),
        ("size 9.5 running shoes", ("9.5",)),
        ("a medium roast coffee gift", ()),
    ],
)
def test_sizes(text: str, sizes: tuple[str, ...]) -> None:
    assert extract_slots(text, VOCABULARY).sizes == sizes


def test_terms_keep_content_words_only() -> None:
    slots = extract_slots("I need a waterproof hiking jacket under $100 please", VOCABULARY)
    assert slots.terms == ("waterproof", "hiking", "jacket")


def test_empty_and_odd_input_gives_empty_slots() -> None:
    for text in ("", "   ", "🙂🙂", "x" * 10000, "¿dónde está mi pedido 48213?"):
        slots = extract_slots(text, VOCABULARY)
        assert slots.budget_max is None
    assert extract_slots("¿dónde está mi pedido 48213?", VOCABULARY).order_id == "48213"


def test_without_catalog_vocabulary_only_generic_slots() -> None:
    slots = extract_slots("rain jacket under 80 euros, the second one")
    assert slots.category is None and slots.attributes == ()
    assert (slots.budget_max, slots.currency, slots.ordinal) == (80.0, "EUR", 2)


@pytest.fixture(scope="module")
def demo_vocabulary() -> SlotVocabulary:
    return SlotVocabulary.from_catalog(
        JsonlCatalog.load(DEFAULT_DEMO_DIR / "catalog.jsonl"),
        read_synonyms(DEFAULT_DEMO_DIR / "synonyms.jsonl"),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I need a waterproof jacket under $100",
         {"category": "outerwear", "attributes": ("waterproof",), "budget_max": 100.0}),
        ("rain jacket in slate grey", {"category": "outerwear", "colors": ("slate grey",)}),
        ("good earbuds for the gym", {"category": "headphones-audio"}),
        ("headphones with noise cancelling",
         {"category": "headphones-audio", "attributes": ("noise-cancelling",)}),
        ("moisturizer for dry skin",
         {"category": "skincare", "attributes": ("for-dry-skin",), "product_id": None}),
        ("some ground coffee for my dad", {"category": "coffee-tea"}),
        ("a carry-on suitcase", {"category": "bags-travel", "attributes": ("carry-on-size",),
                                 "product_id": None}),
        ("is the Alpenglow Echo Rain Jacket breathable?", {"product_id": "P0001"}),
        ("does the Nimbus come in M", {"product_id": None, "sizes": ("M",)}),  # 12 Nimbus items
        ("shade medium, in a light colour", {"colors": ()}),
    ],
)
def test_demo_catalog_vocabulary(
    demo_vocabulary: SlotVocabulary, text: str, expected: dict[str, Any]
) -> None:
    slots = extract_slots(text, demo_vocabulary)
    for key, value in expected.items():
        assert getattr(slots, key) == value, (text, key, slots)


def beauty_product(number: int, title: str, brand: str, category: str, subcategory: str,
                   attributes: tuple[str, ...] = ()) -> Product:
    return Product(
        id=f"P{number:04d}", title=title, brand=brand, category=category,
        subcategory=subcategory, price=20.0, description="-", attributes=attributes,
        rating=4.0, review_count=1, stock=5, warranty_months=0,
    )


@pytest.fixture(scope="module")
def beauty_catalog() -> JsonlCatalog:
    """A shop in the style of Amazon Beauty: names with capitals, spaces and ampersands."""
    rows = [
        ("Lumen Repair Conditioner", "Verbena", "Hair Care", "Conditioners"),
        ("Lumen Repair Shampoo", "Verbena", "Hair Care", "Shampoos"),
        ("Orchid Night Perfume", "Maison Talia", "Fragrance", "Eau de Parfum"),
        ("Rose Veil Body Mist", "Maison Talia", "Fragrance", "Women's"),
        ("Cedar Road Eau de Toilette", "Maison Talia", "Fragrance", "Men's"),
        ("Velvet Cover Concealer", "Pigmenta", "Makeup", "Concealers & Neutralizers"),
        ("Aloe Calm Body Gel", "Greenleaf", "Skin Care", "Creams, Gels & Lotions"),
        ("Oat Milk Bath Soak", "Greenleaf", "Bath & Body", "Bath Salts"),
        ("Velvet Detangling Brush", "Verbena", "Tools & Accessories", "Brushes"),
    ]
    return JsonlCatalog([
        beauty_product(number, *row, attributes=("cruelty-free",) if number == 1 else ())
        for number, row in enumerate(rows, start=1)
    ])


@pytest.fixture(scope="module")
def beauty_vocabulary(beauty_catalog: JsonlCatalog) -> SlotVocabulary:
    return SlotVocabulary.from_catalog(beauty_catalog)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a fragrance for women under $40", {"category": "fragrance", "budget_max": 40.0}),
        ("a conditioner like the one I bought", {"category": "hair care", "product_id": None}),
        ("do you have shampoo?", {"category": "hair care"}),
        ("an eau de parfum for my mum", {"category": "fragrance"}),
        ("a good concealer", {"category": "makeup"}),
        ("a lotion for dry hands", {"category": "skin care"}),
        ("gels?", {"category": "skin care"}),
        ("some bath salts", {"category": "bath & body"}),
        ("a hair brush", {"category": "tools & accessories"}),
        ("something for my hair", {"category": "hair care"}),
        ("a cruelty free conditioner", {"attributes": ("cruelty-free",)}),
        ("tell me about the Orchid Night", {"product_id": "P0003"}),
        ("anything from Maison Talia?", {"product_id": None}),  # three products: ambiguous
        ("is the Velvet any good", {"product_id": None}),  # two brands' titles say Velvet
        ("is the Velvet from Pigmenta any good", {"product_id": "P0006"}),  # the brand decides
        ("a Verbena brush", {"product_id": None}),  # "brush" names a subcategory, not a product
        # No demo word leaks into another shop.
        ("a rain jacket under $100", {"category": None, "attributes": ()}),
        ("good earbuds", {"category": None}),
        ("a tent for two", {"category": None}),
    ],
)
def test_vocabulary_of_another_shop(
    beauty_vocabulary: SlotVocabulary, text: str, expected: dict[str, Any]
) -> None:
    slots = extract_slots(text, beauty_vocabulary)
    for key, value in expected.items():
        assert getattr(slots, key) == value, (text, key, slots)


def test_categories_keep_the_catalogs_names(beauty_vocabulary: SlotVocabulary) -> None:
    assert set(beauty_vocabulary.categories) == {
        "hair care", "fragrance", "makeup", "skin care", "bath & body", "tools & accessories"
    }


def test_vague_subcategory_words_name_no_category(beauty_vocabulary: SlotVocabulary) -> None:
    # "Women's" and "Men's" are subcategories of Fragrance, but a woman's shampoo is no perfume.
    assert extract_slots("something for men", beauty_vocabulary).category is None
    assert extract_slots("a shampoo for women", beauty_vocabulary).category == "hair care"


def test_a_shops_synonyms_file_is_applied(beauty_catalog: JsonlCatalog, tmp_path: Path) -> None:
    path = tmp_path / "synonyms.jsonl"
    path.write_text(
        '{"phrase": "perfume", "category": "Fragrance"}\n'
        '{"phrase": "vegan", "attributes": ["cruelty-free"]}\n'
        '{"phrase": "tent", "category": "hiking-camping"}\n'  # a category this shop lacks
    )
    vocabulary = SlotVocabulary.from_catalog(beauty_catalog, read_synonyms(path))
    assert extract_slots("a perfume for my sister", vocabulary).category == "fragrance"
    slots = extract_slots("a vegan shampoo", vocabulary)
    assert (slots.category, slots.attributes) == ("hair care", ("cruelty-free",))
    assert extract_slots("a tent", vocabulary).category is None
    assert extract_slots("a perfume", SlotVocabulary.from_catalog(beauty_catalog)).category is None


def test_a_fixed_vocabulary_is_its_own_source() -> None:
    assert VOCABULARY.current() is VOCABULARY
