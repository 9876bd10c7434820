"""Solving a PuLP model with a time limit and reading back the solver's best bound.

Shared by the ``mip`` permutation solver and the ``exact`` knapsack strategy's ``pulp``
backend. With CBC (bundled with PuLP 3.x) the best bound of a stopped run is read from CBC's
log. CBC's bound and its "optimal" come from a floating-point search with absolute tolerances:
they are reported, never treated as certificates (a measured case: 8e-6 relative below the true
optimum). CBC runs on one thread unless told otherwise: with several, runs differ.
"""
from __future__ import annotations

import os
import re
import signal
import tempfile
import threading
import warnings
from typing import Any

#: Safety margin on a bound read from a solver's floating-point log.
BOUND_RTOL = 1e-7
CBC = "PULP_CBC_CMD"


def pulp_module() -> Any:
    """``import pulp`` with a clear message when missing."""
    try:
        import pulp
    except ImportError as e:  # pragma: no cover - pulp is a runtime dependency
        raise ImportError("this needs PuLP: pip install 'pulp<4'") from e
    return pulp


def solve_pulp(prob: Any, *, backend: str = CBC, time_limit: float | None = None, threads: int | None = None,
               seed: int | None = None, msg: bool = False, warm_start: bool = False,
               max_nodes: int | None = None) -> tuple[bool, bool, float | None]:
    """Solve ``prob``; return ``(solver_says_optimal, has_solution, bound)`` where ``bound`` is the
    solver's own best bound on the objective (in the model's sense, padded by BOUND_RTOL; not a
    certificate, see the module docstring) or None.

    With CBC and a ``time_limit``, CBC gets the limit and a watchdog ends it shortly after:
    CBC does not look at its clock during root processing, so on large models it would
    overrun a short limit many times over. A stopped run keeps the bound from its log.
    ``max_nodes`` (CBC only) caps the branch-and-bound nodes: a work limit, reproducible.
    """
    pulp = pulp_module()
    opts: dict[str, Any] = {"msg": msg, "timeLimit": time_limit}
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "cbc.log")
        if backend == CBC:
            opts.update(threads=threads or 1, logPath=log, warmStart=warm_start, maxNodes=max_nodes)
            if seed is not None:  # CBC reads a seed of 0 as "the time of day": shift into [1, 2**31 - 1]
                cbc_seed = 1 + int(seed) % (2**31 - 1)
                opts["options"] = [f"randomSeed {cbc_seed}", f"randomCbcSeed {cbc_seed}"]
        try:
            with warnings.catch_warnings():  # PuLP 3.x flags its bundled CBC as deprecated for 4.0
                warnings.simplefilter("ignore", DeprecationWarning)
                solver = pulp.getSolver(backend, **opts)
        except Exception as e:
            raise ValueError(f"PuLP backend {backend!r} is not usable here ({e}); "
                             f"available: {pulp.listSolvers(onlyAvailable=True)}") from None
        stopped = _solve_with_watchdog(prob, solver, time_limit if backend == CBC else None)
        text = open(log).read() if backend == CBC and os.path.exists(log) else ""
    maximize = prob.sense == pulp.LpMaximize
    if stopped:
        return False, False, _pad(_log_bound(text), maximize)
    optimal = prob.sol_status == pulp.LpSolutionOptimal
    has_solution = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    bound = pulp.value(prob.objective) if optimal and has_solution else _log_bound(text)
    return optimal, has_solution, _pad(bound, maximize)


def _pad(bound: float | None, maximize: bool) -> float | None:
    return None if bound is None else bound + (1 if maximize else -1) * BOUND_RTOL * max(1.0, abs(bound))


def _log_bound(text: str) -> float | None:
    """The last best-bound CBC printed ("Upper bound:" / "Lower bound:" at a stop), else None."""
    found = re.findall(r"^(?:Upper|Lower) bound:\s*([-+0-9.eE]+)", text, flags=re.M)
    return float(found[-1]) if found else None


#: Seconds CBC may run past its own limit before the watchdog ends it (it writes its solution then).
WATCHDOG_GRACE = 0.2


def _solve_with_watchdog(prob: Any, solver: Any, time_limit: float | None) -> bool:
    """``prob.solve(solver)``; with a limit, CBC processes still running ``WATCHDOG_GRACE`` s after it
    are killed. Returns whether the run was stopped that way (then it has no solution)."""
    if time_limit is None:
        prob.solve(solver)
        return False
    errors: list[BaseException] = []

    def work() -> None:
        try:
            prob.solve(solver)
        except BaseException as e:  # a killed CBC makes PuLP raise; the caller sees "stopped"
            errors.append(e)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(min(time_limit + WATCHDOG_GRACE, threading.TIMEOUT_MAX))
    stopped = False
    while thread.is_alive():  # writing the model may still be under way: stop CBC whenever it starts
        stopped |= _kill_children("cbc")
        thread.join(0.05)
    if errors and not stopped:
        raise errors[0]
    return stopped


def _kill_children(name: str) -> bool:
    """Kill this process's child processes whose command line mentions ``name`` (Linux /proc)."""
    killed = False
    me = os.getpid()
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and name in cmd.lower():
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed = True
            except OSError:
                pass
    return killed
