"""Synapse kinds of the netlist, one module each (see :mod:`neurosim.netlist.synapses.base`).

Every module of this package that defines a :class:`SynapseKind` subclass with a
``type_name`` is registered in :data:`KINDS` (``/layer/<i>/type`` -> class): the reader,
writer and SynOps pick a new kind up. The kinds are data and their rules (NumPy only); each
executor has its own table from kind to implementation
(:class:`~neurosim.netlist.kinds.KindTable`), where a new kind is added or refused
(docs/netlist.md, "Adding a kind"; ``tests/test_kind_tables.py`` checks every table).
"""
from __future__ import annotations

from neurosim.netlist.kinds import discover
from neurosim.netlist.synapses.base import SynapseKind

#: ``type`` name -> synapse class.
KINDS: dict[str, type] = discover(__name__, __path__, SynapseKind)

from neurosim.netlist.synapses.conv import Conv  # noqa: E402
from neurosim.netlist.synapses.dense import Dense  # noqa: E402
from neurosim.netlist.synapses.identity import Identity  # noqa: E402
from neurosim.netlist.synapses.pool import Pool  # noqa: E402

__all__ = ["KINDS", "SynapseKind", "Conv", "Dense", "Identity", "Pool"]
