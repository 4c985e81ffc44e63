"""The sequential recommender: a causal transformer over the customer's history.

Items are the projection of their precomputed MiniLM text embedding plus a learned ID
embedding, so an item never seen in training is still scored through its text. The request
text from the chat is a second context vector added to the customer's state, so it steers the
ranking even when the history is empty. `use_text=False` gives the ID-only baseline (SASRec).

Inputs are right-padded: position 0 is a learned start token, then the history; a causal mask
alone keeps every real position away from the padding that follows it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

CHECKPOINT = "model.pt"


@dataclass
class RecommenderConfig:
    n_items: int  # real items; index 0 is padding
    text_dim: int = 384
    dim: int = 64
    layers: int = 2
    heads: int = 2
    max_len: int = 50  # history items kept (the start token comes on top)
    dropout: float = 0.3
    use_text: bool = True
    use_request: bool = True
    id_dropout: float = 0.1  # share of items whose ID embedding is hidden in a training step
    item_ids: list[str] = field(default_factory=list)  # item index i + 1 -> catalog id


class RecommenderNet(nn.Module):
    text: Tensor  # (N+1, D) buffer
    known: Tensor  # (N+1,) bool buffer

    def __init__(self, config: RecommenderConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.id_embedding = nn.Embedding(c.n_items + 1, c.dim, padding_idx=0)
        nn.init.normal_(self.id_embedding.weight, std=0.02)
        with torch.no_grad():
            self.id_embedding.weight[0].zero_()
        # Text embeddings are inputs, not parameters: saved with the model, never trained.
        self.register_buffer("text", torch.zeros(c.n_items + 1, c.text_dim))
        # Items whose ID embedding was trained; the others are represented by text alone.
        self.register_buffer("known", torch.ones(c.n_items + 1, dtype=torch.bool))
        self.text_projection = nn.Linear(c.text_dim, c.dim)
        self.item_norm = nn.LayerNorm(c.dim)
        self.start = nn.Parameter(torch.randn(c.dim) * 0.02)
        self.position = nn.Embedding(c.max_len + 1, c.dim)
        # Small, like the items: unit-scale positions would drown the item signal at the start.
        nn.init.normal_(self.position.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(
            c.dim,
            c.heads,
            dim_feedforward=c.dim * 4,
            dropout=c.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(c.dim)
        self.request_projection = nn.Linear(c.text_dim, c.dim, bias=False)
        self.dropout = nn.Dropout(c.dropout)
        self._table: Tensor | None = None  # cached item table for inference
        # Layer-normed text items have unit-scale features: a dot product of two of them has
        # a spread of sqrt(dim), far too confident at the start, so logits are scaled down.
        # Small random ID embeddings (the ID-only model) get SASRec's usual input scaling.
        self.logit_scale = c.dim**-0.5 if c.use_text else 1.0
        self.input_scale = 1.0 if c.use_text else c.dim**0.5

    # -- item side -----------------------------------------------------------------------

    def item_table(self) -> Tensor:
        """Representation of every item (N + 1, C); cached while in eval mode."""
        if not self.training and self._table is not None:
            return self._table
        ids = self.id_embedding.weight * self.known.unsqueeze(-1)  # (N+1, C)
        if self.training and self.config.id_dropout > 0:
            keep = torch.rand(ids.shape[0], 1) >= self.config.id_dropout
            ids = ids * keep
        table = ids
        if self.config.use_text:
            table = table + self.text_projection(self.text)
            table = self.item_norm(table)
        if not self.training:
            self._table = table.detach()
        return table

    def train(self, mode: bool = True) -> RecommenderNet:
        self._table = None
        return super().train(mode)

    # -- customer side -------------------------------------------------------------------

    def states(self, history: Tensor, table: Tensor) -> Tensor:
        """Hidden state after each input position: history (B, T) -> (B, T + 1, C)."""
        batch, length = history.shape
        tokens = F.embedding(history, table)  # (B, T, C)
        tokens = torch.cat([self.start.expand(batch, 1, -1), tokens], dim=1)  # (B, T+1, C)
        positions = torch.arange(length + 1, device=history.device)
        x = self.dropout(tokens * self.input_scale + self.position(positions))
        mask = nn.Transformer.generate_square_subsequent_mask(length + 1)
        x = self.encoder(x, mask=mask, is_causal=True)  # (B, T+1, C)
        return self.final_norm(x)

    def request_context(self, request: Tensor | None) -> Tensor | float:
        if request is None or not self.config.use_request:
            return 0.0
        return self.request_projection(request)

    # -- training and inference ----------------------------------------------------------

    def forward(self, history: Tensor, targets: Tensor, requests: Tensor | None = None) -> Tensor:
        """Mean cross-entropy of the next item over the whole catalog.

        history (B, T): items, right-padded with 0; targets (B, T + 1): the item that follows
        each input position (0 where there is none); requests (M, D) or None: the request-text
        embedding in force at each of the M positions with a target, in `targets[targets > 0]`
        order (zeros where the customer said nothing).
        """
        table = self.item_table()  # (N+1, C)
        hidden = self.states(history, table)  # (B, T+1, C)
        valid = targets > 0
        users = hidden[valid] + self.request_context(requests)  # (M, C)
        logits = users @ table[1:].T * self.logit_scale  # (M, N): full softmax, no sampling
        return F.cross_entropy(logits, targets[valid] - 1)

    @torch.no_grad()
    def user_vectors(
        self, history: Tensor, lengths: Tensor, request: Tensor | None = None
    ) -> Tensor:
        """The customer's state after their whole history: (B, T), (B,) -> (B, C)."""
        table = self.item_table()
        hidden = self.states(history, table)  # (B, T+1, C)
        last = hidden[torch.arange(history.shape[0]), lengths]  # (B, C)
        return last + self.request_context(request)

    @torch.no_grad()
    def score(self, history: Tensor, lengths: Tensor, request: Tensor | None = None) -> Tensor:
        """Scores over every item in one matmul: (B, T), (B,), (B, D) -> (B, N + 1).

        Column 0 (padding) is -inf. History longer than max_len must be cut by the caller
        (keep the most recent items; see `pad_histories`).
        """
        users = self.user_vectors(history, lengths, request)  # (B, C)
        scores = users @ self.item_table().T * self.logit_scale  # (B, N+1)
        scores[:, 0] = float("-inf")
        return scores


def pad_histories(histories: list[list[int]], max_len: int) -> tuple[Tensor, Tensor]:
    """Right-padded (B, T) tensor of the most recent `max_len` items, and their lengths (B,)."""
    cut = [history[-max_len:] for history in histories]
    width = max(1, max((len(h) for h in cut), default=0))
    batch = torch.zeros(len(cut), width, dtype=torch.long)
    for row, history in enumerate(cut):
        if history:
            batch[row, : len(history)] = torch.tensor(history)
    return batch, torch.tensor([len(h) for h in cut], dtype=torch.long)


def save_checkpoint(
    model: RecommenderNet, folder: Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write the weights, their config and any extra facts (training curve, ...) to one file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT
    partial = path.with_suffix(".partial")
    state = dict(model.state_dict())
    torch.save({"config": asdict(model.config), "state": state, "extra": extra or {}}, partial)
    partial.replace(path)  # atomic: a reader never sees half a checkpoint
    return path


def load_checkpoint(folder: Path) -> tuple[RecommenderNet, dict[str, Any]]:
    """The model in eval mode on CPU, and the checkpoint's extra facts."""
    checkpoint = torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=False)
    model = RecommenderNet(RecommenderConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["state"])
    model.eval()
    return model, checkpoint["extra"]
