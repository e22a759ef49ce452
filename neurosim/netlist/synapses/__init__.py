"""Synapse kinds of the netlist, one module each (see :mod:`neurosim.netlist.synapses.base`).

Every module of this package that defines a :class:`SynapseKind` subclass with a
``type_name`` is registered in :data:`KINDS` (``/layer/<i>/type`` -> class): the reader,
writer and SynOps pick a new kind up. The kinds are data and their rules (NumPy only); each
executor has its own table from kind to implementation
(:class:`~neurosim.netlist.synapses.base.KindTable`), where a new kind is added or refused
(docs/netlist.md, "Adding a synapse kind"; ``tests/test_kind_tables.py`` checks every table).
"""
from __future__ import annotations

import importlib
import pkgutil

from neurosim.netlist.synapses.base import SynapseKind


def _discover() -> dict[str, type]:
    kinds: dict[str, type] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, SynapseKind) and obj.type_name \
                    and obj.__module__ == module.__name__:
                kinds[obj.type_name] = obj
    return kinds


#: ``type`` name -> synapse class.
KINDS: dict[str, type] = _discover()

from neurosim.netlist.synapses.conv import Conv  # noqa: E402
from neurosim.netlist.synapses.dense import Dense  # noqa: E402
from neurosim.netlist.synapses.identity import Identity  # noqa: E402
from neurosim.netlist.synapses.pool import Pool  # noqa: E402

__all__ = ["KINDS", "SynapseKind", "Conv", "Dense", "Identity", "Pool"]
