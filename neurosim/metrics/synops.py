"""Synaptic operations counted from real events: each spike times its real fan-out.

The fan-out of a neuron is the number of synapses that leave it, over every projection that
takes its layer's spikes (for a convolution, fewer at the borders; ``Flatten`` is
transparent; a residual net's skip projections count too). A spike-input net's input spikes
have a fan-out as well: their SynOps are counted (:func:`input_fanout`). The ANN's MACs are
the same connections counted once per inference (every projection's connections).
The connections are the synapse kind's
(:meth:`~neurosim.netlist.synapses.base.SynapseKind.fanout`, NumPy).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from neurosim.netlist.schema import INPUT, Flatten, Netlist, Population


def _fanout_of(net: Netlist, j: int) -> np.ndarray:
    """Fan-out of each neuron of layer ``j`` (or of the input, ``INPUT``), (C, H, W)-flattened."""
    total = np.zeros(int(np.prod(net.shape_of(j))), dtype=np.int64)
    for i, p in net.projections_from(j):
        kind = net.layers[i].projections[p].synapse
        total += kind.fanout(net.in_shape(i, p)).reshape(-1)
    return total


def fanouts(net: Netlist) -> list[Optional[np.ndarray]]:
    """Per layer: fan-out of each of its neurons, flattened in (C, H, W) order (None for Flatten)."""
    return [None if isinstance(layer, Flatten) else _fanout_of(net, j) for j, layer in enumerate(net.layers)]


def input_fanout(net: Netlist) -> Optional[np.ndarray]:
    """Fan-out of each input of a spike-input net (None for a net with an ``Input`` layer)."""
    return None if net.has_input_layer else _fanout_of(net, INPUT)


def event_synops(counts: np.ndarray, fanout: np.ndarray) -> np.ndarray:
    """(N,) synaptic events: spike counts (N, n) of a layer times its neurons' fan-out (n,)."""
    return np.asarray(counts, dtype=np.int64) @ np.asarray(fanout, dtype=np.int64)


def synops_per_layer(net: Netlist, counts: list[Optional[np.ndarray]]) -> list[Optional[np.ndarray]]:
    """(N,) synaptic operations per sample caused by each layer's spikes (``counts[i]`` is (N, n))."""
    return [None if c is None else event_synops(c, f) for c, f in zip(counts, fanouts(net))]


def ann_macs(net: Netlist) -> int:
    """Connections of every projection: the ANN's multiply-accumulates per inference."""
    total = 0
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Population):
            for p, proj in enumerate(layer.projections):
                total += int(proj.synapse.fanout(net.in_shape(i, p)).sum())
    return total
