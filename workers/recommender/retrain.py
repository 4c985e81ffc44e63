"""Safe model updates: retrain from the store, judge against the served model, promote or not.

One cycle: read the store's orders and recorded feedback; train a candidate with the served
model's architecture into a new version folder; rank every customer's newest purchase (the
held-out window: it is in neither model's training data) with both models over the whole
catalog; promote the candidate only when its NDCG@10 beats the served model's by more than the
paired bootstrap 95% interval, i.e. when the interval of the difference lies above zero. A
refused candidate's folder is removed; either way the verdict is kept in the version history.
The Celery beat schedule runs this every `CONCIERGE_RETRAIN_EVERY_S`; `concierge model retrain`
runs it once.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from core.infra.logs import event
from core.infra.settings import Settings
from workers.recommender import model as model_module
from workers.recommender.data import InteractionData
from workers.recommender.evaluate import model_scorer
from workers.recommender.metrics import ndcg_gains, rank_cases
from workers.recommender.split import Split, leave_one_out
from workers.recommender.train import TrainConfig, train
from workers.recommender.versions import Registry

log = logging.getLogger(__name__)

RESAMPLES = 1000


@dataclass
class RetrainVerdict:
    candidate: str
    served: str | None
    promoted: bool
    reason: str
    ndcg_candidate: float = 0.0
    ndcg_served: float = 0.0
    gain_ci95: tuple[float, float, float] = (0.0, 0.0, 0.0)  # point, low, high
    cases: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate, "served": self.served, "promoted": self.promoted,
            "reason": self.reason, "ndcg@10_candidate": round(self.ndcg_candidate, 4),
            "ndcg@10_served": round(self.ndcg_served, 4),
            "gain_ci95": [round(v, 4) for v in self.gain_ci95], "cases": self.cases,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def shuffled(data: InteractionData, seed: int) -> InteractionData:
    """The same customers with their purchases swapped for random items: a worse candidate."""
    rng = random.Random(seed)
    items = list(range(1, data.n_items + 1))
    return replace(data, sequences={
        user: [rng.choice(items) for _ in sequence] for user, sequence in data.sequences.items()
    })


def per_case_ndcg(model: model_module.RecommenderNet, split: Split) -> torch.Tensor:
    return ndcg_gains(rank_cases(model_scorer(model), split.test, exclude_history=True).ranks, 10)


def paired_interval(gains: torch.Tensor, seed: int) -> tuple[float, float, float]:
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, len(gains), (RESAMPLES, len(gains)), generator=generator)
    means = gains[picks].mean(1)
    return (float(gains.mean()), float(means.quantile(0.025)), float(means.quantile(0.975)))


def retrain(settings: Settings, data: InteractionData, worse: bool = False,
            seed: int = 7) -> RetrainVerdict:
    """One cycle on `data` (the store's); `worse`: train on shuffled purchases (a check that
    a bad candidate is refused)."""
    registry = Registry(settings.recommender_dir)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    served_model, _ = model_module.load_checkpoint(settings.recommender_dir)
    served = registry.served()
    split = leave_one_out(data, seed=seed)
    folder = registry.new_folder("shuffled" if worse else "")
    seconds["prepare"] = time.perf_counter() - started
    started = time.perf_counter()
    # The served model's architecture, sized for today's catalog (build_model sets its ids).
    model_config = replace(served_model.config, n_items=data.n_items, item_ids=[])
    training = leave_one_out(shuffled(data, seed), seed=seed) if worse else split
    train(data, model_config,
          TrainConfig(time_budget_s=settings.retrain_budget_min * 60, seed=seed,
                      threads=settings.worker_threads, progress=False),
          out=folder, cache_dir=settings.models_dir / "cache",
          split=Split(training.train, split.valid, split.test, split.cold_items))
    seconds["train"] = time.perf_counter() - started
    started = time.perf_counter()
    candidate_model, _ = model_module.load_checkpoint(folder)
    if list(served_model.config.item_ids) != list(candidate_model.config.item_ids):
        verdict = RetrainVerdict(folder.name, served, False,
                          "the catalog changed since the served model was trained: the two "
                          "rank different items; compare them with `concierge eval recommender`")
    else:
        with torch.inference_mode():
            ours, theirs = per_case_ndcg(candidate_model, split), per_case_ndcg(served_model,
                                                                                split)
        gain = paired_interval(ours - theirs, seed)
        better = gain[1] > 0
        verdict = RetrainVerdict(
            folder.name, served, better,
            "better beyond the 95% interval" if better else
            "not better beyond the 95% interval", float(ours.mean()), float(theirs.mean()),
            gain, len(split.test))
    seconds["evaluate"] = time.perf_counter() - started
    started = time.perf_counter()
    if verdict.promoted:
        registry.promote(folder.name, {"ndcg@10": round(verdict.ndcg_candidate, 4),
                                       "was": round(verdict.ndcg_served, 4)})
    else:
        shutil.rmtree(folder)
        registry.record({"action": "refuse", "version": folder.name, "reason": verdict.reason})
    seconds["promote"] = time.perf_counter() - started
    verdict.seconds = seconds
    event(log, "recommender.retrained", **{k: v for k, v in verdict.as_json().items()
                                           if k not in ("seconds", "gain_ci95")})
    return verdict
