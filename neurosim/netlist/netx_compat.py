"""Netlists that stock lava-dl netx loads with their meaning intact (``neurosim export-netx``).

netx (``lava.lib.dl.netx.hdf5.Network``) builds a *chain*: every layer takes the spikes of the
layer before, through a ``dense`` or ``conv`` synapse, into Lava ``LIF`` neurons (CUBA, hard
reset, ``v = 0`` at the start, one constant bias ``bias_mant`` per channel), with ``flatten``
between a conv and a dense layer. It ignores keys it does not know, so a neurosim v2 file with a
soft reset, a schedule or a join would *load* in netx and mean something else. This module
checks a netlist against that subset (the validation profile ``netx``, on top of ``schema``:
:mod:`neurosim.netlist.validate`) and writes it with no v2 key at all:

- a population passes when it has one projection from the layer before, of kind ``dense`` or
  ``conv`` (Lava's geometry limits), integer weights and biases (netx casts with
  ``astype(int)``), no schedule, and a neuron netx builds: ``CUBA`` with hard reset,
  ``vInit = 0`` and an integer threshold, or ``RMP`` with the same, which is the CUBA step with
  ``iDecay = 4096`` (``u[t] = a[t]``) and is written as that CUBA neuron::

      RMP(vThMant, vDecay, hard)  ==  CUBA(vThMant, iDecay=4096, vDecay, hard)

- an ``input`` layer passes with the same neuron rules (netx drives it through ``bias_mant``:
  feed ``weight * x + bias``, which neurosim's ``--raw-current`` also takes; netx does not apply
  the stored ``weight``/``bias`` itself);
- a projection's ``delay`` ``d > 1`` passes on a ``dense`` layer, written as netx's ``delay``
  key (``d - 1``, which netx builds as ``DelayDense``), up to netx's limit of 62 extra steps
  (Loihi 2's; netx clamps larger ones); netx's conv has no delay, so a delayed conv is refused;
- a ``flatten`` passes when it follows the layer before (a flatten of a vector is dropped: it
  is the identity);
- a net with spike input gets a leading ``input`` layer holding only ``shape`` (SLAYER's
  neuron-less ``Input`` block), from which netx takes the input shape of a first conv layer.

Average pooling is folded into the next layer by the converter (``neurosim convert``, unless
``--no-fold-pool``); a ``pool`` layer left in a netlist is a spiking population netx cannot
build, and is refused like soft reset, schedules, ``vInit``, ``identity`` and joins, with one
message naming the layer and why.

A net from :func:`neurosim.convert.rmp.convert` passes when converted with ``reset='hard',
readout_reset='hard', align_bias=False`` (fixed precision, ``v_init_half`` off, the default for
a model without QCFS activations) and its pools folded (the default): the refusal of a
converted net names, for its first layer, the convert option that avoids it, and lists every
option the whole net needs (:data:`CONVERT_OPTIONS`). A residual join (``identity`` projections,
several projections, skips) and a pool the converter cannot fold have no such option.
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
from neurosim.netlist.schema import DECAY_UNITY, Flatten, Input, Layer, Netlist, Population, Projection
from neurosim.netlist.neurons import CUBA, RMP, Neuron
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool
from neurosim.netlist.kinds import KindTable
from neurosim.netlist.synapses.conv import check_lava_geometry
from neurosim.netlist.validate import register, validate


def _conv_geometry(syn: Conv) -> Optional[str]:
    return check_lava_geometry(syn.weight.shape[2:], syn.stride, syn.padding, syn.dilation)


#: netx's table of synapse kinds: kind class -> why its geometry does not fit the Lava process
#: netx builds (``create_dense``, ``create_conv``), or None; the kinds netx cannot load, refused.
NETX: KindTable = KindTable("netx", {
    Dense: lambda syn: None,
    Conv: _conv_geometry,
}, refused={
    Pool: "netx has no pooling layer (a pool is folded into the next conv by 'neurosim convert')",
    Identity: "a neurosim extension for residual shortcuts; netx builds a chain of dense and conv layers",
})

#: Synapse kinds netx builds.
NETX_KINDS = tuple(kind.type_name for kind in NETX)

#: The :func:`neurosim.convert.rmp.convert` option that avoids a refusal of a converted net, by
#: cause: ``cause: (keyword argument, command line)``.
CONVERT_OPTIONS = {
    "reset": ("reset='hard'", "neurosim convert --reset hard"),
    "readout": ("readout_reset='hard'", "neurosim convert --readout-reset hard"),
    "vinit": ("v_init_half=False", "neurosim convert --no-v-init-half"),
    "onset": ("align_bias=False", "neurosim convert --no-bias-onset"),
    "fold": ("fold_pool=True", "neurosim convert without --no-fold-pool"),
    "fixed": ("precision='fixed'", "what neurosim convert writes"),
    "analog": ("input_coding='spikes'", "neurosim convert --input-coding spikes"),
}
_FLAG = "neurosim convert --"
#: Why no convert option helps, by cause.
NO_CONVERT_OPTION = {
    "pool": "the converter could not fold this average pool into the next layer exactly (padded pooling, "
            "a dilated conv, or no conv/dense layer after it), and no convert option avoids it: change the model",
    "chain": "a residual connection, which no convert option avoids (netx is a chain): use a model without one",
    "kind": "a neuron kind netx does not build, which no convert option avoids",
}


def _as_cuba(neuron: CUBA) -> CUBA:
    return CUBA(vThMant=int(neuron.vThMant), iDecay=int(neuron.iDecay), vDecay=int(neuron.vDecay),
                refDelay=int(neuron.refDelay))


def _rmp_as_cuba(neuron: RMP) -> CUBA:
    """``RMP(vThMant, vDecay, hard) == CUBA(vThMant, iDecay=4096, vDecay, hard)``."""
    return CUBA(vThMant=int(neuron.vThMant), iDecay=DECAY_UNITY, vDecay=int(neuron.vDecay))


#: netx's table of neuron kinds: kind class -> the (hard-reset, integer) CUBA neuron netx
#: builds for it (Lava ``LIF``).
NETX_NEURONS: KindTable = KindTable("netx", {CUBA: _as_cuba, RMP: _rmp_as_cuba})


def _neuron_refusal(neuron: Neuron) -> Optional[tuple[str, str]]:
    if neuron not in NETX_NEURONS:
        return NETX_NEURONS.refusal(neuron), "kind"
    if neuron.soft:
        return (f"{neuron.type_name} neuron with soft reset (v <- v - vThMant); netx builds Lava LIF, "
                "which resets to 0", "reset")
    if neuron.vInit != 0:
        return f"initial voltage vInit = {neuron.vInit:g}; netx starts every neuron at v = 0", "vinit"
    return _integers("threshold", neuron.vThMant)


def _integers(name: str, a) -> Optional[tuple[str, str]]:
    a = np.asarray(a, dtype=np.float64)
    if a.size and not np.array_equal(a, np.rint(a)):
        return f"non-integer {name} mantissas (netx truncates them with astype(int)); export in fixed point", "fixed"
    return None


def _refusal(net: Netlist, i: int) -> Optional[tuple[str, str]]:
    """``(why, cause)`` netx cannot express layer ``i``, or None; ``cause`` is a key of
    :data:`CONVERT_OPTIONS` or :data:`NO_CONVERT_OPTION` (or 'geometry': Lava's conv limits)."""
    layer = net.layers[i]
    if isinstance(layer, Flatten):
        if net.source_of(i, layer.source) != i - 1:
            return (f"flatten of layer {net.source_of(i, layer.source)}, not of the layer before (netx is a chain)",
                    "chain")
        return None
    if isinstance(layer, Input) and layer.synapse is not None:
        return (f"an analog input layer (a host '{layer.synapse.type_name}' synapse computes the image's current); "
                "netx's input layer applies only a scalar weight and bias", "analog")
    why = _neuron_refusal(layer.neuron)
    if why and why[1] == "reset" and i == net.output_layer and not isinstance(layer, Input):
        why = (why[0], "readout")
    if why or isinstance(layer, Input):
        return why
    if len(layer.projections) > 1:
        srcs = [s for s, _ in net.inputs(i)]
        return f"join of {len(srcs)} projections (from {srcs}); netx layers take one projection", "chain"
    src, syn = net.inputs(i)[0]
    if src != i - 1:
        return f"projection from layer {src}, not from the layer before (a skip connection; netx is a chain)", "chain"
    if syn.type_name not in NETX_KINDS:
        extra = (" (average pooling is folded into the next layer by 'neurosim convert' unless --no-fold-pool)"
                 if syn.type_name == "pool" and not _converted(net) else "")
        return (f"'{syn.type_name}' synapse; netx builds only {' and '.join(NETX_KINDS)} layers{extra}",
                "pool" if syn.type_name == "pool" else "chain")
    if (why := _delay_refusal(layer.projections[0])):
        return why, "delay"
    if layer.schedule is not None:
        return (f"per-step schedule over {layer.schedule.steps} steps (BNTT scale or a bias onset); netx has "
                "one constant bias and no current scale", "onset")
    geometry = NETX.of(syn)(syn)
    if geometry:
        return geometry, "geometry"
    return _integers("weight", syn.weight) or (None if layer.bias is None else _integers("bias", layer.bias))


#: netx's largest ``delay`` key (steps on top of the synapse's own): lava-dl clamps larger ones
#: (``lava.lib.dl.netx.hdf5.Network.create_dense``), Loihi 2's limit.
NETX_MAX_EXTRA_DELAY = 62


def _delay_refusal(proj: Projection) -> Optional[str]:
    d = int(proj.delay)
    if d == 1:
        return None
    if not isinstance(proj.synapse, Dense):
        return (f"delay of {d} steps on a '{proj.synapse.type_name}' synapse; netx delays only dense "
                "layers (DelayDense), its conv has one step")
    if d - 1 > NETX_MAX_EXTRA_DELAY:
        return f"delay of {d} steps; netx (Loihi 2) takes at most {NETX_MAX_EXTRA_DELAY + 1}"
    return None


def _converted(net: Netlist) -> bool:
    return net.meta.get("converted_by") == "neurosim.convert.rmp"


def _option(net: Netlist, cause: str) -> Optional[str]:
    """For a converted net: the :data:`CONVERT_OPTIONS` key that avoids ``cause``, or None."""
    if not _converted(net):
        return None
    if cause == "pool" and net.meta.get("fold_pool") is False:
        cause = "fold"
    if cause == "onset" and not net.meta.get("align_bias", True):
        return None                            # a schedule the converter did not write
    return cause if cause in CONVERT_OPTIONS else None


def _remedy(net: Netlist, cause: str) -> Optional[str]:
    """For a converted net: the convert option that avoids ``cause``, or why none does."""
    if not _converted(net):
        return None
    key = _option(net, cause)
    if key is not None:
        kw, cli = CONVERT_OPTIONS[key]
        return f"convert with {kw} ({cli})"
    return NO_CONVERT_OPTION.get(cause)


def convert_options(net: Netlist) -> list[str]:
    """The :data:`CONVERT_OPTIONS` keys a net from :func:`neurosim.convert.rmp.convert` needs
    for netx (every layer, every cause; empty for any other net)."""
    if not _converted(net):
        return []
    causes = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            continue
        n = layer.neuron
        if n.soft:
            causes.append("readout" if i == net.output_layer and not isinstance(layer, Input) else "reset")
        if n.vInit != 0:
            causes.append("vinit")
        if _integers("threshold", n.vThMant):
            causes.append("fixed")
        if isinstance(layer, Population):
            if layer.schedule is not None:
                causes.append("onset")
            if any(p.synapse.type_name == "pool" for p in layer.projections):
                causes.append("pool")
            if any(_integers("weight", p.synapse.weight) for p in layer.projections) or \
                    (layer.bias is not None and _integers("bias", layer.bias)):
                causes.append("fixed")
    return list(dict.fromkeys(k for c in causes if (k := _option(net, c)) is not None))


def layer_refusal(net: Netlist, i: int) -> Optional[str]:
    """Why netx cannot express layer ``i`` of ``net`` with neurosim's meaning, or ``None``; for
    a net from :func:`neurosim.convert.rmp.convert`, with the convert option that avoids it (or
    why none does)."""
    found = _refusal(net, i)
    if found is None:
        return None
    why, cause = found
    remedy = _remedy(net, cause)
    return f"{why}; {remedy}" if remedy else why


def _netx_neuron(neuron: Neuron) -> CUBA:
    return NETX_NEURONS.of(neuron)(neuron)


def _netx_layer(layer: Layer) -> Layer:
    """``layer`` in netx's terms: CUBA neurons, no explicit source."""
    if isinstance(layer, Flatten):
        return Flatten(shape=layer.shape)
    if isinstance(layer, Input):
        return Input(layer.shape, _netx_neuron(layer.neuron), layer.weight, layer.bias)
    proj = layer.projections[0]
    return Population(layer.shape, _netx_neuron(layer.neuron), [Projection(proj.synapse, delay=proj.delay)],
                      layer.bias)


def _check_netx(net: Netlist) -> None:
    """Profile ``netx``: every layer is one netx builds with the same meaning (module docstring);
    the refusal names the first layer that is not and why, and how many more there are."""
    problems = [(i, why) for i in range(len(net.layers)) if (why := layer_refusal(net, i))]
    if problems:
        i, why = problems[0]
        more = f" (and {len(problems) - 1} more layer(s))" if len(problems) > 1 else ""
        options = [CONVERT_OPTIONS[k] for k in convert_options(net)]
        if len(options) > 1:
            flags = [cli[len(_FLAG) - 2:] for _, cli in options if cli.startswith(_FLAG)]
            more += "; the whole net needs " + ", ".join(kw for kw, _ in options) + \
                (f" (neurosim convert {' '.join(flags)})" if flags else "")
        raise NeurosimError(f"not netx-compatible: layer {i} ({net.layers[i].type_name}): {why}{more}")


register("netx", _check_netx)


def to_netx(net: Netlist, name: str = "netlist") -> Netlist:
    """``net`` as a netx chain (see the module docstring), or :class:`NeurosimError` (naming
    ``name``) for a net that fails the profile ``netx``."""
    try:
        validate(net, "netx")
    except NeurosimError as exc:
        raise NeurosimError(f"{name}: {exc}") from None
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
                hdf5.write_string(g, "type", "input", vector=True)
                g.create_dataset("shape", data=np.asarray(chain.input_shape, dtype=np.int64))
                offset = 1
            for i, layer in enumerate(chain.layers):
                hdf5._write_layer(f.create_group(f"layer/{i + offset}"), layer)
            if chain.meta:
                hdf5.write_string(f, hdf5.META_KEY, json.dumps(chain.meta, sort_keys=True, allow_nan=False), "utf-8")
    except (OSError, RuntimeError, TypeError, ValueError) as exc:
        raise NeurosimError(f"{path}: cannot write the netx file ({exc.__class__.__name__}: {exc})") from None
    return path
