"""What a search reports: a generation's history.jsonl row and result.json's content (the recorder writes them)."""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from nasviz.runs.events import TrainLog
from nasviz.runs.history_row import HistoryRow
from nasviz.search import final_pick, ga
from nasviz.search.budget import Size
from nasviz.search.population import Individual, Population
from nasviz.space.genotypes import Genotype, SearchSpace
from nasviz.version import __version__

if TYPE_CHECKING:
    from nasviz.search.checkpoint import SearchState
    from nasviz.search.config import SearchConfig
    from nasviz.table import Table


def history_row(state: SearchState, region: Population, trained: TrainLog) -> HistoryRow:
    """A generation's history.jsonl row (`nasviz.runs.history_row.HistoryRow`): every individual of the region, the
    surviving population (best first), the best, the mean fitness and the paths trained."""
    population = state.population
    return {
        "generation": state.generation,
        "supernet_steps": state.steps,
        "evaluations": state.evaluations,
        "diagnostic_evaluations": state.diagnostic_evaluations,
        "wall_time_s": round(state.wall_time_s, 3),
        "individuals": [i.to_json() for i in region],
        "population": [str(g) for g in population.genotypes],
        "population_ids": [i.id for i in population],
        "fitness": population.fitness,
        "params": population.params,
        "best": {"genotype": str(population[0].genotype), "fitness": population[0].fitness, "id": population[0].id,
                 **({"truth": population[0].truth} if population[0].truth is not None else {})},
        "mean_fitness": sum(population.fitness) / len(population),
        "trained_paths": trained.paths,
        "train_loss": trained.loss,
        "train_accuracy": trained.accuracy,
    }


def search_result(c: SearchConfig, state: SearchState, *, run_id: str, device: torch.device, precision: str | None,
                  processes: int, truth: Table | None, truth_used: bool, sizes: Callable[[Genotype], Size],
                  space: SearchSpace) -> dict[str, Any]:
    """result.json's content: the returned genotype ("best_": the best of the last population, or the final pick's
    winner once it retrained), top-k, method, switches, budgets (supernet steps; the search's own evaluations and,
    apart, the diagnostic ones), versions; with objective=pareto, the final population's non-dominated front; with
    final_pick=retrain, its candidates and scores."""
    top = [summary(i) for i in list(state.population)[: c.top_k]]
    best = top[0] if top else None
    done = state.final is not None and all(len(x.scores) >= c.final_seeds for x in state.final)
    if done:
        winner = final_pick.picked(state.final)
        best = {"genotype": winner.genotype, "fitness": winner.fitness,
                "params": sizes(space.parse(winner.genotype)).params}
    return {
        "run_id": run_id,
        "finished": state.generation >= c.generations and (c.final_pick == "fitness" or done),
        "best_genotype": best["genotype"] if best else None,
        "best_fitness": best["fitness"] if best else None,
        "best_params": best["params"] if best else None,
        "top_k": top,
        "method": c.method,
        "switches": {"finetune": c.uses_finetune, "path_sampling": c.path_sampling,
                     "reevaluate_parents": c.reevaluate_parents, "equal_compute": c.equal_compute,
                     "tie_break": c.tie_break, "lr_schedule": c.lr_schedule},
        "dataset": c.dataset,
        "preset": c.preset,
        "seed": c.seed,
        "generation": state.generation,
        "generations": c.generations,
        "population": c.population,
        "search_wall_time_s": round(state.wall_time_s, 3),
        "supernet_steps": {"warmup": min(state.warmup_done, state.steps),  # no supernet: no steps at all
                           "finetune": state.steps - min(state.warmup_done, state.steps), "total": state.steps},
        "evaluations": state.evaluations,
        "diagnostic_evaluations": state.diagnostic_evaluations,
        "genotypes_evaluated": len(state.seen),
        "device": str(device),
        "eval_precision": precision,
        **({"processes": processes} if processes > 1 else {}),
        "versions": {"nasviz": __version__, "torch": torch.__version__, "python": platform.python_version()},
        **({"truth": truth_summary(truth, state, truth_used, best["genotype"])} if truth is not None and best else {}),
        **({"objective": c.objective, "pareto_size": c.pareto_size, "front": front(state.population, c.pareto_size)}
           if c.objective == "pareto" else {}),
        **({"final_pick": final_block(c, state, done)} if c.final_pick == "retrain" else {}),
    }


def final_block(c: SearchConfig, state: SearchState, done: bool) -> dict[str, Any]:
    """result.json's "final_pick": how the candidates were retrained, each with its fitness and retrain scores,
    the one picked (once all are retrained) and the CPU seconds the retraining took."""
    pool = state.final or []
    return {"method": "retrain", "top_k": c.final_top_k, "steps": c.final_steps, "seeds": c.final_seeds,
            "images": c.final_images, "candidates": [x.to_json() for x in pool],
            "picked": final_pick.picked(pool).genotype if done else None,
            "fitness_best": str(state.population[0].genotype) if len(state.population) else None,
            "cpu_s": round(sum(x.cpu_s for x in pool), 3)}


def summary(individual: Individual) -> dict[str, Any]:
    """An individual as result.json lists it: genotype, fitness, params and (where counted) FLOPs."""
    flops = {} if individual.flops is None else {"flops": individual.flops}
    latency = {} if individual.latency_ms is None else {"latency_ms": individual.latency_ms}
    return {"genotype": str(individual.genotype), "fitness": individual.fitness, "params": individual.params,
            **flops, **latency}


def front(population: Population, size: str = "params") -> list[dict[str, Any]]:
    """The members of `population` no other member dominates on (fitness up, `size` down: "params" or "latency"),
    smallest first."""
    sizes = population.latency if size == "latency" else population.params
    members = sorted(ga.pareto_front(ga.size_objectives(population.fitness, sizes)),
                     key=lambda i: (sizes[i], -population[i].fitness))
    return [summary(population[i]) for i in members]


def truth_summary(table: Table, state: SearchState, truth_used: bool, best: str) -> dict[str, Any]:
    """result.json's "truth": how the returned genotype `best` and the best one evaluated fare in the ground-truth
    table (marked as such: the search never uses it unless its fitness is the table)."""
    evaluated = max(table.accuracy(key) for key in state.seen) if state.seen else None
    return {
        "table": table.name,
        "used_by_search": truth_used,
        "best_accuracy": table.accuracy(best),
        "best_percentile": table.percentile(best),
        "best_rank": table.rank(best),
        "best_regret": table.regret(best),
        "table_best_accuracy": table.best().accuracy,
        "best_evaluated_accuracy": evaluated,
        "architectures": len(table),
    }
