"""The ground-truth table: its builder (sharded, resumable, one writer per shard), its file and its lookups."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nasviz.data.loading import load_dataset
from nasviz.errors import ConfigError
from nasviz.space.genotypes import MINI, Genotype
from nasviz.table import TableError, load, read
from nasviz.table.build import Plan, build, networks, parse_shard, phase_two, pilot_jobs, read_rows
from nasviz.table.recipe import Recipe, prepare_data, train_and_test
from nasviz.table.table import from_rows

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
TINY = Recipe(channels=2, layers=1, train_images=64, epochs=1, batch_size=32, image_size=8, test_images=500)
"""A recipe of two steps on 8x8 images: for testing the machinery, not for measuring anything."""


@pytest.fixture(scope="module")
def fashion():
    return load_dataset("fashion-mnist")


def test_networks_are_the_648_canonical_forms():
    keys = networks(MINI)
    assert len(keys) == len(set(keys)) == 648
    assert all(MINI.key(MINI.parse(k)) == k for k in keys)


def test_shard_text():
    assert parse_shard("1/2") == (1, 2) and parse_shard(" 0 / 3 ") == (0, 3)
    for bad in ("2/2", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(ConfigError, match="shard"):
            parse_shard(bad)


def test_phase_two_picks_the_top_and_a_stratified_sample():
    keys = [f"k{i:03d}" for i in range(200)]
    rows = [{"genotype": k, "seed": 0, "test_accuracy": i / 200} for i, k in enumerate(keys)]
    assert phase_two(keys, rows[:-1], Plan()) is None  # phase 1 incomplete
    jobs = phase_two(keys, rows, Plan())
    chosen = [k for k, s in jobs if s == 1]
    assert [s for _, s in jobs].count(2) == len(chosen) == 50  # a quarter, each with seeds 1 and 2
    assert set(keys[-20:]) <= set(chosen)  # the whole top 10 %
    rest = [keys.index(k) for k in chosen if k not in keys[-20:]]
    assert len(rest) == 30 and all(sum(s <= i < s + 18 for i in rest) == 3 for s in range(0, 180, 18))


def test_recipe_is_deterministic_per_genotype_and_seed(fashion):
    data = prepare_data(fashion, TINY)
    assert data.shape == (1, 8, 8)
    g = MINI.sample(__import__("random").Random(0))
    a, b, c = (train_and_test(g, s, TINY, data) for s in (0, 0, 1))
    for key in ("test_accuracy", "train_loss", "params", "flops"):
        assert a[key] == b[key]
    assert a["train_loss"] != c["train_loss"]  # another seed trains differently
    assert 0 <= a["test_accuracy"] <= 1 and a["params"] > 0 and a["flops"] > 0


def frozen_recipe_training(genotype, seed: int, recipe: Recipe, data) -> dict:
    """The recipe's training and test as the mini table's build began with them (a frozen copy, kept here on
    purpose): SGD, a cosine rate stepped every batch (never the per-epoch step of `nasviz.train.scratch`), fp32 on the
    CPU, no autocast. A change to `train_and_test` that alters its numbers makes the table's rows incomparable."""
    import math

    import torch.nn.functional as F
    from torch import nn

    from nasviz.data.loading import BatchStream, crop_padding_for, eval_batches
    from nasviz.space.network import SearchNetwork
    from nasviz.table.recipe import train_subset

    index = train_subset(data, recipe)
    stream = BatchStream(data.train_images[index], data.train_labels[index], recipe.batch_size, data.mean, data.std,
                         seed=seed, crop_padding=crop_padding_for(data.shape), flip=data.flip, channels_last=True)
    torch.manual_seed(seed)
    net = SearchNetwork(genotype, data.shape[0], data.num_classes, recipe.channels, recipe.layers)
    net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    total, losses = recipe.steps, []
    net.train()
    for step in range(total):
        for group in optimizer.param_groups:
            group["lr"] = 0.5 * recipe.lr * (1 + math.cos(math.pi * step / total))
        x, y = stream.next()
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    tail = losses[total - max(1, total // 10):]
    net.eval()
    correct = 0
    with torch.inference_mode():
        for x, y in eval_batches(data.test_images[: recipe.test_images], data.test_labels[: recipe.test_images], 500,
                                 data.mean, data.std, channels_last=True):
            correct += (net(x).argmax(1) == y).sum().item()
    return {"test_accuracy": correct / recipe.test_images, "train_loss": sum(tail) / len(tail)}


def test_recipe_trains_as_the_table_build_began(fashion):
    """The table is built with `train_and_test`; the schedule options of from-scratch training (issue 13) and the
    evaluation precision must leave it alone."""
    recipe = Recipe(channels=4, layers=2, train_images=128, epochs=2, batch_size=32, image_size=14, test_images=500)
    data = prepare_data(fashion, recipe)
    g = MINI.sample(__import__("random").Random(3))
    got = train_and_test(g, 0, recipe, data)
    assert {k: got[k] for k in ("test_accuracy", "train_loss")} == frozen_recipe_training(g, 0, recipe, data)


def test_build_shards_partition_the_pilot_and_resume(tmp_path, fashion):
    jobs = pilot_jobs(networks(MINI), 3, (0, 1))
    for k in (0, 1):
        summary = build(MINI, TINY, tmp_path, shard=(k, 2), pilot=(3, (0, 1)), data=fashion)
        assert summary["trained_now"] == 3
    rows = read_rows(tmp_path)
    assert sorted((r["genotype"], r["seed"]) for r in rows) == sorted(jobs)
    assert build(MINI, TINY, tmp_path, shard=(0, 2), pilot=(3, (0, 1)), data=fashion)["trained_now"] == 0
    with pytest.raises(ConfigError, match="another recipe"):
        build(MINI, Recipe(), tmp_path, pilot=(3, (0, 1)), data=fashion)


def run_builder(out: Path, *extra: str) -> subprocess.Popen:
    settings = {"channels": "2", "layers": "1", "train_images": "64", "epochs": "1", "batch_size": "32",
                "image_size": "8", "test_images": "500"}
    rest, words = [], iter(extra)
    for word in words:  # a setting in `extra` replaces the default (the command refuses a setting given twice)
        if word == "--set":
            key, value = next(words).split("=", 1)
            settings[key] = value
        else:
            rest.append(word)
    cmd = [sys.executable, "-m", "nasviz.table", "build", "--out", str(out), "--pilot", "3", "--seeds", "0",
           *[arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")], *rest]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_killed_build_resumes_to_the_same_rows(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    longer = ("--set", "train_images=2048", "--set", "epochs=2")  # ~1 s per training: time to kill mid-build
    assert run_builder(straight, *longer).wait(timeout=600) == 0
    proc = run_builder(killed, *longer)
    rows = killed / "rows-0-of-1.jsonl"
    deadline = time.monotonic() + 600
    while not (rows.exists() and rows.read_text().count("\n") >= 1) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= rows.read_text().count("\n") < 3  # killed in the middle of the build
    with open(rows, "a") as f:  # a kill in the middle of a line leaves a torn line: it must be ignored
        f.write('{"genotype": "Geno')
    second = run_builder(killed, *longer)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["finished"] is True

    def results(folder: Path) -> dict:
        return {(r["genotype"], r["seed"]): (r["test_accuracy"], r["train_loss"]) for r in read_rows(folder)}

    assert results(killed) == results(straight) and len(results(straight)) == 3


def test_one_writer_per_shard(tmp_path):
    first = run_builder(tmp_path, "--limit", "3")
    lock = tmp_path / ".rows-0-of-1.lock"
    deadline = time.monotonic() + 300
    while not (tmp_path / "starts.jsonl").exists() and first.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = run_builder(tmp_path)
    _, err = second.communicate(timeout=300)
    if first.poll() is None:  # the first still held the shard: the second must have been refused
        assert second.returncode == 2 and "shard 0/1" in err and "in use by another nasviz process" in err
        assert err.count("\n") == 1
    first.wait(timeout=600)
    assert first.returncode == 0 and not lock.exists()  # the shard's lock file goes when its writer ends


def synthetic_rows() -> list[dict]:
    keys = networks(MINI)[:30]
    rows = []
    for i, k in enumerate(keys):
        for seed in (0, 1) if i % 3 == 0 else (0,):
            rows.append({"genotype": k, "seed": seed, "test_accuracy": 0.5 + i / 100 + seed / 1000,
                         "train_loss": 1.0 - i / 100, "params": 100 + i, "flops": 1000 + i, "seconds": 1.0})
    return rows


def test_table_file_round_trip_and_lookups(tmp_path):
    rows = synthetic_rows()
    table = from_rows("t", MINI, rows, Recipe().to_dict(), {"command": "test"})
    path = tmp_path / "t.json.gz"
    table.save(path)
    assert json.loads(gzip.decompress(path.read_bytes()))["space"] == "mini"  # plain JSON, never a pickle
    again = read(path)
    assert len(again) == 30 and again.recipe == Recipe().to_dict()
    best_key = rows[-1]["genotype"]
    assert again.best().genotype == best_key and again.rank(best_key) == 1 and again.percentile(best_key) == 100
    worst = rows[0]["genotype"]
    assert again.rank(worst) == 30 and again.percentile(worst) == 0 and again.regret(best_key) == 0
    assert again.accuracy(worst) == pytest.approx((0.5 + 0.501) / 2)
    assert again.accuracy(worst, seed=1) == 0.501
    with pytest.raises(TableError, match="seed 2 was not trained"):
        again.accuracy(worst, seed=2)
    # any form of the same network finds the same entry
    g = MINI.parse(worst)
    swapped_edges = Genotype(normal=(g.normal[1], g.normal[0]) + g.normal[2:],
                             reduce=(g.normal[1], g.normal[0]) + g.normal[2:])
    assert again.entry(swapped_edges) is again.entry(worst)
    assert again.entry(str(swapped_edges)) is again.entry(worst)
    missing = networks(MINI)[-1]
    assert missing not in [r["genotype"] for r in rows]
    with pytest.raises(TableError, match="is not in table"):
        again.entry(missing)
    assert MINI.parse(missing) not in again and g in again


@pytest.mark.parametrize("damage", [b"not gzip", gzip.compress(b"{}"), gzip.compress(b"[1, 2]"),
                                    gzip.compress(b'{"space": "nope"}')])
def test_damaged_table_files_give_one_line(tmp_path, damage):
    path = tmp_path / "bad.json.gz"
    path.write_bytes(damage)
    with pytest.raises(TableError) as info:
        read(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_unknown_table_name():
    with pytest.raises(TableError, match="unknown table 'mini-fashion'.*did you mean 'mini-fashion-mnist'"):
        load("mini-fashion")
