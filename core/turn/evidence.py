"""The facts behind one suggestion, gathered from the product, the request and the history.

Pure functions over catalog products: every field of the returned `Evidence` can be checked
against the product record, so an explanation built from it states only true things.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from core.turn.recommendation import Evidence, RecommendationRequest

if TYPE_CHECKING:
    from core.shop.catalog import Product

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "for",
        "from",
        "get",
        "got",
        "have",
        "i",
        "i'd",
        "i'm",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "need",
        "of",
        "on",
        "or",
        "our",
        "please",
        "show",
        "some",
        "something",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "under",
        "over",
        "up",
        "us",
        "want",
        "wants",
        "we",
        "with",
        "without",
        "would",
        "you",
        "your",
        "looking",
        "look",
        "find",
        "buy",
        "gift",
        "like",
        "one",
        "ones",
        "good",
        "best",
        "new",
        "nice",
        "really",
        "very",
        "much",
        "more",
        "less",
        "than",
        "about",
        "around",
        "dollars",
        "usd",
        "price",
        "cheap",
        "cheaper",
        "who",
        "what",
        "which",
        "he",
        "she",
        "him",
        "her",
        "his",
        "hers",
        "budget",
    ]
)
SIMILAR_HISTORY_LIMIT = 2


def words(text: str) -> list[str]:
    """Lower-case word tokens, hyphenated words kept whole."""
    return _WORD.findall(text.lower())


def singular(word: str) -> str:
    """A crude singular form so "jackets" matches "jacket" and "boots" matches "boot"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def request_terms(text: str) -> tuple[str, ...]:
    """Content words of a request, in order, without duplicates or filler words."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOPWORDS and len(word) > 2 and not word.isdigit():
            seen.setdefault(word, None)
    return tuple(seen)


def product_stems(product: Product) -> frozenset[str]:
    """Stems of every word the product's record says about it."""
    return _stems(
        " ".join(
            (
                product.title,
                product.brand,
                product.category,
                product.subcategory,
                product.description,
                product.materials,
                " ".join(product.attributes),
                " ".join(product.colors),
            )
        )
    )


# Evidence is gathered for every suggestion against every past purchase: the word work is done
# once per distinct text (a catalog's worth), not once per comparison.
@lru_cache(maxsize=1 << 16)
def _stems(text: str) -> frozenset[str]:
    stems = {singular(word) for word in words(text)}
    # Hyphenated tags also match their parts: "water-resistant" matches "water".
    stems |= {singular(part) for word in words(text) if "-" in word for part in word.split("-")}
    return frozenset(stems)


@lru_cache(maxsize=1 << 16)
def _title_stems(title: str) -> frozenset[str]:
    return frozenset(singular(w) for w in words(title) if w not in STOPWORDS and len(w) > 2)


def has_tag(product: Product, tag: str) -> bool:
    """The product carries this attribute or colour (case-insensitive)."""
    wanted = tag.strip().lower()
    return any(wanted == value.lower() for value in (*product.attributes, *product.colors))


def in_category(product: Product, category: str) -> bool:
    wanted = category.strip().lower()
    return wanted in (product.category.lower(), product.subcategory.lower())


def resembles(product: Product, other: Product) -> bool:
    """`other` (a past purchase) is like `product`: the same subcategory, or the same
    category and a shared title word."""
    if product.id == other.id:
        return False
    if product.subcategory and product.subcategory.lower() == other.subcategory.lower():
        return True
    if product.category.lower() != other.category.lower():
        return False
    return bool(_title_stems(product.title) & _title_stems(other.title))


def gather(
    product: Product,
    request: RecommendationRequest,
    history: Sequence[Product] = (),
    like: Product | None = None,
) -> Evidence:
    """The evidence for suggesting `product` in answer to `request`.

    `history` is the customer's past products, most recent last; `like` the product they asked
    for more of.
    """
    stems = product_stems(product)
    terms = tuple(term for term in request_terms(request.text) if _matches(term, stems))
    tags = tuple(
        dict.fromkeys(
            tag for tag in (*request.attributes, *request.colors) if has_tag(product, tag)
        )
    )
    similar = _similar_history(product, history)
    return Evidence(
        matched_terms=terms,
        matched_attributes=tags,
        category_match=request.category is not None and in_category(product, request.category),
        similar_history=similar,
        similar_to=like.title if like is not None and like.id != product.id else None,
        rating=product.rating,
        review_count=product.review_count,
        price=product.price,
        budget_max=request.budget_max,
        in_stock=product.stock > 0,
    )


def _matches(term: str, stems: frozenset[str]) -> bool:
    if singular(term) in stems:
        return True
    if "-" in term:
        return all(singular(part) in stems for part in term.split("-"))
    return False


def _similar_history(product: Product, history: Iterable[Product]) -> tuple[str, ...]:
    titles: dict[str, None] = {}
    for past in reversed(list(history)):
        if resembles(product, past):
            titles.setdefault(past.title, None)
        if len(titles) >= SIMILAR_HISTORY_LIMIT:
            break
    return tuple(titles)
