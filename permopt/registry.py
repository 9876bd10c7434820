"""A small name → implementation registry, shared by solvers and search strategies.

An entry is a plain function or a subclass of the registry's base class (instantiated
once, its ``run_method`` is called).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Entry:
    """A registered implementation: name, callable, whether it is exact, one-line description."""

    name: str
    fn: Callable
    exact: bool
    description: str


class Registry:
    """Names to implementations, with clear errors for unknown or duplicate names."""

    def __init__(self, kind: str, base: type, run_method: str, builtins: Callable[[], None] | None = None):
        self.kind, self.base, self.run_method, self._builtins = kind, base, run_method, builtins
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, obj=None, *, exact: bool | None = None, overwrite: bool = False):
        """Register a function or ``base`` subclass under ``name`` (usable as a decorator)."""
        def deco(o):
            if not isinstance(name, str) or not name:
                raise ValueError(f"{self.kind} name must be a non-empty string")
            if name in self._entries and not overwrite:
                raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it")
            if inspect.isclass(o):
                if not issubclass(o, self.base):
                    raise TypeError(f"a {self.kind} class must subclass {self.base.__module__}.{self.base.__name__}, "
                                    f"got {o.__name__}")
                fn, is_exact = getattr(o(), self.run_method), getattr(o, "exact", False)
            elif callable(o):
                fn, is_exact = o, False
            else:
                raise TypeError(f"a {self.kind} must be a function or a {self.base.__name__} subclass, "
                                f"got {type(o).__name__}")
            doc = (inspect.getdoc(o) or "").strip().splitlines()
            self._entries[name] = Entry(name, fn, is_exact if exact is None else exact, doc[0] if doc else "")
            return o
        return deco(obj) if obj is not None else deco

    def unregister(self, name: str) -> None:
        """Remove an entry (no error if absent)."""
        self._entries.pop(name, None)

    def _load(self) -> None:
        if self._builtins is not None:
            loader, self._builtins = self._builtins, None
            loader()

    def get(self, name: str) -> Entry:
        """The entry ``name``, or a ValueError listing the known names."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; available: {self.available()}") from None

    def available(self, exact: bool | None = None) -> list[str]:
        """Registered names (only exact or only non-exact ones with ``exact=``)."""
        self._load()
        return sorted(n for n, e in self._entries.items() if exact is None or e.exact == exact)
