"""One name → implementation registry, shared by solvers, search strategies and criteria.

An entry is a plain function or a subclass of the registry's base class (instantiated
once, its ``run_method`` is called). Built-in entries register when their package is
imported, so the registry is complete before any user code can add to it: a user name
that clashes with a built-in is refused at once (or replaces it with ``overwrite=True``),
never later.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Entry:
    """A registered implementation: name, callable, whether it is exact, one-line description."""

    name: str
    fn: Callable[..., Any]
    exact: bool
    description: str


class Registry:
    """Names to implementations, with clear errors for unknown or duplicate names.

    ``base`` is the class a class-style entry must subclass (``None``: functions only),
    ``run_method`` the method called on its instance.
    """

    def __init__(self, kind: str, base: type | None = None, run_method: str = "__call__"):
        self.kind, self.base, self.run_method = kind, base, run_method
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, obj: Any = None, *, exact: bool | None = None, overwrite: bool = False) -> Any:
        """Register a function or ``base`` subclass under ``name`` (usable as a decorator)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it")

        def deco(o: Any) -> Any:
            fn, is_exact = self._callable(o)
            doc = (inspect.getdoc(o) or "").strip().splitlines()
            self._entries[name] = Entry(name, fn, is_exact if exact is None else bool(exact), doc[0] if doc else "")
            return o
        return deco(obj) if obj is not None else deco

    def _callable(self, o: Any) -> tuple[Callable[..., Any], bool]:
        if inspect.isclass(o):
            if self.base is None or not issubclass(o, self.base):
                want = f"a {self.base.__module__}.{self.base.__name__} subclass" if self.base else "a function"
                raise TypeError(f"a {self.kind} class must be {want}, got {o.__name__}")
            return getattr(o(), self.run_method), bool(getattr(o, "exact", False))
        if callable(o):
            return o, False
        kinds = "a function" + (f" or a {self.base.__name__} subclass" if self.base else "")
        raise TypeError(f"a {self.kind} must be {kinds}, got {type(o).__name__}")

    def unregister(self, name: str) -> None:
        """Remove an entry (no error if absent)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry:
        """The entry ``name``, or a ValueError listing the known names."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; available: {self.available()}") from None

    def available(self, exact: bool | None = None) -> list[str]:
        """Registered names (only exact or only non-exact ones with ``exact=``)."""
        return sorted(n for n, e in self._entries.items() if exact is None or e.exact == exact)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def check_options(self, name: str, options: dict) -> None:
        """Refuse options entry ``name`` does not take (naming the ones it accepts), and values of
        the wrong plain type for options annotated ``bool``/``int``/``float``/``str``
        (``grps(repair="bogus")`` would otherwise run with a truthy string)."""
        fn = self.get(name).fn
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):  # builtins without a signature: let the call decide
            return
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return
        accepted = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n not in ("time_limit", "seed")]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise TypeError(f"{self.kind} {name!r} got unknown option(s) {unknown}; it accepts {accepted}")
        for option, value in options.items():
            _check_plain_type(f"{self.kind} {name!r}: option {option}", params[option].annotation, value)


#: Plain annotations whose values are checked before an entry runs (numpy numbers count as numbers).
_PLAIN_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool, np.bool_), "int": (int, np.integer), "float": (int, float, np.integer, np.floating), "str": (str,)}


def _check_plain_type(what: str, annotation: Any, value: Any) -> None:
    """``value`` fits an annotation ``bool``, ``int``, ``float`` or ``str`` (optionally ``| None``);
    anything richer (Any, unions of other types) is the entry's own to check."""
    ann = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    parts = [a.strip() for a in ann.split("|")]
    if value is None and "None" in parts:
        return
    kinds = [_PLAIN_TYPES[a] for a in parts if a in _PLAIN_TYPES]
    if len(kinds) != len([a for a in parts if a != "None"]) or not kinds:
        return
    bad_bool = isinstance(value, (bool, np.bool_)) and "bool" not in parts
    if bad_bool or not any(isinstance(value, k) for k in kinds):
        raise TypeError(f"{what} must be {ann}, got {value!r:.60}")
