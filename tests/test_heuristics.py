"""Heuristics past the paper: never below GRPS, never above a proven optimum, often optimal."""
import numpy as np
import pytest

import permopt

BETTER = ["alternating", "local", "anneal", "best"]


@pytest.mark.parametrize("shape", [(32, 32, 8), (64, 64, 4), (48, 96, 6), (128, 64, 8)])
@pytest.mark.parametrize("dist", ["normal", "lognormal"])
def test_never_below_grps(shape, dist):
    F, C, G = shape
    rng = np.random.default_rng(sum(shape))
    S = np.abs(rng.standard_normal((F, C))) if dist == "normal" else rng.lognormal(0, 1.5, (F, C))
    grps = permopt.solve(S, groups=G, solver="grps").kept
    for h in BETTER:
        assert permopt.solve(S, groups=G, solver=h, seed=0).kept >= grps - 1e-9, h


def test_alternating_gains_on_random_matrices():
    rng = np.random.default_rng(0)
    gains = []
    for _ in range(5):
        S = np.abs(rng.standard_normal((32, 32)))
        gains.append(permopt.solve(S, 8, "alternating").kept / permopt.solve(S, 8, "grps").kept - 1)
    assert np.mean(gains) > 0.03


def test_local_reaches_the_optimum_often_on_small_instances():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(10):
        S = np.abs(rng.standard_normal((8, 8)))
        opt = permopt.solve(S, 2, "enumerate").kept
        got = permopt.solve(S, 2, "local", seed=0).kept
        assert got <= opt * (1 + 1e-12)
        hits += got >= opt * (1 - 1e-9)
    assert hits >= 7, hits


def test_starts_and_seeds():
    S = np.abs(np.random.default_rng(1).standard_normal((24, 24)))
    a = permopt.solve(S, 4, "anneal", seed=3)
    b = permopt.solve(S, 4, "anneal", seed=3)
    assert np.array_equal(a.row_groups, b.row_groups)  # seeded runs repeat
    one = permopt.solve(S, 4, "alternating", start="random", seed=0)
    more = permopt.solve(S, 4, "alternating", start="random", restarts=3, seed=0)
    assert more.kept >= one.kept  # restarts only add candidates to the same first start
    assert one.kept < permopt.solve(S, 4, "alternating", seed=0).kept * 1.2
    with pytest.raises(ValueError, match="unknown solver 'magic'"):
        permopt.solve(S, 4, "alternating", start="magic")
    with pytest.raises(ValueError, match="effort"):
        permopt.solve(S, 4, "best", effort=-1)
