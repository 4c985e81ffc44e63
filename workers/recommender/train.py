"""Training loop: seeded, full-softmax cross-entropy, validation-based early stopping, a time
budget, and a progress bar. The best validation state is what gets saved."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from core.infra.health import MODEL_CARD
from core.infra.logs import event
from workers.fingerprint import file_digest
from workers.recommender import model as model_module
from workers.recommender.data import InteractionData, text_embeddings
from workers.recommender.distributed import TrainingGroup
from workers.recommender.metrics import rank_cases, ranking_metrics
from workers.recommender.model import RecommenderConfig, RecommenderNet, pad_histories
from workers.recommender.split import Scorer, Split, leave_one_out, sample

log = logging.getLogger(__name__)

# The code a checkpoint's weights depend on (with the MiniLM encoder of item texts): editing any
# of these makes every saved model out of date for `concierge train`.
TRAINING_CODE = ("model.py", "train.py", "data.py", "split.py", "metrics.py", "distributed.py")


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5  # validations without improvement before stopping
    time_budget_s: float = 1500.0
    seed: int = 7
    val_cases: int = 4000  # validation sample size (full ranking, history excluded)
    request_prob: float = 0.2  # share of training positions that get a request text
    cold_fraction: float = 0.0
    threads: int = 1
    progress: bool = True


@dataclass
class TrainResult:
    model: RecommenderNet
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    best_epoch: int = 0
    world_size: int = 1  # processes that trained it together


def training_code_version() -> str:
    """A fingerprint of the code that trains a model from data, saved in its checkpoint."""
    here = Path(__file__).resolve().parent
    encoder = (here.parent / "minilm.py", here.parent / "encoder.py")
    return file_digest([*encoder, *(here / name for name in TRAINING_CODE)])


def checkpoint_is_current(folder: Path, data: InteractionData) -> bool:
    """Whether `folder` holds a model that this code trained to the end on exactly `data`
    (same items, texts and sequences); a missing or unreadable checkpoint is not current."""
    if not (folder / model_module.CHECKPOINT).exists():
        return False
    try:
        _, extra = model_module.load_checkpoint(folder)
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError):
        return False
    return bool(
        extra.get("finished")
        and extra.get("fingerprint") == data.fingerprint()
        and extra.get("code_version") == training_code_version()
    )


def build_model(
    data: InteractionData, config: RecommenderConfig, cache_dir: Path | None
) -> RecommenderNet:
    """A fresh model whose text buffer holds the MiniLM embeddings of `data`'s items."""
    config.item_ids = [item.item_id for item in data.items]
    model = RecommenderNet(config)
    if config.use_text:
        embeddings = text_embeddings([item.text() for item in data.items], cache_dir)
        with torch.no_grad():
            model.text[1:] = embeddings
    return model


def request_table(data: InteractionData, cache_dir: Path | None) -> torch.Tensor:
    """(N + 1, D) embedding of the short request a customer might write for each item."""
    texts = [item.request_text() for item in data.items]
    unique = sorted(set(texts))
    vectors = text_embeddings(unique, cache_dir)
    row = {text: number for number, text in enumerate(unique)}
    table = torch.zeros(data.n_items + 1, vectors.shape[1])
    table[1:] = vectors[[row[text] for text in texts]]
    return table


def train(
    data: InteractionData,
    model_config: RecommenderConfig,
    config: TrainConfig,
    out: Path | None = None,
    cache_dir: Path | None = None,
    split: Split | None = None,
    group: TrainingGroup | None = None,
) -> TrainResult:
    """Train on one process, or as one rank of `group` (see `distributed.py`): the same code,
    the same checkpoint, written by rank 0 alone."""
    group = group or TrainingGroup()
    torch.set_num_threads(config.threads)
    # The batch order comes from `random` and must be the same on every rank, whose shares
    # of it then make up each epoch; torch's generator (dropout, request sampling) differs
    # per rank, and the initial weights are rank 0's (DDP copies them).
    random.seed(config.seed)
    torch.manual_seed(config.seed + group.rank)
    split = split or leave_one_out(data, config.cold_fraction, config.seed)
    with group.first():  # rank 0 encodes the item texts; the others read its cache
        model = build_model(data, model_config, cache_dir)
        requests = (
            request_table(data, cache_dir)
            if model_config.use_request and model_config.use_text and config.request_prob > 0
            else None
        )
    if split.cold_items:
        with torch.no_grad():
            model.known[list(split.cold_items)] = False
    samples = _training_samples(split.train, model_config.max_len)
    valid = sample(split.valid, config.val_cases, config.seed)
    # The global batch stays `batch_size` whatever the number of ranks: each rank takes
    # batch_size / N sequences per step and DDP averages the gradients, so the learning rate
    # means the same on one process or many.
    per_rank_batch = max(1, config.batch_size // group.size)
    trained = group.wrap(model, all_parameters_used=requests is not None)
    optimizer = torch.optim.AdamW(
        trained.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    started = time.monotonic()
    result = TrainResult(model, world_size=group.size)
    best, best_state, stale = -1.0, copy.deepcopy(model.state_dict()), 0
    event(
        log,
        "recommender.train.start",
        dataset=data.name,
        items=data.n_items,
        sequences=len(samples),
        valid=len(valid),
        config=asdict(config),
        model={k: v for k, v in asdict(model_config).items() if k != "item_ids"},
        rank=group.rank,
        world_size=group.size,
        batch_per_rank=per_rank_batch,
        threads=torch.get_num_threads(),
    )
    for epoch in range(1, config.max_epochs + 1):
        trained.train()
        total, seen = 0.0, 0.0
        bar = tqdm(
            group.shard(_batches(samples, per_rank_batch), even=True),
            desc=f"epoch {epoch}",
            disable=not (config.progress and group.main),
            leave=False,
            mininterval=5.0,
            unit="batch",
        )
        for chunk in bar:
            history, targets = _batch(chunk)
            request = _requests(targets, requests, config.request_prob)
            loss = trained(history, targets, request)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(chunk)
            seen += len(chunk)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        trained.eval()
        # Each rank ranks its share of the validation cases; the figures come from all of
        # them, identical on every rank, so every rank keeps the same epoch and stops together.
        mine = group.shard(valid, even=False)
        ranks = rank_cases(_model_scorer(model), mine, exclude_history=True)
        score = ranking_metrics(group.gather(ranks), data.n_items)
        total, seen = group.total(total, seen)
        elapsed = group.agree(time.monotonic() - started)
        point = {
            "epoch": float(epoch),
            "loss": total / max(1, seen),
            "val_ndcg@10": score["ndcg@10"],
            "val_hr@10": score["hr@10"],
            "seconds": elapsed,
        }
        result.curve.append(point)
        fields: dict[str, Any] = {k: round(v, 4) for k, v in point.items()}
        event(log, "recommender.train.epoch", **fields)
        if score["ndcg@10"] > best:
            best, best_state, stale, result.best_epoch = (
                score["ndcg@10"],
                copy.deepcopy(model.state_dict()),
                0,
                epoch,
            )
            if out is not None and group.main:  # the best so far, kept if interrupted
                extra = _extra(result, config, data, split, elapsed, finished=False)
                model_module.save_checkpoint(model, out, extra)
        else:
            stale += 1
        # Stop before an epoch that would end past the budget (epochs take about as long).
        if stale >= config.patience or elapsed * (epoch + 1) / epoch > config.time_budget_s:
            break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = group.agree(time.monotonic() - started)
    if out is not None and group.main:
        extra = _extra(result, config, data, split, result.seconds, finished=True)
        model_module.save_checkpoint(model, out, extra)
        _write_card(out, result, data)
    event(
        log,
        "recommender.train.done",
        best_epoch=result.best_epoch,
        best_val_ndcg=round(best, 4),
        seconds=round(result.seconds, 1),
    )
    return result


def _extra(
    result: TrainResult,
    config: TrainConfig,
    data: InteractionData,
    split: Split,
    seconds: float,
    finished: bool,
) -> dict[str, object]:
    """What the checkpoint says about its training; `fingerprint` (the data), `code_version`
    and `finished` are what `checkpoint_is_current` compares."""
    return {
        "curve": result.curve,
        "train_config": asdict(config),
        "dataset": data.name,
        "best_epoch": result.best_epoch,
        "seconds": seconds,
        "cold_items": sorted(split.cold_items),
        "fingerprint": data.fingerprint(),
        "code_version": training_code_version(),
        "finished": finished,
        "world_size": result.world_size,
    }


def _write_card(folder: Path, result: TrainResult, data: InteractionData) -> None:
    """What the dashboard and the doctor show of the serving model, readable without torch:
    its held-out (validation) figures at the epoch kept, the data and when it was trained."""
    best = next((p for p in result.curve if int(p["epoch"]) == result.best_epoch), {})
    card = {
        "dataset": data.name,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "best_epoch": result.best_epoch,
        "epochs": len(result.curve),
        "seconds": round(result.seconds, 1),
        "val_ndcg@10": round(float(best.get("val_ndcg@10", 0.0)), 4),
        "val_hr@10": round(float(best.get("val_hr@10", 0.0)), 4),
    }
    partial = folder / f"{MODEL_CARD}.partial"
    partial.write_text(json.dumps(card, indent=2) + "\n")
    partial.replace(folder / MODEL_CARD)


def _model_scorer(model: RecommenderNet) -> Scorer:
    max_len = model.config.max_len

    def scorer(histories: list[list[int]]) -> torch.Tensor:
        history, lengths = pad_histories(histories, max_len)
        return model.score(history, lengths)

    return scorer


def _training_samples(train: dict[str, list[int]], max_len: int) -> list[tuple[list[int], bool]]:
    """(window, starts_at_beginning): the most recent max_len + 1 items of each sequence; the
    flag keeps the start token from predicting an item that was not truly the first."""
    samples: list[tuple[list[int], bool]] = []
    for items in train.values():
        window = items[-(max_len + 1) :]
        samples.append((window, len(items) <= max_len + 1))
    return samples


def _batches(
    samples: list[tuple[list[int], bool]], size: int
) -> list[list[tuple[list[int], bool]]]:
    """Shuffled batches of similar lengths: sequences are short on average, and padding every
    batch to the longest one would waste most of the attention work."""
    order = samples[:]
    random.shuffle(order)
    group = size * 32
    batches: list[list[tuple[list[int], bool]]] = []
    for start in range(0, len(order), group):
        pool = sorted(order[start : start + group], key=lambda pair: len(pair[0]))
        batches.extend(pool[i : i + size] for i in range(0, len(pool), size))
    random.shuffle(batches)
    return batches


def _batch(chunk: list[tuple[list[int], bool]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (B, T) are each window minus its last item; targets (B, T + 1) the window itself,
    with the start token's target dropped when the window is not the sequence's beginning."""
    width = max(len(window) for window, _ in chunk)
    history = torch.zeros(len(chunk), max(1, width - 1), dtype=torch.long)
    targets = torch.zeros(len(chunk), max(1, width - 1) + 1, dtype=torch.long)
    for row, (window, from_start) in enumerate(chunk):
        if len(window) > 1:
            history[row, : len(window) - 1] = torch.tensor(window[:-1])
        targets[row, : len(window)] = torch.tensor(window)
        if not from_start:
            targets[row, 0] = 0
    return history, targets


def _requests(
    targets: torch.Tensor, table: torch.Tensor | None, probability: float
) -> torch.Tensor | None:
    """Request embeddings for the positions with a target: the target's own short request
    text for a random `probability` share of them, zeros elsewhere."""
    if table is None:
        return None
    wanted = targets[targets > 0]  # (M,)
    chosen = torch.rand(wanted.shape[0]) < probability
    return table[wanted] * chosen.unsqueeze(1)  # (M, D)
