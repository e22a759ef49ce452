"""Netlist -> netlist transforms (NumPy only): steps that change when currents arrive.

* :func:`bias_onset`: a population's constant bias starts at the population's depth, as if
  spikes crossed every layer within one step (the conversion's model of time).
"""
from __future__ import annotations

import numpy as np

from neurosim.netlist.schema import Netlist, Population, Schedule


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
