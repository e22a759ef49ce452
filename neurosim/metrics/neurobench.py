"""NeuroBench's metrics of an SNN, from the netlist and the simulator's spikes.

Definitions and names are those of the ``neurobench`` package 2.3 (``neurobench/metrics/``;
Yik et al., "The neurobench framework for benchmarking neuromorphic computing algorithms and
systems", Nature Communications 16, 1545, 2025), applied to a netlist run for T steps; the
connection layers are NeuroBench's, dense and conv (pooling and identity synapses are not
connection layers there, so they count in none of these):

- ``footprint``: bytes of the parameters, dense and conv weights and the biases (float32, as a
  netlist stores them and as NeuroBench counts ``numel x element_size``);
- ``connection_sparsity``: zero weights / weights of the connection layers, rounded to 4
  decimals;
- ``activation_sparsity``: 1 - spikes / (neurons x T), over every neuron layer;
- ``synaptic_operations``: ``Dense`` = every connection of every connection layer once per
  step (x T), ``Effective_ACs`` = each spike times its fan-out through non-zero weights (the
  operand is binary), ``Effective_MACs`` = operations with a non-binary operand: none in a
  netlist (every synapse carries spikes; images enter as the input neurons' bias current);
- ``membrane_updates``: the neuron-steps whose membrane potential changed, every neuron in
  the first step (the simulator's ``membrane_updates_trace``); a time-stepped core updates
  every neuron every step (neurons x T, what the energy model prices), an upper bound of it.

All per sample (NeuroBench divides by the samples). ``tests/test_neurobench.py`` checks them
against the ``neurobench`` package on the simulator's own spikes.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.netlist.kinds import KindTable
from neurosim.netlist.schema import INPUT, Netlist, Population
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool


def _dense_map(kind: Dense, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x.reshape(1, -1) @ w.T


def _conv_map(kind: Conv, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w, stride=tuple(kind.stride), padding=tuple(kind.padding), dilation=tuple(kind.dilation),
                    groups=int(kind.groups))


#: NeuroBench's table of synapse kinds: its connection layers (``neurobench.blocks.layer.STATELESS_LAYERS``)
#: -> the kind's linear map ``(kind, x, w) -> y``; the other kinds are in none of its counts.
NEUROBENCH: KindTable = KindTable("NeuroBench", {Dense: _dense_map, Conv: _conv_map}, refused={
    Pool: "not a connection layer of NeuroBench (a parameter-free pooling module)",
    Identity: "not a connection layer of NeuroBench (a parameter-free one-to-one module)",
})


def nonzero_fanout(kind, in_shape: tuple[int, ...]) -> np.ndarray:
    """Synapses with a non-zero weight leaving each input neuron (``in_shape``), for a kind of
    :data:`NEUROBENCH`: the column sums of the binarised map, ``d/dx sum(B(x))``."""
    x = torch.zeros((1, *in_shape), dtype=torch.float64, requires_grad=True)
    w = torch.as_tensor(np.asarray(kind.weight) != 0, dtype=torch.float64)
    NEUROBENCH.of(kind)(kind, x, w).sum().backward()
    return np.rint(x.grad[0].numpy()).astype(np.int64).reshape(-1)


def connection_projections(net: Netlist):
    """``(layer, projection)`` of every projection NeuroBench counts (:data:`NEUROBENCH`)."""
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Population):
            for p, proj in enumerate(layer.projections):
                if proj.synapse in NEUROBENCH:
                    yield i, p, proj


def footprint(net: Netlist) -> int:
    """Bytes of the dense and conv weights and of every population's bias, float32 (pooling and
    identity synapses are parameter-free torch modules: no bytes)."""
    values = sum(int(np.size(proj.synapse.weight)) for _, _, proj in connection_projections(net))
    values += sum(int(np.size(layer.bias)) for layer in net.layers
                  if isinstance(layer, Population) and layer.bias is not None)
    return 4 * values


def connection_sparsity(net: Netlist) -> float:
    """Zero weights / weights of the dense and conv projections, rounded to 4 decimals."""
    zeros = total = 0
    for _, _, proj in connection_projections(net):
        w = np.asarray(proj.synapse.weight)
        zeros, total = zeros + int(np.count_nonzero(w == 0)), total + w.size
    return round(zeros / total, 4) if total else 0.0


def neurobench_metrics(net: Netlist, counts: list[Optional[np.ndarray]], input_counts: Optional[np.ndarray],
                       steps: int, membrane_updates: float) -> dict:
    """NeuroBench's metrics per sample of ``net`` run ``steps`` steps; ``counts[i]``: (n,) mean
    spikes per sample of each neuron of layer ``i`` (None for flatten), ``input_counts`` the
    same for a spike input (None with an input layer), ``membrane_updates`` the mean membrane
    updates per sample (:func:`neurosim.evaluate.membrane_updates`)."""
    dense = effective = 0.0
    for i, p, proj in connection_projections(net):
        src = net.resolve(net.source_of(i, proj.source))          # through flatten layers
        c = input_counts if src == INPUT else counts[src]
        shape = net.in_shape(i, p)
        dense += float(proj.synapse.fanout(shape).sum()) * steps
        effective += float(np.asarray(c, dtype=np.float64) @ nonzero_fanout(proj.synapse, shape))
    neurons = sum(int(np.prod(net.layers[i].shape)) for i in net.neuron_layers)
    spikes = sum(float(np.sum(counts[i])) for i in net.neuron_layers)
    return {"footprint": footprint(net), "connection_sparsity": connection_sparsity(net),
            "activation_sparsity": 1.0 - spikes / (neurons * steps),
            "synaptic_operations": {"Effective_MACs": 0.0, "Effective_ACs": effective, "Dense": dense},
            "membrane_updates": float(membrane_updates), "timesteps": steps}
