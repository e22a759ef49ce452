"""Kind registries and the executors' tables of kinds (synapse kinds and neuron kinds alike).

A *kind* is a class of the netlist's data (:mod:`neurosim.netlist.synapses`,
:mod:`neurosim.netlist.neurons`), found by :func:`discover` in its package. Each executor or
format owns a :class:`KindTable` from kind class to its implementation there, or to the
one-line reason it refuses the kind; ``tests/test_kind_tables.py`` checks that every kind is in
every table, so a new kind cannot be half-added.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, Iterable, Mapping, Optional, TypeVar, Union

T = TypeVar("T")


def discover(package: str, path: Iterable[str], base: type) -> dict[str, type]:
    """``type_name -> class`` of every subclass of ``base`` with a ``type_name`` defined in a
    module of ``package`` (whose ``__path__`` is ``path``)."""
    kinds: dict[str, type] = {}
    for info in pkgutil.iter_modules(path):
        module = importlib.import_module(f"{package}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, base) and obj.type_name \
                    and obj.__module__ == module.__name__:
                kinds[obj.type_name] = obj
    return kinds


class KindTable(Generic[T]):
    """One executor's table: kind class -> its implementation there, and for a kind the
    executor cannot express, kind class -> the one-line reason (:attr:`refused`)."""

    def __init__(self, executor: str, implemented: Mapping[type, T],
                 refused: Optional[Mapping[type, str]] = None) -> None:
        self.executor = executor
        self.implemented: dict[type, T] = dict(implemented)
        self.refused: dict[type, str] = dict(refused or {})
        both = set(self.implemented) & set(self.refused)
        if both:
            raise ValueError(f"{executor}: {sorted(c.__name__ for c in both)} both implemented and refused")

    @staticmethod
    def _cls(kind: Union[object, type]) -> type:
        return kind if isinstance(kind, type) else type(kind)

    def refusal(self, kind: Union[object, type]) -> Optional[str]:
        """Why this executor cannot take ``kind`` (one line), or None if it has it."""
        cls = self._cls(kind)
        if cls in self.implemented:
            return None
        why = self.refused.get(cls, "no implementation")
        return f"{self.executor} cannot take a '{cls.type_name}' {getattr(cls, 'noun', 'kind')}: {why}"

    def of(self, kind: Union[object, type]) -> T:
        """The implementation for ``kind``; ``ValueError`` with :meth:`refusal` if there is none."""
        cls = self._cls(kind)
        if cls not in self.implemented:
            raise ValueError(self.refusal(cls))
        return self.implemented[cls]

    def __contains__(self, kind: Union[object, type]) -> bool:
        return self._cls(kind) in self.implemented

    def __iter__(self):
        return iter(self.implemented)
