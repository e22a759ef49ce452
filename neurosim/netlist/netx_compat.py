"""Netlists that stock lava-dl netx loads with their meaning intact (``neurosim export-netx``).

netx (``lava.lib.dl.netx.hdf5.Network``) builds a *chain*: every layer takes the spikes of the
layer before, through a ``dense`` or ``conv`` synapse, into Lava ``LIF`` neurons (CUBA, hard
reset, ``v = 0`` at the start, one constant bias ``bias_mant`` per channel), with ``flatten``
between a conv and a dense layer. It ignores keys it does not know, so a neurosim v2 file with a
soft reset, a schedule or a join would *load* in netx and mean something else. This module
checks a netlist against that subset and writes it with no v2 key at all:

- a population passes when it has one projection from the layer before, of kind ``dense`` or
  ``conv`` (Lava's geometry limits), integer weights and biases (netx casts with
  ``astype(int)``), no schedule, and a neuron netx builds: ``CUBA`` with hard reset and
  ``vInit = 0``, or ``RMP`` with hard reset and ``vInit = 0``, which is the same step with
  ``iDecay = 4096`` (``u[t] = a[t]``) and is written as that CUBA neuron::

      RMP(vThMant, vDecay, hard)  ==  CUBA(vThMant, iDecay=4096, vDecay, hard)

- an ``input`` layer passes with the same neuron rules (netx drives it through ``bias_mant``:
  feed ``weight * x + bias``, which neurosim's ``--raw-current`` also takes; netx does not apply
  the stored ``weight``/``bias`` itself);
- a ``flatten`` passes when it follows the layer before (a flatten of a vector is dropped: it
  is the identity);
- a net with spike input gets a leading ``input`` layer holding only ``shape`` (SLAYER's
  neuron-less ``Input`` block), from which netx takes the input shape of a first conv layer.

Average pooling is folded into the next layer by the converter (``neurosim convert``, unless
``--no-fold-pool``); a ``pool`` layer left in a netlist is a spiking population netx cannot
build, and is refused like soft reset, schedules, ``vInit``, ``identity`` and joins, with one
message naming the layer and why.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Union

import h5py
import numpy as np

from neurosim.errors import NeurosimError
from neurosim.io.atomic import atomic_path
from neurosim.netlist import hdf5
from neurosim.netlist.schema import (
    CUBA, DECAY_UNITY, RMP, Flatten, Input, Layer, Netlist, Neuron, Population,
    Projection,
)

#: Synapse kinds netx builds (``create_dense``, ``create_conv``).
NETX_KINDS = ("dense", "conv")


def _neuron_refusal(neuron: Neuron) -> Optional[str]:
    if neuron.soft:
        return (f"{neuron.type_name} neuron with soft reset (v <- v - vThMant); netx builds Lava LIF, "
                "which resets to 0")
    if neuron.vInit != 0:
        return f"initial voltage vInit = {neuron.vInit:g}; netx starts every neuron at v = 0"
    return None


def _integers(name: str, a) -> Optional[str]:
    a = np.asarray(a, dtype=np.float64)
    if a.size and not np.array_equal(a, np.rint(a)):
        return f"non-integer {name} mantissas (netx truncates them with astype(int)); export in fixed point"
    return None


def layer_refusal(net: Netlist, i: int) -> Optional[str]:
    """Why netx cannot express layer ``i`` of ``net`` with neurosim's meaning, or ``None``."""
    layer = net.layers[i]
    if isinstance(layer, Flatten):
        if net.source_of(i, layer.source) != i - 1:
            return f"flatten of layer {net.source_of(i, layer.source)}, not of the layer before (netx is a chain)"
        return None
    why = _neuron_refusal(layer.neuron)
    if why or isinstance(layer, Input):
        return why
    if len(layer.projections) > 1:
        srcs = [s for s, _ in net.inputs(i)]
        return f"join of {len(srcs)} projections (from {srcs}); netx layers take one projection"
    src, syn = net.inputs(i)[0]
    if src != i - 1:
        return f"projection from layer {src}, not from the layer before (a skip connection; netx is a chain)"
    if syn.type_name not in NETX_KINDS:
        extra = (" (average pooling is folded into the next layer by 'neurosim convert' unless --no-fold-pool)"
                 if syn.type_name == "pool" else "")
        return f"'{syn.type_name}' synapse; netx builds only {' and '.join(NETX_KINDS)} layers{extra}"
    if layer.schedule is not None:
        return (f"per-step schedule over {layer.schedule.steps} steps (BNTT scale or a bias onset); netx has "
                "one constant bias and no current scale")
    geometry = syn.lava_refusal(net.in_shape(i))
    if geometry:
        return geometry
    return _integers("weight", syn.weight) or (None if layer.bias is None else _integers("bias", layer.bias))


def _netx_neuron(neuron: Neuron) -> CUBA:
    if isinstance(neuron, RMP):
        return CUBA(vThMant=int(neuron.vThMant), iDecay=DECAY_UNITY, vDecay=int(neuron.vDecay))
    return CUBA(vThMant=int(neuron.vThMant), iDecay=int(neuron.iDecay), vDecay=int(neuron.vDecay),
                refDelay=int(neuron.refDelay))


def _netx_layer(layer: Layer) -> Layer:
    """``layer`` in netx's terms: CUBA neurons, no explicit source."""
    if isinstance(layer, Flatten):
        return Flatten(shape=layer.shape)
    if isinstance(layer, Input):
        return Input(layer.shape, _netx_neuron(layer.neuron), layer.weight, layer.bias)
    proj = layer.projections[0]
    return Population(layer.shape, _netx_neuron(layer.neuron), [Projection(proj.synapse)], layer.bias)


def to_netx(net: Netlist, name: str = "netlist") -> Netlist:
    """``net`` as a netx chain (see the module docstring), or :class:`NeurosimError` naming the
    first layer netx cannot express and why (and how many more there are)."""
    net.check()
    problems = [(i, why) for i in range(len(net.layers)) if (why := layer_refusal(net, i))]
    if problems:
        i, why = problems[0]
        more = f" (and {len(problems) - 1} more layer(s))" if len(problems) > 1 else ""
        raise NeurosimError(f"{name}: not netx-compatible: layer {i} ({net.layers[i].type_name}): {why}{more}")
    layers = [_netx_layer(l) for k, l in enumerate(net.layers)
              if not (isinstance(l, Flatten) and len(net.in_shape(k)) == 1)]
    return Netlist(layers=layers, input_shape=net.input_shape, meta=dict(net.meta))


def save_netx(net: Netlist, path: Union[str, os.PathLike], name: str = "netlist") -> Path:
    """Write ``net`` (after :func:`to_netx`) atomically as a file stock netx loads: only netx's
    keys, plus ``/neurosim/meta`` (JSON, ignored by netx)."""
    path = Path(path)
    chain = to_netx(net, name)
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            offset = 0
            if not chain.has_input_layer:       # SLAYER's neuron-less Input block: the spike input's shape
                g = f.create_group("layer/0")
                g.create_dataset("type", (1,), "S10", [b"input"])
                g.create_dataset("shape", data=np.asarray(chain.input_shape, dtype=np.int64))
                offset = 1
            for i, layer in enumerate(chain.layers):
                hdf5._write_layer(f.create_group(f"layer/{i + offset}"), layer)
            if chain.meta:
                f.create_dataset(hdf5.META_KEY, data=json.dumps(chain.meta, sort_keys=True, allow_nan=False).encode())
    except (OSError, RuntimeError, TypeError, ValueError) as exc:
        raise NeurosimError(f"{path}: cannot write the netx file ({exc.__class__.__name__}: {exc})") from None
    return path
