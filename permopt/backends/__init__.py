"""Optional solver back ends shared by the permutation solvers and the configuration search:
OR-Tools CP-SAT (:mod:`.cpsat`) and PuLP (:mod:`.pulp`). Each is imported lazily, with a
clear message when missing."""
