"""Parameter-efficient fine-tuning of the MiniLM encoder: LoRA adapters (the `peft` library).

The frozen method reads the pretrained encoder's sentence vectors; this one first teaches the
encoder the labels at hand. `peft` puts a low-rank pair (A, B) beside each attention and
feed-forward linear layer; only those pairs and one small head per task are trained, with
cross-entropy, on the training messages (intents, and sentiments where given, together). The
pairs are then taken out as plain arrays (`minilm.Adapter`), saved with the model, and merged
into the weights at load: serving needs neither `peft` nor any extra work per message. The
heads used at serving are fitted afterwards as in the frozen method, on the adapted vectors
next to the n-grams (`workers.nlu.training.train_model`).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from core.infra.logs import event
from workers import minilm
from workers.encoder import EMBEDDING_DIM

log = logging.getLogger(__name__)

TARGETS = ("qkv", "attention_out", "up", "down")  # every linear layer of each block


@dataclass(frozen=True)
class LoraConfig:
    rank: int = 8
    alpha: int = 16  # the changes are scaled by alpha / rank
    dropout: float = 0.1
    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 2e-3
    head_scale: float = 20.0  # cosine head: logits = scale * cos(vector, class weight)
    seed: int = 0


Say = Callable[[str], None]


def tune_encoder(
    tasks: Sequence[Sequence[tuple[str, str]]],
    config: LoraConfig = LoraConfig(),
    say: Say | None = None,
) -> minilm.Adapter:
    """LoRA changes to MiniLM that separate the labels of each task's (text, label) pairs; all
    tasks train at once, one cosine head each, over the same mean-pooled last layer."""
    from peft import LoraConfig as PeftConfig
    from peft import inject_adapter_in_model

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    tokenizer, _ = minilm.load_encoder(precise=True)
    model: nn.Module = inject_adapter_in_model(
        PeftConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                   target_modules=list(TARGETS)),
        minilm.pretrained(),
    )
    for name, parameter in model.named_parameters():
        parameter.requires_grad = "lora_" in name
    names = [sorted({label for _, label in task}) for task in tasks]
    heads = [nn.Linear(EMBEDDING_DIM, len(labels), bias=False) for labels in names]
    examples = [
        (text, t, labels.index(label))
        for t, (task, labels) in enumerate(zip(tasks, names, strict=True))
        for text, label in task
    ]
    steps = config.epochs * math.ceil(len(examples) / config.batch_size)
    trained = [p for p in model.parameters() if p.requires_grad] + [h.weight for h in heads]
    optimiser = torch.optim.AdamW(trained, lr=config.learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 16)
    def rate(step: int) -> float:  # linear warm-up, then linear decay to zero
        return min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    model.train()
    started = time.perf_counter()
    for epoch in range(config.epochs):
        total, batches = 0.0, 0
        for batch in _batches(examples, config.batch_size, rng):
            ids, mask = minilm.token_ids(tokenizer, [text for text, _, _ in batch])
            vectors = F.normalize(minilm.mean_pool(model(ids, mask)[-1], mask), dim=-1)
            losses: list[Tensor] = []
            for t, head in enumerate(heads):
                rows = [i for i, (_, task, _) in enumerate(batch) if task == t]
                if not rows:
                    continue
                weights = F.normalize(head.weight, dim=-1)
                logits = config.head_scale * vectors[rows] @ weights.T
                target = torch.tensor([batch[i][2] for i in rows])
                losses.append(F.cross_entropy(logits, target) * len(rows) / len(batch))
            loss = torch.stack(losses).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
            batches += 1
        line = (f"LoRA epoch {epoch + 1}/{config.epochs}: loss {total / max(1, batches):.4f}, "
                f"{time.perf_counter() - started:.0f}s")
        event(log, "nlu.lora.epoch", epoch=epoch + 1, loss=round(total / max(1, batches), 4),
              seconds=round(time.perf_counter() - started, 1))
        if say is not None:
            say(line)
    return adapter_of(model, config)


def adapter_of(model: nn.Module, config: LoraConfig) -> minilm.Adapter:
    """The trained (A, B) pairs of a peft-adapted MiniLM, as plain tensors by layer name."""
    a: dict[str, Tensor] = {}
    b: dict[str, Tensor] = {}
    for name, parameter in model.named_parameters():
        for part, into in ((".lora_A.", a), (".lora_B.", b)):
            if part in name:
                into[name.split(part)[0]] = parameter.detach().clone()
    if not a or a.keys() != b.keys():
        raise RuntimeError("the adapted model has no complete LoRA pairs")
    return minilm.Adapter(config.alpha / config.rank, a, b)


def _batches(
    examples: list[tuple[str, int, int]], size: int, rng: random.Random
) -> list[list[tuple[str, int, int]]]:
    """Shuffled batches of similar lengths: shuffle, sort within windows of 50 batches by
    length (little padding), then shuffle the batches themselves."""
    order = examples[:]
    rng.shuffle(order)
    window = size * 50
    batches: list[list[tuple[str, int, int]]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda e: len(e[0]))
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches
