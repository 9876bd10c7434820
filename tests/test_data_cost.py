"""The data cost model: the output error after reconstruction equals an explicit least-squares
fit on the data, never exceeds the masked error, is scale-free, and drives a budget search."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import permopt
from permopt.search.data_cost import masked_block_error, output_error


def _case(seed, F=6, C=6, k=4, G=2, n=300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, C * k)) @ rng.normal(size=(C * k, C * k))  # correlated inputs
    W = rng.normal(size=(F, C * k))
    rows, cols = rng.permutation(np.arange(F) % G), rng.permutation(np.arange(C) % G)
    return X, W, rows, cols, k


def _explicit(X, W, rows, cols, k):
    """Residual share of lstsq fits of each output on its group's input columns."""
    Y = X @ W.T
    lost = 0.0
    for f in range(W.shape[0]):
        idx = np.flatnonzero(np.repeat(cols == rows[f], k))
        coef, *_ = np.linalg.lstsq(X[:, idx], Y[:, f], rcond=None)
        lost += float(((X[:, idx] @ coef - Y[:, f]) ** 2).sum())
    return lost / float((Y ** 2).sum())


@given(seed=st.integers(0, 10_000), scale=st.sampled_from([1e-12, 1.0, 1e12]))
@settings(max_examples=25, deadline=None)
def test_output_error_is_the_explicit_least_squares_residual_at_any_scale(seed, scale):
    X, W, rows, cols, k = _case(seed)
    H = X.T @ X / len(X)
    err = output_error(W * scale, H, rows, cols)
    assert err == pytest.approx(_explicit(X, W, rows, cols, k), rel=1e-6, abs=1e-9)
    mask = np.repeat(rows[:, None] == cols[None, :], k, axis=1)
    masked = float(np.einsum("fi,ij,fj->", W * ~mask, H, W * ~mask)) / float(np.einsum("fi,ij,fj->", W, H, W))
    assert err <= masked + 1e-9  # refitting never loses more than zeroing the off-block weights
    assert output_error(W, H, np.zeros(6, int), np.zeros(6, int)) == pytest.approx(0.0, abs=1e-9)  # G = 1


def test_block_error_is_the_masked_energy_under_a_block_diagonal_covariance():
    X, W, rows, cols, k = _case(3)
    H = X.T @ X / len(X)
    blocks = np.stack([H[c * k:(c + 1) * k, c * k:(c + 1) * k] for c in range(6)])
    Hb = np.zeros_like(H)
    for c in range(6):
        Hb[c * k:(c + 1) * k, c * k:(c + 1) * k] = blocks[c]
    mask = np.repeat(rows[:, None] == cols[None, :], k, axis=1)
    expect = float(np.einsum("fi,ij,fj->", W * ~mask, Hb, W * ~mask)) / float(np.einsum("fi,ij,fj->", W, Hb, W))
    assert masked_block_error(W, blocks, rows, cols) == pytest.approx(expect, rel=1e-9)


@pytest.mark.slow
def test_a_budget_search_on_data_is_reproducible_meets_the_budget_and_records_its_cost():
    model = permopt.models.get("digits_cnn", seed=0).eval()
    calib = torch.randn(48, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    options = dict(budget={"params": 0.6}, calibration=calib, progress=False, reconstruct=False)
    a = permopt.prune(model, calib[:2], **options)
    b = permopt.prune(model, calib[:2], **options)
    assert a.plan.to_json() == b.plan.to_json() and a.plan.meta["cost"] == "data"
    assert a.report.params_after <= 0.6 * a.report.params_before
    mass = permopt.prune(model, calib[:2], cost="mass", **options)
    assert mass.plan.meta["cost"] == "mass"
    with pytest.raises(ValueError, match="cost='data' needs calibration"):
        permopt.prune(model, calib[:2], budget={"params": 0.6}, cost="data", progress=False)
    with pytest.raises(ValueError, match="cost must be one of"):
        permopt.prune(model, calib[:2], budget={"params": 0.6}, cost="loss", progress=False)
