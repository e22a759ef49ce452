"""Shorthands for the usual one-projection layers: ``dense(shape, weight, neuron, bias=...)``
is ``Population(shape, neuron, [Projection(Dense(weight), source)], bias)``; ``join`` adds
projections to a population (a residual join)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from neurosim.netlist.schema import Population, Projection, Schedule, Shape
from neurosim.netlist.neurons import Neuron
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool


def _population(shape: Shape, neuron: Neuron, synapse, source: Optional[int], bias, schedule) -> Population:
    return Population(tuple(shape), neuron, [Projection(synapse, source)],
                      None if bias is None else np.asarray(bias, dtype=np.float64), schedule)


def dense(shape: Shape, weight: np.ndarray, neuron: Neuron, bias: Optional[np.ndarray] = None,
          source: Optional[int] = None, schedule: Optional[Schedule] = None) -> Population:
    return _population(shape, neuron, Dense(np.asarray(weight)), source, bias, schedule)


def conv(shape: Shape, weight: np.ndarray, neuron: Neuron, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
         groups: int = 1, bias: Optional[np.ndarray] = None, source: Optional[int] = None,
         schedule: Optional[Schedule] = None) -> Population:
    syn = Conv(np.asarray(weight), tuple(stride), tuple(padding), tuple(dilation), int(groups))
    return _population(shape, neuron, syn, source, bias, schedule)


def pool(shape: Shape, weight: np.ndarray, neuron: Neuron, stride=(2, 2), padding=(0, 0),
         source: Optional[int] = None, schedule: Optional[Schedule] = None) -> Population:
    return _population(shape, neuron, Pool(np.asarray(weight), tuple(stride), tuple(padding)), source,
                       None, schedule)


def identity(shape: Shape, neuron: Neuron, weight: float = 1.0, bias: Optional[np.ndarray] = None,
             source: Optional[int] = None, schedule: Optional[Schedule] = None) -> Population:
    return _population(shape, neuron, Identity(float(weight)), source, bias, schedule)


def join(layer: Population, *projections: Projection) -> Population:
    """``layer`` with ``projections`` added (their currents add to the layer's)."""
    layer.projections.extend(projections)
    return layer
