"""Running many independent solves on an executor: a process pool, a Dask cluster, or any
``concurrent.futures.Executor``.

Work is keyed, never ordered by completion: results come back in the order of the jobs, so
a parallel run returns exactly what the serial run returns for the same seed. Use

    permopt.prune(model, x, budget=..., n_jobs=2)                        # local processes
    client = distributed.Client("tcp://scheduler:8786")                 # a Dask cluster
    permopt.prune(model, x, budget=..., executor=client.get_executor())
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any


def validate_parallel(executor: Any, n_jobs: Any) -> None:
    """Clear errors for ``executor`` / ``n_jobs`` arguments."""
    if executor is not None and n_jobs is not None:
        raise ValueError("give executor= or n_jobs=, not both")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must be a concurrent.futures.Executor (with submit), got {type(executor).__name__}")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1):
        raise ValueError(f"n_jobs must be a positive int or None, got {n_jobs!r}")


@contextmanager
def executor_for(executor: Executor | None, n_jobs: int | None) -> Iterator[Executor | None]:
    """The executor to use: the caller's, a process pool of ``n_jobs`` (closed afterwards), or None (serial)."""
    validate_parallel(executor, n_jobs)
    if executor is not None or not n_jobs or n_jobs == 1:
        yield executor
        return
    with ProcessPoolExecutor(n_jobs) as pool:
        yield pool


def map_jobs(fn: Callable[..., Any], jobs: Sequence[tuple], executor: Executor | None = None,
             n_jobs: int | None = None, progress: Any = None) -> list[Any]:
    """``[fn(*job) for job in jobs]``, on ``executor`` / ``n_jobs`` processes when given.

    ``fn`` must be picklable (a module-level function) for process pools and clusters.
    ``progress`` is an object with ``update()`` (a tqdm bar), called as jobs finish.
    """
    with executor_for(executor, n_jobs) as ex:
        if ex is None:
            out = []
            for job in jobs:
                out.append(fn(*job))
                if progress is not None:
                    progress.update()
            return out
        futures: dict[Future, int] = {ex.submit(fn, *job): i for i, job in enumerate(jobs)}
        results: list[Any] = [None] * len(jobs)
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if progress is not None:
                progress.update()
        return results
