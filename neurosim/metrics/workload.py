"""What an inference does, per layer and per sample: the counts the energy model prices.

An SNN layer's row (:class:`SnnLayer`) holds what its own neurons and its own spikes cause over
T steps: the synaptic events its spikes cause (each spike times its fan-out, counted by the
simulator: :mod:`neurosim.metrics.synops`), its neuron updates (neurons x T: a time-stepped
core updates every neuron every step), the multiplies of one update (leak, current decay, a
BNTT scale) and its spikes. An ANN layer's row (:class:`AnnLayer`) holds the
multiply-accumulates of its own synapses (its connections) and the activations it writes. So
an SNN layer's row holds the events its *output* causes downstream, an ANN layer's the MACs of
its *input*: the simulator counts events by the layer whose spikes cause them.

neurosim's nets take images as the input neurons' bias current (docs/netlist.md, "Input, and
what SynOps count"): every synapse of a netlist carries spikes, so an SNN's synaptic operations
are all accumulates (ACs); the pixels' analog values enter as one add per input neuron and
step, which is that layer's neuron update. An *analog* input layer (an ``Input`` with a host
synapse: :mod:`neurosim.netlist.host`) costs its synapse's multiply-accumulates once per
sample, on the host (:func:`host_macs`): the image is constant, so its current is too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from neurosim.netlist.schema import Netlist, Population


@dataclass(frozen=True)
class SnnLayer:
    """One layer of an SNN inference of T steps, per sample."""
    name: str
    acs: float              #: synaptic events its spikes cause (binary operand)
    neuron_updates: float   #: neurons x T
    update_mults: int       #: multiplies per neuron update (leak, current decay, BNTT scale)
    spikes: float           #: spikes it sends
    host_macs: float = 0.0  #: an analog input layer: the host's multiply-accumulates (once per sample)


@dataclass(frozen=True)
class AnnLayer:
    """One layer of an ANN inference, per sample."""
    name: str
    macs: float             #: multiply-accumulates of its synapses (its connections)
    outputs: int            #: activations it computes and writes


@dataclass(frozen=True)
class Memories:
    """Sizes in bits of what an inference reads and writes (they pick the SRAM's energy)."""
    weights: int            #: stored weights x their bits
    state: int              #: SNN: accumulator and potential of every neuron; ANN: every activation


def update_mults(layer) -> int:
    """Multiplies of one fixed-point neuron update (docs/netlist.md, "Neuron equations"):
    a current decay ``0 < iDecay < 4096`` (CUBA), a voltage decay ``0 < vDecay < 4096``, a
    per-step scale (a BNTT schedule). RMP without leak needs none: its update is adds only."""
    n = layer.neuron
    decays = [int(n.vDecay)] + ([int(n.iDecay)] if n.type_name == "CUBA" else [])
    mults = sum(0 < d < 4096 for d in decays)
    schedule = getattr(layer, "schedule", None)
    return mults + int(schedule is not None and schedule.scale is not None)


def stored_weights(net: Netlist) -> int:
    """Weights a deployment stores: every projection's weight array (a conv kernel once)."""
    total = 0
    for layer in net.layers:
        if isinstance(layer, Population):
            total += sum(int(np.size(p.synapse.weight)) for p in layer.projections)
    return total


def host_macs(net: Netlist) -> int:
    """Multiply-accumulates of an analog input layer's host synapse per sample (its connections),
    0 for a net without one."""
    if not net.has_input_layer or net.layers[0].synapse is None:
        return 0
    layer = net.layers[0]
    return int(layer.synapse.fanout(tuple(layer.sample_shape)).sum())


def neurons_of(net: Netlist, i: int) -> int:
    return int(np.prod(net.layers[i].shape))


def snn_memories(net: Netlist, weight_bits: int, state_bits: int) -> Memories:
    """The SNN's weight memory and its state memory: an accumulator and a potential per neuron."""
    neurons = sum(neurons_of(net, i) for i in net.neuron_layers)
    return Memories(weights=stored_weights(net) * weight_bits, state=2 * neurons * state_bits)


def ann_layers_to_meta(rows: list[AnnLayer], weights: int) -> dict:
    """The ANN's rows as netlist metadata (JSON), read back by :func:`ann_layers_from_meta`."""
    return {"weights": int(weights), "layers": [[r.name, r.macs, r.outputs] for r in rows]}


def ann_layers_from_meta(meta: dict) -> Optional[tuple[list[AnnLayer], int]]:
    """``(rows, stored weights)`` recorded in a netlist's ``ann_layers`` metadata, or None."""
    rec = meta.get("ann_layers")
    if not isinstance(rec, dict):
        return None
    return [AnnLayer(str(n), float(m), int(o)) for n, m, o in rec["layers"]], int(rec["weights"])


def activation_bits(steps: int) -> int:
    """Bits of the quantised ANN equivalent to a rate-coded SNN of ``steps`` steps:
    ceil(log2(T + 1)), the spike counts 0..T of a neuron (Yan et al., arXiv 2409.08290, abstract)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return max(1, math.ceil(math.log2(steps + 1)))
