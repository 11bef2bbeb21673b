"""How busy the cores are, and the one line a notebook prints when torch's threads would fight another program."""

import subprocess
import sys

import pytest

from nasviz.notebooks import cpu_share


@pytest.mark.parametrize(("threads", "cores", "busy", "advice"), [
    (2, 2, 0.1, None),        # idle machine
    (2, 2, 1.0, "nv.use_threads(1)"),  # one core taken: one thread
    (2, 2, 1.9, "nv.use_threads(1)"),  # both taken: still at least one
    (1, 2, 1.0, None),        # already one thread
    (8, 8, 2.2, "nv.use_threads(6)"),
    (4, 8, 2.2, None),        # fits in the free cores
])
def test_advice_names_the_thread_count_that_fits_the_free_cores(threads, cores, busy, advice):
    line = cpu_share.thread_advice(threads, cores, busy)
    if advice is None:
        assert line is None
    else:
        assert advice in line and f"of {cores} cores" in line and "\n" not in line


def test_a_spinning_process_is_seen_as_a_busy_core():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert cpu_share.busy_cores(0.5) >= cpu_share.BUSY_CORE
    finally:
        spinner.kill()
        spinner.wait()


def test_use_threads_sets_torch_and_refuses_impossible_counts():
    import torch

    before = torch.get_num_threads()
    try:
        cpu_share.use_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for bad in (0, cpu_share.usable_cores() + 1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"threads=.*allowed 1\.\."):
            cpu_share.use_threads(bad)
