"""Deterministic slot extraction: budgets, order ids, ordinals, catalog vocabulary, terms.

Pure functions over text and a small `SlotVocabulary` built from the catalog, so every rule is
tested with tables and both understanding backends share it (the LLM never invents slots).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from core.turn.understanding import Slots

# Phrases customers use for a category or a wanted attribute. Each maps to candidate category
# names (the first one the catalog has wins) and to attributes (kept when the catalog has them).
OUTERWEAR = ("outerwear", "jackets")
AUDIO = ("headphones-audio", "audio", "headphones", "electronics")
FOOTWEAR = ("footwear", "shoes")
SKINCARE = ("skincare", "beauty")
BAGS = ("bags-travel", "bags", "luggage", "travel")
CAMPING = ("hiking-camping", "camping", "outdoor")
SYNONYMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rain jacket": (OUTERWEAR, ("waterproof",)),
    "raincoat": (OUTERWEAR, ("waterproof",)),
    "rain coat": (OUTERWEAR, ("waterproof",)),
    "rain shell": (OUTERWEAR, ("waterproof",)),
    "jacket": (OUTERWEAR, ()),
    "coat": (OUTERWEAR, ()),
    "parka": (OUTERWEAR, ("insulated",)),
    "puffer": (OUTERWEAR, ("insulated",)),
    "fleece": (OUTERWEAR, ()),
    "windbreaker": (OUTERWEAR, ("windproof",)),
    "headphones": (AUDIO, ()),
    "headphone": (AUDIO, ()),
    "earbuds": (AUDIO, ("wireless",)),
    "earphones": (AUDIO, ()),
    "headset": (AUDIO, ()),
    "speaker": (AUDIO, ()),
    "shoes": (FOOTWEAR, ()),
    "sneakers": (FOOTWEAR, ()),
    "trainers": (FOOTWEAR, ()),
    "boots": (FOOTWEAR, ()),
    "sandals": (FOOTWEAR, ()),
    "running shoes": (FOOTWEAR, ()),
    "hiking boots": (FOOTWEAR, ()),
    "moisturizer": (SKINCARE, ()),
    "moisturiser": (SKINCARE, ()),
    "face cream": (SKINCARE, ()),
    "serum": (SKINCARE, ()),
    "cleanser": (SKINCARE, ()),
    "sunscreen": (SKINCARE, ()),
    "shampoo": (("haircare", "beauty"), ()),
    "conditioner": (("haircare", "beauty"), ()),
    "lipstick": (("makeup", "beauty"), ()),
    "mascara": (("makeup", "beauty"), ()),
    "foundation": (("makeup", "beauty"), ()),
    "backpack": (BAGS, ()),
    "rucksack": (BAGS, ()),
    "suitcase": (BAGS, ()),
    "luggage": (BAGS, ()),
    "tent": (CAMPING, ()),
    "sleeping bag": (CAMPING, ()),
    "headlamp": (CAMPING, ()),
    "smartwatch": (("running-fitness", "wearables", "electronics"), ()),
    "yoga mat": (("running-fitness",), ()),
    "phone case": (("phones-accessories", "accessories", "electronics"), ()),
    "charger": (("phones-accessories", "electronics"), ()),
    "novel": (("books",), ()),
    "cookbook": (("books",), ()),
    "board game": (("toys-games",), ()),
    "puzzle": (("toys-games",), ()),
    "toy": (("toys-games",), ()),
    "lamp": (("home-decor", "smart-home"), ()),
    "cushion": (("home-decor",), ()),
    "candle": (("home-decor",), ()),
    "frying pan": (("kitchen",), ()),
    "kettle": (("kitchen",), ()),
    "thermostat": (("smart-home",), ()),
    "waterproof": ((), ("waterproof",)),
    "water resistant": ((), ("water-resistant", "waterproof")),
    "for the rain": ((), ("waterproof",)),
    "in the rain": ((), ("waterproof",)),
    "noise cancelling": ((), ("noise-cancelling",)),
    "noise canceling": ((), ("noise-cancelling",)),
    "bluetooth": ((), ("bluetooth", "wireless")),
    "cordless": ((), ("wireless",)),
    "vegan leather": ((), ("vegan",)),
    "cruelty free": ((), ("cruelty-free", "vegan")),
    "fragrance free": ((), ("fragrance-free",)),
    "unscented": ((), ("fragrance-free",)),
    "dry skin": ((), ("for-dry-skin",)),
    "oily skin": ((), ("for-oily-skin",)),
    "carry on": ((), ("carry-on-size",)),
    "hand luggage": ((), ("carry-on-size",)),
    "machine wash": ((), ("machine-washable",)),
    "dishwasher": ((), ("dishwasher-safe",)),
    "fast charging": ((), ("fast-charging",)),
    "voice control": ((), ("voice-control",)),
    "alexa": ((), ("voice-control",)),
    "warm": ((), ("insulated", "warm")),
    "lightweight": ((), ("lightweight",)),
    "light weight": ((), ("lightweight",)),
}

# Words of a category name too vague to name it alone ("home" in "at home").
VAGUE_CATEGORY_WORDS = frozenset({"home", "smart", "accessories", "decor", "travel", "care"})
# Catalog colour names that are also everyday words or sizes ("light", "medium" shades).
VAGUE_COLORS = frozenset({"light", "deep", "fair", "medium", "natural", "clear", "nude"})

COLOR_SYNONYMS = {
    "gray": "grey", "grey": "gray", "navy": "blue", "beige": "tan", "burgundy": "red",
    "maroon": "red", "olive": "green", "khaki": "green", "cream": "white", "off-white": "white",
}

CURRENCY_WORDS = {
    "$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD", "buck": "USD",
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP",
}

ORDINAL_WORDS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "last": -1, "final": -1,
}

LETTER_SIZES = ("xxs", "xs", "s", "m", "l", "xl", "xxl", "xxxl")
SIZE_WORDS = {"small": "S", "medium": "M", "large": "L"}

STOPWORDS = frozenset(
    """a an the and or but if of for to in on at by with from up about into over after under
    below above between than then so too very can could would should will shall may might must
    do does did done have has had having be is am are was were been being i me my mine we us our
    you your yours he him his she her it its they them their this that these those what which who
    whom whose where when why how any some something anything all each other more most less
    such no nor not only own same just also please pls plz thanks thank hi hello hey want wanted
    need needs looking look show find get got give like id im ive dont cant its thats whats one
    ones maybe something kind sort really much many good nice new buy around max budget bucks
    dollars euros pounds quid usd eur gbp cheap cheaper expensive pricey price there here ok okay
    sure yes yeah you've i'm i'd i'll don't can't it's that's what's let lets recommend suggest
    suggestions ideas idea options option anything else cost costs size order""".split()  # noqa: SIM905
)

_NUMBER = r"(\d{1,6}(?:[.,]\d{1,2})?)"
_UNIT_AFTER = re.compile(
    r"^\s*(?:%|cm|mm|m\b|km|kg|g\b|lbs?|inch|inches|in\b|\"|ml|l\b|days?|weeks?|months?|"
    r"years?|yo\b|hours?|mins?|minutes?|pcs|pieces|x\b|mah|w\b|gb|tb)",
    re.IGNORECASE,
)
_CURRENCY_BEFORE = re.compile(r"([$€£])\s*$")
_CURRENCY_AFTER = re.compile(r"^\s*([$€£]|usd|eur|gbp|dollars?|bucks?|euros?|pounds?|quid)\b",
                             re.IGNORECASE)
_RANGE = re.compile(
    rf"(?:between\s+)?[$€£]?\s*{_NUMBER}\s*(?:[$€£]|usd|eur|gbp|dollars?|bucks|euros?|pounds?)?"
    rf"\s*(?:-|–|to|and)\s*[$€£]?\s*{_NUMBER}",
    re.IGNORECASE,
)
_MAX_CUE = re.compile(
    r"(?:under|below|less than|lower than|cheaper than|no more than|not more than|at most|"
    r"up to|upto|max(?:imum)?|within|<|budget(?: of| is)?(?: about| around)?|for about|"
    r"for around|around|about|roughly|approx(?:imately)?|~)\s*$",
    re.IGNORECASE,
)
_MIN_CUE = re.compile(
    r"(?:over|above|more than|at least|min(?:imum)?|from|>|starting at)\s*$", re.IGNORECASE
)
_APPROX_CUE = re.compile(r"(?:around|about|roughly|approx(?:imately)?|~)\s*$", re.IGNORECASE)
_ORDER_ID = re.compile(
    r"(?:order|purchase|parcel|package)\s*(?:number|no\.?|num|id)?\s*[:#]?\s*(\d{5})\b"
    r"|#\s*(\d{5})\b|(?<![\d$€£.,])(\d{5})(?![\d.,])",
    re.IGNORECASE,
)
_ORDINAL_NUMBER = re.compile(
    r"(?:#|number\s*|no\.?\s*|option\s*|item\s*)(\d)\b(?!\d)", re.IGNORECASE
)
_CHEAPER = re.compile(
    r"\b(?:cheaper|less expensive|lower price|more affordable|too (?:expensive|pricey|much)|"
    r"something cheap|budget option|costs? less|a bit less)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-zA-Z][a-zA-Z'-]*")


@dataclass(frozen=True)
class SlotVocabulary:
    """What the catalog sells, in the words slots are matched against (lower case)."""

    categories: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    titles: tuple[tuple[str, str], ...] = ()  # (product id, title)
    synonyms: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(
        default_factory=lambda: dict(SYNONYMS), hash=False, compare=False
    )
    # The catalog's own title matcher (`Catalog.find_by_title`), tried before the word match.
    find_product: Callable[[str], str | None] | None = field(
        default=None, hash=False, compare=False
    )

    def __post_init__(self) -> None:
        # Derived lookups, computed once: slot extraction runs on every message.
        generic = _generic_words(self)
        object.__setattr__(self, "_generic", generic)
        object.__setattr__(self, "_phrases", tuple(
            (phrase, _pattern(phrase)) for phrase in sorted(self.synonyms, key=len, reverse=True)
        ))
        distinct = tuple(
            (product_id, title.lower(), frozenset(_distinctive(title, generic)))
            for product_id, title in self.titles
        )
        object.__setattr__(self, "_distinct", distinct)
        object.__setattr__(self, "_any_distinct", frozenset().union(*(d[2] for d in distinct)))

    @classmethod
    def from_catalog(cls, catalog: Any) -> SlotVocabulary:
        """Built from a `core.shop.catalog.Catalog`: its categories, attributes, colours, titles,
        and each subcategory ("rain-jackets") as one more way to name its category."""
        synonyms = dict(SYNONYMS)
        for product in catalog.all():
            subcategory = str(getattr(product, "subcategory", "") or "").lower()
            phrase = subcategory.replace("-", " ").strip()
            if phrase and phrase not in synonyms:
                synonyms[phrase] = ((str(product.category).lower(),), ())

        def find_product(text: str) -> str | None:
            product = catalog.find_by_title(text)
            return str(product.id) if product is not None else None

        return cls(
            categories=_lower_all(catalog.categories()),
            attributes=_lower_all(catalog.attributes()),
            colors=_lower_all(catalog.colors()),
            titles=tuple((str(p.id), str(p.title)) for p in catalog.all()),
            synonyms=synonyms,
            find_product=find_product,
        )


def _generic_words(vocabulary: SlotVocabulary) -> frozenset[str]:
    """Words that describe kinds of products, not one product: never enough to name one."""
    phrases = (*vocabulary.synonyms, *vocabulary.categories, *vocabulary.attributes,
               *vocabulary.colors)
    return frozenset(word for phrase in phrases for word in re.findall(r"[a-z]+", phrase))


def _distinctive(title: str, generic: frozenset[str]) -> set[str]:
    return {
        w for w in re.findall(r"[a-z]+", title.lower())
        if len(w) > 3 and w not in STOPWORDS and w not in generic
    }


def _lower_all(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v).strip().lower() for v in values if str(v).strip()))


def extract_slots(text: str, vocabulary: SlotVocabulary | None = None) -> Slots:
    """Every detail a message states: budget, order id, ordinal, vocabulary matches, terms.
    Without a vocabulary only catalog-independent slots are found."""
    vocabulary = vocabulary or _no_catalog()
    lowered = " ".join(text.lower().split())
    order_id = _order_id(lowered)
    masked = lowered.replace(order_id, " ") if order_id else lowered
    budget_min, budget_max, currency = _budget(masked)
    category, attributes = _category_and_attributes(lowered, vocabulary)
    return Slots(
        category=category,
        budget_min=budget_min,
        budget_max=budget_max,
        currency=currency or "USD",
        attributes=attributes,
        colors=_colors(lowered, vocabulary),
        sizes=_sizes(lowered),
        product_id=_product(lowered, vocabulary),
        order_id=order_id,
        ordinal=_ordinal(lowered),
        cheaper=bool(_CHEAPER.search(lowered)),
        terms=_terms(masked),
    )


@cache
def _no_catalog() -> SlotVocabulary:
    return SlotVocabulary()


def _order_id(text: str) -> str | None:
    for match in _ORDER_ID.finditer(text):
        number = next(group for group in match.groups() if group)
        before, after = text[: match.start()], text[match.end() :]
        # "12345 dollars" or "$12345" is money, not an order.
        if _CURRENCY_BEFORE.search(before) or _CURRENCY_AFTER.match(after):
            continue
        return number
    return None


def _amount(raw: str) -> float:
    return float(raw.replace(",", "."))


def _currency_near(before: str, after: str) -> str | None:
    found = _CURRENCY_BEFORE.search(before[-3:]) or _CURRENCY_AFTER.match(after)
    return CURRENCY_WORDS[found.group(1).lower()] if found else None


def _budget(text: str) -> tuple[float | None, float | None, str | None]:
    currency: str | None = None
    for match in re.finditer(r"[$€£]|\b(?:usd|eur|gbp|dollars?|bucks?|euros?|pounds?|quid)\b",
                             text):
        currency = CURRENCY_WORDS[match.group(0)]
        break
    ranged = _RANGE.search(text)
    if ranged:
        before, after = text[: ranged.start()], text[ranged.end() :]
        money = (
            "between" in ranged.group(0)
            or currency is not None
            or bool(re.search(r"(?:budget|price|spend|cost)\w*\W*$", before))
        )
        low, high = _amount(ranged.group(1)), _amount(ranged.group(2))
        if money and not _UNIT_AFTER.match(after) and 0 < low < high:
            return low, high, currency
    budget_min: float | None = None
    budget_max: float | None = None
    for match in re.finditer(rf"(?<![\w#.]){_NUMBER}(?![\d])", text):
        before, after = text[: match.start()], text[match.end() :]
        if _UNIT_AFTER.match(after) or re.search(r"(?:size|#|number|no\.?|order)\s*$", before):
            continue
        value = _amount(match.group(1))
        near = _currency_near(before, after)
        if _APPROX_CUE.search(before):
            budget_min, budget_max = round(value * 0.8, 2), round(value * 1.2, 2)
        elif _MAX_CUE.search(before):
            budget_max = value
        elif _MIN_CUE.search(before):
            budget_min = value
        elif near:
            budget_max = value  # "100 bucks", "$80": a stated amount is a ceiling
        else:
            continue
        currency = currency or near
    return budget_min, budget_max, currency if (budget_min or budget_max) else None


@cache
def _pattern(phrase: str) -> re.Pattern[str]:
    """`phrase` or its plural as whole words; spaces and hyphens are interchangeable, so
    "noise cancelling" finds "noise-cancelling"."""
    parts = r"[\s-]?".join(re.escape(p) for p in re.split(r"[\s-]+", phrase))
    return re.compile(r"\b" + parts + r"s?\b")


def _find(text: str, phrase: str) -> int:
    """Where `phrase` starts in `text` (see `_pattern`); -1 when absent."""
    match = _pattern(phrase).search(text)
    return match.start() if match else -1


def _category_and_attributes(
    text: str, vocabulary: SlotVocabulary
) -> tuple[str | None, tuple[str, ...]]:
    category: str | None = None
    found: list[tuple[int, str]] = []  # (position in text, attribute)
    known_categories = set(vocabulary.categories)
    known_attributes = set(vocabulary.attributes)
    # Longer phrases first, so "rain jacket" wins over "jacket".
    for phrase, pattern in vocabulary._phrases:  # type: ignore[attr-defined]
        match = pattern.search(text)
        if match is None:
            continue
        position = match.start()
        candidates, wanted = vocabulary.synonyms[phrase]
        if category is None:
            category = next((c for c in candidates if c in known_categories), None)
        attribute = next((a for a in wanted if a in known_attributes), None)
        if attribute is not None:
            found.append((position, attribute))
    if category is None:
        category = next(
            (c for c in sorted(known_categories, key=len, reverse=True) if _find(text, c) >= 0),
            None,
        )
    if category is None:  # one distinctive word of a compound name: "coffee" -> "coffee-tea"
        category = next(
            (
                c
                for c in sorted(known_categories)
                for part in c.split("-")
                if len(c.split("-")) > 1 and part not in VAGUE_CATEGORY_WORDS
                and _find(text, part) >= 0
            ),
            None,
        )
    found.extend((_find(text, a), a) for a in vocabulary.attributes if _find(text, a) >= 0)
    return category, tuple(dict.fromkeys(a for _, a in sorted(found)))


def _colors(text: str, vocabulary: SlotVocabulary) -> tuple[str, ...]:
    found: list[tuple[int, str]] = []
    for color in vocabulary.colors:
        if color in VAGUE_COLORS:
            continue
        position = _find(text, color)
        if position >= 0:
            found.append((position, color))
    known = set(vocabulary.colors)
    for match in _WORD.finditer(text):
        synonym = COLOR_SYNONYMS.get(match.group(0))
        if synonym in known and match.group(0) not in known:
            found.append((match.start(), synonym))
    # "slate grey" also contains "grey": keep the longest name at each place.
    found.sort(key=lambda item: (item[0], -len(item[1])))
    kept: list[str] = []
    end = -1
    for position, color in found:
        if position >= end:
            kept.append(color)
            end = position + len(color)
        elif color not in kept and not any(color in longer for longer in kept):
            kept.append(color)
    return tuple(dict.fromkeys(kept))


def _sizes(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for match in re.finditer(r"\bsize\s+([a-z0-9.]{1,4})\b", text):
        value = match.group(1)
        found.append(SIZE_WORDS.get(value, value.upper()))
    for match in re.finditer(r"\b(xxs|xs|xl|xxl|xxxl|[2-4]xl)\b", text):
        found.append(match.group(1).upper())
    for match in re.finditer(
        r"\b(?:in|a|an|size)\s+(s|m|l|small|medium|large)\b"
        r"(?!\s+(?:roast|heat|rare|term|length|grind|bowl|pan|pot|box|bag|sized?|[a-z]+ness))",
        text,
    ):
        value = match.group(1)
        found.append(SIZE_WORDS.get(value, value.upper()))
    return tuple(dict.fromkeys(found))


def _ordinal(text: str) -> int | None:
    for match in re.finditer(r"\b(" + "|".join(ORDINAL_WORDS) + r")\b(?:\s+(\w+))?", text):
        word, following = match.group(1), match.group(2) or ""
        # "first time", "last week", "last order" are not references to a shown item.
        if following in {"time", "week", "weekend", "month", "year", "night", "order", "orders",
                         "day", "days", "purchase", "email", "try", "of"}:
            continue
        if word == "first" and following in {"", "of"} and not re.search(r"\bthe first\b", text):
            continue
        return ORDINAL_WORDS[word]
    number = _ORDINAL_NUMBER.search(text)
    if number and 1 <= int(number.group(1)) <= 9:
        return int(number.group(1))
    return None


def _product(text: str, vocabulary: SlotVocabulary) -> str | None:
    """The catalog product the message names. The catalog's own matcher is asked first, then
    the titles sharing the most distinctive words (names, brands) with the message; a product
    counts as named only through such a word, and a tie is ambiguous (None)."""
    words = set(re.findall(r"[a-z]+", text))
    if not words & vocabulary._any_distinct:  # type: ignore[attr-defined]
        return None  # no product name or brand in the message: skip the title search
    distinct = vocabulary._distinct  # type: ignore[attr-defined]
    if vocabulary.find_product is not None:
        found = vocabulary.find_product(text)
        if found is not None and any(
            product_id == found and names & words for product_id, _, names in distinct
        ):
            return found
    scored: list[tuple[int, str]] = []
    for product_id, title, names in distinct:
        if title and title in text:
            scored.append((100 + len(title), product_id))
            continue
        hits = len(names & words)
        if hits:
            scored.append((hits, product_id))
    if not scored:
        return None
    scored.sort(reverse=True)
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        return None
    return scored[0][1]


def _terms(text: str) -> tuple[str, ...]:
    words = [w.strip("'-") for w in _WORD.findall(text)]
    kept = [w for w in words if len(w) > 1 and w not in STOPWORDS and w not in ORDINAL_WORDS]
    return tuple(dict.fromkeys(kept))[:12]
