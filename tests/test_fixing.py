"""Reduced-cost fixing never drops an optimum: brute force over the kept candidates finds the
optimum of the whole knapsack, every configuration using a dropped candidate costs more than
the incumbent, and the incumbent is no better than the optimum."""
import itertools

import numpy as np
from hypothesis import given, settings, strategies as st

from permopt.search.fixing import fixable


def _brute(c, ws, caps, keep):
    best = np.inf
    for choice in itertools.product(*[np.flatnonzero(row) for row in keep]):
        ch = np.array(choice)
        if all(w[np.arange(len(c)), ch].sum() <= cap for w, cap in zip(ws, caps)):
            best = min(best, c[np.arange(len(c)), ch].sum())
    return best


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(3, 6), J=st.integers(2, 4), resources=st.integers(1, 2),
       tight=st.floats(0.3, 0.9), scale=st.sampled_from([1e-9, 1.0, 1e6]))
def test_fixing_keeps_an_optimum_and_reports_a_feasible_incumbent(seed, n, J, resources, tight, scale):
    rng = np.random.default_rng(seed)
    ks = rng.integers(1, J + 1, n)
    valid = np.arange(J)[None, :] < ks[:, None]
    c = np.where(valid, rng.random((n, J)) * scale, np.inf)
    ws = [np.where(valid, rng.integers(1, 50, (n, J)), 0) for _ in range(resources)]
    caps = [int(tight * w.max(1).sum()) for w in ws]
    rows = np.arange(n)

    def fits(choice):
        return all(int(w[rows, choice].sum()) <= cap for w, cap in zip(ws, caps))
    keep, incumbent = fixable(c, [(w.astype(float), float(cap)) for w, cap in zip(ws, caps)], valid, fits)
    assert np.all(keep <= valid) and keep.any(1).all()
    full = _brute(c, ws, caps, valid)
    if not np.isfinite(full):
        assert incumbent is None
        return
    assert _brute(c, ws, caps, keep) == full  # the same optimum from the kept candidates alone
    if incumbent is None:
        return
    assert incumbent >= full * (1 - 1e-12) - 1e-300
    for i, j in zip(*np.nonzero(valid & ~keep)):  # a dropped candidate: every configuration using it is worse
        only = valid.copy()
        only[i] = False
        only[i, j] = True
        assert _brute(c, ws, caps, only) > incumbent * (1 - 1e-9), (i, j)
