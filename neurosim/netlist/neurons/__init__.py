"""Neuron kinds of the netlist, one module each (see :mod:`neurosim.netlist.neurons.base`).

Every module of this package that defines a :class:`NeuronKind` subclass with a ``type_name``
is registered in :data:`NEURON_KINDS` (``/layer/<i>/neuron/type`` and its aliases -> class):
the validator, the HDF5 reader and writer, the Lava worker's codec and the Loihi quantiser pick
a new kind up from its :class:`~neurosim.netlist.neurons.base.Param` table. Each executor has
its own table from kind to implementation (docs/netlist.md, "Adding a kind";
``tests/test_kind_tables.py`` checks every table).
"""
from __future__ import annotations


from neurosim.netlist.kinds import discover
from neurosim.netlist.neurons.base import NeuronKind, Param
from neurosim.netlist.neurons.cuba import CUBA, NETX_DENSE_WITHOUT_NEURON
from neurosim.netlist.neurons.rmp import RMP

#: ``neuron/type`` name -> class (one entry per kind).
KINDS: dict[str, type] = discover(__name__, __path__, NeuronKind)
#: Every name a file may give (aliases included) -> class.
NEURON_TYPES: dict[str, type] = {**KINDS, **{a: c for c in KINDS.values() for a in c.aliases}}

#: The type of a layer's ``neuron`` (any kind of :data:`KINDS`).
Neuron = NeuronKind

__all__ = ["KINDS", "NEURON_TYPES", "NETX_DENSE_WITHOUT_NEURON", "CUBA", "RMP", "Neuron", "NeuronKind", "Param"]
