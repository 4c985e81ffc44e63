"""One-line explanations of a suggestion, built only from its evidence.

The template (`replies.template_explanation`) states evidence fields and nothing else. An LLM
may phrase the same evidence more naturally (a `Phraser`, such as `core.llm.phraser`); its text
is kept only if `unsupported` finds nothing: each number it names, in digits or in words ("forty
dollars", "five stars"), is a number of the evidence or of the words it cites (a "3-pack"
title); each web address, e-mail or domain is one those words contain; each catalog attribute or
colour it names is one the evidence matched; each product title it names is the suggestion's
own or one the evidence cites; and each `CLAIM_WORDS` word is one the cited words contain.
Anything else and the template is used instead.

The evidence says what a product is (its title, the tags and request words it matched, the past
purchases it resembles), what it costs and how it is rated. It says nothing about deals,
policies and service, rank, novelty or scarcity, or endorsements: `CLAIM_WORDS` are the words
that make such claims, the ones a shopper would act on and the shop be held to. Words of
opinion about fit ("great for rainy hikes") are not on it: the shopper judges those from the
facts shown.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from core.infra.logs import event
from core.turn import replies
from core.turn.evidence import words
from core.turn.recommendation import Evidence, Suggestion

log = logging.getLogger(__name__)

MAX_CHARS = 220
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_ADDRESS = re.compile(
    r"(?:https?://|www\.)\S+"  # a URL
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # an e-mail address
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b",  # a domain: shop.example, acme.com
    re.IGNORECASE,
)
# The rating's scale, "4.6/5" or "4.6 out of five": a number the evidence implies.
_RATING_SCALE = re.compile(r"(?:\s*/\s*|\s+out\s+of\s+)(?:5|five)\b", re.IGNORECASE)
_UNITS = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # "one" is left out: far more often a pronoun ("a waterproof one") than a count
_SCALES = {"dozen": 12, "hundred": 100, "thousand": 1000, "million": 1_000_000}
CLAIM_KINDS = {
    "deals (the evidence has a price, never a reduction)": (
        "free discount discounted sale deal deals offer promo promotion coupon clearance bargain "
        "save saving savings cheapest lowest rebate cashback half twice double triple"
    ),
    "policies and service (nothing in the evidence speaks of them)": (
        "refund refunds refundable return returns returnable exchange exchanges warranty "
        "guarantee guaranteed lifetime shipping ship ships shipped delivery deliver delivered "
        "overnight express trial money insured insurance installation"
    ),
    "rank and exclusivity (the evidence has a rating, not a ranking)": (
        "best top only unique exclusive ultimate unbeatable unmatched bestseller bestselling "
        "leading award awarded winning popular favorite favourite premium luxury finest greatest "
        "most always never forever everyone"
    ),
    "novelty, scarcity and time": (
        "new newest latest limited today now hurry soon restocked instantly fast"
    ),
    "endorsements and certifications": (
        "certified official authentic genuine original approved clinically clinical proven "
        "tested dermatologist doctor expert experts organic natural safe toxic hypoallergenic "
        "eco sustainable handmade patented trusted loved"
    ),
}
CLAIM_WORDS = frozenset(word for listed in CLAIM_KINDS.values() for word in listed.split())


class Phraser(Protocol):
    """Writes one or two short sentences from the evidence (an LLM behind it)."""

    def phrase(self, evidence: Evidence) -> str: ...


@dataclass(frozen=True)
class FactVocabulary:
    """Catalog words a phrasing could name: all attribute/colour tags and all product titles."""

    tags: frozenset[str] = frozenset()
    titles: tuple[str, ...] = ()

    @classmethod
    def of(cls, tags: Iterable[str], titles: Iterable[str]) -> FactVocabulary:
        return cls(frozenset(t.lower() for t in tags), tuple(t.lower() for t in titles))


def explain(
    suggestion: Suggestion, phraser: Phraser | None = None, vocabulary: FactVocabulary | None = None
) -> str:
    """A short sentence stating facts from the evidence; the phraser's, when it is faithful."""
    template = replies.template_explanation(suggestion)
    if phraser is None:
        return template
    try:
        text = " ".join(phraser.phrase(suggestion.evidence).split())
    except Exception as error:  # any phrasing failure falls back to the template, logged
        event(log, "explanation.phrase_failed", level=logging.WARNING, error=repr(error)[:200])
        return template
    problem = unsupported(text, suggestion, vocabulary or FactVocabulary())
    if problem is not None:
        event(log, "explanation.phrase_rejected", reason=problem, item=suggestion.item_id)
        return template
    return text


def unsupported(text: str, suggestion: Suggestion, vocabulary: FactVocabulary) -> str | None:
    """Why `text` states something the evidence does not, or None when every claim is backed."""
    if not text or len(text) > MAX_CHARS:
        return "empty or too long"
    evidence = suggestion.evidence
    cited_tags = {t.lower() for t in (*evidence.matched_attributes, *evidence.matched_terms)}
    cited_titles = {
        t.lower()
        for t in (suggestion.title, evidence.similar_to or "", *evidence.similar_history)
        if t
    }
    cited = " ".join((*cited_tags, *cited_titles))
    numbers = _evidence_numbers(evidence) | {value for _, value in stated_numbers(cited)}
    cited_words = _word_parts(cited)
    if evidence.in_stock:
        cited_words |= {"stock", "available"}
    for address in _ADDRESS.findall(text):
        if address.lower().rstrip(".") not in cited:
            return f"address {address} is not in the evidence"
    for sentence in _SENTENCE.split(text):
        lowered = sentence.lower()
        if evidence.rating is not None:
            lowered = _RATING_SCALE.sub(" ", lowered)
        for raw, value in stated_numbers(lowered):
            if not any(abs(value - allowed) < 0.005 for allowed in numbers):
                return f"number {raw} is not in the evidence"
        for word in sorted(_word_parts(lowered) & (CLAIM_WORDS | {"stock", "available"})):
            if word not in cited_words:
                return f"claim {word!r} is not in the evidence"
        for tag in vocabulary.tags:
            if _names(lowered, tag) and tag not in cited_tags:
                return f"attribute {tag!r} is not in the evidence"
        for title in vocabulary.titles:
            if title in lowered and title not in cited_titles:
                return f"title {title!r} is not in the evidence"
    return None


def stated_numbers(text: str) -> list[tuple[str, float]]:
    """Every number `text` states, as (what it wrote, value): digits ("3,000", "4.5") and
    numbers in words ("forty", "twenty-five", "a hundred and ten", "two dozen")."""
    found = [(raw, float(raw.replace(",", ""))) for raw in _NUMBER.findall(text)]
    run: list[str] = []
    # Punctuation ends a number ("a hundred, two dozen" is two); a hyphen does not.
    for token in [*re.findall(r"[a-z]+|[^a-z\s-]", text.lower()), ""]:
        if token in _UNITS or token in _SCALES or (token == "and" and run):
            run.append(token)
            continue
        while run and run[-1] == "and":
            run.pop()  # "forty and" ends at forty
        if run:
            found.append((" ".join(run), _spelled_value(run)))
            run = []
    return found


def _spelled_value(tokens: list[str]) -> float:
    total, current = 0, 0
    for token in tokens:
        if token in _UNITS:
            current += _UNITS[token]
        elif token == "hundred" or token == "dozen":
            current = max(current, 1) * _SCALES[token]
        elif token in _SCALES:
            total, current = total + max(current, 1) * _SCALES[token], 0
    return float(total + current)


def _word_parts(text: str) -> set[str]:
    """Words of `text`, hyphenated ones also as their parts ("fragrance-free" gives "free")."""
    found = set()
    for word in words(text):
        found.add(word)
        found.update(word.split("-"))
    return found


def _evidence_numbers(evidence: Evidence) -> set[float]:
    numbers = {round(evidence.price, 2)}
    if evidence.budget_max is not None:
        numbers.add(round(evidence.budget_max, 2))
    if evidence.rating is not None:
        numbers |= {round(evidence.rating, 1), round(evidence.rating, 2)}
    if evidence.review_count is not None:
        numbers.add(float(evidence.review_count))
    return numbers


def _names(sentence: str, tag: str) -> bool:
    return re.search(rf"(?<![a-z0-9-]){re.escape(tag)}(?![a-z0-9-])", sentence) is not None
