"""Netlist -> netlist transforms (NumPy only): steps that change when currents arrive.

* :func:`bias_onset`: a population's constant bias starts at the population's depth, as if
  spikes crossed every layer within one step (the conversion's model of time).
* :func:`align_delays`: every path into a join arrives at the same step (a shortcut waits
  for the main path).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurosim.netlist.schema import INPUT, Netlist, Population, Schedule


def bias_onset(net: Netlist) -> Netlist:
    """``net`` with every population's constant bias ``b`` replaced by a bias-only schedule
    that is 0 before the population's depth ``d`` (:meth:`Netlist.depths`) and ``b`` from step
    ``d`` on::

        b'[t] = 0 for t < d,     b'[t] = b for t >= d

    so a layer at depth ``d`` sees, shifted by ``d`` steps, what it would see if spikes crossed
    every layer within one step (the ANN-to-SNN conversion's model of time)."""
    d = net.depths()
    layers = []
    for k, layer in enumerate(net.layers):
        if isinstance(layer, Population) and layer.bias is not None and layer.schedule is None and d[k] > 0:
            b = np.asarray(layer.bias, dtype=np.float64)
            rows = np.vstack([np.zeros((d[k], len(b))), b[None, :]])
            layer = Population(layer.shape, layer.neuron, layer.projections, None, Schedule(bias=rows))
        layers.append(layer)
    return Netlist(layers=layers, meta=net.meta, input_shape=net.input_shape)


def align_delays(net: Netlist) -> Netlist:
    """``net`` with the delays of every join's projections lengthened so that all its paths
    arrive together. In topological order, with ``D(s)`` the depth of source ``s`` (its first
    possible spike, :meth:`Netlist.depths`, computed with the delays already aligned), a
    population with projections ``p`` from sources ``s_p`` gets::

        A = max over p of  D(s_p) + d_p          d_p' = A - D(s_p)   (>= d_p)

    so the first spikes of every path reach it at step ``A`` (its depth). A residual block's
    shortcut (one projection from the block's input) then waits for the main path's two
    synapses. Delays only grow; a population with one projection is unchanged."""
    layers = list(net.layers)
    aligned = Netlist(layers=layers, meta=net.meta, input_shape=net.input_shape)
    for k, layer in enumerate(layers):
        if not isinstance(layer, Population) or len(layer.projections) < 2:
            continue
        d = aligned.depths()                    # of the layers before k: final already
        src = [aligned.source_of(k, p.source) for p in layer.projections]
        first = [0 if s == INPUT else d[s] for s in src]
        arrive = max(f + int(p.delay) for f, p in zip(first, layer.projections))
        projections = [dataclasses.replace(p, delay=arrive - f) for p, f in zip(layer.projections, first)]
        layers[k] = dataclasses.replace(layer, projections=projections)
    return aligned
