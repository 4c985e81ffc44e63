"""`concierge train recommender --nproc 2`: two torchrun processes train one model together
(DDP over gloo) and rank 0 writes the checkpoint a single process would write."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import clean_env
from workers.recommender.distributed import ENTRY, Launch, TrainingGroup
from workers.recommender.model import CHECKPOINT, load_checkpoint

DEMO = ["--dataset", "demo", "--epochs", "2", "--patience", "5", "--quiet", "--threads", "1"]


def test_shards_cover_every_batch_and_take_as_many_steps() -> None:
    batches = list(range(7))
    shards = [TrainingGroup(rank, 3).shard(batches, even=True) for rank in range(3)]
    assert [len(shard) for shard in shards] == [3, 3, 3]
    # Padded from the start of the list, so every rank takes three steps.
    assert sorted(b for shard in shards for b in shard) == [0, 0, 1, 1, *range(2, 7)]
    cases = [TrainingGroup(rank, 3).shard(batches, even=False) for rank in range(3)]
    assert sorted(c for part in cases for c in part) == batches  # validation: each once
    assert TrainingGroup().shard(batches, even=True) == batches


def test_torchrun_command_on_one_machine_or_several() -> None:
    one = Launch(nproc=2).torchrun(["--dataset", "demo", "--nproc", "2"])
    assert one[1:5] == ["-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone"]
    assert one[-3:] == ["-m", ENTRY, '["--dataset", "demo", "--nproc", "2"]']
    several = Launch(nproc=4, nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.5:29400")
    assert several.torchrun([])[3:7] == ["--nproc-per-node=4", "--nnodes=2", "--node-rank=1",
                                         "--rdzv-endpoint=10.0.0.5:29400"]
    with pytest.raises(ValueError, match="rdzv-endpoint"):
        Launch(nnodes=2).torchrun([])


def _train(out: Path, models: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "bots.cli", "train", "recommender", *DEMO, "--out", str(out),
         *extra],
        capture_output=True, text=True, cwd=out.parent, env=clean_env(models_dir=models),
        timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _summary(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    summary: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


@pytest.mark.slow
def test_two_processes_save_what_one_process_saves(tmp_path: Path) -> None:
    models = tmp_path / "models"  # the item texts' embedding cache
    one = _train(tmp_path / "one", models)
    two = _train(tmp_path / "two", models, "--nproc", "2")

    assert _summary(one)["world_size"] == 1 and _summary(two)["world_size"] == 2
    # Both ranks trained, each on half of every global batch; only rank 0 reported.
    for rank in (0, 1):
        assert f"rank={rank} world_size=2 batch_per_rank=64" in two.stderr
    assert two.stdout.count("saved ") == 1

    single, single_extra = load_checkpoint(tmp_path / "one")
    shared, shared_extra = load_checkpoint(tmp_path / "two")
    raw = {name: _raw(tmp_path / name) for name in ("one", "two")}
    assert raw["one"].keys() == raw["two"].keys()
    assert raw["one"]["config"].keys() == raw["two"]["config"].keys()
    assert single.state_dict().keys() == shared.state_dict().keys()  # no DDP "module." prefix
    assert single_extra.keys() == shared_extra.keys()
    assert single_extra["world_size"] == 1 and shared_extra["world_size"] == 2
    assert shared_extra["finished"] and len(shared_extra["curve"]) == 2
    card = json.loads((tmp_path / "two" / "card.json").read_text())
    assert card.keys() == json.loads((tmp_path / "one" / "card.json").read_text()).keys()


def _raw(folder: Path) -> dict[str, dict[str, object]]:
    import torch

    checkpoint: dict[str, dict[str, object]] = torch.load(
        folder / CHECKPOINT, map_location="cpu", weights_only=False
    )
    return checkpoint


@pytest.mark.slow
def test_two_machines_meet_at_the_rendezvous_endpoint(tmp_path: Path) -> None:
    """The several-machines path, on one machine: two launchers, one process each, node
    ranks 0 and 1, meeting at node 0's endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    models = tmp_path / "models"
    _train(tmp_path / "warm", models, "--epochs", "1")  # the embedding cache, for both
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "bots.cli", "train", "recommender", *DEMO,
             "--out", str(tmp_path / f"node{rank}"), "--nnodes", "2", "--node-rank", str(rank),
             "--rdzv-endpoint", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            env=clean_env(models_dir=models),
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=600) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-2000:]
    assert "world_size=2" in outputs[0][1] and "rank=1 world_size=2" in outputs[1][1]
    assert (tmp_path / "node0" / CHECKPOINT).exists()  # global rank 0 writes
    assert not (tmp_path / "node1").exists()
    _, extra = load_checkpoint(tmp_path / "node0")
    assert extra["world_size"] == 2
