"""Quantisation to Loihi 2's number formats: check that a netlist fits, or make it fit.

A netlist *fits* when every number is what Loihi's neuron and synapse hold (the formats of
:mod:`neurosim.loihi2.limits`): integer weights that the 8-bit-mantissa-plus-exponent path
(:func:`neurosim.netlist.synapses.dense.loihi_dense`, netx's and Lava's) keeps unchanged,
integer biases with ``|b| <= 4095`` (13-bit signed), integer thresholds ``<= 131071`` (or netx's readout threshold 2**17),
integer decays in ``0 .. 4096``, integer ``vInit``, integer schedule mantissas.

:func:`quantize` turns a float netlist (real weights, e.g. threshold 1 from NIR or snnTorch)
into one that fits. A layer's spikes do not change when its incoming weights, bias, schedule
bias, threshold and initial voltage are all multiplied by the same ``lambda > 0`` (the neuron
equations are linear in them and the spikes are binary)::

    v_l -> lambda_l * v_l,   s_l unchanged        (float mode, exactly; up to rounding in fixed)

so each population gets ``lambda_l = 254 / max|w|`` (its largest weight on the even 8-bit grid;
halved until threshold, bias and ``vInit`` fit), and the input layer ``lambda_0 = 255 /
max(|weight|, |bias|)`` (an 8-bit input current for ``x`` in [0, 1]); then every number is
rounded (weights to even integers). Schedule scales become mantissas of ``2**-12``. The only
change is the rounding, which is what the accuracy before/after measures.

An integrating readout (the output layer with soft reset and no leak: its readout
``count * vThMant + v`` is the sum of its currents whatever the threshold) is scaled by its
weights alone; its threshold becomes ``min(vThMant * lambda, 131071)`` (a BNTT readout's
never-reached float threshold would otherwise force ``lambda < 1`` and round every weight to 0).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from neurosim.loihi2.limits import BIAS_MANT_MAX, WEIGHT_MANT_MAX
from neurosim.netlist.schema import (
    DECAY_UNITY, NETX_DENSE_WITHOUT_NEURON, V_INIT_MAX, VTH_MAX, Flatten, Input, Netlist, Neuron, Population, Projection, Schedule,
)

#: ``scaleExp`` of quantised schedules: scale mantissas of 2**-12.
SCALE_EXP = 12
INPUT_CURRENT_MAX = 255


def _is_int(a) -> bool:
    a = np.asarray(a, dtype=np.float64)
    return bool(np.array_equal(a, np.rint(a)))


def _neuron_problems(n: Neuron) -> list[str]:
    out = []
    readout = n.vThMant == NETX_DENSE_WITHOUT_NEURON.vThMant     # netx's never-spiking readout, 2**17
    if not (_is_int(n.vThMant) and (0 <= n.vThMant <= VTH_MAX or readout)):
        out.append(f"threshold {n.vThMant:g} is not an integer in 0..{VTH_MAX}")
    decays = [("vDecay", n.vDecay)] + ([("iDecay", n.iDecay)] if hasattr(n, "iDecay") else [])
    out += [f"{k} {d:g} is not an integer in 0..{DECAY_UNITY}" for k, d in decays
            if not (_is_int(d) and 0 <= d <= DECAY_UNITY)]
    if not (_is_int(n.vInit) and abs(n.vInit) <= V_INIT_MAX):
        out.append(f"vInit {n.vInit:g} is not an integer within +-{V_INIT_MAX}")
    return out


def layer_problems(net: Netlist, i: int) -> list[str]:
    """What in layer ``i`` does not fit Loihi 2's formats (empty: it fits)."""
    layer = net.layers[i]
    if isinstance(layer, Flatten):
        return []
    out = _neuron_problems(layer.neuron)
    if isinstance(layer, Input):
        if abs(layer.weight) + abs(layer.bias) > BIAS_MANT_MAX:
            out.append(f"input current weight * x + bias exceeds the bias mantissa's +-{BIAS_MANT_MAX} for x in [0, 1]")
        return out
    out += [f"projection {p} {why}" for p, proj in enumerate(layer.projections)
            if (why := proj.synapse.loihi2_problem())]
    if layer.bias is not None and not (_is_int(layer.bias) and np.abs(layer.bias).max() <= BIAS_MANT_MAX):
        out.append(f"bias is not integer within +-{BIAS_MANT_MAX}")
    sch = layer.schedule
    if sch is not None:
        for key in ("scale", "bias"):
            a = getattr(sch, key)
            if a is not None and not _is_int(a):
                out.append(f"schedule {key} is not integer mantissas")
    return out


def fit_report(net: Netlist) -> dict[int, list[str]]:
    """``{layer: problems}`` for every layer that does not fit (empty dict: the net fits)."""
    return {i: p for i in range(len(net.layers)) if (p := layer_problems(net, i))}


def _integrates(net: Netlist, i: int) -> bool:
    """Whether layer ``i`` is an integrating readout (module docstring)."""
    n = net.layers[i].neuron
    return i == net.output_layer and n.reset == "soft" and n.vDecay == 0


def _scaled_neuron(n: Neuron, lam: float, readout: bool = False) -> Neuron:
    vth = min(int(round(n.vThMant * lam)), VTH_MAX) if readout else int(round(n.vThMant * lam))
    kw = dict(vThMant=vth, vDecay=int(round(n.vDecay)), vInit=int(round(n.vInit * lam)))
    if hasattr(n, "iDecay"):
        kw["iDecay"] = int(round(n.iDecay))
    return replace(n, **kw)


def _even(a: np.ndarray) -> np.ndarray:
    return 2 * np.rint(np.asarray(a, dtype=np.float64) / 2)


def _layer_lambda(layer: Population, readout: bool = False) -> float:
    wmax = max(float(np.abs(p.synapse.weight).max()) for p in layer.projections)
    lam = WEIGHT_MANT_MAX / wmax if wmax > 0 else 1.0
    bmax = 0.0 if layer.bias is None else float(np.abs(layer.bias).max())
    if layer.schedule is not None and layer.schedule.bias is not None:
        bmax += float(np.abs(layer.schedule.bias).max())
    n = layer.neuron
    while lam > 2 ** -30 and ((n.vThMant * lam > VTH_MAX and not readout) or bmax * lam > BIAS_MANT_MAX
                              or abs(n.vInit) * lam > V_INIT_MAX):
        lam /= 2
    return lam


def _scaled_schedule(sch: Optional[Schedule], lam: float) -> Optional[Schedule]:
    if sch is None:
        return None
    scale = None if sch.scale is None else np.rint(np.asarray(sch.scale) * 2.0 ** (SCALE_EXP - sch.scale_exp))
    bias = None if sch.bias is None else np.rint(np.asarray(sch.bias) * lam)
    return Schedule(scale=scale, bias=bias, scale_exp=SCALE_EXP if scale is not None else 0)


def quantize(net: Netlist) -> tuple[Netlist, dict[int, float]]:
    """``(quantised net, {layer: lambda})``: every layer scaled by its ``lambda`` and rounded to
    Loihi 2's formats (module docstring). The result passes :func:`fit_report`."""
    layers, lams = [], {}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            layers.append(layer)
            continue
        if isinstance(layer, Input):
            m = max(abs(layer.weight), abs(layer.bias))
            lam = INPUT_CURRENT_MAX / m if m > 0 else 1.0
            while lam > 2 ** -30 and layer.neuron.vThMant * lam > VTH_MAX:
                lam /= 2
            layers.append(Input(layer.shape, _scaled_neuron(layer.neuron, lam), float(round(layer.weight * lam)),
                                float(round(layer.bias * lam))))
        else:
            readout = _integrates(net, i)
            lam = _layer_lambda(layer, readout)
            projections = [Projection(replace(p.synapse, weight=_even(np.asarray(p.synapse.weight) * lam)), p.source)
                           for p in layer.projections]
            bias = None if layer.bias is None else np.rint(np.asarray(layer.bias) * lam)
            layers.append(Population(layer.shape, _scaled_neuron(layer.neuron, lam, readout), projections, bias,
                                     _scaled_schedule(layer.schedule, lam)))
        lams[i] = lam
    meta = dict(net.meta, loihi2_quantized={str(k): v for k, v in lams.items()})
    return Netlist(layers=layers, input_shape=net.input_shape, meta=meta), lams


def normalized(net: Netlist) -> Netlist:
    """``net`` with every layer divided by its threshold (threshold 1, real weights): the float
    form NIR and snnTorch nets have, used to measure :func:`quantize` on a known-good net."""
    out = []
    for layer in net.layers:
        if isinstance(layer, Flatten):
            out.append(layer)
            continue
        lam = 1.0 / layer.neuron.vThMant
        n = replace(layer.neuron, vThMant=1.0, vInit=layer.neuron.vInit * lam)
        if isinstance(layer, Input):
            out.append(Input(layer.shape, n, layer.weight * lam, layer.bias * lam))
            continue
        projections = [Projection(replace(p.synapse, weight=np.asarray(p.synapse.weight) * lam), p.source)
                       for p in layer.projections]
        sch = layer.schedule
        if sch is not None and sch.bias is not None:
            sch = Schedule(sch.scale, np.asarray(sch.bias) * lam, sch.scale_exp)
        out.append(Population(layer.shape, n, projections,
                              None if layer.bias is None else np.asarray(layer.bias) * lam, sch))
    return Netlist(layers=out, input_shape=net.input_shape, meta=dict(net.meta))


__all__ = ["fit_report", "layer_problems", "normalized", "quantize"]
