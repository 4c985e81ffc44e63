"""Slot extraction tables: each row is a message and the slots it must (and must not) yield."""

from __future__ import annotations

from typing import Any

import pytest

from core.turn.slots import SlotVocabulary, extract_slots

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
    from core.shop.catalog import JsonlCatalog
    from core.shop.demo.generator import DEFAULT_DEMO_DIR

    return SlotVocabulary.from_catalog(JsonlCatalog.load(DEFAULT_DEMO_DIR / "catalog.jsonl"))


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
