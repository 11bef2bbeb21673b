"""A ground-truth table: every network of a small space, trained from scratch, looked up by genotype.

    from nasviz import table
    t = table.load("mini-fashion-mnist")
    t.accuracy(genotype)      # mean test accuracy over the seeds trained (any equivalent genotype form)
    t.percentile(genotype)    # 100 = the best network of the space, 0 = the worst
    t.best()                  # the best entry
    t.noise                   # the table's own seed-to-seed agreement and spread

Tables are gzip-compressed JSON (data, never code) with their recipe and provenance.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import statistics
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nasviz.errors import NasvizError, suggest
from nasviz.runs import safe_json
from nasviz.runs.regular_files import read_bytes
from nasviz.space.genotypes import Genotype, GenotypeError, SearchSpace, get_space
from nasviz.table.quality import quality

SHIPPED = {"mini-fashion-mnist": "mini-fashion-mnist.json.gz"}
"""Tables shipped inside the package (nasviz/table/data/)."""


class TableError(NasvizError, ValueError):
    """A table file is missing, damaged or does not hold the asked genotype."""


@dataclass(frozen=True)
class Entry:
    """One network of the table: its canonical genotype text and what training it gave, per seed."""

    genotype: str
    accuracy_by_seed: dict[int, float]
    params: int
    flops: int
    train_loss_by_seed: dict[int, float]

    @property
    def accuracy(self) -> float:
        """Mean test accuracy over the seeds trained."""
        return statistics.fmean(self.accuracy_by_seed.values())


class Table:
    """Lookup of ground truth by genotype; ranks and percentiles are by mean test accuracy."""

    def __init__(self, name: str, space: SearchSpace, entries: list[Entry], recipe: dict, provenance: dict,
                 noise: dict) -> None:
        self.name, self.space, self.recipe, self.provenance, self.noise = name, space, recipe, provenance, noise
        self.entries = {e.genotype: e for e in entries}
        self._sorted = sorted(e.accuracy for e in entries)
        self._best = max(entries, key=lambda e: e.accuracy) if entries else None

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries.values())

    def __contains__(self, genotype: Genotype) -> bool:
        try:
            self.entry(genotype)
        except (TableError, GenotypeError):
            return False
        return True

    def entry(self, genotype: Genotype | str) -> Entry:
        """The entry of `genotype` (text or `Genotype`, any form that builds the same network)."""
        if isinstance(genotype, str) and genotype in self.entries:  # already the canonical text
            return self.entries[genotype]
        g = self.space.parse(genotype) if isinstance(genotype, str) else self.space.check(genotype)
        key = self.space.key(g)
        if key not in self.entries:
            raise TableError(f"{key} is not in table {self.name!r} (an incomplete build?)")
        return self.entries[key]

    def accuracy(self, genotype: Genotype | str, seed: int | None = None) -> float:
        """Mean test accuracy of `genotype`, or that of one `seed`."""
        entry = self.entry(genotype)
        if seed is None:
            return entry.accuracy
        if seed not in entry.accuracy_by_seed:
            raise TableError(f"seed {seed} was not trained for this genotype; trained: "
                             f"{', '.join(map(str, sorted(entry.accuracy_by_seed)))}")
        return entry.accuracy_by_seed[seed]

    def noisy_accuracy(self, genotype: Genotype | str, sd: float, rng) -> float:
        """`accuracy` plus Gaussian noise of standard deviation `sd` drawn from `rng` (none when `sd` is 0)."""
        return self.accuracy(genotype) + (rng.gauss(0.0, sd) if sd else 0.0)

    def summary(self, genotype: Genotype | str) -> dict[str, float]:
        """The ground truth a run records per individual: accuracy and percentile (rounded)."""
        return {"accuracy": round(self.accuracy(genotype), 6), "percentile": round(self.percentile(genotype), 2)}

    def rank(self, genotype: Genotype | str) -> int:
        """1 for the best network; networks of equal accuracy share the better rank."""
        accuracy = self.entry(genotype).accuracy
        return len(self._sorted) - bisect.bisect_right(self._sorted, accuracy) + 1

    def percentile(self, genotype: Genotype | str) -> float:
        """Share (0..100) of the other networks that are strictly worse: 100 for the best, 0 for the worst."""
        accuracy = self.entry(genotype).accuracy
        return 100.0 * bisect.bisect_left(self._sorted, accuracy) / max(len(self._sorted) - 1, 1)

    def best(self) -> Entry:
        """The entry with the highest mean accuracy (ties: the first in the table)."""
        if self._best is None:
            raise TableError(f"table {self.name!r} is empty")
        return self._best

    def regret(self, genotype: Genotype | str) -> float:
        """Best mean accuracy minus `genotype`'s (0 for the best network)."""
        return self.best().accuracy - self.entry(genotype).accuracy

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "space": self.space.name,
            "recipe": self.recipe,
            "provenance": self.provenance,
            "noise": self.noise,
            "architectures": [
                {"genotype": e.genotype, "params": e.params, "flops": e.flops,
                 "accuracy": {str(s): a for s, a in sorted(e.accuracy_by_seed.items())},
                 "train_loss": {str(s): v for s, v in sorted(e.train_loss_by_seed.items())}}
                for e in self.entries.values()
            ],
        }

    def save(self, path: str | Path, *, force: bool = False) -> None:
        """Write the table as gzip-compressed JSON (reproducible bytes: no timestamp in the gzip header) to the new
        file `path`; an existing one is refused unless `force` (written atomically, see `nasviz.runs.out_file`)."""
        from nasviz.runs.out_file import write_out_file

        data = safe_json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True).encode()
        write_out_file(path, gzip.compress(data, compresslevel=9, mtime=0), force)


def from_rows(name: str, space: SearchSpace, rows: list[dict], recipe: dict, provenance: dict) -> Table:
    """A table from build rows (one per genotype and seed)."""
    grouped: dict[str, list[dict]] = {}
    for r in rows:
        grouped.setdefault(space.key(space.parse(r["genotype"])), []).append(r)
    entries = [
        Entry(genotype=key, params=int(rs[0]["params"]), flops=int(rs[0]["flops"]),
              accuracy_by_seed={int(r["seed"]): float(r["test_accuracy"]) for r in rs},
              train_loss_by_seed={int(r["seed"]): float(r["train_loss"]) for r in rs})
        for key, rs in grouped.items()
    ]
    return Table(name, space, entries, recipe, provenance, quality(rows))


def read(path: str | Path) -> Table:
    """Read a table file; a damaged one is refused with one line naming it."""
    path = Path(path)
    try:
        obj = safe_json.loads(gzip.decompress(read_bytes(path)))
        space = get_space(obj["space"])
        entries = [
            Entry(genotype=a["genotype"], params=int(a["params"]), flops=int(a["flops"]),
                  accuracy_by_seed={int(s): float(v) for s, v in a["accuracy"].items()},
                  train_loss_by_seed={int(s): float(v) for s, v in a["train_loss"].items()})
            for a in obj["architectures"]
        ]
        return Table(str(obj["name"]), space, entries, dict(obj["recipe"]), dict(obj["provenance"]),
                     dict(obj["noise"]))
    except FileNotFoundError:
        raise TableError(f"no table file at {path}") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise TableError(f"{path} is not a valid table file ({type(exc).__name__}: {str(exc)[:120]})") from None


def load(name: str) -> Table:
    """A table shipped with nasviz by name (e.g. 'mini-fashion-mnist'), or a table file by path."""
    if name in SHIPPED:
        with resources.as_file(resources.files("nasviz.table") / "data" / SHIPPED[name]) as path:
            return read(path)
    if not str(name).strip():
        raise TableError(f"table {name!r} is blank; allowed: {', '.join(SHIPPED)}, the path of a table file, or none "
                         "(the table shipped for the space and dataset)")
    if Path(name).is_dir():
        raise TableError(f"table {name!r} is a folder, not a table file; allowed: {', '.join(SHIPPED)} or the path of "
                         "a table file (.json.gz, written by `table assemble`)")
    if Path(name).exists():
        return read(name)
    raise TableError(f"unknown table {name!r}{suggest(name, list(SHIPPED))}; allowed: {', '.join(SHIPPED)} "
                     "or the path of a table file")


@functools.lru_cache(maxsize=16)
def _cached(name: str, mtime: float) -> Table:
    return load(name)


def ground_truth(space: str, dataset: str, table: str | None = None) -> Table | None:
    """The table a search in `space` on `dataset` is judged by: `table` (a name or file) if given, else the
    shipped table of that space and dataset, else None. A given table of another space or dataset is an error."""
    from nasviz.data.datasets import check_dataset_name

    dataset = check_dataset_name(dataset)
    if table is None:
        table = next((name for name in available() if name == f"{space}-{dataset}"), None)
        if table is None:
            return None
    path = Path(table)
    found = _cached(table, path.stat().st_mtime if path.is_file() else 0.0)
    if found.space.name != space or found.recipe.get("dataset") != dataset:
        raise TableError(f"table {table!r} is for space={found.space.name!r} on {found.recipe.get('dataset')!r}, "
                         f"not space={space!r} on {dataset!r}")
    return found


def available() -> list[str]:
    """Names of the shipped tables whose file is present."""
    folder = resources.files("nasviz.table") / "data"
    return [name for name, file in SHIPPED.items() if (folder / file).is_file()]
