"""Learning from feedback: a linear Thompson-sampling bandit re-ranks the model's candidates.

The recommender's best `candidates` for a request are described by a few features each
(`FEATURES`: the model's score, how the item fits the customer's past orders and the budget,
popularity, rating, whether the request's words matched). The bandit keeps a Bayesian linear
model of the reward of showing an item (an order of it in the store, or a press of Details:
the simulator's purchase) with a Gaussian posterior. For each slate it samples weights from
the posterior, scaled by the exploration setting, and shows the best `k` under that sample;
before any feedback the posterior's mean is the model's own ranking, so a new shop starts
where the model is.

Every shown slate is logged (`core.shopdb.learning`) with the features of all candidates and
the probability that the policy put each shown item where it was (estimated from the same
posterior samples), so off-policy evaluation (`concierge eval policy`) can judge another
policy on these logs. Closing a slate (the customer's next turn) updates the posterior with a
cascade reading of the outcome: the items down to the one pressed were looked at, the pressed
one with its reward, the others with none; nothing pressed, all of them with none. The
posterior lives in the store database, shared by every process; each update is one locked
read-modify-write there.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from core.infra.logs import event
from core.shop.catalog import Product
from core.shopdb.learning import LearningStore, SlateRecord
from core.turn.recommendation import RecommendationRequest

log = logging.getLogger(__name__)

FEATURES = (
    "bias",
    "model",  # the recommender's blended score, standardised within the candidates
    "history_attributes",  # share of the item's tags found in the customer's past orders
    "history_category",  # 1 when the customer has ordered from the item's category
    "budget_fit",  # price / budget (0 without a budget)
    "popularity",  # log reviews, relative to the most reviewed item
    "rating",  # stars / 5 (0 when unknown)
    "text_match",  # share of the request's words found in the item's text
)
MODEL = FEATURES.index("model")
# A purchase in the store of a shown item (seen at the customer's next turn) or a press of
# Details is the reward; the other buttons say the customer looked, and earn nothing.
REWARDS = {"purchase": 1.0, "details": 1.0, "more_like_this": 0.0, "not_for_me": 0.0}
PRIOR_STRENGTH = 1.0  # the prior's precision: worth about one observation per feature
SAMPLES = 64  # posterior draws per slate; the propensities are their frequencies
STATE = "default"


@dataclass(frozen=True)
class Posterior:
    """The Gaussian posterior of the reward weights: precision `A` and `b`, mean A⁻¹b."""

    precision: np.ndarray  # (d, d)
    target: np.ndarray  # (d,)
    version: int = 0
    observations: int = 0

    @classmethod
    def prior(cls, strength: float = PRIOR_STRENGTH) -> Posterior:
        mean = np.zeros(len(FEATURES))
        mean[MODEL] = 1.0  # before any feedback: rank as the model does
        precision = strength * np.eye(len(FEATURES))
        return cls(precision, precision @ mean)

    def mean(self) -> np.ndarray:
        return self._moments[0]

    @cached_property
    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The mean and a Cholesky factor of A⁻¹, worked out once per state."""
        covariance = np.linalg.inv(self.precision)
        factor = np.linalg.cholesky((covariance + covariance.T) / 2)
        return np.linalg.solve(self.precision, self.target), factor

    def samples(self, rng: np.random.Generator, count: int, scale: float) -> np.ndarray:
        """(count, d) weights drawn from N(mean, scale² A⁻¹)."""
        mean, factor = self._moments
        noise = rng.standard_normal((count, len(FEATURES)))
        return mean + scale * noise @ factor.T

    def updated(self, rows: np.ndarray, rewards: np.ndarray) -> Posterior:
        if not len(rows):
            return self
        return Posterior(
            self.precision + rows.T @ rows,
            self.target + rows.T @ rewards,
            self.version + 1,
            self.observations + len(rows),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "precision": self.precision.round(6).tolist(),
            "target": self.target.round(6).tolist(),
            "version": self.version,
            "observations": self.observations,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Posterior:
        if list(raw.get("features", ())) != list(FEATURES):
            raise ValueError(f"bandit state has features {raw.get('features')}, not {FEATURES}")
        precision = np.asarray(raw["precision"], dtype=float)
        target = np.asarray(raw["target"], dtype=float)
        size = len(FEATURES)
        if precision.shape != (size, size) or target.shape != (size,):
            raise ValueError("bandit state has the wrong shape")
        return cls(precision, target, int(raw.get("version", 0)),
                   int(raw.get("observations", 0)))


def position_probabilities(
    features: np.ndarray, k: int, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The slates the sampled `weights` (S, d) give over `features` (C, d): (S, k) candidate
    indices, and the (C, k) frequency of each candidate at each position."""
    scores = weights @ features.T  # (S, C)
    slates = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    counts = np.zeros((len(features), slates.shape[1]))
    for position in range(slates.shape[1]):
        np.add.at(counts[:, position], slates[:, position], 1.0)
    return slates, counts / len(weights)


@dataclass(frozen=True)
class Policy:
    """A posterior and how widely it explores: 0 shows the mean's best, always."""

    posterior: Posterior
    exploration: float

    def choose(self, features: np.ndarray, k: int,
               rng: np.random.Generator) -> tuple[list[int], list[float]]:
        """The shown candidates in order and the probability of each at its position."""
        if self.exploration <= 0:
            order = np.argsort(-(features @ self.posterior.mean()), kind="stable")[:k]
            return [int(i) for i in order], [1.0] * len(order)
        draws = self.posterior.samples(rng, SAMPLES, self.exploration)
        slates, probabilities = position_probabilities(features, k, draws)
        order = slates[0]  # the draw that is shown is one of the samples
        return ([int(i) for i in order],
                [float(probabilities[i, p]) for p, i in enumerate(order)])

    def probabilities(self, features: np.ndarray, k: int, rng: np.random.Generator,
                      samples: int = 512) -> np.ndarray:
        """(C, k): how often this policy puts each candidate at each position."""
        if self.exploration <= 0:
            order = np.argsort(-(features @ self.posterior.mean()), kind="stable")[:k]
            table = np.zeros((len(features), min(k, len(features))))
            table[order, np.arange(len(order))] = 1.0
            return table
        return position_probabilities(
            features, k, self.posterior.samples(rng, samples, self.exploration))[1]


@dataclass
class Taste:
    """What a customer's past orders say about them: the tags and categories they bought."""

    attributes: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    @classmethod
    def of(cls, past: Sequence[Product]) -> Taste:
        return cls(frozenset(a for p in past for a in p.attributes),
                   frozenset(p.category for p in past if p.category))


def candidate_features(
    products: Sequence[Product],
    scores: Sequence[float],
    request: RecommendationRequest,
    taste: Taste,
    most_reviews: int,
) -> np.ndarray:
    """(C, d) features of the candidates, in `FEATURES` order."""
    values = np.asarray(scores, dtype=float)
    spread = values.std()
    model = (values - values.mean()) / spread if spread > 1e-9 else np.zeros_like(values)
    standard = (np.clip(model, -3.0, 3.0) / 3.0).tolist()
    words = {w for w in request.text.lower().split() if len(w) > 2}
    top = math.log1p(max(most_reviews, 1))
    rows = []
    for product, score in zip(products, standard, strict=True):
        tags = product.attributes
        text = f"{product.title} {product.category} {' '.join(tags)}".lower()
        rows.append((
            1.0,
            score,
            sum(t in taste.attributes for t in tags) / len(tags) if tags else 0.0,
            float(product.category in taste.categories),
            min(product.price / request.budget_max, 2.0) if request.budget_max else 0.0,
            math.log1p(product.review_count) / top,
            (product.rating or 0.0) / 5.0,
            sum(w in text for w in words) / len(words) if words else 0.0,
        ))
    return np.asarray(rows, dtype=float)


def training_rows(slate: SlateRecord) -> tuple[np.ndarray, np.ndarray]:
    """The cascade reading of a closed slate: (rows, rewards) for the items looked at."""
    shown = slate.shown
    if slate.position is not None and 1 <= slate.position <= len(shown):
        looked = shown[: slate.position]
        rewards = [0.0] * (len(looked) - 1) + [REWARDS.get(slate.kind or "", 0.0)]
    else:
        looked, rewards = shown, [0.0] * len(shown)
    candidates = np.asarray(slate.candidates, dtype=float)
    return candidates[looked], np.asarray(rewards, dtype=float)


class BanditLearner:
    """Closes slates: records the outcome and updates the shared posterior (in a turn's
    process for the embedded default, in a Celery worker when scaled). `update=False` only
    records outcomes: logs for off-policy evaluation from a policy that stays as it is."""

    def __init__(self, store: LearningStore, update: bool = True) -> None:
        self.store = store
        self.update = update

    def close(self, slate: str, position: int | None, kind: str | None) -> None:
        try:
            record = self.store.close_slate(slate, position, kind, time.time())
            if record is None or not self.update:  # unknown, or closed already: learnt once
                return
            rows, rewards = training_rows(record)

            def update(raw: dict[str, Any] | None) -> dict[str, Any]:
                posterior = Posterior.from_json(raw) if raw else Posterior.prior()
                return posterior.updated(rows, rewards).to_json()

            self.store.update_bandit(STATE, update)
        except SQLAlchemyError as error:  # learning must never cost the customer's turn
            event(log, "bandit.not_updated", logging.WARNING, error=type(error).__name__)


@dataclass
class BanditRanker:
    """Re-ranks candidates with the shared posterior (re-read every `refresh_s`) and logs
    each slate it shows."""

    store: LearningStore
    exploration: float
    candidates: int = 10
    refresh_s: float = 5.0
    seed: int | None = None
    _posterior: Posterior | None = field(default=None, init=False)
    _read_at: float = field(default=-math.inf, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _rng: np.random.Generator = field(init=False)
    # (re-rank s, slate log s) of the latest slates: features, sampling and ranking; the write
    costs: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=10_000),
                                              init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def posterior(self) -> Posterior:
        now = time.monotonic()
        with self._lock:
            if self._posterior is not None and now - self._read_at < self.refresh_s:
                return self._posterior
        raw = self.store.bandit_state(STATE)
        posterior = Posterior.from_json(raw) if raw else Posterior.prior()
        with self._lock:
            self._posterior, self._read_at = posterior, now
        return posterior

    def rank(self, features: np.ndarray, k: int) -> tuple[list[int], list[float], int]:
        """(shown candidates in order, their propensities, the posterior's version)."""
        posterior = self.posterior()
        with self._lock:  # numpy's generators are not thread-safe
            order, propensities = Policy(posterior, self.exploration).choose(
                features, k, self._rng)
        return order, propensities, posterior.version

    def log(self, features: np.ndarray, order: list[int], propensities: list[float],
            version: int) -> str | None:
        """The slate's id in the log, or None when the log could not be written (the
        customer still gets the suggestions; that slate is not learnt from)."""
        record = SlateRecord.new(features.round(5).tolist(), order, propensities,
                                 f"bandit:{version}:{self.exploration:g}")
        try:
            self.store.add_slate(record)
        except SQLAlchemyError as error:  # the answer matters more than its log
            event(log, "bandit.slate_not_logged", logging.WARNING, error=type(error).__name__)
            return None
        return record.id
