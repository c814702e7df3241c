"""DDP on CPU: two gloo processes train the lifter and end with identical parameters."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from elepose.models.lifter import LiftingNetwork
from elepose.runtime import seed_everything
from elepose.train.config import FlowConfig, TrainConfig
from elepose.train.loop import train_flow, train_lifter
from tests.synthetic import write_cache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, cache: str, flow: str, out: str, dump: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    config = TrainConfig(
        data=cache,
        flow=flow,
        out=out,
        epochs=1,
        batch_size=64,
        hidden=32,
        eval_samples=64,
        reliability_rotations=2,
        device="cpu",
        epoch_samples=512,
    )

    def dump_params(epoch: int, lifter: torch.nn.Module) -> None:
        torch.save({k: v.detach().clone() for k, v in lifter.state_dict().items()}, Path(dump) / f"rank{rank}.pt")

    train_lifter(config, progress=False, on_epoch_end=dump_params)


def test_two_gloo_ranks_keep_identical_parameters(tmp_path):
    cache = write_cache(tmp_path / "cache", n_train=512, n_test=128)
    flow = tmp_path / "flow"
    train_flow(
        FlowConfig(data=str(cache), out=str(flow), hidden=32, blocks=2, epochs=1, batch_size=128, device="cpu"),
        progress=False,
    )
    dump = tmp_path / "dump"
    dump.mkdir()
    mp.spawn(
        _worker, args=(2, _free_port(), str(cache), str(flow), str(tmp_path / "lifter"), str(dump)), nprocs=2, join=True
    )
    a = torch.load(dump / "rank0.pt", weights_only=True)
    b = torch.load(dump / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    # Each rank seeds its own initialisation (seed + rank) and sees its own shard of the data,
    # so equality comes from DDP's broadcast and gradient averaging; training moved the weights.
    seed_everything(0)
    initial = LiftingNetwork(hidden=32, variant="shared", elevation=True).state_dict()
    assert any(not torch.equal(initial[k], a[k]) for k in a)
    assert (tmp_path / "lifter" / "model.safetensors").is_file()
