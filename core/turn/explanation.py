"""One-line explanations of a suggestion, built only from its evidence.

The template (`replies.template_explanation`) states evidence fields and nothing else. An LLM
may phrase the same evidence more naturally (a `Phraser`, such as `core.llm.phraser`); its text
is kept only if `unsupported` finds nothing: each number it names is a number of the evidence,
each catalog attribute or colour it names is one the evidence matched, each product title it
names is the suggestion's own or one the evidence cites. Anything else and the template is used
instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from core.infra.logs import event
from core.turn import replies
from core.turn.recommendation import Evidence, Suggestion

log = logging.getLogger(__name__)

MAX_CHARS = 220
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


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
    numbers = _evidence_numbers(evidence)
    cited_tags = {t.lower() for t in (*evidence.matched_attributes, *evidence.matched_terms)}
    cited_titles = {
        t.lower()
        for t in (suggestion.title, evidence.similar_to or "", *evidence.similar_history)
        if t
    }
    for sentence in _SENTENCE.split(text):
        lowered = sentence.lower()
        for raw in _NUMBER.findall(sentence):
            value = float(raw.replace(",", ""))
            if not any(abs(value - allowed) < 0.005 for allowed in numbers):
                return f"number {raw} is not in the evidence"
        for tag in vocabulary.tags:
            if _names(lowered, tag) and tag not in cited_tags:
                return f"attribute {tag!r} is not in the evidence"
        for title in vocabulary.titles:
            if title in lowered and title not in cited_titles:
                return f"title {title!r} is not in the evidence"
    return None


def _evidence_numbers(evidence: Evidence) -> set[float]:
    numbers = {round(evidence.price, 2)}
    if evidence.budget_max is not None:
        numbers.add(round(evidence.budget_max, 2))
    if evidence.rating is not None:
        numbers |= {round(evidence.rating, 1), round(evidence.rating, 2), 5.0}  # "4.6/5"
    if evidence.review_count is not None:
        numbers.add(float(evidence.review_count))
    return numbers


def _names(sentence: str, tag: str) -> bool:
    return re.search(rf"(?<![a-z0-9-]){re.escape(tag)}(?![a-z0-9-])", sentence) is not None
