"""What a search shows of itself: the read-only attributes that notebooks, the dashboard, the figures and the
command line read (`search.generation`, `search.population`, `search.supernet`, `search.best`, `search.done`,
`search.result()`, ...).

They live apart from the loop (`nasviz.search.loop.Search`, which inherits them) so that the loop reads like the
algorithm; each is a view of the search's `state`, its `evaluator` or its `stop` switch, never a copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasviz.latency import budget as latency_budget
from nasviz.search import final_pick
from nasviz.search.search_records import search_result
from nasviz.space.genotypes import Genotype

if TYPE_CHECKING:
    from nasviz.runs.recorder import Recorder
    from nasviz.search.checkpoint import SearchState
    from nasviz.search.config import SearchConfig
    from nasviz.search.evaluators import Evaluator
    from nasviz.search.stopping import StopSwitch
    from nasviz.space.genotypes import SearchSpace
    from nasviz.table import Table
    from nasviz.train.distributed import Ranks


class SearchViews:
    """Read-only views of a search: `search.generation` etc. are its `state`'s; `search.supernet`, `search.data`,
    `search.sizes` etc. its evaluator's (None where it has no such part, e.g. no supernet with fitness=table)."""

    config: SearchConfig
    state: SearchState
    evaluator: Evaluator
    stop: StopSwitch
    recorder: Recorder
    ranks: Ranks
    truth: Table | None
    space: SearchSpace

    _STATE = frozenset(("generation", "warmup_done", "steps", "evaluations", "diagnostic_evaluations", "wall_time_s",
                        "population", "seen", "warmup_log", "rng_ga", "rng_paths"))
    _EVALUATOR = frozenset(("sizes", "device", "precision", "supernet", "optimizer", "data", "stream", "calibration",
                            "fitness_batches"))

    def __getattr__(self, name: str) -> Any:
        if name in SearchViews._STATE:
            return getattr(self.__dict__["state"], name)
        if name in SearchViews._EVALUATOR:
            return getattr(self.__dict__["evaluator"], name, None)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def stop_requested(self) -> bool:
        """Whether `run()` stops at the next checkpoint (with several processes, a stop asked on any stops all)."""
        return self.stop.requested

    @property
    def done(self) -> bool:
        """Every generation run, and the final pick made where it retrains."""
        return self.state.generation >= self.config.generations and not final_pick.pending(self.state.final,
                                                                                           self.config)

    @property
    def best(self) -> tuple[Genotype, float] | None:
        """The best genotype of the population and its fitness (None before the initial population)."""
        population = self.state.population
        return (population[0].genotype, population[0].fitness) if len(population) else None

    def params_of(self, genotype: Genotype) -> int:
        """Parameters of `genotype`'s search-width network (the GA's tie-breaker; with fitness=table, the table's)."""
        return self.evaluator.sizes(genotype).params

    def flops_of(self, genotype: Genotype) -> int:
        """FLOPs per image of `genotype`'s search-width network (torch's counter; with fitness=table, the table's)."""
        return self.evaluator.sizes(genotype).flops

    def result(self) -> dict:
        """result.json's content: best genotype and fitness, top-k, method, switches, budgets, versions."""
        return {**search_result(self.config, self.state, run_id=self.recorder.run_id, device=self.device,
                                precision=self.precision, processes=self.ranks.size, truth=self.truth,
                                truth_used=self.evaluator.uses_truth, sizes=self.sizes, space=self.space),
                **latency_budget.result_fields(self)}
