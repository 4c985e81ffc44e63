"""Leave-one-out splits, shared by training (validation) and evaluation.

For a customer with items s1..sn: training sees s1..s(n-2), validation predicts s(n-1) from
s1..s(n-2), test predicts sn from s1..s(n-1). Ranking is over every item, never sampled.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor

from workers.recommender.data import InteractionData

# Scores (B, N + 1) for a batch of histories; column 0 is padding.
Scorer = Callable[[list[list[int]]], Tensor]


@dataclass(frozen=True)
class Case:
    user: str
    history: tuple[int, ...]
    target: int


@dataclass(frozen=True)
class Split:
    train: dict[str, list[int]]
    valid: tuple[Case, ...]
    test: tuple[Case, ...]
    cold_items: frozenset[int]  # items held out of training entirely


def leave_one_out(data: InteractionData, cold_fraction: float = 0.0, seed: int = 7) -> Split:
    """The standard split; with `cold_fraction`, that share of items (chosen by `seed`) is
    removed from every training sequence, so only their text can carry them."""
    cold: frozenset[int] = frozenset()
    if cold_fraction > 0:
        rng = random.Random(seed)
        count = round(data.n_items * cold_fraction)
        cold = frozenset(rng.sample(range(1, data.n_items + 1), count))
    train: dict[str, list[int]] = {}
    valid: list[Case] = []
    test: list[Case] = []
    for user, items in data.sequences.items():
        n = len(items)
        if n >= 3:
            train[user] = [item for item in items[:-2] if item not in cold]
            valid.append(Case(user, tuple(items[:-2]), items[-2]))
            test.append(Case(user, tuple(items[:-1]), items[-1]))
        elif n == 2:
            train[user] = [item for item in items[:1] if item not in cold]
            test.append(Case(user, tuple(items[:1]), items[1]))
        elif n == 1:
            train[user] = [item for item in items if item not in cold]
    train = {user: items for user, items in train.items() if items}
    return Split(train, tuple(valid), tuple(test), cold)


def sample(cases: Sequence[Case], count: int, seed: int = 0) -> list[Case]:
    if len(cases) <= count:
        return list(cases)
    return random.Random(seed).sample(list(cases), count)
