"""One process or a rank of torchrun: which one this is, decided once from the environment.

Under ``torchrun`` every process is a rank of DistributedDataParallel (gloo on CPU, nccl on GPU);
only rank 0 prints, plots and saves. Outside torchrun there is one process, rank 0 of 1.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from svgvp.utils import UsageError, choose_device


def env_rank(name, default):
    """A torchrun variable (WORLD_SIZE, RANK, LOCAL_RANK) as a whole number; anything else is a UsageError."""
    value = os.environ.get(name, default)
    if value is None or not value.strip().isdigit():
        raise UsageError(f"the environment variable {name}={value!r} is not a whole number; torchrun sets it "
                         f"(unset it to train in one process)")
    return int(value)


def is_rank_0():
    """Whether this process prints and saves: the one process, or rank 0 of torchrun (from RANK, before
    set_up; the training entry point reads it once)."""
    try:
        return env_rank("RANK", "0") == 0
    except UsageError:  # a broken RANK is reported by set_up(); its message is printed by this process
        return True


@dataclass(frozen=True)
class Ranks:
    """This process's place: rank, world size, device; ``main`` is rank 0."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self):
        return self.rank == 0


def set_up(device_name):
    """Ranks for this process; initialises the process group under torchrun."""
    world = env_rank("WORLD_SIZE", "1")
    if world == 1:
        return Ranks(0, 1, choose_device(device_name))
    rank, local_rank = env_rank("RANK", None), env_rank("LOCAL_RANK", "0")
    device = choose_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(rank, world, device)


def global_mean(values, world):
    """The mean of a tensor over the ranks (itself in a single process)."""
    if world == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world


def barrier_unless_first(ranks):
    """Ranks other than 0 wait here until rank 0 reaches ``barrier_if_first`` (it fetches data first)."""
    if ranks.world > 1 and not ranks.main:
        dist.barrier()


def barrier_if_first(ranks):
    if ranks.world > 1 and ranks.main:
        dist.barrier()


def all_equal(ranks, value):
    """The value of every rank (a list), to check that all ranks agree."""
    if ranks.world == 1:
        return [value]
    values = [None] * ranks.world
    dist.all_gather_object(values, value)
    return values


def barrier(ranks):
    """Every rank waits here for the others (a no-op in one process)."""
    if ranks.world > 1:
        dist.barrier()


def tear_down(ranks):
    if ranks.world > 1:
        dist.destroy_process_group()
