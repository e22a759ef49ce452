"""``neurosim info``: a netlist's layers as text, each with its neuron's parameters and its
synapses (kind, weight shape, non-default fields)."""
from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.netlist.schema import Flatten, Input, Netlist, Population


def neuron_text(neuron: Any) -> str:
    """Every parameter of a neuron (its dataclass fields), e.g. ``RMP vThMant=80 vDecay=0 vInit=40 reset=soft``."""
    def fmt(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)
    return neuron.type_name + "".join(f" {f.name}={fmt(getattr(neuron, f.name))}" for f in fields(neuron))


def synapse_text(kind: Any) -> str:
    """A synapse kind's name, weight shape (or value, for a one-weight kind) and every other
    field that differs from its default (stride, padding, dilation, groups, ...)."""
    w = np.asarray(kind.weight)
    text = kind.type_name + (f" weight={float(w):g}" if w.ndim == 0 else str(tuple(w.shape)))
    for f in fields(kind):
        value = getattr(kind, f.name)
        if f.name != "weight" and (f.default is MISSING or np.any(np.asarray(value) != np.asarray(f.default))):
            text += f" {f.name}={tuple(value) if isinstance(value, (list, np.ndarray)) else value}"
    return text


def describe(net: Netlist, name: Path) -> str:
    """``name``'s layer count and neuron types, then one line per layer: index, type, shape,
    neuron, input current (an ``Input`` layer), synapses and bias schedule (a ``Population``)."""
    lines = [f"{name}: {len(net.layers)} layers, neuron types {', '.join(sorted(net.neuron_types))}"]
    for i, layer in enumerate(net.layers):
        extra = ""
        if not isinstance(layer, Flatten):
            extra = neuron_text(layer.neuron)
        if isinstance(layer, Input) and layer.synapse is None:
            extra += f"  input current = {layer.weight:g} * x + {layer.bias:g}"
        elif isinstance(layer, Input):
            bias = f"{layer.bias:g}" if np.ndim(layer.bias) == 0 else "bias[c]"
            extra += (f"  analog input: current = {layer.weight:g} * synapse(x) + {bias}, x {tuple(layer.sample_shape)}, "
                      f"host synapse {synapse_text(layer.synapse)}")
        if isinstance(layer, Population):
            extra += "  " + " + ".join(f"{synapse_text(kind)} from {'input' if src < 0 else src}"
                                       for src, kind in net.inputs(i))
            if layer.schedule is not None:
                extra += f"  schedule of {layer.schedule.steps} steps"
        lines.append(f"  {i:2d} {layer.type_name:8s} shape {str(tuple(layer.shape)):16s} {extra}")
    return "\n".join(lines)
