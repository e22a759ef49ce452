"""Exact, data-only transport of a :class:`Netlist` to the Lava worker process.

HDF5 netlists store weights as float32; the worker must see the very arrays the caller passed
(float-mode weights included), so a netlist travels as JSON (layer types, neuron parameters,
geometry) plus a dict of arrays for an ``.npz`` file. Nothing is pickled or evaluated.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from neurosim.netlist.schema import LAYER_TYPES, NEURON_TYPES, Netlist

_ARRAY_FIELDS = ("weight", "bias")


def encode_net(net: Netlist) -> tuple[dict, dict[str, np.ndarray]]:
    """``(description, arrays)``: JSON-able description and the arrays it refers to."""
    layers, arrays = [], {}
    for i, layer in enumerate(net.layers):
        d: dict[str, Any] = {"type": layer.type_name}
        for f in dataclasses.fields(layer):
            value = getattr(layer, f.name)
            if f.name == "neuron":
                d["neuron"] = {"type": value.type_name,
                               **{g.name: _plain(getattr(value, g.name))
                                  for g in dataclasses.fields(value)}}
            elif f.name in _ARRAY_FIELDS and isinstance(value, np.ndarray):
                key = f"layer{i}_{f.name}"
                arrays[key] = np.asarray(value)
                d[f.name] = {"array": key}
            else:
                d[f.name] = _plain(value)
        layers.append(d)
    desc = {"layers": layers,
            "input_shape": None if net.input_shape is None else [int(s) for s in net.input_shape]}
    return desc, arrays


def decode_net(desc: dict, arrays: dict[str, np.ndarray]) -> Netlist:
    """Inverse of :func:`encode_net`."""
    layers = []
    for d in desc["layers"]:
        d = dict(d)
        cls = LAYER_TYPES[d.pop("type")]
        kwargs = {}
        for key, value in d.items():
            if key == "neuron":
                value = dict(value)
                kwargs[key] = NEURON_TYPES[value.pop("type")](**value)
            elif isinstance(value, dict) and "array" in value:
                kwargs[key] = arrays[value["array"]]
            elif key in ("shape", "stride", "padding", "dilation") and value is not None:
                kwargs[key] = tuple(value)
            else:
                kwargs[key] = value
        layers.append(cls(**kwargs))
    shape = desc.get("input_shape")
    return Netlist(layers=layers, input_shape=None if shape is None else tuple(shape))


def _plain(value: Any) -> Any:
    """A JSON-able copy of a scalar, tuple or small array."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
