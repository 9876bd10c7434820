"""Stopping rules shared by every solver and strategy.

Work is bounded by counts (sweeps, kicks, steps, nodes), which makes results reproducible.
A wall-clock ``time_limit`` is only an optional cap on top: when it bites, the result
depends on the machine and its load, so it breaks reproducibility (and says so).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


_BLAS_LOCK = threading.Lock()
_BLAS_STATE: dict[str, Any] = {"users": 0, "limiter": None, "controller": None}


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the enclosed numerics with BLAS on one thread (process-wide, reference counted).

    A multi-threaded BLAS may split a float sum differently with another thread count, and a
    heuristic's comparisons then turn the last-bit difference into other labels (measured: 1 of
    280 ResNet-50 solves changed between 1 and 2 threads). On one thread the same inputs give
    the same labels on any machine, in any worker process, under any load; it also keeps
    parallel executors from oversubscribing the cores. Cost measured: about 5% on 2 cores.
    """
    from threadpoolctl import ThreadpoolController

    with _BLAS_LOCK:
        if _BLAS_STATE["users"] == 0:
            if _BLAS_STATE["controller"] is None:  # created late: sees every BLAS loaded by then
                _BLAS_STATE["controller"] = ThreadpoolController()
            _BLAS_STATE["limiter"] = _BLAS_STATE["controller"].limit(limits=1, user_api="blas")
        _BLAS_STATE["users"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["users"] -= 1
            if _BLAS_STATE["users"] == 0:
                _BLAS_STATE["limiter"].restore_original_limits()


class OutOfTime(Exception):
    """Raised inside long set-up work (model building) when its :class:`Deadline` has passed."""


class Deadline:
    """An optional wall-clock cap started now; ``None`` seconds means no cap."""

    __slots__ = ("end", "hit")

    def __init__(self, seconds: float | None):
        self.end = None if seconds is None else time.perf_counter() + float(seconds)
        self.hit = False

    def passed(self) -> bool:
        """Whether the cap has passed (remembered in ``hit``)."""
        if self.end is not None and time.perf_counter() > self.end:
            self.hit = True
        return self.hit

    def check(self) -> None:
        """Raise :class:`OutOfTime` if the cap has passed."""
        if self.passed():
            raise OutOfTime

    def remaining(self, floor: float = 0.0) -> float | None:
        """Seconds left (at least ``floor``), or None without a cap."""
        return None if self.end is None else max(floor, self.end - time.perf_counter())

    def every(self, items: Iterable[T], n: int = 64) -> Iterator[T]:
        """``items``, raising :class:`OutOfTime` before every ``n``-th once the cap has passed (for
        loops that build solver models: 256×256 G=16 takes about half a second in Python)."""
        for i, item in enumerate(items):
            if i % n == 0:
                self.check()
            yield item


def validate_time_limit(time_limit: object) -> float | None:
    """``time_limit`` as a positive float or None, or a ValueError naming it."""
    if time_limit is None:
        return None
    return positive_number("time_limit", time_limit, "seconds, or None for no cap")


def positive_number(name: str, value: object, what: str = "", *, maximum: float = float("inf"),
                    allow_zero: bool = False) -> float:
    """``value`` as a finite float in ``(0, maximum]`` (``[0, maximum]`` with ``allow_zero``; Python or
    numpy numbers), or a ValueError naming ``name`` — the one numeric validator of options."""
    import numpy as np

    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    v = float(value) if ok else float("nan")  # type: ignore[arg-type]
    if not (ok and (0 <= v if allow_zero else 0 < v) and v <= maximum and v < float("inf")):
        low = "[0" if allow_zero else "(0"
        desc = f"a finite number in {low}, {maximum:g}]" if maximum < float("inf") else \
            ("a finite number >= 0" if allow_zero else "a positive finite number")
        raise ValueError(f"{name} must be {desc}{' (' + what + ')' if what else ''}, got {value!r}")
    return v


def validate_seed(seed: object) -> int | None:
    """``seed`` as a non-negative int below 2**32 or None, or an error naming it."""
    import numpy as np

    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must lie in [0, 2**32), got {seed}")
    return int(seed)


def validate_count(name: str, value: object, minimum: int = 0) -> int:
    """A work count (``steps``, ``iterations`` …) as an int >= ``minimum``, or an error naming it."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


#: Relative tolerance of budget checks: a total within this fraction above the limit fits
#: (float sums of integer counts may overshoot by rounding).
BUDGET_RTOL = 1e-9


def within(value: Any, limit: Any) -> Any:
    """``value <= limit`` up to :data:`BUDGET_RTOL` relative (numbers, or numpy arrays elementwise)."""
    return value <= limit * (1 + BUDGET_RTOL)
