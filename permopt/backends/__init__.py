"""Solver back ends shared by the permutation solvers and the configuration search: OR-Tools
CP-SAT (:mod:`.cpsat`), PuLP (:mod:`.pulp`) and HiGHS (:mod:`.highs`). Each is imported lazily,
with a clear message when missing."""
