"""Exact, data-only transport of a :class:`Netlist` to the Lava worker process.

HDF5 netlists store weights as float32; the worker must see the very arrays the caller passed
(float-mode weights included), so a netlist travels as JSON (the schema's dataclasses by class
name, their scalar fields) plus a dict of arrays for an ``.npz`` file. Only the netlist's own
classes are rebuilt; nothing is pickled or evaluated.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from neurosim.netlist.schema import CUBA, RMP, Flatten, Input, Netlist, Population, Projection, Schedule
from neurosim.netlist.synapses import KINDS

#: The classes a description may name.
CLASSES: dict[str, type] = {c.__name__: c for c in (CUBA, RMP, Flatten, Input, Population, Projection,
                                                    Schedule, *KINDS.values())}


def encode_net(net: Netlist) -> tuple[dict, dict[str, np.ndarray]]:
    """``(description, arrays)``: JSON-able description and the arrays it refers to."""
    arrays: dict[str, np.ndarray] = {}
    desc = {"layers": [_encode(layer, arrays) for layer in net.layers],
            "input_shape": None if net.input_shape is None else [int(s) for s in net.input_shape]}
    return desc, arrays


def decode_net(desc: dict, arrays: dict[str, np.ndarray]) -> Netlist:
    """Inverse of :func:`encode_net`."""
    shape = desc.get("input_shape")
    return Netlist(layers=[_decode(d, arrays) for d in desc["layers"]],
                   input_shape=None if shape is None else tuple(shape))


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if dataclasses.is_dataclass(value):
        name = type(value).__name__
        if CLASSES.get(name) is not type(value):
            raise TypeError(f"{name} is not a netlist class")
        return {"class": name, **{f.name: _encode(getattr(value, f.name), arrays)
                                  for f in dataclasses.fields(value)}}
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"array": key}
    if isinstance(value, (tuple, list)):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if "array" in value:
            return arrays[value["array"]]
        cls = CLASSES[value["class"]]
        return cls(**{k: _decode(v, arrays) for k, v in value.items() if k != "class"})
    if isinstance(value, list):
        items = [_decode(v, arrays) for v in value]
        return items if any(isinstance(v, dict) for v in value) else tuple(items)
    return value
