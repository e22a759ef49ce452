"""Synaptic operations counted from real events: each spike times its real fan-out.

The fan-out of a neuron is the number of synapses that leave it into the next synaptic
layer (for a convolution, fewer at the borders; ``Flatten`` is transparent). The ANN's
MACs are the same connections counted once per inference (every connection of every
conv, dense and pooling layer, the first layer's input included).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from neurosim.netlist.schema import Flatten, Input, Netlist
from neurosim.sim.synapse import Synapse


def fanouts(net: Netlist) -> list[Optional[np.ndarray]]:
    """Per layer: fan-out of each of its neurons, flattened in (C, H, W) order (None for Flatten)."""
    result: list[Optional[np.ndarray]] = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            result.append(None)
            continue
        nxt = next((j for j in range(i + 1, len(net.layers)) if not isinstance(net.layers[j], Flatten)), None)
        n = int(np.prod(layer.shape))
        if nxt is None:
            result.append(np.zeros(n, dtype=np.int64))
        else:
            fan = Synapse(net.layers[nxt], fixed=False).fanout(net.in_shape(nxt))
            result.append(fan.reshape(-1))
    return result


def event_synops(counts: np.ndarray, fanout: np.ndarray) -> np.ndarray:
    """(N,) synaptic events: spike counts (N, n) of a layer times its neurons' fan-out (n,)."""
    return np.asarray(counts, dtype=np.int64) @ np.asarray(fanout, dtype=np.int64)


def synops_per_layer(net: Netlist, counts: list[Optional[np.ndarray]]) -> list[Optional[np.ndarray]]:
    """(N,) synaptic operations per sample caused by each layer's spikes (``counts[i]`` is (N, n))."""
    return [None if c is None else event_synops(c, f) for c, f in zip(counts, fanouts(net))]


def ann_macs(net: Netlist) -> int:
    """Connections of every synaptic layer: the ANN's multiply-accumulates per inference."""
    total = 0
    for j, layer in enumerate(net.layers):
        if not isinstance(layer, (Input, Flatten)):
            total += int(Synapse(layer, fixed=False).fanout(net.in_shape(j)).sum())
    return total
