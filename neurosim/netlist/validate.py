"""The one validator of netlists: the schema's rules, grouped in profiles.

A *profile* is a set of rules a netlist must keep for one purpose:

* ``schema``: what a netlist is (``docs/netlist.md``): structure (layer kinds, sources that
  precede their target, shapes along every projection) and every parameter range. It is
  what :func:`neurosim.netlist.hdf5.load` applies to every netlist it reads and ``save`` to
  every netlist it writes, so that what ``save`` writes ``load`` reads: every rule below names
  the HDF5 key it guards.
* ``fixed``: the ``fixed`` mode runs the net exactly (integer mantissas); needs ``schema``.
* profiles an executor or a format registers with :func:`register` when its module is
  imported: ``lava`` and ``lava-fixed`` (:mod:`neurosim.lava.layout`), ``netx``
  (:mod:`neurosim.netlist.netx_compat`), ``loihi2`` (:mod:`neurosim.loihi2.quantize`).

Every reader (``hdf5.load``, the NIR import, the Lava worker's decoding), writer
(``hdf5.save``, ``save_netx``, ``save_nir``) and executor (the simulator, the Lava runner,
the Loihi 2 report) calls :func:`validate` with the profiles it needs. A netlist is
validated once per content: :func:`validate` records on the netlist object which profiles it
passed, with a fingerprint of its content (every field, arrays by shape, dtype and CRC-32 of
their bytes), and runs only the profiles not yet passed for that content. Changing the net in
any way (in place or by replacing a part) makes it validate again (an in-place change that keeps
an array's CRC-32, a chance of 2**-32, would not).

Errors are :class:`ValidationError`: one line naming the layer (and projection) and the key
(``neuron/vThMant``, ``projection/1/weight``; the reader turns it into a
:class:`~neurosim.errors.NetlistError` naming the file).
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
import zlib
from typing import Any, Callable, Hashable, Iterable, Optional

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.netlist.schema import (
    INPUT, MAX_ABS_VALUE, MAX_DELAY, MAX_LAYERS, MAX_META_BYTES, MAX_NAME_BYTES, MAX_NEURONS, MAX_SYNAPSES,
    MAX_TIMESTEPS, MAX_TOTAL_VALUES, SCALE_EXP_MAX, Flatten, Input, Netlist, Population, Schedule,
)
from neurosim.netlist.host import HOST
from neurosim.netlist.neurons import KINDS as NEURON_KINDS
from neurosim.netlist.synapses.base import SynapseKind

META_KEY = "neurosim/meta"


class ValidationError(NeurosimError):
    """A broken rule: ``reason``, the ``layer``, and ``key``: the HDF5 key below the layer's
    group (a projection ``p >= 1``'s keys under ``projection/<p>/``), or a file-level key.

    The message names the projection (``layer 3 projection 1: ...``) for rules on a projection
    as a whole (source, delay, shapes), else the key (``layer 1: key 'neuron/iDecay': ...``).
    """

    def __init__(self, reason: str, layer: Optional[int] = None, key: Optional[str] = None,
                 projection: Optional[int] = None) -> None:
        parts = []
        if layer is not None:
            parts.append(f"layer {layer}" + (f" projection {projection}" if projection is not None else ""))
        if key is not None and projection is None:
            parts.append(f"key '{key}'")
        super().__init__(": ".join(parts + [reason]))
        self.reason, self.layer, self.key = reason, layer, key

    def keyed(self) -> str:
        """The message naming the layer and the key (also for a rule on a projection)."""
        return ": ".join(([] if self.layer is None else [f"layer {self.layer}"]) +
                         ([] if self.key is None else [f"key '{self.key}'"]) + [self.reason])


# ----------------------------------------------------------------------------- profiles

@dataclasses.dataclass(frozen=True)
class Profile:
    """``check(net)`` raises :class:`~neurosim.errors.NeurosimError` for a net that breaks one of
    the profile's rules; it runs after the profiles it ``requires`` passed."""
    check: Callable[[Netlist], None]
    requires: tuple[str, ...] = ("schema",)


PROFILES: dict[str, Profile] = {}
_RECORD = "_neurosim_validated"


def register(name: str, check: Callable[[Netlist], None], requires: Iterable[str] = ("schema",)) -> None:
    """Add profile ``name`` (an executor's or a format's rules on top of ``requires``)."""
    PROFILES[name] = Profile(check, tuple(requires))


def _order(names: Iterable[str]) -> list[str]:
    """``names`` with the profiles they require before them, each once."""
    out: list[str] = []

    def add(name: str) -> None:
        if name in out:
            return
        if name not in PROFILES:
            raise ValueError(f"unknown validation profile '{name}' (known: {', '.join(sorted(PROFILES))})")
        for req in PROFILES[name].requires:
            add(req)
        out.append(name)

    for n in names:
        add(n)
    return out


def validate(net: Netlist, *profiles: str) -> None:
    """Refuse ``net`` unless it keeps every rule of ``profiles`` (and of the profiles they
    require), with the first broken rule's :class:`ValidationError` (or the profile's
    :class:`~neurosim.errors.NeurosimError`). Profiles ``net`` passed for its current content
    are not run again."""
    order = _order(profiles or ("schema",))
    if not isinstance(net, Netlist):
        raise ValidationError(f"expected a Netlist, found {type(net).__name__}")
    fingerprint = _fingerprint(net)
    done = passed(net, fingerprint)
    for name in order:
        if name not in done:
            PROFILES[name].check(net)
            done = done | {name}
            vars(net)[_RECORD] = (fingerprint, done)


def passed(net: Netlist, fingerprint: Optional[Hashable] = None) -> frozenset[str]:
    """The profiles ``net`` passed for its current content (``fingerprint``: computed if not given)."""
    stored = vars(net).get(_RECORD)
    if stored is None:
        return frozenset()
    if fingerprint is None:
        fingerprint = _fingerprint(net)
    return stored[1] if stored[0] == fingerprint else frozenset()


def record(net: Netlist, profile: str) -> None:
    """Record that ``net`` passed ``profile``, for a reader that applied the profile's rules
    itself while building the net (``hdf5.load``: :func:`check_layer` as each layer is read,
    then :func:`check_netlist_rules`)."""
    fingerprint = _fingerprint(net)
    vars(net)[_RECORD] = (fingerprint, passed(net, fingerprint) | {profile})


class _Unique:
    """A fingerprint part equal to nothing else (content that cannot be fingerprinted)."""


def _fingerprint(value: Any) -> Hashable:
    """The content of ``value`` as nested tuples: dataclasses field by field, arrays as (shape,
    dtype, CRC-32 of the bytes), scalars by type and value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value), tuple(_fingerprint(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            return _Unique()
        data = np.ascontiguousarray(value)
        return (np.ndarray, data.dtype.str, data.shape, zlib.crc32(data.view(np.uint8).reshape(-1)))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_fingerprint(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, _fingerprint(v)) for k, v in value.items()))
    if value is None or isinstance(value, (numbers.Number, str, bytes, np.generic)):
        return (type(value), value)
    return _Unique()


# ----------------------------------------------------------------------------- rules: values

def number_problem(value: Any, name: str, lo: float, hi: float, integer: bool = False) -> Optional[str]:
    """Why ``value`` is not a finite number (an integer if ``integer``) in ``[lo, hi]``, or None."""
    if isinstance(value, numbers.Real) and math.isfinite(float(value)) and lo <= value <= hi and (not integer or float(value).is_integer()):
        return None
    return f"{name} {value!r:.40} is not {'an integer' if integer else 'a number'} in [{lo:g}, {hi:g}]"


def values_problem(a: Any, limit: float = MAX_ABS_VALUE) -> Optional[str]:
    """Why the mantissas ``a`` are not a non-empty numeric array of at most :data:`MAX_SYNAPSES`
    finite values with ``|x| <= limit`` (:data:`~neurosim.netlist.schema.MAX_ABS_VALUE`), or None."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        return f"expected numbers, found dtype {a.dtype}"
    if a.size == 0:
        return f"empty array of shape {a.shape}"
    if a.size > MAX_SYNAPSES:
        return f"{a.size} values exceed the limit of {MAX_SYNAPSES}"
    lo, hi = float(a.min()), float(a.max())          # as floats: abs() of int64's minimum wraps
    if -limit <= lo and hi <= limit:                 # (NaN fails)
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "contains NaN or infinite values"
    return f"values up to {max(-lo, hi):g} exceed the limit of {limit:g}"


def shape_problem(shape: Any) -> Optional[str]:
    """Why ``shape`` is not (N,) or (C, H, W) of positive integers with at most
    :data:`~neurosim.netlist.schema.MAX_NEURONS` neurons, or None."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if len(dims) not in (1, 3) or not all(isinstance(d, numbers.Integral) and d >= 1 for d in dims):
        return f"expected (N,) or (C, H, W) with positive sizes, found {shape!r:.60}"
    if math.prod(int(d) for d in dims) > MAX_NEURONS:
        return f"{math.prod(int(d) for d in dims)} neurons exceed the limit of {MAX_NEURONS}"
    return None


def source_problem(net: Netlist, i: int, source: Any) -> Optional[str]:
    """Why ``source`` (``None``: the layer before) is not the source of a projection or flatten
    of layer ``i``: an earlier layer, or ``INPUT`` (the spike input) in a net without an input
    layer; or None."""
    if source is not None and not (isinstance(source, numbers.Integral) and not isinstance(source, bool)):
        return f"source {source!r:.40} is not a layer index"
    src = net.source_of(i, source)
    if src == INPUT:
        if net.has_input_layer:
            return (f"source {INPUT} (spike input) in a net with an 'input' layer; take layer 0 instead")
        return None
    if not 0 <= src < i:
        return (f"source {src} is not an earlier layer (0..{i - 1}); sources must precede their target "
                "(no cycles)")
    return None


def delay_problem(delay: Any) -> Optional[str]:
    """Why ``delay`` is not an integer in ``1 .. MAX_DELAY`` (steps), or None."""
    if isinstance(delay, numbers.Integral) and not isinstance(delay, bool) and 1 <= delay <= MAX_DELAY:
        return None
    return f"delay must be an integer in 1..{MAX_DELAY} (steps), got {delay!r:.40}"


def name_problem(name: Any) -> Optional[str]:
    """Why ``name`` (a layer or synapse type) is not ASCII of 1 .. MAX_NAME_BYTES bytes, or None."""
    if isinstance(name, str) and name.isascii() and 1 <= len(name) <= MAX_NAME_BYTES:
        return None
    return f"type name {name!r:.80} is not ASCII of 1..{MAX_NAME_BYTES} characters"


def meta_problem(meta: Any) -> Optional[str]:
    """Why ``meta`` is not plain JSON of at most MAX_META_BYTES bytes whose known keys have
    their types (``dataset`` a name, ``timesteps`` whole in 1..MAX_TIMESTEPS, ``ann_macs``
    whole >= 0, ``ann_accuracy`` in [0, 1]), or None."""
    if not isinstance(meta, dict):
        return "metadata must be a JSON object"
    try:
        size = len(json.dumps(meta, sort_keys=True, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        return f"metadata is not plain JSON ({exc})"
    if size > MAX_META_BYTES:
        return f"metadata of {size} bytes exceeds the limit of {MAX_META_BYTES}"
    ds = meta.get("dataset")
    if ds is not None and not isinstance(ds, str):
        return f"metadata 'dataset' must be a name, found {ds!r:.80}"
    steps = meta.get("timesteps")
    if steps is not None and (type(steps) is not int or not 1 <= steps <= MAX_TIMESTEPS):
        return f"metadata 'timesteps' must be a whole number in [1, {MAX_TIMESTEPS}], found {steps!r:.80}"
    macs = meta.get("ann_macs")
    if macs is not None and (type(macs) is not int or macs < 0):
        return f"metadata 'ann_macs' must be a whole number >= 0, found {macs!r:.80}"
    acc = meta.get("ann_accuracy")
    if acc is not None and (type(acc) not in (int, float) or not 0 <= acc <= 1):
        return f"metadata 'ann_accuracy' must be a number in [0, 1], found {acc!r:.80}"
    return None


# ----------------------------------------------------------------------------- rules: the schema

def _neuron(neuron: Any, i: int) -> None:
    """A neuron of a registered kind (:data:`neurosim.netlist.neurons.KINDS`), each parameter
    in its range (:class:`~neurosim.netlist.neurons.base.Param`: e.g. ``vThMant`` in 0 .. 2**17,
    netx writes 2**17 for a readout; decays integers in 0 .. 4096); ``reset`` is checked when
    the neuron is made."""
    if type(neuron) not in NEURON_KINDS.values():
        raise ValidationError(f"unknown neuron {type(neuron).__name__} (known: {', '.join(NEURON_KINDS)})",
                              i, "neuron/type")
    for p in neuron.params:
        why = number_problem(getattr(neuron, p.name), p.name, p.lo, p.hi, p.integer)
        if why:
            raise ValidationError(why, i, f"neuron/{p.name}")


def _values(a: Any, i: int, key: str) -> None:
    why = values_problem(a)
    if why:
        raise ValidationError(why, i, key)


def _shape(layer: Any, i: int) -> None:
    why = shape_problem(layer.shape)
    if why:
        raise ValidationError(why, i, "shape")


def _source(net: Netlist, i: int, source: Any, key: str, projection: Optional[int]) -> None:
    why = source_problem(net, i, source)
    if why:
        raise ValidationError(why, i, key, projection)


def _projections(net: Netlist, i: int, layer: Population) -> None:
    """Each projection: its source and delay, its synapse's type name, arrays (values), own
    parameter ranges (:meth:`SynapseKind.rules`) and shapes (its current has the layer's shape)."""
    if not layer.projections:
        raise ValidationError("a population needs at least one projection", i)
    if len(layer.projections) > MAX_LAYERS:
        raise ValidationError(f"{len(layer.projections)} projections exceed the limit of {MAX_LAYERS}", i,
                              "projection")
    for p, proj in enumerate(layer.projections):
        prefix = "" if p == 0 else f"projection/{p}/"
        _source(net, i, proj.source, prefix + "source", p)
        if (why := delay_problem(proj.delay)):
            raise ValidationError(why, i, prefix + "delay", p)
        syn = proj.synapse
        if not isinstance(syn, SynapseKind):
            raise ValidationError(f"synapse {type(syn).__name__} is not a synapse kind", i, prefix + "type")
        if (why := name_problem(syn.type_name)):
            raise ValidationError(why, i, prefix + "type")
        for key, a in syn.arrays().items():
            _values(a, i, prefix + key)
        if (found := syn.rules()) is not None:
            raise ValidationError(found[1], i, prefix + found[0])
        in_shape = net.in_shape(i, p)
        try:
            out = tuple(syn.out_shape(in_shape))
        except ValueError as exc:
            raise ValidationError(str(exc), i, prefix + "weight", p) from None
        if out != tuple(layer.shape):
            raise ValidationError(f"{syn.type_name} of {in_shape} gives {out}, the layer's shape is "
                                  f"{tuple(layer.shape)}", i, "shape", p)


def _schedule(sch: Any, i: int, channels: int) -> None:
    """``scale`` and ``bias`` (at least one) (steps, C) with 1 <= steps <= MAX_TIMESTEPS,
    finite values within MAX_ABS_VALUE; ``scale_exp`` an integer in 0 .. SCALE_EXP_MAX."""
    if not isinstance(sch, Schedule):
        raise ValidationError(f"expected a Schedule, found {type(sch).__name__}", i, "schedule")
    if sch.scale is None and sch.bias is None:
        raise ValidationError("a schedule needs a scale or a bias", i, "schedule")
    for key in ("scale", "bias"):
        a = getattr(sch, key)
        if a is None:
            continue
        shape = np.shape(a)
        if len(shape) != 2 or shape[1] != channels or not 1 <= shape[0] <= MAX_TIMESTEPS:
            raise ValidationError(f"schedule {key} has shape {shape}, expected (steps <= {MAX_TIMESTEPS}, "
                                  f"{channels})", i, f"schedule/{key}")
        _values(a, i, f"schedule/{key}")
    if (why := number_problem(sch.scale_exp, "scaleExp", 0, SCALE_EXP_MAX, integer=True)):
        raise ValidationError(why, i, "schedule/scaleExp")


def _host_synapse(layer: Input, i: int) -> None:
    """An analog input layer: its sample shape, a synapse kind the host computes
    (:data:`neurosim.netlist.host.HOST`) whose arrays and rules hold and which maps the sample
    to the layer's shape, and a bias of one number or one per channel."""
    syn = layer.synapse
    if not isinstance(syn, SynapseKind):
        raise ValidationError(f"synapse {type(syn).__name__} is not a synapse kind", i, "synapse/type")
    if (why := HOST.refusal(syn)):
        raise ValidationError(why, i, "synapse/type")
    if layer.sample_shape is None or (why := shape_problem(layer.sample_shape)):
        raise ValidationError(f"sample shape: {why or 'missing (the shape of the image the synapse takes)'}", i,
                              "synapse/inShape")
    for key, a in syn.arrays().items():
        _values(a, i, f"synapse/{key}")
    if (found := syn.rules()) is not None:
        raise ValidationError(found[1], i, f"synapse/{found[0]}")
    try:
        out = tuple(syn.out_shape(tuple(layer.sample_shape)))
    except ValueError as exc:
        raise ValidationError(str(exc), i, "synapse/weight") from None
    if out != tuple(layer.shape):
        raise ValidationError(f"{syn.type_name} of {tuple(layer.sample_shape)} gives {out}, the layer's shape is "
                              f"{tuple(layer.shape)}", i, "shape")
    if np.shape(layer.bias) not in ((), (int(layer.shape[0]),)):
        raise ValidationError(f"bias has shape {np.shape(layer.bias)}, expected one number or "
                              f"({int(layer.shape[0])},)", i, "bias")


def check_layer(net: Netlist, i: int) -> None:
    """The schema's rules on layer ``i`` of ``net`` (layers ``0 .. i-1`` passed them): its
    kind and shape, sources, delays, synapses, bias, schedule and neuron."""
    layer = net.layers[i]
    if isinstance(layer, Input):
        if i > 0:
            raise ValidationError("an 'input' layer may only be layer 0", i, "type")
        _shape(layer, i)
        _values(layer.weight, i, "weight")
        if np.ndim(layer.weight) != 0:
            raise ValidationError(f"weight has shape {np.shape(layer.weight)}, expected one number", i, "weight")
        if layer.synapse is not None:
            _host_synapse(layer, i)
        elif np.ndim(layer.bias) != 0:
            raise ValidationError(f"bias has shape {np.shape(layer.bias)}, expected one number (a per-channel "
                                  "bias needs a host synapse)", i, "bias")
        _values(layer.bias, i, "bias")
        _neuron(layer.neuron, i)
        return
    if isinstance(layer, Flatten):
        _source(net, i, layer.source, "source", None)
        _shape(layer, i)
        n = math.prod(net.in_shape(i))
        if tuple(layer.shape) != (n,):
            raise ValidationError(f"flatten of {net.in_shape(i)} gives ({n},), found {tuple(layer.shape)}", i,
                                  "shape")
        return
    if not isinstance(layer, Population):
        raise ValidationError(f"{type(layer).__name__} is not a layer (Input, Population, Flatten)", i, "type")
    _shape(layer, i)
    _projections(net, i, layer)
    if layer.bias is not None:
        if np.shape(layer.bias) != (layer.channels,):
            raise ValidationError(f"bias has shape {np.shape(layer.bias)}, expected ({layer.channels},)", i, "bias")
        _values(layer.bias, i, "bias")
    if layer.schedule is not None:
        _schedule(layer.schedule, i, layer.channels)
    _neuron(layer.neuron, i)


def total_values(net: Netlist) -> int:
    """The values of all arrays of ``net`` (synapse arrays, biases, schedules)."""
    total = 0
    for layer in net.layers:
        if isinstance(layer, Input) and isinstance(layer.synapse, SynapseKind):
            total += sum(int(np.size(a)) for a in layer.synapse.arrays().values()) + int(np.size(layer.bias))
        if isinstance(layer, Population):
            arrays = [a for p in layer.projections if isinstance(p.synapse, SynapseKind)
                      for a in p.synapse.arrays().values()]
            arrays += [layer.bias] if layer.bias is not None else []
            if layer.schedule is not None:
                arrays += [a for a in (layer.schedule.scale, layer.schedule.bias) if a is not None]
            total += sum(int(np.size(a)) for a in arrays)
    return total


def check_netlist_rules(net: Netlist) -> None:
    """The schema's rules on the whole net: 1 .. MAX_LAYERS layers, the spike input's shape of
    a net without an input layer, at most MAX_TOTAL_VALUES values in all arrays, the metadata."""
    if not net.layers:
        raise ValidationError("the netlist has no layers")
    if len(net.layers) > MAX_LAYERS:
        raise ValidationError(f"{len(net.layers)} layers exceed the limit of {MAX_LAYERS}")
    if not net.has_input_layer:
        if net.input_shape is None:
            raise ValidationError("a netlist without an 'input' layer needs input_shape (spike input)")
        if (why := shape_problem(net.input_shape)):
            raise ValidationError(f"input_shape: {why}", key="neurosim/input_shape")
    total = total_values(net)
    if total > MAX_TOTAL_VALUES:
        raise ValidationError(f"the netlist's arrays hold {total} values, more than {MAX_TOTAL_VALUES}")
    if (why := meta_problem(net.meta)):
        raise ValidationError(why, key=META_KEY)


def _schema(net: Netlist) -> None:
    """What a netlist is: :func:`check_netlist_rules`, then :func:`check_layer` for every layer."""
    if not isinstance(net.layers, list):
        raise ValidationError(f"a Netlist's layers must be a list, found {type(net.layers).__name__}")
    check_netlist_rules(net)
    for i in range(len(net.layers)):
        check_layer(net, i)


def _fixed(net: Netlist) -> None:
    """The ``fixed`` mode (the simulator's and Lava's ``fixed_pt``) runs exactly: thresholds,
    initial voltages, weights, biases and schedules are integer mantissas."""
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            continue
        items = {f"neuron/{p.name}": getattr(layer.neuron, p.name) for p in layer.neuron.params if p.voltage}
        if isinstance(layer, Input) and layer.synapse is not None:
            items.update({f"synapse/{k}": v for k, v in layer.synapse.arrays().items()})
        if isinstance(layer, Population):
            for p, proj in enumerate(layer.projections):
                prefix = "" if p == 0 else f"projection/{p}/"
                items.update({prefix + k: v for k, v in proj.synapse.arrays().items()})
            if layer.bias is not None:
                items["bias"] = layer.bias
            if layer.schedule is not None:
                items.update({f"schedule/{k}": getattr(layer.schedule, k) for k in ("scale", "bias")
                              if getattr(layer.schedule, k) is not None})
        for key, value in items.items():
            arr = np.asarray(value, dtype=np.float64)
            if not np.array_equal(arr, np.round(arr)):
                raise ValidationError("fixed-point mode needs integer mantissas; run this netlist with mode "
                                      "'float'", i, key)


register("schema", _schema, requires=())
register("fixed", _fixed)

__all__ = ["PROFILES", "Profile", "ValidationError", "check_layer", "check_netlist_rules", "delay_problem",
           "meta_problem", "name_problem", "number_problem", "passed", "record", "register", "shape_problem",
           "source_problem", "total_values", "validate", "values_problem"]
