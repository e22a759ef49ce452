"""Quantisation to Loihi 2's number formats: check that a netlist fits, or make it fit.

A netlist *fits* when every number is what Loihi's neuron and synapse hold (the formats of
:mod:`neurosim.netlist.quantize`): integer weights that the 8-bit-mantissa-plus-exponent path
(:func:`neurosim.netlist.synapses.dense.loihi_dense`, netx's and Lava's) keeps unchanged,
integer biases with ``|b| <= 4095`` (13-bit signed), integer thresholds ``<= 131071`` (or
netx's readout threshold 2**17), integer decays in ``0 .. 4096``, integer ``vInit``, integer
schedule mantissas.

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

:func:`fit_report` is the validation profile ``loihi2`` (:mod:`neurosim.netlist.validate`), which a
quantised net passes. A net that already fits (:func:`fit_report` empty) comes back unchanged, every ``lambda`` 1:
rescaling an integer net by ``254 / max|w|`` and rounding again would only move its spikes
(the digits job's net: the input layer's ``lambda`` 255/2048 changed 4,949 of 24,089 input
spikes over 20 digits). ``quantize(net, force=True)`` rescales it anyway. :func:`scale_plan` and
:func:`rescale_reasons` say, per layer, what :func:`quantize` does and why (the message of
``neurosim quantize-loihi2``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.loihi2.synapses import loihi2_problem
from neurosim.netlist.quantize import (
    BIAS_MANT_MAX, WEIGHT_MANT_MAX, bias_mantissas, even_mantissas, threshold_mantissa, weight_gain,
)
from neurosim.netlist.schema import VTH_MAX, Flatten, Input, Netlist, Population, Schedule
from neurosim.netlist.neurons import NETX_DENSE_WITHOUT_NEURON, Neuron
from neurosim.netlist.validate import ValidationError, register, validate

#: ``scaleExp`` of quantised schedules: scale mantissas of 2**-12.
SCALE_EXP = 12
INPUT_CURRENT_MAX = 255


def _is_int(a) -> bool:
    a = np.asarray(a, dtype=np.float64)
    return bool(np.array_equal(a, np.rint(a)))


def _neuron_problems(n: Neuron) -> list[str]:
    """The threshold an integer in 0 .. 2**17 - 1 (netx's never-spiking readout 2**17 aside), every
    other parameter of the kind an integer in its range."""
    out = []
    readout = n.vThMant == NETX_DENSE_WITHOUT_NEURON.vThMant     # netx's never-spiking readout, 2**17
    if not (_is_int(n.vThMant) and (0 <= n.vThMant <= VTH_MAX or readout)):
        out.append(f"threshold {n.vThMant:g} is not an integer in 0..{VTH_MAX}")
    for p in n.params:
        value = getattr(n, p.name)
        if p.name != "vThMant" and not (_is_int(value) and p.lo <= value <= p.hi):
            out.append(f"{p.name} {value:g} is not an integer in {p.lo:g}..{p.hi:g}")
    return out


def layer_problems(net: Netlist, i: int) -> list[str]:
    """What in layer ``i`` does not fit Loihi 2's formats (empty: it fits)."""
    layer = net.layers[i]
    if isinstance(layer, Flatten):
        return []
    out = _neuron_problems(layer.neuron)
    if isinstance(layer, Input):
        if layer.synapse is not None:
            return out + [f"an analog input layer (a host '{layer.synapse.type_name}' synapse): the Loihi 2 "
                          "report and quantiser take images as input neurons' bias "
                          "(convert with --input-coding spikes)"]
        if abs(layer.weight) + abs(layer.bias) > BIAS_MANT_MAX:
            out.append(f"input current weight * x + bias exceeds the bias mantissa's +-{BIAS_MANT_MAX} for x in [0, 1]")
        return out
    out += [f"projection {p} {why}" for p, proj in enumerate(layer.projections)
            if (why := loihi2_problem(proj.synapse))]
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


def _check_loihi2(net: Netlist) -> None:
    """Profile ``loihi2``: every number of the net in Loihi 2's formats (:func:`fit_report` empty)."""
    report = fit_report(net)
    if report:
        i, problems = next(iter(report.items()))
        raise ValidationError(f"does not fit Loihi 2's number formats: {'; '.join(problems)} (neurosim "
                              "quantize-loihi2 makes it fit)", i)


register("loihi2", _check_loihi2)


def _integrates(net: Netlist, i: int) -> bool:
    """Whether layer ``i`` is an integrating readout (module docstring)."""
    n = net.layers[i].neuron
    return i == net.output_layer and n.reset == "soft" and n.vDecay == 0


def _scaled_neuron(n: Neuron, lam: float, readout: bool = False) -> Neuron:
    """The threshold and every other voltage parameter times ``lam``, rounded (the threshold by
    :func:`threshold_mantissa`); the other parameters rounded to integers."""
    kw = {}
    for p in n.params:
        value = getattr(n, p.name)
        if p.name == "vThMant":
            vth = threshold_mantissa(value * lam)
            kw[p.name] = min(vth, VTH_MAX) if readout else vth
        else:
            kw[p.name] = int(round(value * lam if p.voltage else value))
    return replace(n, **kw)


def _halvings(lam: float, over) -> tuple[float, list[str]]:
    """``lam`` halved until no check of ``over`` fails (``[(name, fails)]``, ``fails(lam)`` true
    while ``lam`` makes a number too large), and the names of the checks that forced a halving."""
    forced: list[str] = []
    while lam > 2 ** -30:
        bad = [name for name, fails in over if fails(lam)]
        if not bad:
            break
        forced += [b for b in bad if b not in forced]
        lam /= 2
    return lam, forced


def _layer_lambda(layer: Population, readout: bool = False) -> tuple[float, str]:
    """``(lambda, why)`` of a population (module docstring)."""
    wmax = max(float(np.abs(p.synapse.weight).max()) for p in layer.projections)
    lam = weight_gain(wmax) if wmax > 0 else 1.0
    why = (f"largest weight {wmax:.6g} -> {WEIGHT_MANT_MAX}" if wmax > 0 else "no nonzero weight: lambda 1")
    bmax = 0.0 if layer.bias is None else float(np.abs(layer.bias).max())
    if layer.schedule is not None and layer.schedule.bias is not None:
        bmax += float(np.abs(layer.schedule.bias).max())
    n = layer.neuron
    lam, forced = _halvings(lam, [
        (f"threshold {n.vThMant:.6g} x lambda <= {VTH_MAX}", lambda l: n.vThMant * l > VTH_MAX and not readout),
        (f"bias {bmax:.6g} x lambda <= {BIAS_MANT_MAX}", lambda l: bmax * l > BIAS_MANT_MAX),
        *[(f"|{p.name}| {abs(getattr(n, p.name)):.6g} x lambda <= {p.hi:g}",
           lambda l, v=abs(getattr(n, p.name)), hi=p.hi: v * l > hi)
          for p in n.params if p.voltage and p.name != "vThMant"]])
    if forced:
        why += ", halved until " + " and ".join(forced)
    if readout:
        why += f" (integrating readout: scaled by its weights alone, threshold clipped to {VTH_MAX})"
    return lam, why


def _input_lambda(layer: Input) -> tuple[float, str]:
    """``(lambda, why)`` of an input layer: an 8-bit input current for ``x`` in [0, 1]."""
    m = max(abs(layer.weight), abs(layer.bias))
    lam = INPUT_CURRENT_MAX / m if m > 0 else 1.0
    why = (f"input current max(|weight|, |bias|) {m:.6g} -> {INPUT_CURRENT_MAX} (8-bit input current for x in "
           "[0, 1])" if m > 0 else "no input current: lambda 1")
    vth = layer.neuron.vThMant
    lam, forced = _halvings(lam, [(f"threshold {vth:.6g} x lambda <= {VTH_MAX}", lambda l: vth * l > VTH_MAX)])
    if forced:
        why += ", halved until " + " and ".join(forced)
    return lam, why


@dataclass(frozen=True)
class LayerScale:
    """What :func:`quantize` does to one layer: multiply it by ``lam`` (1: unchanged), because
    of ``why``; ``problems`` are what did not fit Loihi 2's formats before (:func:`layer_problems`)."""
    layer: int
    lam: float
    why: str
    problems: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.why != ""

    def describe(self) -> str:
        """One line: ``layer 3 x0.1245: largest weight 2040 -> 254; did not fit: ...``."""
        if not self.changed:
            return f"layer {self.layer}: unchanged"
        fit = ("did not fit: " + "; ".join(self.problems)) if self.problems else \
            "fitted already, rescaled with the rest of the net"
        return f"layer {self.layer} x{self.lam:.4g}: {self.why}; {fit}"


def scale_plan(net: Netlist, force: bool = False) -> dict[int, LayerScale]:
    """``{layer: LayerScale}`` for every neuron layer (flatten layers have none): what
    :func:`quantize` with the same ``force`` does. A net that fits (:func:`fit_report` empty) is
    left as it is (every ``lam`` 1, ``why`` empty) unless ``force``; otherwise every layer is
    scaled and rounded (module docstring), including layers that fitted on their own: a float
    net's input layer of threshold 1 *fits*, but rounds its current to a few levels."""
    if net.has_input_layer and net.layers[0].synapse is not None:
        raise NeurosimError("layer 0: an analog input layer (a host synapse) cannot be quantised for Loihi 2 "
                            "(Loihi 2 takes the image as input neurons' bias); convert with --input-coding spikes")
    report = fit_report(net)
    keep = not report and not force
    plan = {}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            continue
        if keep:
            plan[i] = LayerScale(i, 1.0, "")
            continue
        lam, why = _input_lambda(layer) if isinstance(layer, Input) else _layer_lambda(layer, _integrates(net, i))
        plan[i] = LayerScale(i, lam, why, tuple(report.get(i, ())))
    return plan


def rescale_reasons(net: Netlist, force: bool = False) -> dict[int, str]:
    """``{layer: one line}`` for every layer :func:`quantize` (with the same ``force``) changes:
    its ``lambda``, what set it, and what did not fit before (:meth:`LayerScale.describe`).
    Empty: the net fits and comes back unchanged."""
    return {i: ls.describe() for i, ls in scale_plan(net, force).items() if ls.changed}


def _scaled_schedule(sch: Optional[Schedule], lam: float) -> Optional[Schedule]:
    if sch is None:
        return None
    scale = None if sch.scale is None else np.rint(np.asarray(sch.scale) * 2.0 ** (SCALE_EXP - sch.scale_exp))
    bias = None if sch.bias is None else bias_mantissas(np.asarray(sch.bias) * lam)
    return Schedule(scale=scale, bias=bias, scale_exp=SCALE_EXP if scale is not None else 0)


def quantize(net: Netlist, force: bool = False) -> tuple[Netlist, dict[int, float]]:
    """``(quantised net, {layer: lambda})``: every layer scaled by its ``lambda`` and rounded to
    Loihi 2's formats (module docstring). The result passes :func:`fit_report`.

    A net that already fits is returned as it is (the same object, every ``lambda`` 1, no
    ``loihi2_quantized`` in its meta) unless ``force``, which rescales and rounds it anyway
    (its spikes may then change by the rounding). :func:`rescale_reasons` says what was
    rescaled and why."""
    plan = scale_plan(net, force)
    lams = {i: ls.lam for i, ls in plan.items()}
    if not any(ls.changed for ls in plan.values()):
        return net, lams
    layers = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            layers.append(layer)
            continue
        lam = lams[i]
        if isinstance(layer, Input):
            layers.append(Input(layer.shape, _scaled_neuron(layer.neuron, lam), float(round(layer.weight * lam)),
                                float(round(layer.bias * lam))))
        else:
            projections = [replace(p, synapse=replace(p.synapse,
                                                      weight=even_mantissas(np.asarray(p.synapse.weight) * lam)))
                           for p in layer.projections]
            bias = None if layer.bias is None else bias_mantissas(np.asarray(layer.bias) * lam)
            layers.append(Population(layer.shape, _scaled_neuron(layer.neuron, lam, _integrates(net, i)), projections,
                                     bias, _scaled_schedule(layer.schedule, lam)))
    meta = dict(net.meta, loihi2_quantized={str(k): v for k, v in lams.items()})
    out = Netlist(layers=layers, input_shape=net.input_shape, meta=meta)
    validate(out, "loihi2")
    return out, lams


def normalized(net: Netlist) -> Netlist:
    """``net`` with every layer divided by its threshold (threshold 1, real weights): the float
    form NIR and snnTorch nets have, used to measure :func:`quantize` on a known-good net."""
    out = []
    for layer in net.layers:
        if isinstance(layer, Flatten):
            out.append(layer)
            continue
        lam = 1.0 / layer.neuron.vThMant
        n = replace(layer.neuron, **{p.name: getattr(layer.neuron, p.name) * lam for p in layer.neuron.params
                                     if p.voltage})
        if isinstance(layer, Input):
            out.append(Input(layer.shape, n, layer.weight * lam, layer.bias * lam))
            continue
        projections = [replace(p, synapse=replace(p.synapse, weight=np.asarray(p.synapse.weight) * lam))
                       for p in layer.projections]
        sch = layer.schedule
        if sch is not None and sch.bias is not None:
            sch = Schedule(sch.scale, np.asarray(sch.bias) * lam, sch.scale_exp)
        out.append(Population(layer.shape, n, projections,
                              None if layer.bias is None else np.asarray(layer.bias) * lam, sch))
    return Netlist(layers=out, input_shape=net.input_shape, meta=dict(net.meta))


__all__ = ["LayerScale", "fit_report", "layer_problems", "normalized", "quantize", "rescale_reasons", "scale_plan"]
