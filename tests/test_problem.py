import numpy as np
import pytest

import permopt
from permopt.certify import cheap_bounds
from permopt import GroupingProblem, Solution
from helpers import brute_force


def test_validation_errors():
    with pytest.raises(ValueError, match="2-D"):
        GroupingProblem(np.ones(4), 2)
    with pytest.raises(ValueError, match="empty"):
        GroupingProblem(np.ones((0, 4)), 2)
    with pytest.raises(ValueError, match="divide both"):
        GroupingProblem(np.ones((6, 4)), 4)
    with pytest.raises(ValueError, match=">= 1"):
        GroupingProblem(np.ones((4, 4)), 0)
    with pytest.raises(TypeError, match="int"):
        GroupingProblem(np.ones((4, 4)), 2.0)
    with pytest.raises(ValueError, match="NaN/inf"):
        GroupingProblem(np.array([[1.0, np.nan], [0, 1]]), 2)
    with pytest.raises(ValueError, match="NaN/inf"):
        GroupingProblem(np.array([[1.0, np.inf], [0, 1]]), 2)
    with pytest.raises(ValueError, match="non-negative"):
        GroupingProblem(np.array([[1.0, -1], [0, 1]]), 2)
    with pytest.raises(TypeError, match="numeric"):
        GroupingProblem([["a", "b"], ["c", "d"]], 2)


def test_criteria_on_4d_weights():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((8, 4, 3, 3))
    p = GroupingProblem.from_weight(W, 2, "l2")
    assert np.allclose(p.scores[3, 1], np.linalg.norm(W[3, 1]))
    assert np.allclose(GroupingProblem.from_weight(W, 2, "l1").scores[2, 0], np.abs(W[2, 0]).sum())
    grad = rng.standard_normal(W.shape)
    assert np.allclose(GroupingProblem.from_weight(W, 2, "taylor", grad=grad).scores[1, 2],
                       np.abs(W[1, 2] * grad[1, 2]).sum())
    with pytest.raises(ValueError, match="needs the gradient"):
        GroupingProblem.from_weight(W, 2, "taylor")
    with pytest.raises(ValueError, match="unknown criterion"):
        GroupingProblem.from_weight(W, 2, "l7")
    with pytest.raises(ValueError, match="2-D .* or more"):
        GroupingProblem.from_weight(W[0, 0, 0], 2)  # 1-D (3-D is a Conv1d weight)
    custom = GroupingProblem.from_weight(W, 2, criterion=lambda w: np.abs(w).max(axis=(2, 3)))
    assert np.allclose(custom.scores, np.abs(W).max(axis=(2, 3)))


def test_torch_weights_accepted():
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv2d(4, 8, 3)
    p = GroupingProblem.from_weight(conv.weight, 4)
    assert p.scores.shape == (8, 4)


@pytest.mark.parametrize("seed", range(6))
def test_upper_bound_is_at_least_the_optimum(seed):
    rng = np.random.default_rng(seed)
    S = np.abs(rng.standard_normal((6, 6)))
    for G in (2, 3):
        upper = min(cheap_bounds(GroupingProblem(S, G)).values())
        opt = brute_force(S, G)
        assert upper >= opt - 1e-12
        assert upper <= S.sum() + 1e-12


def test_solution_json_round_trip_and_check():
    S = np.abs(np.random.default_rng(1).standard_normal((8, 12)))
    sol = permopt.solve(S, groups=4, solver="grps")
    back = Solution.from_json(sol.to_json())
    assert np.array_equal(back.row_groups, sol.row_groups) and np.array_equal(back.col_groups, sol.col_groups)
    assert back.kept == sol.kept and back.status == sol.status and back.upper_bound == sol.upper_bound
    p = GroupingProblem(S, 4)
    back.validate(p)
    back.kept += 1.0  # a lie about kept is caught
    with pytest.raises(ValueError, match="recomputed"):
        back.validate(p)


def test_check_rejects_bad_groups():
    p = GroupingProblem(np.ones((4, 4)), 2)
    with pytest.raises(ValueError, match="exactly 2 per group"):
        p.check(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="shape"):
        p.check(np.array([0, 1]), np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        p.check(np.array([0, 0, 2, 2]), np.array([0, 0, 1, 1]))


def test_all_zero_matrix():
    sol = permopt.solve(np.zeros((4, 4)), groups=2, solver="grps")
    assert sol.kept == 0 and sol.kept_ratio == 1.0 and sol.status == "optimal"
