"""Optuna-backed configuration search: Optuna's samplers choose ``G`` per layer.

* strategy ``optuna``: single objective (total pruned mass) with the budget as Optuna's
  constraint (``Trial.set_constraint``, so infeasible trials inform the sampler); ``storage=``
  (an RDB URL such as ``sqlite:///study.db``) lets several processes or machines share one
  study, and ``study_name=`` resumes it. The paper's greedy is enqueued as the first trial.
* :func:`nsga2_front`: several objectives at once (pruned mass against params / MACs /
  latency) by NSGA-II, for :func:`permopt.search.pareto_front` where no exact front exists.

With ``seed`` and a private (in-memory) study the search is reproducible; a study shared by
several processes depends on their timing. Optuna is imported only when used.
"""
from __future__ import annotations

from typing import Any

from ..limits import validate_count
from .config import ConfigProblem
from .strategies import paper, register_strategy, repair


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - optuna is in the dev extra
        raise ImportError("the 'optuna' strategy and NSGA-II fronts need Optuna: pip install 'permopt[scale]'") from e
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _choice(problem: ConfigProblem, params: dict) -> list[int]:
    return [L.candidates.index(params[L.name]) for L in problem.space.layers]


def _suggest(problem: ConfigProblem, trial: Any) -> list[int]:
    return [L.candidates.index(trial.suggest_categorical(L.name, L.candidates)) for L in problem.space.layers]


@register_strategy("optuna")
def optuna_search(problem: ConfigProblem, *, time_limit: float | None = None, seed: int | None = None,
                  n_trials: int = 300, storage: str | None = None, study_name: str | None = None) -> list[int]:
    """Optuna's TPE sampler over per-layer G (budget as a constraint); shareable, resumable studies."""
    optuna = require_optuna()
    n_trials = validate_count("n_trials", n_trials, 1)
    problem.evaluate_all()
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler, storage=storage, study_name=study_name,
                                load_if_exists=study_name is not None)
    start = repair(problem, paper(problem))
    study.enqueue_trial({L.name: L.candidates[j] for L, j in zip(problem.space.layers, start)},
                        skip_if_exists=True)

    def objective(trial: Any) -> float:
        obj, use = problem.totals(_suggest(problem, trial))
        excess = problem.excess(use)
        trial.set_user_attr("excess", (excess,))
        trial.set_constraint("budget_excess", excess)  # <= 0 is feasible; TPE learns from infeasible trials
        return obj

    study.optimize(objective, n_trials=n_trials, timeout=time_limit)
    feasible = [t for t in study.trials if t.value is not None and t.user_attrs.get("excess", (1,))[0] <= 0]
    if not feasible:
        return start
    return _choice(problem, min(feasible, key=lambda t: (t.value, t.number)).params)


def nsga2_front(problem: ConfigProblem, resources: tuple[str, ...], n_trials: int = 300, seed: int | None = 0,
                storage: str | None = None, study_name: str | None = None) -> list[list[int]]:
    """The choices (a candidate index per layer) of the non-dominated trials Optuna's NSGA-II
    finds in ``n_trials`` trials (approximate: see :func:`permopt.search.pareto_front`)."""
    optuna = require_optuna()
    index = [problem.RESOURCES.index(r) for r in resources]
    n_trials = validate_count("n_trials", n_trials, 1)
    problem.evaluate_all()
    study = optuna.create_study(directions=["minimize"] * (1 + len(resources)), storage=storage,
                                study_name=study_name, load_if_exists=study_name is not None,
                                sampler=optuna.samplers.NSGAIISampler(seed=seed))

    def objective(trial: Any) -> tuple[float, ...]:
        obj, use = problem.totals(_suggest(problem, trial))
        return (obj,) + tuple(float(use[k]) for k in index)

    study.optimize(objective, n_trials=n_trials)
    return [_choice(problem, t.params) for t in study.best_trials]
