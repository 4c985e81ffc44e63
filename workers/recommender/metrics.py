"""Full-ranking metrics (HR@k, NDCG@k, coverage) over leave-one-out cases: one implementation
for validation during training and for evaluation, so both report the same figures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from workers.recommender.split import Case, Scorer


@dataclass(frozen=True)
class Ranks:
    """0-based rank of each case's target (ties count half), and every case's top 20."""

    ranks: Tensor  # (cases,) float
    top: Tensor  # (cases, 20) item indices


def rank_cases(
    scorer: Scorer, cases: Sequence[Case], exclude_history: bool, batch_size: int = 512
) -> Ranks:
    ranks: list[Tensor] = []
    tops: list[Tensor] = []
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        scores = scorer([list(case.history) for case in chunk]).clone()  # (B, N+1)
        scores[:, 0] = float("-inf")
        if exclude_history:
            # ICLRec's protocol: items already in the history are removed from the ranking.
            for row, case in enumerate(chunk):
                if case.history:
                    scores[row, list(case.history)] = float("-inf")
        targets = torch.tensor([case.target for case in chunk])
        target_scores = scores[torch.arange(len(chunk)), targets].unsqueeze(1)  # (B, 1)
        above = (scores > target_scores).sum(1).float()
        ties = (scores == target_scores).sum(1).float() - 1
        rank = above + ties / 2
        rank[torch.isinf(target_scores.squeeze(1))] = float(scores.shape[1])
        ranks.append(rank)
        tops.append(scores.topk(20, dim=1).indices)
    if not ranks:
        return Ranks(torch.zeros(0), torch.zeros(0, 20, dtype=torch.long))
    return Ranks(torch.cat(ranks), torch.cat(tops))


def hit_rate(ranks: Tensor, k: int) -> float:
    return float((ranks < k).float().mean()) if len(ranks) else 0.0


def ndcg_gains(ranks: Tensor, k: int) -> Tensor:
    """Each case's NDCG@k (one relevant item): 1/log2(rank + 2) inside the top k, else 0."""
    ranks = ranks.float()
    return torch.where(ranks < k, 1.0 / torch.log2(ranks + 2.0), torch.zeros_like(ranks))


def ndcg(ranks: Tensor, k: int) -> float:
    if not len(ranks):
        return 0.0
    return float(ndcg_gains(ranks, k).mean())


def ranking_metrics(result: Ranks, n_items: int) -> dict[str, float]:
    top10 = result.top[:, :10]
    return {
        "hr@10": hit_rate(result.ranks, 10),
        "ndcg@10": ndcg(result.ranks, 10),
        "hr@20": hit_rate(result.ranks, 20),
        "ndcg@20": ndcg(result.ranks, 20),
        "coverage@10": len(set(top10.flatten().tolist())) / max(1, n_items),
        "cases": float(len(result.ranks)),
    }


def log2_bucket(length: int) -> str:
    """History-length bucket label: 1, 2-3, 4-7, 8-15, 16+."""
    if length <= 1:
        return "1"
    low = 2 ** int(math.log2(length))
    return f"{low}-{2 * low - 1}" if low < 16 else "16+"
