"""What tests/test_distributed.py runs in its 2 processes (torch.multiprocessing, gloo on the CPU), and how it
launches `python -m nasviz search` on 2 processes itself (the environment torchrun gives, so that the test owns
each process and sees its exit code)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(warmup_steps=4, population=3, generations=1, finetune_steps=4, fitness_images=64, weight_images=256,
            batch_size=16, eval_batch_size=64, bn_batches=1, checkpoint_every=2, top_k=2, device="cpu")
"""The smoke preset made smaller: a global batch of 16 (8 per process), k = 4 warm-up steps."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_group(rank: int, port: int) -> None:
    """Initialise torch.distributed as a program of one's own would (the Python API, not torchrun)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=120))


def collectives(rank: int, port: int, out: str) -> None:
    """The helpers of `nasviz.train.distributed.Ranks` on 2 processes; rank 1 fails inside `agree`."""
    from nasviz.errors import ConfigError
    from nasviz.train import distributed

    join_group(rank, port)
    try:
        ranks = distributed.detect()
        items = list("abcde")
        got = {"ranks": (ranks.rank, ranks.size), "shard": ranks.shard(items),
               "gather": ranks.gather([s.upper() for s in ranks.shard(items)], len(items)),
               "mean": ranks.mean([torch.tensor(float(rank)), 2.0 * rank]),
               "any": (ranks.any(rank == 1), ranks.any(False)),
               "state": ranks.broadcast_state({"w": torch.full((2,), float(rank)), "n": rank})}
        weight = torch.nn.Parameter(torch.zeros(3))
        unused = torch.nn.Parameter(torch.zeros(2))
        (weight * (rank + 1)).sum().backward()  # gradient 1 on rank 0, 2 on rank 1; none for `unused`
        ranks.average_gradients([weight, unused])
        got["grad"], got["unused_grad"] = weight.grad.tolist(), unused.grad
        try:
            with ranks.agree():
                if rank == 1:
                    raise ConfigError("rank 1 cannot start", setting="out")
        except ConfigError as exc:
            got["agreed"] = (str(exc), exc.setting, getattr(exc, "agreed", False))
        torch.save(got, Path(out) / f"collectives{rank}.pt")
    finally:
        dist.destroy_process_group()


def search_steps(rank: int, port: int, out: str) -> None:
    """A search through the Python API with torch.distributed initialised: the warm-up, the initial population
    and one generation. Saves the paths trained, the batch slices trained on, the weights when the warm-up ended,
    the initial population's fitness values (in evaluation order) and the population after the generation."""
    from nasviz.runs import events
    from nasviz.search.config import SearchConfig
    from nasviz.search.loop import Search

    join_group(rank, port)
    try:
        search = Search(SearchConfig.from_preset("smoke", **TINY))
        paths, slices, initial, weights = [], [], [], {}

        def on_event(event) -> None:
            if isinstance(event, events.TrainStep):
                paths.append(event.genotype)
            elif isinstance(event, events.Phase) and event.phase == "initial":
                weights.update({k: v.detach().clone() for k, v in search.supernet.state_dict().items()})
            elif isinstance(event, events.Evaluation) and event.generation == 0:
                initial.append((event.genotype, event.fitness))

        search.subscribe(on_event)
        take = search.ranks.slice

        def recording(batch):
            mine = take(batch)
            slices.append(tuple(t.clone() for t in mine))
            return mine

        search.ranks.slice = recording
        search.warmup()
        search.step()
        torch.save({"paths": paths, "slices": slices, "weights": weights, "initial": initial,
                    "population": [(str(i.genotype), i.fitness) for i in search.population],
                    "final": {k: v.detach().clone() for k, v in search.supernet.named_parameters()}},
                   Path(out) / f"search{rank}.pt")
    finally:
        dist.destroy_process_group()


def launch(args: list[str], logs: Path, port: int | None = None) -> list[subprocess.Popen]:
    """`python -m nasviz ARGS` as ranks 0 and 1 of one search (RANK, WORLD_SIZE, MASTER_ADDR, ... as torchrun sets
    them), one thread each, importing this checkout's nasviz; stdout and stderr go to logs/rankN.log."""
    port = port or free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RANK": str(rank),
               "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port)}
        log = open(logs / f"rank{rank}.log", "wb")  # noqa: SIM115 - closed by the process's end (see `wait`)
        procs.append(subprocess.Popen([sys.executable, "-m", "nasviz", *args], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=ROOT))
        log.close()
    return procs


def torchrun(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m nasviz ARGS`, one thread per process, this checkout's nasviz.
    Stopped by anything (a timeout, the test's), torchrun gets SIGTERM, so that it stops its processes too (they
    run in sessions of their own: killing torchrun alone would leave them running)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "nasviz",
               *args]
    with subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            stop([proc])
            raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def stop(procs: list[subprocess.Popen]) -> None:
    """End those of `procs` still running: SIGTERM, then SIGKILL after 30 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
