"""Off-policy evaluation: what a candidate ranking policy would have earned on logged slates.

The logs are the slates a (stochastic) policy showed, each with the features of all its
candidates, the probability the logging policy gave each shown item at its position, and what
the customer pressed. The candidate policy's probability of the same item at the same position
is estimated from its own posterior samples. Rewards are read per position (the item-position
model): a click is Details or More like this, a purchase is Details or an order of the item
in the store. Three estimators of the
expected clicks and purchases per slate:

- IPS: the logged rewards weighted by candidate / logging probability;
- SNIPS: the same, each position normalised by its sum of weights (less variance, small bias);
- DR (doubly robust): a reward model's prediction for the candidate's whole slate, corrected
  by the weighted error of that model on what was logged.

Each comes with a bootstrap 95% interval over slates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.shopdb.learning import SlateRecord
from workers.recommender.bandit import Policy

CLICKS = {"details", "more_like_this", "purchase"}
PURCHASES = {"details", "purchase"}  # Details is the simulator's purchase
RIDGE = 1.0


@dataclass(frozen=True)
class Logged:
    """The logs as arrays: N slates, K positions, C candidates, d features."""

    candidates: list[np.ndarray]  # N of (C_n, d)
    shown: np.ndarray  # (N, K) candidate index, -1 where a slate was shorter
    logging: np.ndarray  # (N, K) logged propensity
    clicks: np.ndarray  # (N, K)
    purchases: np.ndarray  # (N, K)

    @classmethod
    def of(cls, slates: Sequence[SlateRecord]) -> Logged:
        if not slates:
            raise ValueError("no closed slates in the logs")
        k = max(len(s.shown) for s in slates)
        shape = (len(slates), k)
        shown, logging = np.full(shape, -1), np.ones(shape)
        clicks, purchases = np.zeros(shape), np.zeros(shape)
        for n, slate in enumerate(slates):
            shown[n, : len(slate.shown)] = slate.shown
            logging[n, : len(slate.shown)] = slate.propensities
            if slate.position is not None and 1 <= slate.position <= len(slate.shown):
                clicks[n, slate.position - 1] = float(slate.kind in CLICKS)
                purchases[n, slate.position - 1] = float(slate.kind in PURCHASES)
        return cls([np.asarray(s.candidates, dtype=float) for s in slates], shown,
                   logging, clicks, purchases)

    @property
    def positions(self) -> int:
        return self.shown.shape[1]


def reward_model(logged: Logged, rewards: np.ndarray) -> np.ndarray:
    """Ridge weights of reward ~ features + one offset per position, on the shown items."""
    k = logged.positions
    rows, targets = [], []
    for n, features in enumerate(logged.candidates):
        for p in range(k):
            if logged.shown[n, p] >= 0:
                rows.append(np.concatenate([features[logged.shown[n, p]], np.eye(k)[p]]))
                targets.append(rewards[n, p])
    x, y = np.asarray(rows), np.asarray(targets)
    return np.linalg.solve(x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ y)


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def as_json(self) -> list[float]:
        return [round(self.value, 4), round(self.low, 4), round(self.high, 4)]


def estimate(logged: Logged, policy: Policy, seed: int = 0,
             resamples: int = 1000) -> dict[str, dict[str, Estimate]]:
    """{"clicks"|"purchases": {"logged"|"ips"|"snips"|"dr": Estimate}} per slate."""
    rng = np.random.default_rng(seed)
    k = logged.positions
    n = len(logged.candidates)
    target = np.zeros((n, k))  # candidate policy's probability of the logged item there
    tables = []
    for i, features in enumerate(logged.candidates):
        table = policy.probabilities(features, k, rng)
        tables.append(table)
        for p in range(min(k, table.shape[1])):
            if logged.shown[i, p] >= 0:
                target[i, p] = table[logged.shown[i, p], p]
    weights = np.where(logged.shown >= 0, target / logged.logging, 0.0)
    picks = rng.integers(0, n, size=(resamples, n))
    figures = {}
    for name, rewards in (("clicks", logged.clicks), ("purchases", logged.purchases)):
        theta = reward_model(logged, rewards)
        direct = np.zeros(n)  # the reward model's value of the candidate's slate
        logged_fit = np.zeros((n, k))  # its prediction for what was logged
        for i, (features, table) in enumerate(zip(logged.candidates, tables, strict=True)):
            for p in range(table.shape[1]):
                predicted = features @ theta[: features.shape[1]] + theta[features.shape[1] + p]
                direct[i] += table[:, p] @ predicted
                if logged.shown[i, p] >= 0:
                    logged_fit[i, p] = predicted[logged.shown[i, p]]
        weighted = weights * rewards  # (N, K)
        per_slate = {
            "logged": rewards.sum(1),
            "ips": weighted.sum(1),
            "dr": direct + (weights * (rewards - logged_fit)).sum(1),
        }
        found = {key: _interval(values, picks) for key, values in per_slate.items()}
        found["snips"] = _snips(weighted, weights, picks)
        figures[name] = {key: found[key] for key in ("logged", "ips", "snips", "dr")}
    return figures


def _interval(values: np.ndarray, picks: np.ndarray) -> Estimate:
    means = values[picks].mean(1)
    return Estimate(float(values.mean()), float(np.quantile(means, 0.025)),
                    float(np.quantile(means, 0.975)))


def _snips(weighted: np.ndarray, weights: np.ndarray, picks: np.ndarray) -> Estimate:
    def value(rows: np.ndarray | slice) -> np.ndarray:
        total = weights[rows].sum(-2)
        return np.where(total > 0, weighted[rows].sum(-2) / np.maximum(total, 1e-12), 0.0)

    point = float(value(slice(None)).sum())
    samples = np.asarray([value(row).sum() for row in picks])
    return Estimate(point, float(np.quantile(samples, 0.025)),
                    float(np.quantile(samples, 0.975)))
