"""Training on several processes: `concierge train recommender --nproc N` starts N copies of the
same training under `torchrun`, on this machine or on several (`--nnodes`).

Each process is one rank of a gloo process group (CPU). The training loop in `train.py` runs
the same code on one rank or many through a `TrainingGroup`: with one process every
collective is a no-op and the model is used as it is; with several, the model is wrapped in
DistributedDataParallel, each rank trains on its share of every epoch's batches, validation
figures are gathered so every rank takes the same early-stopping decision, and only rank 0
writes the checkpoint.

`python -m workers.recommender.distributed '["--dataset", ...]'` is what torchrun runs in each
process: join the group, then `concierge train recommender` with those arguments. They travel
as one JSON list: torchrun would otherwise read `--nproc` as an abbreviation of its own
`--nproc-per-node`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import distributed as dist
from torch import nn

from workers.recommender.metrics import Ranks

T = TypeVar("T")

ENTRY = "workers.recommender.distributed"  # the module torchrun runs in every process


@dataclass(frozen=True)
class TrainingGroup:
    """The processes training one model together, seen from one of them."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that shows progress and writes the checkpoint."""
        return self.rank == 0

    def wrap(self, model: nn.Module, all_parameters_used: bool) -> nn.Module:
        """The module to train: `model` itself alone, else DDP averaging gradients over ranks.
        DDP copies rank 0's parameters and buffers to every rank here, so all ranks start from
        the same weights whatever their seed."""
        if self.size == 1:
            return model
        return nn.parallel.DistributedDataParallel(
            model,
            # The buffers (the items' text embeddings) never change in training: copied from
            # rank 0 once here, not before every step (megabytes for nothing).
            forward_sync_buffers=False,
            # The ID-only model and training without request texts leave some parameters out
            # of the loss; DDP must then look for them, or it waits for their gradients.
            find_unused_parameters=not all_parameters_used,
        )

    def shard(self, items: Sequence[T], *, even: bool) -> list[T]:
        """This rank's share of `items` (the same list on every rank): every size-th item.
        `even` (an epoch's batches): like DistributedSampler, the list is first padded by
        repeating its start to a multiple of the group size, so every rank takes as many
        steps, as DDP needs every rank in every gradient exchange. Validation cases are
        never repeated."""
        if self.size == 1:
            return list(items)
        padded = list(items)
        if even and padded and len(padded) % self.size:
            padded += padded[: self.size - len(padded) % self.size]
        return padded[self.rank :: self.size]

    def agree(self, value: float) -> float:
        """Rank 0's `value` on every rank: for decisions taken from measurements that differ
        between processes (elapsed time), which must not differ between ranks."""
        if self.size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def total(self, *values: float) -> list[float]:
        """The sum of each value over all ranks."""
        if self.size == 1:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return [float(v) for v in tensor.tolist()]

    def gather(self, ranks: Ranks) -> Ranks:
        """Every rank's ranked cases, in rank order, on every rank: the validation figures
        computed from them are then identical everywhere."""
        if self.size == 1:
            return ranks
        parts: list[Ranks | None] = [None] * self.size
        dist.all_gather_object(parts, ranks)
        found = [part for part in parts if part is not None]
        return Ranks(torch.cat([p.ranks for p in found]), torch.cat([p.top for p in found]))

    @contextmanager
    def first(self) -> Iterator[None]:
        """Rank 0 runs the block before the others (it fills caches the others then read)."""
        if self.size > 1 and not self.main:
            dist.barrier()
        yield
        if self.size > 1 and self.main:
            dist.barrier()


def join_group() -> TrainingGroup:
    """Join the gloo group torchrun describes in this process's environment (RANK,
    WORLD_SIZE, MASTER_ADDR, MASTER_PORT)."""
    dist.init_process_group("gloo")
    return TrainingGroup(dist.get_rank(), dist.get_world_size())


@dataclass(frozen=True)
class Launch:
    """Where the ranks run: `nproc` processes on each of `nnodes` machines."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None  # HOST:PORT of node 0, when nnodes > 1

    def torchrun(self, argv: Sequence[str]) -> list[str]:
        """The torchrun command that runs `concierge train recommender argv` in every rank."""
        command = [sys.executable, "-m", "torch.distributed.run",
                   f"--nproc-per-node={self.nproc}"]
        if self.nnodes == 1:
            command.append("--standalone")  # a free local port, no endpoint to give
        else:
            if not self.rdzv_endpoint:
                raise ValueError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT (node 0)")
            # torchrun's static rendezvous: node 0 listens on the endpoint, every node says
            # its own rank, and the group starts once all `nnodes` have joined.
            command += [f"--nnodes={self.nnodes}", f"--node-rank={self.node_rank}",
                        f"--rdzv-endpoint={self.rdzv_endpoint}"]
        return [*command, "-m", ENTRY, json.dumps(list(argv))]


def launch(plan: Launch, argv: Sequence[str], threads: int) -> int:
    """Run the ranks of this machine under torchrun and wait for them; their exit status."""
    # Each rank computes with `threads` threads (OpenMP's and torch's). With one thread per
    # rank, N ranks on N cores each keep a core: more threads than cores make the ranks
    # contend, and every gradient exchange then waits for the slowest. torchrun would set
    # OMP_NUM_THREADS=1 itself (with a warning); saying it is the choice.
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    return subprocess.run(plan.torchrun(argv), env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """One rank under torchrun: join the group, train, leave the group. `argv` is one JSON
    list, the arguments of `concierge train recommender`."""
    from workers.recommender.cli import train_recommender_main

    (encoded,) = argv if argv is not None else sys.argv[1:]
    arguments = [str(word) for word in json.loads(encoded)]
    group = join_group()
    try:
        return train_recommender_main(arguments, group=group)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
