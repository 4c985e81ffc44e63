"""The recommender model: shapes, checkpoint round trip, and learning a planted signal."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.workers.conftest import TinyStore
from workers.recommender import model as model_module
from workers.recommender import train as train_module
from workers.recommender.data import InteractionData, ItemRecord, load_demo
from workers.recommender.metrics import rank_cases, ranking_metrics
from workers.recommender.model import RecommenderConfig, RecommenderNet, pad_histories
from workers.recommender.split import leave_one_out
from workers.recommender.train import (
    TrainConfig,
    _batch,
    _training_samples,
    checkpoint_is_current,
    train,
)


def _model(**overrides: object) -> RecommenderNet:
    config = RecommenderConfig(n_items=12, dim=16, layers=1, heads=2, max_len=6, **overrides)  # type: ignore[arg-type]
    config.item_ids = [f"I{n}" for n in range(1, 13)]
    model = RecommenderNet(config)
    with torch.no_grad():
        model.text[1:] = torch.nn.functional.normalize(torch.randn(12, 384), dim=-1)
    return model


def test_shapes_of_loss_and_scores() -> None:
    model = _model()
    samples = _training_samples({"a": [1, 2, 3, 4], "b": [5, 6], "c": list(range(1, 12))}, 6)
    history, targets = _batch(samples)
    assert history.shape[1] + 1 == targets.shape[1]
    loss = model(history, targets, torch.zeros(int((targets > 0).sum()), 384))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    model.eval()
    batch, lengths = pad_histories([[1, 2, 3], [], list(range(1, 12))], 6)
    assert batch.shape == (3, 6) and lengths.tolist() == [3, 0, 6]
    scores = model.score(batch, lengths, torch.randn(3, 384))
    assert scores.shape == (3, 13)
    assert torch.isinf(scores[:, 0]).all() and torch.isfinite(scores[:, 1:]).all()


def test_padding_after_the_history_does_not_change_scores() -> None:
    model = _model()
    model.eval()
    short, short_len = pad_histories([[3, 4]], 6)
    padded = torch.tensor([[3, 4, 0, 0, 0]])
    assert torch.allclose(
        model.score(short, short_len), model.score(padded, torch.tensor([2])), atol=1e-5
    )


def test_cold_item_is_scored_by_its_text_alone() -> None:
    model = _model()
    with torch.no_grad():
        model.id_embedding.weight[5] += 10.0
        model.known[5] = False
    model.eval()
    table = model.item_table()
    expected = model.item_norm(model.text_projection(model.text[5]))
    assert torch.allclose(table[5], expected, atol=1e-5)


def test_checkpoint_round_trip_keeps_config_and_scores(tmp_path: Path) -> None:
    model = _model(dropout=0.2)
    model.eval()
    batch, lengths = pad_histories([[1, 2, 3]], 6)
    before = model.score(batch, lengths)
    model_module.save_checkpoint(model, tmp_path, {"curve": [{"epoch": 1.0}]})
    loaded, extra = model_module.load_checkpoint(tmp_path)
    assert loaded.config == model.config
    assert extra["curve"] == [{"epoch": 1.0}]
    assert not loaded.training
    assert torch.allclose(loaded.score(batch, lengths), before, atol=1e-6)


def _planted(n_items: int = 30, users: int = 300, seed: int = 1) -> InteractionData:
    """Every customer walks the catalog in order: after item i comes item i + 1."""
    rng = random.Random(seed)
    sequences = {}
    for user in range(users):
        start = rng.randrange(n_items)
        length = rng.randrange(5, 10)
        sequences[f"u{user}"] = [(start + step) % n_items + 1 for step in range(length)]
    items = tuple(ItemRecord(item_id=f"I{n}", title=f"item {n}") for n in range(1, n_items + 1))
    return InteractionData("planted", items, sequences)


def test_tiny_training_run_learns_the_planted_next_item() -> None:
    data = _planted()
    config = RecommenderConfig(
        n_items=data.n_items,
        dim=32,
        layers=1,
        heads=2,
        max_len=10,
        dropout=0.1,
        use_text=False,
        use_request=False,
        id_dropout=0.0,
    )
    result = train(
        data,
        config,
        TrainConfig(
            max_epochs=40,
            batch_size=32,
            lr=5e-3,
            patience=40,
            time_budget_s=120,
            val_cases=100,
            request_prob=0.0,
            progress=False,
        ),
    )
    split = leave_one_out(data)
    model = result.model

    def scorer(histories: list[list[int]]) -> torch.Tensor:
        batch, lengths = pad_histories(histories, 10)
        return model.score(batch, lengths)

    figures = ranking_metrics(rank_cases(scorer, split.test, exclude_history=False), data.n_items)
    # Chance is HR@10 = 1/3; the true next item is always the one after the last.
    ranks = rank_cases(scorer, split.test, exclude_history=False).ranks
    assert float((ranks < 1).float().mean()) > 0.5  # chance: 1/30
    assert figures["hr@10"] > 0.95
    assert result.curve[-1]["loss"] < result.curve[0]["loss"]


def test_checkpoint_is_current_for_its_own_data_and_code(
    tiny_store: TinyStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = load_demo(tiny_store.folder)
    assert checkpoint_is_current(tiny_store.model_dir, data)
    assert not checkpoint_is_current(tmp_path / "nothing", data)
    one_more = {**data.sequences, "C9999": [1, 2]}
    assert not checkpoint_is_current(
        tiny_store.model_dir, InteractionData(data.name, data.items, one_more)
    )
    retitled = (replace(data.items[0], title="Another title"), *data.items[1:])
    assert not checkpoint_is_current(
        tiny_store.model_dir, InteractionData(data.name, retitled, data.sequences)
    )
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / model_module.CHECKPOINT).write_bytes(b"not a checkpoint")
    assert not checkpoint_is_current(tmp_path / "broken", data)
    monkeypatch.setattr(train_module, "training_code_version", lambda: "edited code")
    assert not checkpoint_is_current(tiny_store.model_dir, data)
