"""Exact, data-only transport of a :class:`Netlist` to the Lava worker process.

Not HDF5 (:mod:`neurosim.netlist.hdf5`), because it stores weights, biases, schedules and the
input layer's weight and bias as float32 while the worker must run the caller's very arrays
(fractional float64 weights of the ``float`` mode). A netlist travels as a JSON-able
description plus a dict of arrays for an ``.npz`` file: every dataclass of the schema by class
name with all its fields (:func:`dataclasses.fields`: a field added to a schema class travels
without a change here), arrays and NumPy scalars by reference (dtype and values kept), tuples,
lists and dicts (the metadata) tagged, so that decoding gives back the same types. Only the
netlist's own classes are rebuilt; nothing is pickled or evaluated. Decoding validates what it
rebuilt (the ``schema`` profile of :mod:`neurosim.netlist.validate`); the receiver adds its own
profiles (:func:`neurosim.lava.jobs.read_job`), which do not run ``schema`` again.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.netlist.schema import Flatten, Input, Netlist, Population, Projection, Schedule
from neurosim.netlist.neurons import KINDS as NEURON_KINDS
from neurosim.netlist.synapses import KINDS
from neurosim.netlist.validate import validate

#: The classes a description may name.
CLASSES: dict[str, type] = {c.__name__: c for c in (Netlist, Flatten, Input, Population, Projection, Schedule,
                                                    *NEURON_KINDS.values(), *KINDS.values())}
#: The tags of a description's JSON objects (every object has exactly one).
CLASS, ARRAY, SCALAR, TUPLE, DICT = "class", "array", "scalar", "tuple", "dict"


def encode_net(net: Netlist) -> tuple[dict, dict[str, np.ndarray]]:
    """``(description, arrays)``: JSON-able description and the arrays it refers to."""
    arrays: dict[str, np.ndarray] = {}
    return _encode(net, arrays), arrays


def decode_net(desc: dict, arrays: dict[str, np.ndarray]) -> Netlist:
    """Inverse of :func:`encode_net`; raises :class:`NeurosimError` for a description that is
    not a netlist's or a netlist that fails the ``schema`` profile."""
    net = _decode(desc, arrays)
    if not isinstance(net, Netlist):
        raise NeurosimError(f"the description holds a {type(net).__name__}, not a Netlist")
    validate(net, "schema")
    return net


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if dataclasses.is_dataclass(value):
        name = type(value).__name__
        if CLASSES.get(name) is not type(value):
            raise TypeError(f"{name} is not a netlist class")
        return {CLASS: name, "fields": {f.name: _encode(getattr(value, f.name), arrays)
                                        for f in dataclasses.fields(value)}}
    if isinstance(value, (np.ndarray, np.generic)):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(value)
        return {ARRAY if isinstance(value, np.ndarray) else SCALAR: key}
    if isinstance(value, tuple):
        return {TUPLE: [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"dict keys must be strings, found {sorted(map(repr, value))[:5]}")
        return {DICT: {k: _encode(v, arrays) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot encode a {type(value).__name__} in a netlist")


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if CLASS in value:
        cls = CLASSES.get(value[CLASS])
        if cls is None:
            raise NeurosimError(f"{value[CLASS]!r} is not a netlist class")
        return cls(**{k: _decode(v, arrays) for k, v in value["fields"].items()})
    if ARRAY in value:
        return arrays[value[ARRAY]]
    if SCALAR in value:
        return arrays[value[SCALAR]][()]
    if TUPLE in value:
        return tuple(_decode(v, arrays) for v in value[TUPLE])
    if DICT in value:
        return {k: _decode(v, arrays) for k, v in value[DICT].items()}
    raise NeurosimError(f"unknown object in a netlist description: keys {sorted(value)[:5]}")
