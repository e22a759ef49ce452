"""NIR (Neuromorphic Intermediate Representation, the ``nir`` package 1.0.x) to and from netlists.

A NIR graph is named nodes joined by edges; the inputs of a node add up (several edges into one
neuron node are a neurosim *join*, no explicit sum node needed). NIR is continuous time; this
module discretises it with forward Euler at one neurosim step per ``dt`` (default
:data:`DT` = 1e-4 s, the step snnTorch's NIR export and import and NIR's Lava script assume;
written into the graph's metadata and read back from it)::

    LIF:      tau dv/dt = (v_leak - v) + r I      ->  v[t] = (1 - dt/tau) v[t-1] + (dt/tau) v_leak + (r dt/tau) I[t]
    CubaLIF:  tau_syn dI/dt = -I + w_in S         ->  I[t] = (1 - dt/tau_syn) I[t-1] + (w_in dt/tau_syn) S[t]
    IF:       dv/dt = r I                         ->  v[t] = v[t-1] + r I[t]   (per step, as snnTorch and Norse read it)
    spike:    z = v > v_threshold, then v = v_reset

so a neurosim decay ``d`` (of 4096) is ``tau = dt 4096 / d`` (``inf`` for ``d = 0``), and
neurosim's unit input gain is ``r = tau / dt`` (``w_in = tau_syn / dt``), snnTorch's convention.

Two forms (``consumer`` of :func:`to_nir` / :func:`save_nir`; neurosim reads both back exactly):

* ``"snntorch"`` (default): only what snnTorch 1.0's ``import_from_nir`` loads and runs. It maps
  ``IF`` to ``Leaky(beta = 0.9)`` whose output tuple the next layer cannot take, and has no
  ``Scale``, ``SumPool2d`` or nonzero ``v_leak``; it reads every graph with ``dt = 1e-4`` s.
* ``"nir"``: NIR's own node for each neurosim part (``IF``, ``Scale``, ``SumPool2d``, ``v_leak``),
  for readers that follow NIR's equations (Norse, Sinabs, ...: untested here).

=====================================  ==============================================  ==========================
neurosim                               ``snntorch`` form                               ``nir`` form
=====================================  ==============================================  ==========================
spike input (no input layer)           ``Input`` (shape)                               same
``input`` layer (``b = w x + bias``)   ``Input`` -> 1x1 ``Conv2d`` (C, H, W) or        ``Input`` -> ``Scale(w)``
                                       ``Affine`` (N,), weight ``w I``, the bias       (if w != 1); bias as
                                       (none if w = 1, bias 0) -> neuron node          ``v_leak``
RMP / CUBA ``iDecay = 4096``,          ``LIF(tau = dt 2**64, r = 2**64)``: snnTorch's  ``IF(r = 1)``
``vDecay = 0``                         beta = 1 exactly, gain 1 (:data:`NO_LEAK`)
same, ``vDecay = d > 0``               ``LIF(tau = dt 4096/d, r = 4096/d, v_threshold = vThMant, v_reset = 0)``
CUBA ``iDecay = i < 4096``             ``CubaLIF(tau_syn = dt 4096/i, w_in = 4096/i, tau_mem, r`` as LIF``)``;
                                       ``i = 0``: ``tau_syn = dt 2**64`` (snntorch) / ``inf`` (nir)
``dense``                              ``Affine`` (the layer's bias) or ``Linear``
``conv``                               ``Conv2d`` (PyTorch layout, bias per channel)
``pool``: all 1/(kh kw)                ``AvgPool2d`` (snntorch: if no bias, pad <= k/2)
``pool``: all ones                     block-diagonal ``Conv2d``                       ``SumPool2d``
``pool``: other kernels                block-diagonal ``Conv2d`` (metadata ``groups``)
``identity`` (weight w)                1x1 ``Conv2d`` / ``Affine`` with ``w I``         ``Scale(w)``
                                       (an edge neuron -> neuron is read as identity 1)
``flatten`` layer                      ``Flatten(start_dim = 0)``; a dense projection of a (C, H, W)
                                       source gets one too (metadata ``implicit``)
last neuron layer                      -> ``Output``
=====================================  ==============================================  ==========================

A population's bias ``b`` goes where NIR adds a constant to the neuron's input: the bias of its
first projection's ``Affine``/``Conv2d`` when the neuron has no synaptic current state (IF,
LIF); in the ``snntorch`` form of a layer fed by pools/identities only, the first of them is
written as a ``Conv2d``/``Affine`` carrying it. The ``nir`` form writes other biases as
``v_leak = b 4096 / vDecay`` and refuses a bias with no place (a CubaLIF, or a pool/identity
projection, with ``vDecay = 0``); the ``snntorch`` form refuses any bias on a CubaLIF
(snnTorch refuses ``v_leak``, and a bias into its synaptic current is filtered) and an input
layer with ``iDecay < 4096`` (neurosim adds the sample to the voltage, a NIR CubaLIF filters
it; the ``nir`` form writes it anyway, right for neurosim's own import only). A bias-only
schedule of the converter's onset form (0 before the layer's depth, ``b`` after:
:func:`neurosim.netlist.transforms.bias_onset`) is written as that constant bias; any other per-step
schedule is refused naming the layer.

What NIR cannot hold is kept in node metadata under ``"neurosim"`` (other tools ignore it):
``reset`` (NIR only has ``v <- v_reset``, so a soft reset ``v <- v - vThMant`` is written with
``v_reset = 0``: snnTorch's importer builds ``Leaky(reset_mechanism="zero")`` from a LIF, which
:func:`to_snntorch` switches back to subtraction; Norse resets to ``v_reset`` unless
``from_nir(..., reset_method=reset_subtract)`` is asked for the whole graph), ``v_init`` (NIR
starts every state at 0), the neuron type, ``refDelay``, the bias onset, and the projection's
``delay`` (steps, >= 1) on every synapse node: neurosim's projections deliver ``delay`` steps
later (``a[t] = W s[t-d]``, Lava's ``d = 1`` by default), NIR edges at once. For a chain that is
a shift by the layer's depth; in a join of paths with different numbers of synapses the
shorter paths would arrive early, so a foreign graph (no ``"neurosim"`` metadata) is read with
its joins' delays aligned (:func:`neurosim.netlist.transforms.align_delays`: every path into a
join arrives together), and its biases get the onset schedule, so that layer ``l`` at step
``depth + t`` sees what NIR computes at ``t``.

Importing: neuron parameters must be the same for every neuron of a node (``v_leak``: per
channel), ``v_reset = 0``; the input gain ``g`` (``r dt/tau``, times ``w_in dt/tau_syn``)
divides the threshold; a threshold that is not a whole number <= 131071 (netlists store it as
an integer mantissa) is made 1 by dividing the layer's incoming weights, bias and ``v_init``
by it (the same spikes). Decays are rounded to whole 1/4096 steps; a rounding is noted in
``meta["nir_import"]["notes"]``.
"""
from __future__ import annotations

import dataclasses
import heapq
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.io.atomic import atomic_path
from neurosim.netlist.schema import (
    DECAY_UNITY, INPUT, MAX_DELAY, VTH_MAX, Flatten, Input, Netlist, Population, Projection, Shape,
)
from neurosim.netlist.kinds import KindTable
from neurosim.netlist.neurons import CUBA, RMP, Neuron
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool
from neurosim.netlist.synapses.base import SynapseKind
from neurosim.netlist.synapses.conv import ungroup_conv_weight
from neurosim.netlist.transforms import align_delays, bias_onset
from neurosim.netlist.validate import validate

#: Length of one neurosim step in NIR's continuous time (s): snnTorch's and NIR's Lava dt.
DT = 1e-4
#: Metadata key of everything NIR cannot express.
KEY = "neurosim"
#: Steps of delay of a neurosim projection unless it says otherwise (NIR edges: none).
DELAY = 1
NEURON_NODES = ("IF", "LIF", "CubaLIF")
SYNAPSE_NODES = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d", "Scale")
#: Relative tolerance under which a decay or gain read from float time constants is a whole value.
SNAP = 1e-6
#: Readers :func:`to_nir` writes for (module docstring, "Two forms"); the first is the default.
CONSUMERS = ("snntorch", "nir")
#: ``tau / dt`` of a neuron without leak (decay 0) in the ``snntorch`` form: ``LIF(tau = dt 2**64,
#: r = 2**64)``, whose ``beta = 1 - dt/tau`` is 1.0 exactly in float64 and whose gain ``r dt/tau``
#: is exactly 1 (snnTorch 1.0 reads ``IF`` as a ``Leaky(beta = 0.9)`` and cannot run it).
NO_LEAK = 2.0 ** 64


def _nir():
    try:
        import nir
    except ImportError:
        raise NeurosimError("NIR files need the 'nir' package: pip install -e '.[interop]'") from None
    return nir


# ----------------------------------------------------------------------------- export

def _tau(decay: int, dt: float, finite: bool = False) -> float:
    """``tau = dt 4096 / decay``: the time constant of a decay of ``decay``/4096 per step
    (decay 0: ``inf``, or ``dt`` :data:`NO_LEAK` when ``finite``)."""
    if decay:
        return dt * DECAY_UNITY / decay
    return dt * NO_LEAK if finite else math.inf


def _per_neuron(b: np.ndarray, shape: Shape) -> np.ndarray:
    """A per-channel (or scalar) bias as one value per neuron of ``shape``."""
    b = np.asarray(b, dtype=np.float64)
    return np.broadcast_to(b.reshape(b.shape + (1,) * (len(shape) - b.ndim)), shape).copy()


def _layer_bias(net: Netlist, i: int, depth: int) -> tuple[Optional[np.ndarray], bool]:
    """``(b, onset)``: the constant bias of population ``i`` (``None`` if zero), and whether it is
    the onset form of a bias-only schedule; any other schedule is refused."""
    layer = net.layers[i]
    sch = layer.schedule
    if sch is None:
        b = layer.bias
        return (None if b is None or not np.any(b) else np.asarray(b, dtype=np.float64)), False
    rows = sch.bias
    if sch.scale is not None or layer.bias is not None or rows is None or len(rows) != depth + 1 \
            or np.any(rows[:depth]):
        raise NeurosimError(f"layer {i}: a per-step schedule (scale/bias per step, e.g. BNTT) has no NIR "
                            "primitive; only the converter's bias onset can be written")
    return np.asarray(rows[depth], dtype=np.float64), True


def _cuba_meta(n: CUBA) -> dict:
    return {"ref_delay": int(n.refDelay)}


#: NIR's table of neuron kinds: kind class -> the kind's own metadata (beside type, reset and
#: v_init); every kind here has the LIF step, written by :func:`_neuron_node` as IF, LIF or CubaLIF.
NIR_NEURONS: KindTable = KindTable("NIR", {CUBA: _cuba_meta, RMP: lambda n: {}})


def _neuron_node(nir, n: Neuron, shape: Shape, v_leak_bias: Optional[np.ndarray], dt: float, meta: dict,
                 consumer: str):
    """The NIR neuron node of ``n`` (module docstring tables); ``v_leak_bias``: a bias per neuron
    written as ``v_leak`` (needs ``vDecay > 0``; never in the ``snntorch`` form)."""
    ones, zero = np.ones(shape), np.zeros(shape)
    vth = float(n.vThMant) * ones
    v_decay = int(n.vDecay)
    v_leak = zero if v_leak_bias is None else v_leak_bias * DECAY_UNITY / v_decay
    md = {KEY: meta}
    finite = consumer == "snntorch"
    if n.i_decay == DECAY_UNITY and v_decay == 0 and not finite:
        return nir.IF(r=ones, v_threshold=vth, v_reset=zero, metadata=md)
    tau_mem = _tau(v_decay, dt, finite)
    if n.i_decay == DECAY_UNITY:
        return nir.LIF(tau=tau_mem * ones, r=tau_mem / dt * ones, v_leak=v_leak, v_threshold=vth, v_reset=zero,
                       metadata=md)
    tau_syn = _tau(n.i_decay, dt, finite)
    return nir.CubaLIF(tau_syn=tau_syn * ones, tau_mem=tau_mem * ones, r=tau_mem / dt * ones, v_leak=v_leak,
                       v_threshold=vth, v_reset=zero, w_in=tau_syn / dt * ones, metadata=md)


def _diagonal_node(nir, w: float, shape: Shape, bias: Optional[np.ndarray], md: dict, what: str):
    """``a = w s + bias`` (bias per channel) as a standard node snnTorch maps: a 1x1 ``Conv2d`` with
    weight ``w I`` for (C, H, W), an ``Affine``/``Linear`` with ``w I`` for (N,)."""
    c = int(shape[0])
    eye = float(w) * np.eye(c)
    if len(shape) == 3:
        return nir.Conv2d(input_shape=tuple(shape[1:]), weight=eye[:, :, None, None], stride=1, padding=0,
                          dilation=1, groups=1, bias=np.zeros(c) if bias is None else bias, metadata=md)
    if len(shape) == 1:
        return nir.Linear(weight=eye, metadata=md) if bias is None else nir.Affine(weight=eye, bias=bias, metadata=md)
    raise NeurosimError(f"{what} of shape {tuple(shape)}: the snntorch form writes it as a Conv2d (C, H, W) or an "
                        "Affine (N,); snnTorch 1.0 has no NIR Scale")


def _synapse_node(nir, kind: SynapseKind, in_shape: Shape, out_shape: Shape, bias: Optional[np.ndarray],
                  consumer: str, what: str, delay: int = DELAY):
    """The NIR node of one projection; ``bias`` (per output channel): only dense/conv in the ``nir``
    form; in the ``snntorch`` form an identity or pool carrying one becomes a ``Conv2d``/``Affine``."""
    md = {KEY: {"synapse": kind.type_name, "delay": int(delay)}}
    w = np.asarray(kind.weight)
    snn = consumer == "snntorch"
    if isinstance(kind, Dense):
        return nir.Linear(weight=w, metadata=md) if bias is None else nir.Affine(weight=w, bias=bias, metadata=md)
    if isinstance(kind, Identity):
        if snn:
            return _diagonal_node(nir, float(kind.weight), in_shape, bias, md, what)
        return nir.Scale(scale=np.full(in_shape, float(kind.weight)), metadata=md)
    c = int(out_shape[0])
    if isinstance(kind, Pool):
        k = np.asarray(kind.kernel_size)
        geometry = dict(kernel_size=k, stride=np.asarray(kind.stride), padding=np.asarray(kind.padding), metadata=md)
        # snnTorch: no SumPool2d (nirtorch's LPPool2d drops padding); torch's AvgPool2d wants pad <= k/2
        if np.all(w == 1) and not snn:
            return nir.SumPool2d(**geometry)
        if np.all(w == w.flat[0]) and w.flat[0] * w.size == 1 and bias is None \
                and (not snn or np.all(2 * np.asarray(kind.padding) <= k)):
            return nir.AvgPool2d(**geometry)
        w, groups, dilation = np.broadcast_to(w, (c, 1, *w.shape)), c, (1, 1)
    else:
        groups, dilation = kind.groups, kind.dilation
    if groups > 1:           # nir 1.0's type inference takes weight.shape[1] as the input channels
        md[KEY]["groups"] = int(groups)
        w = ungroup_conv_weight(np.asarray(w), groups)
    return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=np.asarray(w), stride=kind.stride,
                      padding=kind.padding, dilation=dilation, groups=1, bias=np.zeros(c) if bias is None else bias,
                      metadata=md)


def _name(j: int) -> str:
    return "input" if j == INPUT else f"l{j:03d}"


def to_nir(net: Netlist, dt: float = DT, consumer: str = "snntorch"):
    """``net`` as a ``nir.NIRGraph`` (module docstring) for ``consumer`` (:data:`CONSUMERS`):
    ``"snntorch"`` (default) only nodes and parameters snnTorch 1.0's ``import_from_nir`` loads,
    ``"nir"`` NIR's own nodes for each neurosim part (``IF``, ``Scale``, ``SumPool2d``, biases as
    ``v_leak``). Refuses, naming the layer, what the form cannot express (per-step schedules, a
    bias with no place)."""
    nir = _nir()
    if consumer not in CONSUMERS:
        raise NeurosimError(f"consumer must be one of {', '.join(CONSUMERS)}, got {consumer!r}")
    if not dt > 0:
        raise NeurosimError(f"dt must be > 0 s, got {dt}")
    snn = consumer == "snntorch"
    if snn and dt != DT:
        raise NeurosimError(f"snnTorch 1.0 reads every NIR graph with dt = {DT:g} s; dt = {dt:g} needs "
                            "consumer 'nir'")
    validate(net, "schema")
    depths = net.depths()
    in_shape = tuple(net.sample_shape)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    edges: list[tuple[str, str]] = []
    for i, layer in enumerate(net.layers):
        me = _name(i)
        if isinstance(layer, Flatten):
            src = net.source_of(i, layer.source)
            nodes[me] = nir.Flatten(input_type={"input": np.array(net.shape_of(src))}, start_dim=0, end_dim=-1)
            edges.append((_name(src), me))
            continue
        n, shape = layer.neuron, tuple(layer.shape)
        if (why := NIR_NEURONS.refusal(n)):
            raise NeurosimError(f"layer {i}: {why}")
        meta = {"layer": i, "neuron": n.type_name, "reset": n.reset, "v_init": float(n.vInit),
                **NIR_NEURONS.of(n)(n)}
        if isinstance(layer, Input):
            if layer.synapse is not None:
                raise NeurosimError(f"layer {i}: an analog input layer (a host '{layer.synapse.type_name}' "
                                    "synapse) has no NIR export yet; convert with --input-coding spikes")
            bias = None if layer.bias == 0 else np.full(shape, float(layer.bias))
            tail = "input"
            if snn and n.i_decay != DECAY_UNITY:
                raise NeurosimError(f"layer {i}: an input layer of {n.type_name} neurons with iDecay < 4096: neurosim "
                                    "adds the sample to the voltage, snnTorch's Synaptic would filter it through its "
                                    "current; use consumer 'nir'")
            if snn and (layer.weight != 1 or bias is not None):
                nodes[f"{me}_in"] = _diagonal_node(nir, float(layer.weight), shape,
                                                   None if bias is None else np.full(shape[0], float(layer.bias)),
                                                   {KEY: {"synapse": "input"}}, f"layer {i}: the input layer")
                bias = None
            elif layer.weight != 1:
                nodes[f"{me}_in"] = nir.Scale(scale=np.full(shape, float(layer.weight)),
                                              metadata={KEY: {"synapse": "input"}})
            if f"{me}_in" in nodes:
                edges.append(("input", f"{me}_in"))
                tail = f"{me}_in"
            edges.append((tail, me))
            in_synapse = snn
        else:
            b, meta["bias_onset"] = _layer_bias(net, i, depths[i])
            bias = None if b is None else _per_neuron(b, shape)
            carrier = None           # the projection whose node carries the bias
            if n.i_decay == DECAY_UNITY:
                kinds = [isinstance(pr.synapse, (Dense, Conv)) for pr in layer.projections]
                if kinds[0]:
                    carrier = 0
                elif snn and b is not None:
                    carrier = kinds.index(True) if any(kinds) else 0
            elif snn and b is not None:
                raise NeurosimError(f"layer {i}: a bias on a {n.type_name} layer with iDecay < 4096 would be "
                                    "filtered by snnTorch's synaptic current (its importer refuses v_leak); use "
                                    "consumer 'nir'")
            in_synapse = carrier is not None or snn
            for p, proj in enumerate(layer.projections):
                src = net.source_of(i, proj.source)
                s_shape = net.shape_of(src)
                syn, tail = f"{me}_p{p}", _name(src)
                if proj.synapse.flat_input and len(s_shape) > 1:
                    nodes[f"{syn}_flat"] = nir.Flatten(input_type={"input": np.array(s_shape)}, start_dim=0,
                                                       end_dim=-1, metadata={KEY: {"implicit": True}})
                    edges.append((tail, f"{syn}_flat"))
                    tail = f"{syn}_flat"
                nodes[syn] = _synapse_node(nir, proj.synapse, s_shape, shape, b if p == carrier else None, consumer,
                                           f"layer {i}: projection {p}", proj.delay)
                edges += [(tail, syn), (syn, me)]
        if bias is not None and not in_synapse and int(n.vDecay) == 0:
            raise NeurosimError(f"layer {i}: a bias on a {n.type_name} layer with vDecay 0 "
                                + ("and synaptic current memory (iDecay < 4096) " if n.i_decay < DECAY_UNITY else
                                   f"fed first by '{layer.type_name}' ")
                                + "has no NIR place (an Affine/Conv2d bias, or v_leak, which needs a leak)")
        nodes[me] = _neuron_node(nir, n, shape, None if in_synapse else bias, dt, meta, consumer)
    out = net.output_layer
    nodes["output"] = nir.Output(output_type={"output": np.array(net.layers[out].shape)})
    edges.append((_name(out), "output"))
    graph_meta = {KEY: {"dt": float(dt), "delay": DELAY, "consumer": consumer,
                        "meta_json": json.dumps(net.meta, sort_keys=True)}}
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph_meta, type_check=True)
    except (ValueError, AssertionError, NotImplementedError) as exc:
        raise NeurosimError(f"nir rejects the graph: {_first_line(exc)}") from None


def save_nir(net: Netlist, path: Union[str, Path], dt: float = DT, consumer: str = "snntorch") -> Path:
    """Write ``net`` as a NIR file for ``consumer`` (:func:`to_nir`; default ``"snntorch"``,
    which neurosim reads back as well) atomically and return its path."""
    graph = to_nir(net, dt, consumer)
    with atomic_path(path) as tmp:
        _nir().write(tmp, graph)
    return Path(path)


# ----------------------------------------------------------------------------- import

def _meta(node) -> dict:
    md = getattr(node, "metadata", None)
    return dict(md.get(KEY, {})) if isinstance(md, dict) else {}


def _one(name: str, field: str, a) -> float:
    """The single value of a neuron parameter (every neuron of the node must share it)."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0 or np.any(a != a.flat[0]):
        raise NeurosimError(f"node '{name}': {field} differs between neurons; a neurosim layer holds one value")
    if np.isnan(a.flat[0]):
        raise NeurosimError(f"node '{name}': {field} is NaN")
    return float(a.flat[0])


def _snap(x: float) -> float:
    r = round(x)
    return float(r) if abs(x - r) <= SNAP * max(1.0, abs(x)) else x


def _decay(name: str, field: str, tau: float, dt: float, notes: list[str]) -> int:
    """``4096 dt / tau`` as a whole neurosim decay (``tau = inf``: 0)."""
    if not tau > 0:
        raise NeurosimError(f"node '{name}': {field} = {tau} must be > 0")
    d = DECAY_UNITY * dt / tau
    if d > DECAY_UNITY * (1 + SNAP):
        raise NeurosimError(f"node '{name}': {field} = {tau:g} s is shorter than the step dt = {dt:g} s "
                            "(decay above 1 per step)")
    if not _snap(d).is_integer():
        notes.append(f"node '{name}': {field} gives a decay of {d:.4f}/4096 per step, rounded to {round(d)}")
    return min(int(round(d)), DECAY_UNITY)


def _gain(name: str, field: str, r: float, tau: float, dt: float) -> float:
    """Input gain per step ``r dt / tau`` (``r = tau = inf``: 1, the limit of ``r = tau/dt``)."""
    if math.isinf(tau):
        if math.isinf(r):
            return 1.0
        raise NeurosimError(f"node '{name}': tau = inf with finite {field} = {r:g} gives the input no gain")
    g = _snap(r * dt / tau)
    if not g > 0 or math.isinf(g):
        raise NeurosimError(f"node '{name}': input gain {field}*dt/tau = {g:g} must be finite and > 0")
    return g


def _neuron(name: str, node, dt: float, notes: list[str]) -> tuple[dict, float, Optional[np.ndarray], bool]:
    """``(neuron keywords, gain, v_leak per neuron or None, leak decay fraction)`` of a neuron node."""
    kind = type(node).__name__
    if np.any(np.asarray(node.v_reset) != 0):
        raise NeurosimError(f"node '{name}': v_reset {np.unique(node.v_reset)[:3]} is not 0; neurosim resets to 0 "
                            "(hard) or subtracts the threshold (soft)")
    kw: dict = {"iDecay": DECAY_UNITY, "vDecay": 0}
    v_leak = None
    if kind == "IF":
        g = _snap(_one(name, "r", node.r))
        if not 0 < g < math.inf:
            raise NeurosimError(f"node '{name}': r = {g:g} must be finite and > 0")
    else:
        tau = _one(name, "tau" if kind == "LIF" else "tau_mem", node.tau if kind == "LIF" else node.tau_mem)
        kw["vDecay"] = _decay(name, "tau", tau, dt, notes)
        g = _gain(name, "r", _one(name, "r", node.r), tau, dt)
        v_leak = np.asarray(node.v_leak, dtype=np.float64)
        if kind == "CubaLIF":
            tau_syn = _one(name, "tau_syn", node.tau_syn)
            kw["iDecay"] = _decay(name, "tau_syn", tau_syn, dt, notes)
            g *= _gain(name, "w_in", _one(name, "w_in", node.w_in), tau_syn, dt)
    kw["vThMant"] = _one(name, "v_threshold", node.v_threshold) / g
    return kw, g, v_leak, kw["vDecay"] / DECAY_UNITY


def _pair(x) -> tuple[int, int]:
    return tuple(int(v) for v in np.broadcast_to(np.asarray(x).astype(np.int64), (2,)))


def _conv_padding(name: str, node, kernel: tuple[int, int]) -> tuple[int, int]:
    pad = node.padding
    if isinstance(pad, (str, bytes)):
        pad = pad.decode() if isinstance(pad, bytes) else pad
        if pad == "valid":
            return (0, 0)
        span = [d * (k - 1) for d, k in zip(_pair(node.dilation), kernel)]
        if pad != "same" or _pair(node.stride) != (1, 1) or any(s % 2 for s in span):
            raise NeurosimError(f"node '{name}': padding '{pad}' with this kernel/stride is not symmetric")
        return tuple(s // 2 for s in span)
    return _pair(pad)


def _finite(name: str, field: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "biuf" or not np.all(np.isfinite(a)):
        raise NeurosimError(f"node '{name}': {field} must be finite numbers")
    return a


def _synapse(name: str, node, in_shape: Shape) -> tuple[SynapseKind, Optional[np.ndarray]]:
    """``(synapse, bias per output channel or None)`` of a NIR synapse node."""
    kind = type(node).__name__
    meta = _meta(node)
    if meta.get("synapse") == "identity" and kind in ("Affine", "Linear", "Conv2d"):
        w, bias = _diagonal(name, node)
        return Identity(w), bias
    if kind in ("Affine", "Linear"):
        w = _finite(name, "weight", node.weight)
        if w.ndim != 2:
            raise NeurosimError(f"node '{name}': weight of shape {w.shape}, expected (out, in)")
        return Dense(w), (_finite(name, "bias", node.bias) if kind == "Affine" else None)
    if kind == "Scale":
        return Identity(_one(name, "scale", _finite(name, "scale", node.scale))), None
    if kind in ("SumPool2d", "AvgPool2d"):
        k = _pair(node.kernel_size)
        w = np.ones(k) if kind == "SumPool2d" else np.full(k, 1.0 / (k[0] * k[1]))
        return Pool(w, _pair(node.stride), _pair(node.padding)), None
    w = _finite(name, "weight", node.weight)
    if w.ndim != 4:
        raise NeurosimError(f"node '{name}': Conv2d weight of shape {w.shape}, expected (out, in/groups, kh, kw)")
    bias = _finite(name, "bias", node.bias)
    stride, padding = _pair(node.stride), _conv_padding(name, node, w.shape[2:])
    groups = int(node.groups)
    if groups == 1 and int(meta.get("groups", 1)) > 1:
        groups = int(meta["groups"])
        w = _regroup(name, w, groups)
    if meta.get("synapse") == "pool":         # a pool as a Conv2d; the snntorch form may give it the bias
        if groups != w.shape[0] or np.any(w != w[:1]):
            raise NeurosimError(f"node '{name}': marked as a neurosim pool but not one kernel shared by all channels")
        return Pool(w[0, 0], stride, padding), bias
    return Conv(w, stride, padding, _pair(node.dilation), groups), bias


def _regroup(name: str, w: np.ndarray, groups: int) -> np.ndarray:
    """The grouped weight (out, in/groups, kh, kw) of a block-diagonal ``groups = 1`` weight
    (the inverse of :func:`~neurosim.netlist.synapses.conv.ungroup_conv_weight`)."""
    out, cin = w.shape[:2]
    if out % groups or cin % groups:
        raise NeurosimError(f"node '{name}': weight {w.shape} cannot be split into {groups} groups")
    og, ig = out // groups, cin // groups
    blocks = [w[g * og:(g + 1) * og, g * ig:(g + 1) * ig] for g in range(groups)]
    if not np.array_equal(ungroup_conv_weight(np.concatenate(blocks), groups), w):
        raise NeurosimError(f"node '{name}': marked as {groups} groups but has weights outside the groups' blocks")
    return np.concatenate(blocks)


def _diagonal(name: str, node) -> tuple[float, Optional[np.ndarray]]:
    """``(w, bias per channel or None)`` of an ``Affine``/``Linear`` with weight ``w I`` or a 1x1
    ``Conv2d`` (stride 1, no padding) with weight ``w I``: the snntorch form of ``Scale(w)``."""
    w = _finite(name, "weight", node.weight)
    kind = type(node).__name__
    if kind == "Conv2d":
        if w.ndim != 4 or w.shape[2:] != (1, 1) or _pair(node.stride) != (1, 1) or int(node.groups) != 1 \
                or isinstance(node.padding, (str, bytes)) or _pair(node.padding) != (0, 0):
            raise NeurosimError(f"node '{name}': marked as a scaling but not a 1x1 Conv2d (stride 1, no padding)")
        w = w[:, :, 0, 0]
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.size == 0 or np.any(w != w[0, 0] * np.eye(len(w))):
        raise NeurosimError(f"node '{name}': marked as a scaling but its weight is not w times the identity")
    bias = _finite(name, "bias", node.bias) if kind != "Linear" else None
    return float(w[0, 0]), bias


def _input_layer_path(inp: str, nodes: dict, kinds: dict, preds: dict, succs: dict) -> list[str]:
    """``[scaling, neuron]`` or ``[neuron]`` when the graph input drives one neuron node as its only
    input (a neurosim ``input`` layer: the sample as a current), else ``[]``. The scaling is a
    ``Scale`` (``nir`` form; no metadata needed) or a diagonal ``Affine``/``Conv2d`` marked as the
    input synapse (``snntorch`` form, :func:`_diagonal`)."""
    if len(succs[inp]) != 1:
        return []
    path = [succs[inp][0]]
    synapse = _meta(nodes[path[0]]).get("synapse")
    if len(succs[path[0]]) == 1 and ((kinds[path[0]] == "Scale" and synapse in (None, "input"))
                                     or (kinds[path[0]] in ("Affine", "Linear", "Conv2d") and synapse == "input")):
        path.append(succs[path[0]][0])
    last = path[-1]
    if kinds[last] not in NEURON_NODES or preds[last] != [path[-2] if len(path) > 1 else inp]:
        return []
    return path


def _toposort(nodes: dict, edges: list[tuple[str, str]]) -> list[str]:
    """Nodes in topological order, ties broken by first appearance in ``edges`` (so a graph this
    module wrote comes back in layer order); a cycle is refused."""
    rank = {}
    for a, b in edges:
        for n in (a, b):
            rank.setdefault(n, len(rank))
    for n in nodes:
        rank.setdefault(n, len(rank))
    indeg = {n: 0 for n in nodes}
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    ready = [(rank[n], n) for n in nodes if indeg[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(ready, (rank[m], m))
    if len(order) != len(nodes):
        cyc = sorted(n for n in nodes if indeg[n] > 0)
        raise NeurosimError(f"node '{cyc[0]}' is on a cycle: recurrent NIR graphs have no neurosim counterpart")
    return order


def from_nir(graph, dt: Optional[float] = None) -> Netlist:
    """The netlist of a ``nir.NIRGraph`` (module docstring). ``dt``: seconds per step (default:
    the graph's ``neurosim`` metadata, else :data:`DT`). Refuses, naming the node, what neurosim
    cannot run."""
    gmeta = _meta(graph)
    ours = bool(gmeta)
    dt = float(dt if dt is not None else gmeta.get("dt", DT))
    if not dt > 0:
        raise NeurosimError(f"dt must be > 0 s, got {dt}")
    nodes, edges = graph.nodes, [(str(a), str(b)) for a, b in graph.edges]
    kinds = {n: type(node).__name__ for n, node in nodes.items()}
    for n, k in kinds.items():
        if k not in NEURON_NODES + SYNAPSE_NODES + ("Input", "Output", "Flatten"):
            raise NeurosimError(f"node '{n}': NIR {k} has no neurosim counterpart (supported: "
                                f"{', '.join(NEURON_NODES + SYNAPSE_NODES)}, Flatten, Input, Output)")
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise NeurosimError(f"edge ({a}, {b}) names a node the graph does not have")
        preds[b].append(a)
        succs[a].append(b)
    order = _toposort(nodes, edges)
    ins = [n for n in order if kinds[n] == "Input"]
    outs = [n for n in order if kinds[n] == "Output"]
    if len(ins) != 1 or len(outs) != 1:
        raise NeurosimError(f"the graph has {len(ins)} Input and {len(outs)} Output nodes; neurosim runs one of each")
    inp = ins[0]
    in_shape = tuple(int(s) for s in np.asarray(nodes[inp].input_type["input"]).ravel())
    implicit = {n for n in nodes if kinds[n] == "Flatten" and _meta(nodes[n]).get("implicit")}
    layer_nodes = [n for n in order if kinds[n] in NEURON_NODES or (kinds[n] == "Flatten" and n not in implicit)]
    index = {n: k for k, n in enumerate(layer_nodes)}
    notes: list[str] = []

    path = _input_layer_path(inp, nodes, kinds, preds, succs)
    input_layer = bool(path)
    shapes: dict[int, Shape] = {} if input_layer else {INPUT: in_shape}

    def source(n: str, target: str) -> int:
        if n == inp:
            if input_layer:
                raise NeurosimError(f"node '{target}': takes the graph input, which drives the input layer "
                                    f"'{path[-1]}' as a current")
            return INPUT
        if n in implicit and len(preds[n]) == 1:
            return source(preds[n][0], target)
        if n not in index:
            raise NeurosimError(f"node '{target}': its input '{n}' ({kinds.get(n, '?')}) is not a neuron, Flatten "
                                "or Input node; neurosim projections run from neurons to neurons through one synapse")
        return index[n]

    layers: list = []
    onset: set[int] = set()
    for k, n in enumerate(layer_nodes):
        node = nodes[n]
        if kinds[n] == "Flatten":
            if len(preds[n]) != 1:
                raise NeurosimError(f"node '{n}': a Flatten takes one input, it has {len(preds[n])}")
            src = source(preds[n][0], n)
            s_shape = shapes[src]
            if int(node.start_dim) not in (0, -len(s_shape)) or int(node.end_dim) not in (-1, len(s_shape) - 1):
                raise NeurosimError(f"node '{n}': Flatten of dims {node.start_dim}..{node.end_dim} of {s_shape}; "
                                    "neurosim flattens the whole (C, H, W)")
            layers.append(Flatten((math.prod(s_shape),), source=_explicit(src, k)))
            shapes[k] = layers[-1].shape
            continue
        meta = _meta(node)
        kw, g, v_leak, leak = _neuron(n, node, dt, notes)
        projections: list[Projection] = []
        syn_bias: list[np.ndarray] = []
        shape: Optional[Shape] = None
        if k == 0 and input_layer:
            weight, in_bias = 1.0, None
            if len(path) > 1 and kinds[path[0]] == "Scale":
                weight = _one(path[0], "scale", nodes[path[0]].scale)
            elif len(path) > 1:
                weight, in_bias = _diagonal(path[0], nodes[path[0]])
            if in_bias is not None and np.any(in_bias):
                if kw["iDecay"] != DECAY_UNITY:
                    raise NeurosimError(f"node '{path[0]}': a bias into the synaptic current of CubaLIF '{n}' is "
                                        "filtered by it; neurosim adds biases to the voltage")
                syn_bias.append(np.asarray(in_bias, dtype=np.float64))
            shape = in_shape
        else:
            for p in preds[n]:
                if kinds[p] in SYNAPSE_NODES:
                    if len(preds[p]) != 1:
                        raise NeurosimError(f"node '{p}': has {len(preds[p])} inputs; a synapse node takes one")
                    src = source(preds[p][0], p)
                    syn, b = _synapse(p, nodes[p], shapes[src])
                    delay = _delay(p, _meta(nodes[p])) if ours else DELAY
                else:
                    src, syn, b, delay = source(p, n), Identity(1.0), None, DELAY
                try:
                    out = tuple(syn.out_shape(shapes[src]))
                except ValueError as exc:
                    raise NeurosimError(f"node '{p}': {exc}") from None
                if shape is not None and out != shape:
                    raise NeurosimError(f"node '{p}': gives shape {out}, the other inputs of '{n}' give {shape}")
                shape = out
                if b is not None and np.any(b):
                    if kw["iDecay"] != DECAY_UNITY:
                        raise NeurosimError(f"node '{p}': a bias into the synaptic current of CubaLIF '{n}' is "
                                            "filtered by it; neurosim adds biases to the voltage")
                    syn_bias.append(np.asarray(b, dtype=np.float64))
                projections.append(Projection(syn, _explicit(src, k), delay))
        if not projections and not (k == 0 and input_layer):
            raise NeurosimError(f"node '{n}': has no input")
        bias = sum(syn_bias) if syn_bias else None
        if v_leak is not None and np.any(v_leak):
            per_neuron = np.broadcast_to(v_leak, shape)
            per_channel = per_neuron.reshape(shape[0], -1)
            if np.any(per_channel != per_channel[:, :1]):
                raise NeurosimError(f"node '{n}': v_leak differs within a channel; neurosim biases are per channel")
            b_leak = leak * per_channel[:, 0] / g
            bias = b_leak if bias is None else bias + b_leak
        theta = _snap(kw["vThMant"])
        if theta < 0:
            raise NeurosimError(f"node '{n}': threshold {theta:g} < 0")
        lam = 1.0 if float(theta).is_integer() and theta <= VTH_MAX else 1.0 / theta
        v_init = float(meta.get("v_init", 0.0)) / g * lam
        reset = str(meta.get("reset", "hard"))
        neuron_meta = meta.get("neuron", "CUBA" if kw["iDecay"] != DECAY_UNITY else "RMP")
        vth = int(theta * lam) if float(theta * lam).is_integer() else theta * lam
        if neuron_meta == "CUBA" or kw["iDecay"] != DECAY_UNITY:
            neuron: Neuron = CUBA(vth, iDecay=kw["iDecay"], vDecay=kw["vDecay"],
                                  refDelay=int(meta.get("ref_delay", 1)), reset=reset, vInit=_whole(v_init))
        else:
            neuron = RMP(vth, vDecay=kw["vDecay"], reset=reset, vInit=_whole(v_init))
        if k == 0 and input_layer:
            layers.append(Input(shape, neuron, weight=weight * lam,
                                bias=0.0 if bias is None else _one(n, "bias", bias) * lam))
        else:
            if lam != 1.0:
                projections = [dataclasses.replace(pr, synapse=_scaled(pr.synapse, lam)) for pr in projections]
            layers.append(Population(shape, neuron, projections, None if bias is None else bias * lam))
            if meta.get("bias_onset", not ours) and bias is not None:
                onset.add(k)
        shapes[k] = shape

    out_src = preds[outs[0]]
    if len(out_src) != 1 or out_src[0] not in index or kinds[out_src[0]] not in NEURON_NODES \
            or index[out_src[0]] != max(index[m] for m in layer_nodes if kinds[m] in NEURON_NODES):
        raise NeurosimError(f"Output '{outs[0]}' must take exactly the last neuron node (it takes {out_src}); "
                            "neurosim reads out its last neuron layer")
    meta = json.loads(gmeta["meta_json"]) if "meta_json" in gmeta else {}
    if not ours or notes:
        meta["nir_import"] = {"dt": dt, "notes": notes}
    net = Netlist(layers=layers, input_shape=None if input_layer else in_shape, meta=meta)
    validate(net, "schema")                    # the graph read, before its timing is derived from it
    if not ours:
        net = align_delays(net)
    if onset:
        timed = bias_onset(net)
        net = Netlist([timed.layers[k] if k in onset else layer for k, layer in enumerate(net.layers)],
                      input_shape=net.input_shape, meta=net.meta)
    validate(net, "schema")                    # what is returned (a hit when nothing was derived)
    return net


def _explicit(src: int, k: int) -> Optional[int]:
    """A source as netlists write it: ``None`` for the default (the layer before; the input for layer 0)."""
    return None if src == (k - 1 if k > 0 else INPUT) else src


def _whole(x: float) -> Union[int, float]:
    return int(x) if float(x).is_integer() else float(x)


def _scaled(syn: SynapseKind, lam: float) -> SynapseKind:
    """``syn`` with its weights times ``lam``."""
    w = syn.weight * lam if isinstance(syn, Identity) else np.asarray(syn.weight, dtype=np.float64) * lam
    return replace(syn, weight=w)


def _delay(name: str, meta: dict) -> int:
    """A synapse node's ``delay`` (steps) from neurosim's metadata (default :data:`DELAY`)."""
    d = meta.get("delay", DELAY)
    if not (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and 1 <= d <= MAX_DELAY):
        raise NeurosimError(f"node '{name}': metadata delay {d!r} is not an integer in 1..{MAX_DELAY}")
    return int(d)


def load_nir(path: Union[str, Path], dt: Optional[float] = None) -> Netlist:
    """Read a NIR file into a netlist; one-line errors naming the file."""
    nir = _nir()
    try:
        graph = nir.read(str(path))
    except Exception as exc:             # h5py, nir's asserts and type checks: the file's problem
        raise NeurosimError(f"{path}: not a NIR graph nir {_version(nir)} can read ({_first_line(exc)})") from None
    try:
        return from_nir(graph, dt)
    except NeurosimError as exc:
        raise NeurosimError(f"{path}: {exc}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _version(nir) -> str:
    return str(getattr(nir, "version", getattr(nir, "__version__", "1.0")))


# ----------------------------------------------------------------------------- snnTorch

def to_snntorch(graph, soft_reset: bool = True):
    """snnTorch 1.0's ``import_from_nir`` of ``graph`` (a ``nir.NIRGraph`` or a NIR file) with what
    that importer drops and neurosim's metadata holds put back: a ``torch.fx.GraphModule`` that
    takes one step ``x`` (N, *input shape) and returns ``(output spikes, state)``; call it once per
    step (neuron states live in the snnTorch modules, named like the graph's nodes: ``l000``, ...).

    * ``Flatten(start_dim = 0)`` (NIR shapes have no batch dimension) flattens from dimension 1,
      so batches run;
    * with ``soft_reset``, every neuron node whose metadata says ``reset = "soft"`` subtracts its
      threshold (``reset_mechanism = "subtract"``) instead of resetting to zero. Without leak
      (``beta = 1``) it is made exact with ``reset_delay = True`` (snnTorch then subtracts at the
      next step, before adding the input: the same sums); with a leak snnTorch subtracts after
      the spike (``reset_delay = False``), exact unless the voltage exceeds twice the threshold
      in one step (snnTorch then skips that spike).

    What stays lost: ``v_init`` (snnTorch starts at 0), neurosim's one-step delay per projection
    (snnTorch layer ``l`` at step ``t`` is neurosim's at ``t + depth(l)`` when the biases have the
    converter's onset), ``refDelay``.
    """
    import contextlib
    import io

    nir = _nir()
    try:
        import snntorch
        import torch
        from snntorch.import_nir import import_from_nir
    except ImportError:
        raise NeurosimError("to_snntorch needs snnTorch: pip install -e '.[interop]'") from None
    if isinstance(graph, (str, Path)):
        graph = nir.read(str(graph))
    meta = {name: _meta(node) for name, node in graph.nodes.items()}
    with contextlib.redirect_stdout(io.StringIO()):       # it prints while looking for recurrences
        module = import_from_nir(graph)
    for name, mod in module.named_children():
        if isinstance(mod, torch.nn.Flatten) and mod.start_dim == 0:
            mod.start_dim = 1
        if soft_reset and isinstance(mod, (snntorch.Leaky, snntorch.Synaptic)) \
                and meta.get(name, {}).get("reset") == "soft":
            mod.reset_mechanism = "subtract"
            mod.state_function = mod._base_sub          # chosen from the mechanism at construction
            mod.reset_delay = bool(torch.all(mod.beta == 1))
    return module
