"""The FAQ / policy knowledge base: `Article`, `Answer`, the protocol and a pure-Python BM25."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.shop.jsonl import StoreDataError, read_unique

_STOPWORD_TEXT = """a about after again all am an and any are as at be been before being but by
    can could
    did do does doing for from get got had has have having he her here hers him his how i if in
    into is it its just me my myself no nor not of on once only or other our ours out over own
    please same she should so some such than that the their theirs them then there these they
    this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself hi hello hey thanks thank much many also
    tell know need want like let there's what's i'm im i've ive it's dont don't does doesn't
    one way"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class Article(BaseModel):
    """One help article; its topic is the shop's own word ("shipping", "gift cards", ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    id: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    title: str
    body: str
    keywords: tuple[str, ...] = ()


class Answer(BaseModel):
    """The article that answers a question, how well it matched, and the text to show."""

    model_config = ConfigDict(frozen=True)

    article: Article
    score: float
    text: str


class KnowledgeBase(Protocol):
    """Answers policy and how-to questions from the store's articles."""

    def answer(self, question: str, topic: str | None = None) -> Answer | None: ...


def stem(word: str) -> str:
    """A light suffix stripper: 'shipping', 'shipped', 'ships' -> 'ship'; 'charged' -> 'charg'."""
    if len(word) <= 3:
        return word
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                break
            word = word[: -len(suffix)] + replacement
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz" and word[-1].isalpha():
        word = word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop words removed, lightly stemmed word tokens."""
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("’", "'"))
    return [stem(word.replace("'", "")) for word in words if word not in STOPWORDS]


class Bm25KnowledgeBase:
    """BM25 over each article's title, keywords and body, indexed once at construction.

    A question is answered only when its best article both scores at least `MIN_SCORE` and
    covers at least `MIN_COVERAGE` of the question's informative (IDF-weighted) terms, so an
    off-topic question ("tell me a joke about the weather") gets None.
    """

    K1 = 1.2
    B = 0.75
    TITLE_WEIGHT = 2  # title and keyword terms count this many times
    TOPIC_BOOST = 1.5
    MIN_SCORE = 2.0
    MIN_COVERAGE = 0.4

    def __init__(self, articles: Sequence[Article]) -> None:
        self._articles = tuple(articles)
        self._documents: list[Counter[str]] = []
        for article in self._articles:
            heading = tokenize(article.title + " " + " ".join(article.keywords))
            self._documents.append(Counter(heading * self.TITLE_WEIGHT + tokenize(article.body)))
        self._lengths = [sum(document.values()) for document in self._documents]
        self._average_length = sum(self._lengths) / max(1, len(self._lengths))
        frequency: Counter[str] = Counter()
        for document in self._documents:
            frequency.update(document.keys())
        count = len(self._documents)
        self._idf = {
            term: math.log(1 + (count - seen + 0.5) / (seen + 0.5))
            for term, seen in frequency.items()
        }
        # A word no article uses weighs as much as the rarest word in the articles.
        self._unknown_idf = max(self._idf.values(), default=1.0)

    @classmethod
    def load(cls, path: Path) -> Bm25KnowledgeBase:
        articles = read_unique(path, Article, "article")
        if not articles:
            raise StoreDataError(path, "no articles")
        return cls(articles)

    def articles(self) -> Sequence[Article]:
        return self._articles

    def answer(self, question: str, topic: str | None = None) -> Answer | None:
        terms = list(dict.fromkeys(tokenize(question)))
        if not terms:
            return None
        weights = {term: self._idf.get(term, self._unknown_idf) for term in terms}
        total_weight = sum(weights.values())
        best: tuple[float, int] | None = None
        for index, document in enumerate(self._documents):
            score = self._score(index, document, terms)
            matched = sum(weights[term] for term in terms if term in document)
            if score < self.MIN_SCORE or matched / total_weight < self.MIN_COVERAGE:
                continue
            if topic is not None and self._articles[index].topic == topic:
                score *= self.TOPIC_BOOST
            if best is None or score > best[0]:
                best = (score, index)
        if best is None:
            return None
        article = self._articles[best[1]]
        return Answer(article=article, score=round(best[0], 4), text=article.body)

    def _score(self, index: int, document: Counter[str], terms: Sequence[str]) -> float:
        norm = self.K1 * (1 - self.B + self.B * self._lengths[index] / self._average_length)
        score = 0.0
        for term in terms:
            count = document.get(term, 0)
            if count:
                score += self._idf[term] * count * (self.K1 + 1) / (count + norm)
        return score
