"""Who am I, and how do the processes of one search agree: a search on several processes over `torch.distributed`.

    torchrun --standalone --nproc_per_node 2 -m nasviz search --preset quick --out runs/q2

One process is the default and nothing changes for it. Under `torchrun` (its RANK, WORLD_SIZE and MASTER_ADDR
environment variables), or in a program that initialised `torch.distributed` itself, a search runs on all the
processes of the default group (`Ranks`): each trains the same path on its slice of the global batch and evaluates
its share of the population; only rank 0 writes the run's files. `detect` initialises the group where torchrun
launched the process: gloo for CPU tensors and, where CUDA is present, NCCL for CUDA ones.

Every helper of a `Ranks` of one process is a no-op, so the one-process search runs exactly the code it ran
before. A collective that fails because another process is gone becomes a one-line `RankError`. A process whose
group `detect` created ends through `end_process` (the command line's `python -m nasviz` does), or calls
`shutdown()` before it exits.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import torch
import torch.distributed as dist

from nasviz.errors import ConfigError, NasvizError, RankError, one_line

T = TypeVar("T")
_CREATED = False
"""Whether `detect` initialised the default process group (then `end_process` or `shutdown` ends it)."""


def launched() -> bool:
    """True in a process that torchrun (or a launcher like it) started as one of several: WORLD_SIZE > 1, with
    RANK and MASTER_ADDR set."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return False
    return size > 1 and "RANK" in os.environ and "MASTER_ADDR" in os.environ


def initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Processes of the default group (1 when there is none)."""
    return dist.get_world_size() if initialised() else 1


def rank() -> int:
    """This process's rank in the default group (0 when there is none; RANK where torchrun set it but no group
    exists yet)."""
    if initialised():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0")) if launched() else 0


def is_main() -> bool:
    """Whether this process is rank 0: the one that writes the run's files and prints."""
    return rank() == 0


def local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK; the rank where it is not set)."""
    return int(os.environ.get("LOCAL_RANK", rank()))


def shard(items: Sequence[T], rank: int, size: int) -> list[T]:
    """`rank`'s share of `items` out of `size`: every size-th item from the rank-th (sizes differ by at most 1)."""
    return list(items[rank::size])


def unshard(shares: Sequence[Sequence[T]], n: int) -> list[T]:
    """The `n` items that `shard` split into `shares` (one per rank), in their order."""
    size = len(shares)
    return [shares[i % size][i // size] for i in range(n)]


def detect() -> Ranks:
    """This process's `Ranks`: the default group where `torch.distributed` is initialised, else a group that
    this call initialises where torchrun launched several processes, else a lone process."""
    global _CREATED
    if not initialised() and launched():
        if not dist.is_available():
            raise ConfigError("this PyTorch build has no torch.distributed; allowed: one process")
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
        _CREATED = True
    if not initialised() or dist.get_world_size() == 1:
        return Ranks()
    return Ranks(dist.get_rank(), dist.get_world_size())


def created() -> bool:
    """Whether `detect` initialised this process's default group (a process that torchrun or nasviz launched)."""
    return _CREATED and initialised()


def shutdown() -> None:
    """Destroy the default group if `detect` created it (a process that exits with its group alive may abort)."""
    global _CREATED
    if created():
        dist.destroy_process_group()
    _CREATED = False


def end_process(code: int) -> NoReturn:
    """End this process now with exit `code`, its output flushed, without PyTorch's teardown of the group `detect`
    created: destroying a gloo group, or exiting with it alive, can abort a process whose work is done
    ("terminate called without an active exception", SIGABRT; CI saw it in rank 1 of two 2-process searches, and
    the search then ended as a crash). Every run file is whole by then: written atomically, or appended and flushed
    line by line. The processes run the same collectives, so none is left waiting for this one."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # closed or missing: nothing to lose
            pass
    os._exit(code)


def silenced(exc: BaseException) -> bool:
    """Whether this process leaves `exc` unreported, so that a search on several processes stops with one message:
    a process other than rank 0 reports neither an error every process raised (`Ranks.agree`; rank 0 reports it),
    nor that another process is gone (`RankError`), nor an interruption."""
    return world_size() > 1 and not is_main() and (getattr(exc, "agreed", False)
                                                   or isinstance(exc, (RankError, KeyboardInterrupt)))


@contextmanager
def _collective(what: str) -> Iterator[None]:
    """Run a collective; a failure (another process died, a timeout) becomes a one-line RankError."""
    try:
        yield
    except RuntimeError as exc:  # torch.distributed.DistError and gloo's "Connection closed by peer" are these
        raise RankError(f"another process of this search stopped during {what} ({one_line(exc, 160)}); the run's "
                        "last checkpoint, if any, is whole: resume it on the same number of processes") from None


class Ranks:
    """This process's place among the `size` processes of one search (rank 0 writes the files). A `Ranks()` is
    one lone process: every method is then a no-op or an identity."""

    def __init__(self, rank: int = 0, size: int = 1) -> None:
        self.rank, self.size = rank, size

    def __repr__(self) -> str:
        return f"Ranks(rank={self.rank}, size={self.size})"

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files, events and checkpoints, and prints."""
        return self.rank == 0

    def _nccl(self) -> bool:
        return "nccl" in str(dist.get_backend())

    def _small(self) -> torch.device:
        """Where small collectives run: the CPU (gloo), unless the group has no CPU backend (NCCL only)."""
        if str(dist.get_backend()) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    # --- the device and the batch --------------------------------------------------------------------------
    def device(self, device: torch.device, requested: str) -> torch.device:
        """The device this process runs on: `device` (`nasviz.train.steps.pick_device`'s choice), where CUDA is
        cuda:LOCAL_RANK with several processes (one GPU each). ConfigError for one GPU named for all of them
        or more processes on this machine than it has GPUs."""
        if self.size == 1 or device.type != "cuda":
            return device
        if ":" in requested:
            raise ConfigError(f"device={requested!r} names one GPU for all {self.size} processes; allowed: auto or "
                              "cuda (each process takes the GPU of its local rank)", setting="device")
        index, count = local_rank(), torch.cuda.device_count()
        if index >= count:
            raise ConfigError(f"local rank {index} has no GPU: this machine has {count}; allowed: at most {count} "
                              "processes per machine, or device=cpu", setting="device")
        torch.cuda.set_device(index)
        return torch.device("cuda", index)

    def check_batch(self, batch_size: int) -> None:
        """ConfigError unless the global batch splits evenly across the processes."""
        if batch_size % self.size:
            raise ConfigError(f"batch_size={batch_size} does not split evenly across {self.size} processes; allowed: "
                              f"a multiple of {self.size}", setting="batch_size")

    def slice(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's part of a global (images, labels) batch: the rank-th of `size` equal, consecutive parts."""
        if self.size == 1:
            return batch
        x, y = batch
        n = len(y) // self.size
        return x[self.rank * n: (self.rank + 1) * n], y[self.rank * n: (self.rank + 1) * n]

    # --- agreement ---------------------------------------------------------------------------------------------
    def mean(self, values: Sequence[torch.Tensor | float]) -> list[float]:
        """The mean over the processes of each of `values` (one collective)."""
        if self.size == 1:
            return [float(v) for v in values]
        first = values[0]
        device = first.device if isinstance(first, torch.Tensor) and first.is_cuda and self._nccl() else self._small()
        t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
        with _collective("a training step"):
            dist.all_reduce(t)
        return (t / self.size).tolist()

    def average_gradients(self, params: Sequence[torch.Tensor]) -> None:
        """Replace the gradient of each of `params` that has one by its mean over the processes (one collective of
        the path's gradients only: every process trained the same path, so the same parameters have gradients)."""
        if self.size == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        with _collective("a training step"):
            dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for g in grads:
            g.copy_(flat[offset: offset + g.numel()].view(g.shape))
            offset += g.numel()

    def any(self, flag: bool) -> bool:
        """Whether `flag` is set on any process (a stop asked on one process stops all at the same point)."""
        if self.size == 1:
            return flag
        t = torch.tensor([int(bool(flag))], dtype=torch.int32, device=self._small())
        with _collective("a checkpoint"):
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share of `items` (see `shard`)."""
        return shard(items, self.rank, self.size)

    def gather(self, mine: Sequence[T], n: int) -> list[T]:
        """All `n` values, in the order of the items that `shard` split: every process gets every value, exactly
        as computed (objects, not rounded)."""
        if self.size == 1:
            return list(mine)
        shares: list[Any] = [None] * self.size
        with _collective("an evaluation"):
            dist.all_gather_object(shares, list(mine))
        return unshard(shares, n)

    def broadcast_state(self, state: Any) -> Any:
        """Rank 0's `state` (tensors, numbers, strings, lists, dicts) on every process; read back with
        `torch.load(weights_only=True)`, as a checkpoint is."""
        if self.size == 1:
            return state
        box = [None]
        if self.main:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            box = [buffer.getvalue()]
        with _collective("the start"):
            dist.broadcast_object_list(box, src=0)
        return torch.load(io.BytesIO(box[0]), map_location="cpu", weights_only=True)

    @contextmanager
    def agree(self, what: str = "the start") -> Iterator[None]:
        """Run a block on every process; where it raises on one, it raises on every one: the failing process its
        own error, the others the first failing process's `NasvizError` or a RankError naming it. A `NasvizError`
        is marked `agreed` on every process, so that only rank 0 prints it. The block runs no collectives."""
        if self.size == 1:
            yield
            return
        failure: tuple[int, Any] | None = None
        try:
            yield
        except Exception as exc:
            failure = (self.rank, exc)
            try:
                pickle.loads(pickle.dumps(exc))  # what the others will receive
            except Exception:
                failure = (self.rank, RuntimeError(f"{type(exc).__name__}: {one_line(exc, 300)}"))
            self._gather_failures(failure, what)
            if isinstance(exc, NasvizError):  # a user's error: rank 0 prints it; anything else prints its traceback
                exc.agreed = True  # type: ignore[attr-defined]
            raise
        errors = self._gather_failures(None, what)
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            source, error = first
            if isinstance(error, NasvizError):
                error.agreed = True  # type: ignore[attr-defined]
                raise error
            raise RankError(f"process {source} failed during {what}: {type(error).__name__}: "
                            f"{one_line(error, 300)}")

    def _gather_failures(self, failure: tuple[int, Any] | None, what: str) -> list:
        errors: list[Any] = [None] * self.size
        with _collective(what):
            dist.all_gather_object(errors, failure)
        return errors
