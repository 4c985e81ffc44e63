"""Deterministic slot extraction: budgets, order ids, ordinals, catalog vocabulary, terms.

Pure functions over text and a small `SlotVocabulary` built from the catalog, so every rule is
tested with tables and both understanding backends share it (the LLM never invents slots).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from core.shop.catalog import Catalog, Product
from core.shop.synonyms import Synonym
from core.turn.understanding import Slots

# Words too vague to name a category alone ("home" in "at home", "Women's" under Fragrance).
VAGUE_CATEGORY_WORDS = frozenset({
    "home", "smart", "accessories", "accessory", "decor", "travel", "care", "case", "other",
    "women", "woman", "men", "man", "kids", "unisex", "set", "sets", "kit", "kits", "misc",
})
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
    suggestions ideas idea options option anything else cost costs size order think surprise
    pick choose fancy might guess lately next""".split()  # noqa: SIM905
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
# A five-digit number anywhere, or, after "order" or "#", a shop's own form: letters and
# digits such as "B-000123" or "ORD48213" (a store's order ids are opaque strings).
_SHOP_ORDER_ID = r"(\d{5}|[a-z]{1,4}-?\d{3,12})"
_ORDER_ID = re.compile(
    rf"(?:order|purchase|parcel|package)\s*(?:number|no\.?|num|id)?\s*[:#]?\s*{_SHOP_ORDER_ID}\b"
    rf"|#\s*{_SHOP_ORDER_ID}\b|(?<![\d$€£.,])(\d{{5}})(?![\d.,])",
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
_LETTERS = re.compile(r"[a-z]+")


# A compiled phrase: its first word (a cheap `in` test before the regex), the pattern, and what
# a match means.
_Phrase = tuple[str, re.Pattern[str], str | None, tuple[str, ...]]  # key, pattern, category, attrs
_Named = tuple[str, re.Pattern[str], str]  # key, pattern, name


@dataclass(frozen=True)
class SlotVocabulary:
    """What the catalog sells, in the words slots are matched against (lower case).

    Categories are the catalog's own names lower-cased ("hair care"), as the recommender filters
    by them. `synonyms` are the shop's phrases and the catalog's subcategories; a synonym's
    category or attribute counts only when the catalog has it."""

    categories: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    titles: tuple[tuple[str, str], ...] = ()  # (product id, title)
    brands: tuple[tuple[str, str], ...] = ()  # (product id, brand)
    synonyms: tuple[Synonym, ...] = ()
    # The catalog's own title matcher (`Catalog.find_by_title`), tried before the word match.
    find_product: Callable[[str], str | None] | None = field(
        default=None, hash=False, compare=False
    )
    # Derived lookups, computed once in __post_init__: slot extraction runs on every message.
    _phrases: tuple[_Phrase, ...] = field(default=(), init=False, repr=False, compare=False)
    _category_names: tuple[_Named, ...] = field(default=(), init=False, repr=False, compare=False)
    _category_parts: tuple[_Named, ...] = field(default=(), init=False, repr=False, compare=False)
    _attribute_names: tuple[_Named, ...] = field(default=(), init=False, repr=False, compare=False)
    _color_names: tuple[_Named, ...] = field(default=(), init=False, repr=False, compare=False)
    _known_colors: frozenset[str] = field(default=frozenset(), init=False, repr=False,
                                          compare=False)
    # Per product, the words that name it (distinctive title and brand words), and the reverse.
    _names: dict[str, frozenset[str]] = field(default_factory=dict, init=False, repr=False,
                                              compare=False)
    _named_by: dict[str, tuple[int, ...]] = field(default_factory=dict, init=False, repr=False,
                                                  compare=False)
    _unnamed: tuple[tuple[str, str], ...] = field(default=(), init=False, repr=False,
                                                  compare=False)  # titles with no such word

    def __post_init__(self) -> None:
        known_categories = set(self.categories)
        known_attributes = set(self.attributes)
        resolved: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        for synonym in self.synonyms:
            phrase = " ".join(synonym.phrase.lower().split())
            category = (synonym.category or "").strip().lower()
            before, wanted = resolved.get(phrase, (None, ()))
            named = before or (category if category in known_categories else None)
            kept = [a for a in (a.strip().lower() for a in synonym.attributes)
                    if a in known_attributes]
            resolved[phrase] = named, tuple(dict.fromkeys((*wanted, *kept)))
        # Longer phrases first, so "rain jacket" wins over "jacket".
        phrases = tuple(
            (_key(phrase), _pattern(phrase), named, wanted)
            for phrase, (named, wanted) in sorted(resolved.items(), key=lambda i: -len(i[0]))
            if named or wanted
        )
        names = tuple(
            (form, category)
            for category in self.categories
            for form in dict.fromkeys((category, _singular(category)))
        )
        generic = frozenset(
            word
            for phrase in (*resolved, *self.categories, *self.attributes, *self.colors)
            for word in _LETTERS.findall(phrase)
        )
        _set = object.__setattr__
        _set(self, "_phrases", phrases)
        _set(self, "_category_names", _compiled(sorted(names, key=lambda n: -len(n[0]))))
        _set(self, "_category_parts", _compiled(_category_parts(self.categories)))
        _set(self, "_attribute_names", _compiled((a, a) for a in self.attributes))
        _set(self, "_color_names",
             _compiled((c, c) for c in self.colors if c not in VAGUE_COLORS))
        _set(self, "_known_colors", frozenset(self.colors))
        product_names = _product_names(self.titles, self.brands, generic)
        _set(self, "_names", product_names)
        named_by: dict[str, list[int]] = {}
        for index, (product_id, _) in enumerate(self.titles):
            for word in product_names[product_id]:
                named_by.setdefault(word, []).append(index)
        _set(self, "_named_by", {word: tuple(found) for word, found in named_by.items()})
        _set(self, "_unnamed", tuple(
            (product_id, title) for product_id, title in self.titles
            if not product_names[product_id]
        ))

    def current(self) -> SlotVocabulary:
        """A fixed vocabulary is its own source (see `VocabularySource`)."""
        return self

    @classmethod
    def from_catalog(cls, catalog: Catalog, synonyms: Sequence[Synonym] = ()) -> SlotVocabulary:
        """Everything from the catalog: its categories, attributes, colours, titles and brands,
        each subcategory as one more way to name its category, and the shop's `synonyms`."""
        products = catalog.all()
        categories = _lower_all(catalog.categories())

        def find_product(text: str) -> str | None:
            product = catalog.find_by_title(text)
            return str(product.id) if product is not None else None

        return cls(
            categories=categories,
            attributes=_lower_all(catalog.attributes()),
            colors=_lower_all(catalog.colors()),
            titles=tuple((str(p.id), str(p.title)) for p in products),
            brands=tuple((str(p.id), str(p.brand)) for p in products if p.brand),
            synonyms=(*synonyms, *_subcategory_synonyms(products, categories)),
            find_product=find_product,
        )


class VocabularySource(Protocol):
    """Where an understander gets the vocabulary for a message: a fixed `SlotVocabulary`, or one
    that follows the catalog as it changes."""

    def current(self) -> SlotVocabulary: ...


def _key(phrase: str) -> str:
    """The first word of `phrase` as `_pattern` matches it: a pattern cannot match without it."""
    return re.split(r"[\s-]+", phrase, maxsplit=1)[0]


def _compiled(named: Iterable[tuple[str, str]]) -> tuple[_Named, ...]:
    return tuple((_key(phrase), _pattern(phrase), name) for phrase, name in named)


def _words(name: str) -> list[str]:
    """The words of a catalog name, apostrophes kept inside ("women's")."""
    return [w.rstrip("'") for w in re.findall(r"[a-z0-9][a-z0-9']*", name.replace("’", "'"))]


def _singular(phrase: str) -> str:
    """`phrase` with its last word made singular: "conditioners" -> "conditioner",
    "brushes" -> "brush", "women's" -> "women"; words that only look plural stay."""
    head, _, word = phrase.rpartition(" ")
    if word.endswith("'s"):
        word = word[:-2]
    elif len(word) <= 3 or word.endswith(("ss", "us", "is")):
        pass
    elif word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith(("sses", "shes", "ches", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s"):
        word = word[:-1]
    return f"{head} {word}" if head else word


def _vague(word: str) -> bool:
    word = word.removesuffix("'s")
    return len(word) < 3 or word in VAGUE_CATEGORY_WORDS or word in STOPWORDS


# Where a catalog name lists several things: "Creams, Gels & Lotions", "Bath and Body".
_NAME_PARTS = re.compile(r"\s*(?:[,&+/;|]|\band\b)\s*")


def _name_phrases(name: str) -> list[str]:
    """What a customer may write for a subcategory: each thing it lists, as written and
    singular ("creams", "cream", "gels", "gel", ...), less single words too vague alone."""
    phrases: list[str] = []
    for part in _NAME_PARTS.split(name.lower()):
        written = " ".join(_words(part))
        for form in dict.fromkeys((written, _singular(written))):
            if form and (" " in form or not _vague(form)):
                phrases.append(form)
    return phrases


def _subcategory_synonyms(
    products: Sequence[Product], categories: Sequence[str]
) -> list[Synonym]:
    """Each subcategory's phrases as synonyms of its category; a phrase that two categories
    share, or that is a category's own name, names none (the name itself is matched anyway)."""
    pairs = sorted({
        (str(p.subcategory).lower(), str(p.category).strip().lower())
        for p in products if p.subcategory and p.category
    })
    owners: dict[str, set[str]] = {}
    for subcategory, category in pairs:
        for phrase in _name_phrases(subcategory):
            owners.setdefault(phrase, set()).add(category)
    taken = {form for c in categories for form in (" ".join(_words(c)), _singular(c))}
    return [
        Synonym(phrase=phrase, category=next(iter(found)))
        for phrase, found in owners.items()
        if len(found) == 1 and phrase not in taken and _singular(phrase) not in taken
    ]


def _category_parts(categories: Sequence[str]) -> list[tuple[str, str]]:
    """One distinctive word of a compound name names it: "coffee" -> "coffee-tea",
    "hair" -> "hair care"; a word two categories share names neither."""
    parts = [
        (word, category)
        for category in sorted(categories)
        if len(words := _words(category)) > 1
        for word in words
        if not _vague(word)
    ]
    counts = Counter(word for word, _ in dict.fromkeys(parts))
    return [(word, category) for word, category in parts if counts[word] == 1]


def _product_names(
    titles: Sequence[tuple[str, str]],
    brands: Sequence[tuple[str, str]],
    generic: frozenset[str],
) -> dict[str, frozenset[str]]:
    """Per product, the words that name it: its distinctive title words, and its brand's words
    that no other brand's products use (a brand "Quarry House" names nothing by "house")."""
    brand_of = {product_id: brand.lower() for product_id, brand in brands}
    title_words = {product_id: _LETTERS.findall(title.lower()) for product_id, title in titles}
    users: dict[str, set[str]] = {}
    for product_id, words in title_words.items():
        owner = brand_of.get(product_id, "")
        for word in (*words, *_LETTERS.findall(owner)):
            users.setdefault(word, set()).add(owner)
    brand_names = {
        brand: {w for w in _distinctive(brand, generic) if users.get(w) == {brand}}
        for brand in set(brand_of.values())
    }
    return {
        product_id: frozenset(
            {w for w in words if _names_a_product(w, generic)}
            | brand_names.get(brand_of.get(product_id, ""), set())
        )
        for product_id, words in title_words.items()
    }


def _names_a_product(word: str, generic: frozenset[str]) -> bool:
    return len(word) > 3 and word not in STOPWORDS and word not in generic


def _distinctive(title: str, generic: frozenset[str]) -> set[str]:
    return {w for w in _LETTERS.findall(title.lower()) if _names_a_product(w, generic)}


def _lower_all(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v).strip().lower() for v in values if str(v).strip()))


def extract_slots(text: str, vocabulary: SlotVocabulary | None = None) -> Slots:
    """Every detail a message states: budget, order id, ordinal, vocabulary matches, terms.
    Without a vocabulary only catalog-independent slots are found."""
    vocabulary = vocabulary or _no_catalog()
    lowered = " ".join(text.lower().split())
    order_id = find_order_id(lowered)
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


def find_order_id(text: str) -> str | None:
    """The order number in a (lower-cased) message, if any."""
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


def _found(text: str, named: Iterable[_Named]) -> Iterator[tuple[int, str]]:
    """(position, name) of each name found in `text`, in the order given."""
    for key, pattern, name in named:
        if key in text and (match := pattern.search(text)):
            yield match.start(), name


def _category_and_attributes(
    text: str, vocabulary: SlotVocabulary
) -> tuple[str | None, tuple[str, ...]]:
    category: str | None = None
    found: list[tuple[int, str]] = []  # (position in text, attribute)
    for key, pattern, named, wanted in vocabulary._phrases:
        if key not in text or (match := pattern.search(text)) is None:
            continue
        category = category or named
        found.extend((match.start(), attribute) for attribute in wanted)
    if category is None:  # the category's own name, then one distinctive word of it
        category = next((name for _, name in _found(text, vocabulary._category_names)), None)
    if category is None:
        category = next((name for _, name in _found(text, vocabulary._category_parts)), None)
    found.extend(_found(text, vocabulary._attribute_names))
    return category, tuple(dict.fromkeys(a for _, a in sorted(found)))


def _colors(text: str, vocabulary: SlotVocabulary) -> tuple[str, ...]:
    found = list(_found(text, vocabulary._color_names))
    known = vocabulary._known_colors
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


MAX_NAMED_BY_WORD = 50


def _product(text: str, vocabulary: SlotVocabulary) -> str | None:
    """The catalog product the message names. The catalog's own matcher is asked first, then
    the titles sharing the most distinctive words (names, brands) with the message; a product
    counts as named only through such a word, and a tie is ambiguous (None)."""
    words = set(_LETTERS.findall(text))
    naming = [word for word in words if word in vocabulary._named_by]
    if not naming:
        return None  # no product name or brand in the message: skip the title search
    if vocabulary.find_product is not None:
        found = vocabulary.find_product(text)
        if found is not None and vocabulary._names.get(found, frozenset()) & words:
            return found
    hits: Counter[int] = Counter()
    for word in naming:
        products = vocabulary._named_by[word]
        # A word in many titles ("waterproof" in a beauty shop) names none of them alone; the
        # catalog's own matcher above weighs such words against the rest of the title.
        if len(products) <= MAX_NAMED_BY_WORD:
            hits.update(products)
    candidates = [(*vocabulary.titles[index], count) for index, count in hits.items()]
    candidates += [(product_id, title, 0) for product_id, title in vocabulary._unnamed]
    scored: list[tuple[int, str]] = []
    for product_id, title, count in candidates:
        title = title.lower()
        if title and title in text:
            scored.append((100 + len(title), product_id))
        elif count:
            scored.append((count, product_id))
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
