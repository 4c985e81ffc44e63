"""The recommender contract. Implementations: in-process scoring and Celery workers (workers/).

Requests and suggestions are plain JSON-able models so they cross process boundaries unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.infra.metrics import record_recommender_job


class RecommendationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: str
    text: str = ""  # the request in the customer's words
    category: str | None = None
    budget_min: float | None = None
    budget_max: float | None = None
    attributes: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()  # already shown or rejected
    like_item_id: str | None = None  # "more like this"
    in_stock_only: bool = True
    k: int = 3
    # The request's sentence vector when the turn already encoded the customer's message
    # (a new request, all from that message): the recommender then skips its own encode.
    text_vector: str | None = Field(default=None, repr=False)


class Evidence(BaseModel):
    """Facts that justify one suggestion. Explanations may state these and nothing else."""

    model_config = ConfigDict(frozen=True)

    matched_terms: tuple[str, ...] = ()  # request words found in the item's text
    matched_attributes: tuple[str, ...] = ()  # wanted tags the item has
    category_match: bool = False
    similar_history: tuple[str, ...] = ()  # titles of the customer's past items it resembles
    similar_to: str | None = None  # title of the item the customer asked for more like
    rating: float | None = None
    review_count: int | None = None
    price: float
    budget_max: float | None = None
    in_stock: bool = True


class Suggestion(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    title: str
    price: float
    score: float
    evidence: Evidence
    # Set by a learning re-ranker: the logged slate this suggestion was shown in, and the
    # probability that its policy put the item at this position.
    slate: str | None = None
    propensity: float | None = None


class RecommenderUnavailable(RuntimeError):
    """Scoring could not run (broker or workers down, timeout). The message says why."""


class Recommender(Protocol):
    def recommend(self, request: RecommendationRequest) -> Sequence[Suggestion]: ...


class FeedbackLog(Protocol):
    """Where a customer's button presses are kept for the recommender's next training."""

    def record(self, user_id: str, item_id: str, kind: str, at: float) -> None: ...


class SlateOutcomes(Protocol):
    """Where a shown slate's outcome goes (the customer's next turn closes it): `position`
    and `kind` of the suggestion pressed, None for none. Learning must never cost a turn, so
    implementations log their own failures and return."""

    def close(self, slate: str, position: int | None, kind: str | None) -> None: ...


class MeasuredRecommender:
    """Any recommender, with each request's latency and outcome recorded as the caller saw it
    (for Celery: queue wait, scoring and the result's round trip together)."""

    def __init__(self, inner: Recommender, backend: str) -> None:
        self.inner = inner
        self.backend = backend

    def recommend(self, request: RecommendationRequest) -> Sequence[Suggestion]:
        started = time.perf_counter()
        outcome = "error"
        try:
            suggestions = self.inner.recommend(request)
            outcome = "ok"
            return suggestions
        except RecommenderUnavailable:
            outcome = "unavailable"
            raise
        finally:
            record_recommender_job(self.backend, outcome, time.perf_counter() - started)
