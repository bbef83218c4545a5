"""One plugin registry, from entry points: fault kinds, detectors and pagers are found the same way.

A registry maps names to factories (an injector class, a detector or pager factory). Names come from an
entry-point group (``drills.faults``, ``drills.detectors``, ``drills.pagers``): drills registers its own
built-ins there in ``pyproject.toml`` exactly as a team's package registers its plugins, so there is one
list of built-ins and one way in. Code can also :meth:`Registry.register` a factory at run time (tests, a
script's own pager). Entry points are listed on first use and each is imported only when its name is asked
for, so ``drill --help`` does not pay for the monitoring stack.

Duplicates are refused: :meth:`Registry.register` raises for a name already known (unless ``replace``), and
of two entry points with one name the built-in (drills' own distribution) or else the first one listed wins,
the other logged, so a plugin can never shadow a built-in.

This module sits outside the layers, beside ``errors.py`` and ``timing.py``: reading entry points reads the
installed packages' metadata (I/O, so not ``model``), and both ``adapters`` (faults) and ``runner``
(detectors, pagers) use it, so it cannot live in either.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from drills.errors import DrillError, UsageError

log = logging.getLogger("drills.registry")

#: The distribution whose entry points are the built-ins.
OWN_DISTRIBUTION = "drills"

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to factories of one kind of plugin, from the entry-point ``group`` and :meth:`register`.

    ``check`` vets what an entry point loads (returns it typed, or raises TypeError saying what is wrong);
    ``error`` is the DrillError raised for unknown or broken names.
    """

    def __init__(
        self,
        kind: str,
        group: str,
        check: Callable[[object], T],
        *,
        error: type[DrillError] = UsageError,
    ) -> None:
        self.kind = kind
        self.group = group
        self._check = check
        self._error = error
        self._lock = threading.Lock()
        self._loaded: dict[str, T] = {}
        #: Names registered at run time (their factories are in ``_loaded`` from the start).
        self._registered: set[str] = set()
        self._entry_points: dict[str, EntryPoint] | None = None

    # ---- discovery -------------------------------------------------------------------------------------

    def _discovered(self) -> dict[str, EntryPoint]:
        with self._lock:
            if self._entry_points is None:
                self._entry_points = self._scan()
            return self._entry_points

    def _scan(self) -> dict[str, EntryPoint]:
        found: dict[str, EntryPoint] = {}
        for ep in entry_points(group=self.group):
            held = found.get(ep.name)
            if held is None:
                found[ep.name] = ep
                continue
            keep, drop = (ep, held) if _builtin(ep) and not _builtin(held) else (held, ep)
            found[ep.name] = keep
            if drop.value != keep.value:
                log.warning(
                    "%s %r of %s ignored: %s already has that name (%s)",
                    self.kind,
                    ep.name,
                    _origin(drop),
                    _origin(keep),
                    keep.value,
                )
        return found

    def reload(self) -> None:
        """Forget the listed entry points (they are listed again on next use); registered factories stay."""
        with self._lock:
            self._entry_points = None
            self._loaded = {n: f for n, f in self._loaded.items() if n in self._registered}

    # ---- registering -----------------------------------------------------------------------------------

    def register(self, name: str, factory: T, *, replace: bool = False) -> None:
        """Make ``name`` known at run time; a name that is already known is refused unless ``replace``."""
        known = self._discovered()
        with self._lock:
            if not replace and (name in self._loaded or name in known):
                raise self._error(
                    f"a {self.kind} named {name!r} is already registered",
                    hint="pick another name, or pass replace=True to replace it on purpose",
                )
            self._loaded[name] = factory
            self._registered.add(name)

    def unregister(self, name: str) -> None:
        """Forget a factory registered at run time (entry points cannot be unregistered)."""
        with self._lock:
            if name in self._registered:
                self._registered.discard(name)
                self._loaded.pop(name, None)

    # ---- lookup ----------------------------------------------------------------------------------------

    def targets(self) -> dict[str, str]:
        """Every known name -> where it comes from (``module:attr`` for entry points)."""
        known = {name: ep.value for name, ep in self._discovered().items()}
        with self._lock:
            for name in self._registered:
                factory = self._loaded[name]
                known[name] = f"{getattr(factory, '__module__', '?')}:{_qualname(factory)}"  # replaces win
        return dict(sorted(known.items()))

    def names(self) -> list[str]:
        return list(self.targets())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.targets()

    def get(self, name: str) -> T:
        """The factory registered as ``name``; an unknown name is an error listing the known ones."""
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
        ep = self._discovered().get(name)
        if ep is None:
            raise self._error(
                f"no {self.kind} named {name!r} (known: {', '.join(self.names()) or 'none'})",
                hint=f"a plugin registers one under the {self.group!r} entry-point group",
            )
        try:
            factory = self._check(ep.load())
        except (ImportError, AttributeError, TypeError) as e:
            raise self._error(f"{self.kind} {name!r} ({ep.value}) cannot be loaded: {e}") from e
        with self._lock:
            return self._loaded.setdefault(name, factory)


def _builtin(ep: EntryPoint) -> bool:
    dist = ep.dist
    return dist is not None and dist.name == OWN_DISTRIBUTION


def _origin(ep: EntryPoint) -> str:
    return f"distribution {ep.dist.name}" if ep.dist is not None else "an unnamed distribution"


def _qualname(obj: object) -> str:
    return str(getattr(obj, "__qualname__", type(obj).__qualname__))


def callable_factory(obj: object) -> Callable[..., Any]:
    """The ``check`` of registries whose entries are plain factories (a class or a function)."""
    if not callable(obj):
        raise TypeError(f"{obj!r} is not callable")
    return obj


__all__ = ["OWN_DISTRIBUTION", "Registry", "callable_factory"]
