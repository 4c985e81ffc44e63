"""The bandit re-ranker: its posterior, its propensities, its shared state in the store
database, and off-policy evaluation on logs it wrote."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.shopdb.database import ShopDatabase
from core.shopdb.learning import LearningStore, SlateRecord
from workers.recommender.bandit import (
    FEATURES,
    MODEL,
    STATE,
    BanditLearner,
    BanditRanker,
    Policy,
    Posterior,
    training_rows,
)
from workers.recommender.offpolicy import Logged, estimate

TASTE = FEATURES.index("history_attributes")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LearningStore]:
    database = ShopDatabase(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    database.migrate()
    yield LearningStore(database)
    database.close()


def candidates(rng: np.random.Generator, count: int = 10) -> np.ndarray:
    features = rng.uniform(0, 1, (count, len(FEATURES)))
    features[:, 0] = 1.0
    features[:, MODEL] = rng.uniform(-1, 1, count)
    return features


def test_before_any_feedback_the_bandit_ranks_as_the_model_does() -> None:
    features = candidates(np.random.default_rng(0))
    order, propensities = Policy(Posterior.prior(), 0.0).choose(
        features, 3, np.random.default_rng(1))
    assert order == list(np.argsort(-features[:, MODEL])[:3])
    assert propensities == [1.0, 1.0, 1.0]


def test_exploring_shows_other_slates_with_the_probability_it_logs() -> None:
    rng = np.random.default_rng(2)
    features = candidates(rng)
    policy = Policy(Posterior.prior(), 0.3)
    table = policy.probabilities(features, 3, rng, samples=4000)
    firsts: dict[int, int] = {}
    logged: dict[int, list[float]] = {}
    for _ in range(600):
        order, propensities = policy.choose(features, 3, rng)
        firsts[order[0]] = firsts.get(order[0], 0) + 1
        logged.setdefault(order[0], []).append(propensities[0])
        assert all(0.0 < p <= 1.0 for p in propensities)
    assert len(firsts) > 1  # it explores
    for item, count in firsts.items():  # each logged propensity is the policy's frequency
        assert count / 600 == pytest.approx(table[item, 0], abs=0.06)
        assert float(np.mean(logged[item])) == pytest.approx(table[item, 0], abs=0.06)


def test_feedback_moves_the_ranking_towards_what_is_bought() -> None:
    rng = np.random.default_rng(3)
    posterior = Posterior.prior()
    for _ in range(400):  # customers buy what fits their past orders, whatever the model says
        rows = candidates(rng, 3)
        posterior = posterior.updated(rows, (rows[:, TASTE] > 0.7).astype(float))
    assert posterior.version == 400 and posterior.observations == 1200
    assert posterior.mean()[TASTE] > 0.5
    features = candidates(rng)
    features[:, TASTE] = np.linspace(0, 1, len(features))
    order, _ = Policy(posterior, 0.0).choose(features, 3, rng)
    assert sorted(order) == [7, 8, 9]


def test_a_closed_slate_teaches_what_was_looked_at() -> None:
    rows = [[float(i)] * len(FEATURES) for i in range(5)]
    bought = SlateRecord("s", 0.0, "bandit:0:0.1", rows, [4, 0, 2], [0.5, 0.5, 0.5], 2,
                         "details", True)
    features, rewards = training_rows(bought)
    assert features[:, 1].tolist() == [4.0, 0.0] and rewards.tolist() == [0.0, 1.0]
    ignored = SlateRecord("s", 0.0, "p", rows, [4, 0, 2], [1, 1, 1], None, None, True)
    features, rewards = training_rows(ignored)
    assert features[:, 1].tolist() == [4.0, 0.0, 2.0] and rewards.tolist() == [0.0] * 3


def test_the_state_survives_json_and_a_foreign_one_is_refused() -> None:
    posterior = Posterior.prior().updated(np.ones((2, len(FEATURES))), np.ones(2))
    again = Posterior.from_json(posterior.to_json())
    assert np.allclose(again.mean(), posterior.mean()) and again.version == 1
    raw = posterior.to_json() | {"features": ["bias", "price"]}
    with pytest.raises(ValueError, match="features"):
        Posterior.from_json(raw)


def test_slates_are_logged_and_learnt_from_once(store: LearningStore) -> None:
    ranker = BanditRanker(store, exploration=0.2, candidates=10, refresh_s=0.0, seed=4)
    features = candidates(np.random.default_rng(4))
    order, propensities, version = ranker.rank(features, 3)
    slate = ranker.log(features, order, propensities, version)
    assert slate is not None
    learner = BanditLearner(store)
    learner.close(slate, 1, "details")
    learner.close(slate, 2, "details")  # a redelivered job: nothing more is learnt
    state = Posterior.from_json(store.bandit_state(STATE) or {})
    assert state.version == 1 and state.observations == 1
    (logged,) = list(store.slates())
    assert logged.shown == order and logged.position == 1 and logged.kind == "details"
    assert logged.propensities == pytest.approx(propensities)
    assert ranker.posterior().version == 1  # the next slate uses what was learnt


def test_updates_from_many_threads_all_count(store: LearningStore) -> None:
    ranker = BanditRanker(store, exploration=0.1, refresh_s=0.0, seed=5)
    rng = np.random.default_rng(5)
    slates = []
    for _ in range(16):
        features = candidates(rng)
        slates.append(ranker.log(features, [0, 1, 2], [1.0, 1.0, 1.0], 0))
    learner = BanditLearner(store)
    threads = [threading.Thread(target=learner.close, args=(s, None, None)) for s in slates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = Posterior.from_json(store.bandit_state(STATE) or {})
    assert state.version == 16 and state.observations == 48


def test_off_policy_estimates_come_close_to_what_the_other_policy_earns() -> None:
    """Logs of an exploring policy; a policy that prefers another feature is estimated from
    them and then actually run. Rewards follow an item-position click model."""
    rng = np.random.default_rng(6)
    examine = np.array([1.0, 0.7, 0.5])

    def outcome(features: np.ndarray, order: list[int]) -> tuple[int | None, float]:
        for position, item in enumerate(order):
            if rng.random() < examine[position] * 0.6 * features[item, TASTE]:
                return position + 1, 1.0
        return None, 0.0

    logging = Policy(Posterior.prior(), 0.5)
    preferred = Posterior.prior().updated(
        np.eye(len(FEATURES))[[TASTE] * 5] * 1.0, np.full(5, 1.0))
    target = Policy(preferred, 0.2)
    logs = []
    for _ in range(2500):
        features = candidates(rng)
        order, propensities = logging.choose(features, 3, rng)
        position, _ = outcome(features, order)
        logs.append(SlateRecord("x", 0.0, "log", features.tolist(), order, propensities,
                                position, "details" if position else None, True))
    actual = np.mean([outcome(f := candidates(rng), target.choose(f, 3, rng)[0])[1]
                      for _ in range(2500)])
    found = estimate(Logged.of(logs), target, seed=6, resamples=200)["purchases"]
    assert found["logged"].value < actual  # the target earns more than what was logged
    for name in ("snips", "dr"):
        assert found[name].value == pytest.approx(actual, rel=0.2), name
        assert found[name].low <= found[name].value <= found[name].high
