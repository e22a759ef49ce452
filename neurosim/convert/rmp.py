"""ANN -> RMP-SNN conversion (Han, Srinivasan & Roy, CVPR 2020) into a fixed-point netlist (v2).

The ANN is any ``nn.Module`` that :func:`neurosim.convert.graph.trace` reads (torch.fx): Conv2d /
Linear with BatchNorm folded in, ReLU, average pooling, flatten, residual ``+``. Every value
the ANN passes through a ReLU becomes a *population* of IF neurons (``RMP``, soft or hard
reset); so does the model's output (the readout, which integrates) and the input (driven by the
image as a constant current). With ``lambda_P`` the balanced threshold of population ``P``
(:mod:`neurosim.convert.threshold_balancing`; per channel for the ``channel`` rule) and spikes
of ``Q`` standing for ``lambda_Q``, every projection ``Q -> P`` of ANN weights ``W`` carries::

    W * lambda_Q / lambda_P        (per input / output channel),   bias  b / lambda_P,   threshold 1

so a neuron's rate approximates ``a / lambda_P``. A residual join ``relu(a + b)`` is ONE
population with one projection per branch (the branch conv from its own source, the shortcut
as an ``identity`` or 1x1 ``conv`` from the block input), each normalised by its own source's
threshold. Average pooling is folded into the next synapse where that is exact (a conv after a
pool is a conv with a larger, strided kernel; a dense layer after pool + flatten has averaged
columns); only where it cannot be folded does a pool become a spiking layer of its own.

Every population is then scaled by one factor ``sigma`` (IF dynamics are scale-free; one per
layer, common to all its projections; :func:`neurosim.netlist.quantize.integer_scale`) and
rounded to Loihi mantissas (:mod:`neurosim.netlist.quantize`): conv/dense/pool weights to
even integers in [-256, 254] (unchanged by Lava's dense weight truncation), identity weights to
8-bit mantissas times 2**0..7, bias to 13 bits, threshold to 17 bits (an integer ``sigma``, so
the threshold is exact).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Optional, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.convert import INPUT_CODINGS, snn_balancing
from neurosim.convert.bias_correction import DEFAULT_SAMPLES as DEFAULT_CORRECTION_SAMPLES
from neurosim.convert.bias_correction import ann_rates, correct_biases
from neurosim.convert.graph import Stage, StageGraph, trace
from neurosim.convert.threshold_balancing import DEFAULT_PERCENTILE, DEFAULT_RULE, check_rule, layer_rules, stream
from neurosim.errors import NeurosimError
from neurosim.netlist.quantize import (
    BIAS_MANT_MAX, bias_mantissas, even_mantissas, input_scale, integer_scale, mantissa8, threshold_mantissa,
)
from neurosim.netlist.schema import RESETS, Flatten, Input, Netlist, Population, Projection
from neurosim.netlist.neurons import RMP
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool
from neurosim.netlist.transforms import align_delays, bias_onset


@dataclass
class Term:
    """One projection of a population: the chain of stages ``ops`` applied to population ``src``."""
    src: int
    ops: tuple[int, ...]


@dataclass
class Synapse:
    """A projection's synapse in ANN units before normalisation."""
    kind: str                         # identity, pool, conv, dense
    weight: Optional[np.ndarray] = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1


# ----------------------------------------------------------------------------- planning

class _Plan:
    """Which stages become populations, and the projections (terms) of each."""

    def __init__(self, g: StageGraph, fold_pool: bool) -> None:
        self.g, self.fold_pool = g, fold_pool
        st = g.stages
        out = g.output
        while st[out].kind == "flatten":
            out = st[out].inputs[0]
        self.output = out
        self.pops = {i for i, s in enumerate(st)
                     if s.kind == "input" or (s.relu and s.kind in ("conv", "dense", "add"))} | {out}
        for _ in range(len(st) + 1):
            try:
                self.terms = {i: self.own_terms(i) for i in sorted(self.pops) if st[i].kind != "input"}
                self.synapses = {i: [self.synapse(t, i) for t in ts] for i, ts in self.terms.items()}
                break
            except _Materialise as m:
                self.pops.add(m.stage)
        for i, s in enumerate(st):                 # every other stage must feed a population
            if i not in self.pops and s.kind in ("conv", "dense", "add") and \
                    not any(i in t.ops or i == t.src for ts in self.terms.values() for t in ts):
                raise NeurosimError(f"cannot convert node '{s.name}': its output is used without a ReLU "
                                    "(only a residual join may add values without ReLU)")

    def err(self, i: int, why: str) -> NeurosimError:
        s = self.g.stages[i]
        return NeurosimError(f"cannot convert node '{s.name}' ({s.kind}): {why}")

    def expr(self, i: int) -> list[Term]:
        """The value of stage ``i`` as terms over populations."""
        if i in self.pops:
            return [Term(i, ())]
        return self.own_terms(i)

    def own_terms(self, i: int) -> list[Term]:
        s = self.g.stages[i]
        if s.kind == "add":
            return self.expr(s.inputs[0]) + self.expr(s.inputs[1])
        if s.kind == "input":
            return [Term(i, ())]
        inner = self.expr(s.inputs[0])
        if len(inner) != 1 or any(self.g.stages[o].kind in ("conv", "dense") for o in inner[0].ops):
            raise self.err(i, "follows another linear map or a join without a ReLU in between, which "
                              "the netlist cannot express as one synapse")
        if s.kind == "pool" and not self.g.stages[inner[0].src].relu and self.g.stages[inner[0].src].kind != "input":
            raise self.err(i, "average pooling of a value without ReLU is not supported")
        return [Term(inner[0].src, inner[0].ops + (i,))]

    def synapse(self, t: Term, target: int) -> Synapse:
        """The single synapse of a term (pool folded into a following conv/dense), or raise
        :class:`_Materialise` for a pool that must become a layer."""
        st = self.g.stages
        ops = [o for o in t.ops if st[o].kind != "flatten"]
        kinds = [st[o].kind for o in ops]
        src_shape = st[t.src].shape
        if not ops:
            if src_shape != st[target].shape:
                raise self.err(target, f"adds a reshaped value {src_shape} -> {st[target].shape}")
            return Synapse("identity")
        if kinds == ["pool"]:
            p = st[ops[0]]
            return Synapse("pool", p.weight, p.stride, p.padding)
        if kinds in (["conv"], ["dense"]):
            s = st[ops[0]]
            return Synapse(s.kind, s.weight, s.stride, s.padding, s.dilation, s.groups)
        if kinds[0] == "pool" and len(kinds) == 2 and kinds[1] in ("conv", "dense"):
            folded = fold_pool(st[ops[0]], st[ops[1]], src_shape) if self.fold_pool else None
            if folded is not None:
                return folded
            raise _Materialise(ops[0])
        if kinds[0] == "pool":
            raise _Materialise(ops[0])
        raise self.err(target, f"the chain {kinds} cannot be one synapse")

    def current(self, i: int, values: dict) -> torch.Tensor:
        """Population ``i``'s input (pre-activation) from ``values[src]`` of its sources: the sum
        of its terms, each the chain of its stages (pooling, conv/dense with bias) without
        activation. On the ANN's activations this is the ANN's own pre-activation of ``i``."""
        total = None
        for t in self.terms[i]:
            y = values[t.src]
            for o in t.ops:
                y = self.g.stages[o].apply(y, activation=False)
            total = y if total is None else total + y
        return total

    def bias(self, i: int) -> np.ndarray:
        c = self.g.stages[i].shape[0]
        b = np.zeros(c)
        for t in self.terms[i]:
            last = self.g.stages[t.ops[-1]] if t.ops else None
            if last is not None and last.kind in ("conv", "dense") and last.bias is not None:
                b = b + last.bias
        return b


class _Materialise(Exception):
    def __init__(self, stage: int) -> None:
        super().__init__(stage)
        self.stage = stage


def fold_pool(pool: Stage, lin: Stage, in_shape: tuple[int, ...]) -> Optional[Synapse]:
    """``lin`` (conv or dense) after average pooling ``pool`` of spikes of ``in_shape`` as one
    synapse, if exact (checked numerically); else None."""
    if any(pool.padding) or len(in_shape) != 3:
        return None
    k = torch.as_tensor(pool.weight, dtype=torch.float64)[None, None]
    w = torch.as_tensor(lin.weight, dtype=torch.float64)
    if lin.kind == "conv":
        if lin.dilation != (1, 1):
            return None
        o, ig, kh, kw = w.shape
        wf = F.conv_transpose2d(w.reshape(o * ig, 1, kh, kw), k, stride=pool.stride)
        wf = wf.reshape(o, ig, *wf.shape[2:])
        syn = Synapse("conv", wf.numpy(), (lin.stride[0] * pool.stride[0], lin.stride[1] * pool.stride[1]),
                      (lin.padding[0] * pool.stride[0], lin.padding[1] * pool.stride[1]), (1, 1), lin.groups)
    else:
        c, h, wd = in_shape
        ph = (h - pool.weight.shape[0]) // pool.stride[0] + 1
        pw = (wd - pool.weight.shape[1]) // pool.stride[1] + 1
        o = w.shape[0]
        if w.shape[1] != c * ph * pw:
            return None
        wf = F.conv_transpose2d(w.reshape(o * c, 1, ph, pw), k, stride=pool.stride)
        fh, fw = wf.shape[2:]
        if fh > h or fw > wd:
            return None
        wf = F.pad(wf, (0, wd - fw, 0, h - fh)).reshape(o, c * h * wd)
        syn = Synapse("dense", wf.numpy())
    # exactness check on random non-negative input
    x = torch.rand(2, *in_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = Stage("dense" if lin.kind == "dense" else "conv", "", [], (), lin.weight, None, lin.stride,
                lin.padding, lin.dilation, lin.groups)
    y = pool.apply(x)
    ref_out = ref.apply(y.reshape(2, -1) if lin.kind == "dense" else y)
    got = (x.reshape(2, -1) @ torch.as_tensor(syn.weight).T if syn.kind == "dense" else
           F.conv2d(x, torch.as_tensor(syn.weight), None, syn.stride, syn.padding, 1, syn.groups))
    if got.shape != ref_out.shape or not torch.allclose(got, ref_out, rtol=1e-9, atol=1e-9):
        return None
    return syn


# ----------------------------------------------------------------------------- normalisation

def _channel_vec(lam, c: int) -> np.ndarray:
    a = np.asarray(lam, dtype=np.float64)
    return np.full(c, float(a)) if a.ndim == 0 else a


def _normalise(syn: Synapse, lam_src: np.ndarray, lam_tgt: np.ndarray, src_shape, tgt_shape) -> Synapse:
    """``syn`` with weights ``W * lambda_src[in] / lambda_tgt[out]`` (identity and pool with
    unequal channel ratios become depthwise convs / diagonal dense)."""
    if syn.kind in ("identity", "pool"):
        f = lam_src / lam_tgt
        c = len(f)
        if np.allclose(f, f[0], rtol=1e-12, atol=0):
            if syn.kind == "identity":
                return Synapse("identity", np.asarray(f[0]))
            return Synapse("pool", syn.weight * f[0], syn.stride, syn.padding)
        if len(src_shape) == 1:
            return Synapse("dense", np.diag(f))
        kern = np.ones((1, 1)) if syn.kind == "identity" else syn.weight
        w = f[:, None, None, None] * kern[None, None]
        return Synapse("conv", w, syn.stride, syn.padding, (1, 1), c)
    w = np.asarray(syn.weight, dtype=np.float64)
    if syn.kind == "conv":
        o, ig = w.shape[:2]
        og = o // syn.groups
        cin = (np.arange(o)[:, None] // og) * ig + np.arange(ig)[None, :]
        w = w * lam_src[cin][:, :, None, None] / lam_tgt[:, None, None, None]
        return Synapse("conv", w, syn.stride, syn.padding, syn.dilation, syn.groups)
    per = int(np.prod(src_shape[1:])) if len(src_shape) == 3 else 1
    return Synapse("dense", w * np.repeat(lam_src, per)[None, :] / lam_tgt[:, None])


def _to_netlist_synapse(syn: Synapse, sigma: float, exact: bool = False):
    """The netlist synapse of ``sigma * syn``: Loihi's 8-bit mantissas, or unrounded (``exact``)."""
    if syn.kind == "identity":
        w = float(syn.weight) * sigma
        return Identity(w if exact else mantissa8(w))
    w = syn.weight * sigma if exact else even_mantissas(syn.weight * sigma)
    if syn.kind == "pool":
        return Pool(w, tuple(syn.stride), tuple(syn.padding))
    if syn.kind == "conv":
        return Conv(w, tuple(syn.stride), tuple(syn.padding), tuple(syn.dilation), int(syn.groups))
    return Dense(w)


def _sigma(syns: list[Synapse], bias: np.ndarray) -> int:
    """The layer's integer scale (:func:`neurosim.netlist.quantize.integer_scale`) from its
    normalised synapses and bias."""
    wmax = max((float(np.abs(s.weight).max()) for s in syns if s.kind != "identity"), default=0.0)
    imax = max((abs(float(s.weight)) for s in syns if s.kind == "identity"), default=0.0)
    return integer_scale(wmax, imax, float(np.abs(bias).max(initial=0)))


# ----------------------------------------------------------------------------- QCFS

#: samples of the calibration set on which :func:`qcfs_limit_agreement` is measured
QCFS_LIMIT_SAMPLES = 512
#: below this agreement (one sample in 20 changes class), converting a QCFS model warns that its
#: SNN will not converge to it
QCFS_LIMIT_AGREEMENT = 0.95


@torch.no_grad()
def qcfs_limit_agreement(g: StageGraph, x: np.ndarray, batch_size: int = 256) -> float:
    """The share of the samples ``x`` that a QCFS model (stage graph ``g``) puts in the same
    class (argmax of its output) as its limit for L -> infinity, every QCFS ``h(y) = lambda
    clip(floor(L y / lambda + 1/2) / L, 0, 1)`` replaced by ``clip(y, 0, lambda)``.

    An IF neuron of threshold lambda, soft reset and initial potential lambda/2 driven by a
    constant current ``y`` spikes ``floor(T y / lambda + 1/2)`` times in ``T`` steps (at most
    ``T``): at ``T = L`` its rate times lambda is ``h(y)``, as ``T`` grows it tends to
    ``clip(y, 0, lambda)``. The converted SNN therefore tends to the limit model, and its
    accuracy rises with T toward the ANN's only if the two agree (docs/conversion.md, QCFS).
    """
    same = 0
    for s in range(0, len(x), batch_size):
        xb = torch.as_tensor(np.asarray(x[s:s + batch_size]), dtype=torch.float32)
        ann, limit = (g.forward(xb, qcfs_limit=lim)[g.output].reshape(len(xb), -1).argmax(1) for lim in (False, True))
        same += int((ann == limit).sum())
    return same / max(1, len(x))


# ----------------------------------------------------------------------------- analog input

def _analog_first_layer(plan: _Plan, inp: int) -> int:
    """The population the image feeds, for an analog input layer: it must be the only one, fed
    by the image alone through one conv or dense synapse, and not the readout."""
    users = [i for i, ts in plan.terms.items() if any(t.src == inp for t in ts)]
    why = None
    if len(users) != 1:
        why = f"the image feeds {len(users)} layers"
    elif len(plan.terms[users[0]]) != 1:
        why = "the first layer adds the image to another branch (a join)"
    elif plan.synapses[users[0]][0].kind not in ("conv", "dense"):
        kind = plan.synapses[users[0]][0].kind
        why = f"the image reaches the first layer through a '{kind}', not a conv or dense layer"
    elif users[0] == plan.output:
        why = "the first layer is the readout"
    if why:
        raise NeurosimError(f"input_coding 'analog' computes the first conv or dense layer on the host, and {why}; "
                            "use input_coding 'spikes'")
    return users[0]


def _analog_input(plan: _Plan, first: int, lam: np.ndarray, x_calib: np.ndarray, input_shape: tuple[int, ...],
                  exact: bool, batch_size: int, neuron) -> Input:
    """Population ``first`` as an analog input layer: its synapse normalised by its threshold
    ``lam`` (the image enters as itself, not as spikes standing for a threshold) and, in fixed
    point, scaled by the layer's ``sigma`` (8-bit weights, threshold ``sigma``), lowered where
    needed so that the current stays within the bias mantissa on the calibration images."""
    st = plan.g.stages
    syn = _normalise(plan.synapses[first][0], np.ones(int(input_shape[0])), lam, input_shape, st[first].shape)
    bias = plan.bias(first) / lam
    sigma = 1.0
    if not exact:
        peak = 0.0
        with torch.no_grad():
            for s in range(0, len(x_calib), batch_size):
                xb = torch.as_tensor(x_calib[s:s + batch_size], dtype=torch.float32)
                pre = plan.current(first, {plan.terms[first][0].src: xb}).double().numpy()
                per_channel = lam.reshape(-1, *([1] * (pre.ndim - 2)))
                peak = max(peak, float(np.abs(pre / per_channel).max(initial=0.0)))
        sigma = _sigma([syn], bias)
        if peak > 0:
            sigma = max(1, min(sigma, math.floor(BIAS_MANT_MAX / peak)))
    b = bias * sigma if exact else bias_mantissas(bias * sigma)
    return Input(shape=tuple(st[first].shape), neuron=neuron(sigma), weight=1.0,
                 bias=b if np.any(b) else 0.0, synapse=_to_netlist_synapse(syn, sigma, exact),
                 sample_shape=tuple(input_shape))


# ----------------------------------------------------------------------------- convert

def _is_count(value) -> bool:
    """``value`` is an integer >= 1 (a bool is not)."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 1


def _correct(net: Netlist, build, layer_of: dict[int, int], forward, pops: list[int], lam: dict, output: int,
             x: np.ndarray, steps: int, passes: int, mode: str, batch_size: int, progress: bool) -> Netlist:
    """``net`` rebuilt with the bias offsets of :func:`neurosim.convert.bias_correction.correct_biases`
    for every population but the input layer and the readout (``layer_of``: stage -> layer), in
    the netlist's order."""
    targets = sorted(((i, layer_of[i]) for i in pops
                      if i in layer_of and i != output and isinstance(net.layers[layer_of[i]], Population)),
                     key=lambda t: t[1])
    expected = ann_rates(forward, x, lam, [i for i, _ in targets], batch_size)
    offsets, log = correct_biases(build, targets, expected, x, steps, mode, progress, passes)
    out = build(offsets)
    out.meta["bias_correction"] = {"steps": steps, "samples": len(x), "passes": passes, "layers": log}
    return out


def calibration_array(data: Union[np.ndarray, torch.Tensor, Iterable], limit: Optional[int] = None) -> np.ndarray:
    """Calibration images as one float32 array (N, *input_shape): an array or tensor as it is,
    or the batches of an iterable such as a ``torch.utils.data.DataLoader`` (each batch a
    tensor, or a tuple/list whose first item is the images), concatenated until ``limit``."""
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if isinstance(data, np.ndarray):
        return np.asarray(data[:limit], dtype=np.float32)
    try:
        batches = iter(data)
    except TypeError:
        raise NeurosimError(f"calibration data must be an array, a tensor or an iterable of batches (a DataLoader), "
                            f"got {type(data).__name__}") from None
    parts, n = [], 0
    for batch in batches:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
        parts.append(x)
        n += len(x)
        if limit is not None and n >= limit:
            break
    if not parts:
        raise NeurosimError("the calibration data yielded no batches")
    return np.concatenate(parts)[:limit]


def convert(model: nn.Module, x_calib: Union[np.ndarray, torch.Tensor, Iterable], input_shape: tuple[int, ...],
            rule: str = DEFAULT_RULE, percentile: float = DEFAULT_PERCENTILE, reset: str = "soft",
            v_init_half: Optional[bool] = None, alpha: float = 1.0, fold_pool: bool = True,
            snn_steps: int = snn_balancing.DEFAULT_STEPS, snn_samples: int = snn_balancing.DEFAULT_SAMPLES,
            align_bias: bool = True, precision: str = "fixed", batch_size: int = 256,
            progress: bool = True, readout_reset: Optional[str] = None, align_joins: bool = True,
            device: str = "cpu", input_coding: str = "spikes", bias_correction: Optional[int] = None,
            bias_correction_samples: int = DEFAULT_CORRECTION_SAMPLES, bias_correction_passes: int = 1) -> Netlist:
    """Convert ``model`` to an RMP netlist balanced on ``x_calib`` (N, *input_shape): an array, a
    tensor or a DataLoader (:func:`calibration_array`).

    ``rule``: ``max``, ``percentile`` (at ``percentile``) or ``channel``
    (:mod:`neurosim.convert.threshold_balancing`), or ``snn``, the SNN-based layer-by-layer rule
    over ``snn_steps`` steps and the first ``snn_samples`` calibration samples
    (:mod:`neurosim.convert.snn_balancing`). A layer with a trained QCFS activation
    (:mod:`neurosim.ann.qcfs`) takes its trained threshold instead, whatever the rule; for such a
    model ``meta['qcfs_limit_agreement']`` is :func:`qcfs_limit_agreement` on the first
    :data:`QCFS_LIMIT_SAMPLES` calibration samples, and below :data:`QCFS_LIMIT_AGREEMENT` a
    warning says that the SNN will not converge to the ANN as T grows.
    ``alpha`` multiplies every threshold; ``reset`` ('soft' | 'hard') is every neuron's reset
    but the output layer's, which is ``readout_reset``: by default (None) soft, so that the
    readout integrates (``count * vThMant + v`` is its summed current); 'hard' makes it a
    spiking layer like the others (``count * vThMant + v`` then drops what each reset throws
    away above the threshold), which stock lava-dl netx can build; ``v_init_half`` starts every
    neuron at ``vThMant // 2`` (default: only for a QCFS-trained model, as QCFS prescribes);
    ``fold_pool`` folds average pooling into the next synapse where exact. ``align_bias``
    switches each layer's bias on only at the step its first input can arrive (its depth: Lava
    delays every projection by one step), through a bias-only per-step schedule, so that no
    layer integrates its bias alone while the spikes are still on their way (see
    :func:`bias_onset`). ``align_joins`` delays the projections into each residual join so that
    all its branches arrive at the same step (a shortcut waits for the main path's synapses:
    :func:`neurosim.netlist.transforms.align_delays`); without it a shortcut arrives one step
    per skipped synapse early, and the join integrates the shortcut alone meanwhile. A chain has
    no join and is unchanged. The model's training flags (and BatchNorm statistics) are left as
    they were. ``device`` (cpu, cuda, cuda:N, auto; :mod:`neurosim.device`) is where the ANN
    passes of the max, percentile and channel rules compute; the thresholds do not depend on it
    (the SNN rule and the QCFS agreement check run on the CPU).

    ``input_coding``: ``spikes`` (default) makes the image a layer of IF neurons driven by the
    pixels (threshold: the calibration images' maximum), whose spikes reach the first conv or
    dense layer as every other layer's do; ``analog`` computes that first layer on the host
    instead (:mod:`neurosim.netlist.host`): an analog input layer whose neurons are the first
    layer's, driven by ``W x + b`` every step, as the RMP and QCFS papers and SpikingJelly
    present the image. It needs the image to feed exactly one conv or dense layer; its 8-bit
    weights and integer current (``fixed``) keep the current within Loihi's 13-bit bias on the
    calibration images. Stock netx, NIR and Loihi 2 take spiking input only.

    ``bias_correction=T`` corrects every hidden population's bias per channel so that, over
    ``T`` steps of its own (the papers' T), its simulated rate on the first
    ``bias_correction_samples`` calibration images matches the ANN's
    (:mod:`neurosim.convert.bias_correction`, Li et al. 2021: one simulation per population),
    ``bias_correction_passes`` times per population (each pass corrects what the previous one
    left); ``meta['bias_correction']`` records T, the passes and the rate errors it removed.

    For stock lava-dl netx (:func:`neurosim.netlist.netx_compat.save_netx`) convert with
    ``reset='hard', readout_reset='hard', align_bias=False`` (and ``v_init_half=False`` for a
    QCFS model) in fixed precision: a chain of dense/conv layers (pooling folded) passes; a
    residual join or a pool that cannot be folded does not. Hard reset costs accuracy (the
    digits job at T = 64: 85.0 % against 97.5 % with soft reset; ``alpha=0.8``: 95.3 %).

    ``precision``: ``fixed`` (default) writes Lava's formats: per layer one integer scale
    ``sigma`` (largest weight 254), even 8-bit weight mantissas, integer biases and threshold
    ``sigma``; ``float`` writes the same net unrounded (threshold 1 in every hidden layer, the
    input layer's threshold the input's, real weights and biases), for the simulator's float
    mode: the conversion before any rounding, which is what quantisation is measured against.
    """
    check_rule(rule, percentile)
    if bias_correction is not None and not _is_count(bias_correction):
        raise NeurosimError(f"bias_correction must be a number of steps >= 1 (or None), got {bias_correction!r}")
    if not _is_count(bias_correction_passes):
        raise NeurosimError(f"bias_correction_passes must be an integer >= 1, got {bias_correction_passes!r}")
    if bias_correction is None and bias_correction_passes != 1:
        raise NeurosimError("bias_correction_passes needs bias_correction (the T the biases are corrected at)")
    if input_coding not in INPUT_CODINGS:
        raise NeurosimError(f"input_coding must be one of {INPUT_CODINGS}, got {input_coding!r}")
    if precision not in ("fixed", "float"):
        raise NeurosimError(f"precision must be 'fixed' or 'float', got {precision!r}")
    exact = precision == "float"
    if reset not in RESETS:
        raise NeurosimError(f"reset must be one of {RESETS}, got {reset!r}")
    if readout_reset is None:
        readout_reset = "soft"
    if readout_reset not in RESETS:
        raise NeurosimError(f"readout_reset must be one of {RESETS} (or None: soft), got {readout_reset!r}")
    if not (alpha > 0 and math.isfinite(alpha)):
        raise NeurosimError(f"alpha must be a positive number, got {alpha}")
    x_calib = calibration_array(x_calib)
    input_shape = tuple(int(s) for s in input_shape)
    if x_calib.ndim != len(input_shape) + 1 or tuple(x_calib.shape[1:]) != input_shape:
        raise NeurosimError(f"calibration data has shape {tuple(x_calib.shape[1:])} per sample, "
                            f"expected {input_shape}")
    g = trace(model, input_shape)
    plan = _Plan(g, fold_pool)
    st = g.stages
    pops = sorted(plan.pops)
    inp = next(i for i in pops if st[i].kind == "input")

    trained = {i: st[i].clip for i in pops if st[i].clip is not None}     # QCFS thresholds
    limit_agreement = qcfs_limit_agreement(g, x_calib[:QCFS_LIMIT_SAMPLES], batch_size) if trained else None
    if limit_agreement is not None and limit_agreement < QCFS_LIMIT_AGREEMENT:
        warnings.warn(f"this QCFS model and its limit for L -> infinity (every QCFS as clip(x, 0, lambda)) put "
                      f"{100 * limit_agreement:.1f} % of {min(len(x_calib), QCFS_LIMIT_SAMPLES)} calibration samples "
                      "in the same class: as T grows the SNN tends to that limit, not to the ANN, and its accuracy "
                      "falls with T. A net trained from thresholds far above its inputs (trained lambda: "
                      f"{', '.join(f'{v:.3g}' for v in trained.values())}) relies on QCFS zeroing the inputs below "
                      "lambda / 2L; QCFS(threshold=None), the default, sets lambda from data (docs/conversion.md, "
                      "QCFS)", stacklevel=2)
    if v_init_half is None:
        v_init_half = bool(trained)

    def forward(xb: torch.Tensor) -> dict[int, torch.Tensor]:
        outs = g.forward(xb)
        return {i: outs[i] for i in pops}

    if rule == "snn":
        lam = snn_balancing.layer_by_layer(pops, inp, plan.current, x_calib[:max(1, snn_samples)], snn_steps,
                                           reset, v_init_half, trained, progress=progress)
    else:
        rules = layer_rules([i for i in pops if i not in trained], rule, layerwise=(inp, plan.output))
        lam = {**stream(forward, x_calib, rules, percentile, batch_size, progress, device=device), **trained}
    lam = {i: _channel_vec(v, st[i].shape[0]) * float(alpha) for i, v in lam.items()}


    def neuron(vth: float, readout: bool = False) -> RMP:
        # the readout integrates by default: soft reset keeps count * vth + v equal to the summed current
        vth = float(vth) if exact else int(vth)
        return RMP(vThMant=vth, reset=readout_reset if readout else reset,
                   vInit=(vth / 2 if exact else vth // 2) if v_init_half else 0)

    # the input layer does not depend on the bias offsets: made once, shared by every build
    if input_coding == "analog":
        first = _analog_first_layer(plan, inp)
        head, head_stage = _analog_input(plan, first, lam[first], x_calib, input_shape, exact, batch_size, neuron), first
    else:
        in_scale = 1.0 if exact else input_scale(float(np.abs(x_calib).max()) or 1.0)
        in_vth = float(lam[inp][0]) if exact else max(1, threshold_mantissa(lam[inp][0] * in_scale))
        head, head_stage = Input(shape=input_shape, neuron=neuron(in_vth), weight=float(in_scale), bias=0.0), inp

    def build(extra: dict[int, np.ndarray]) -> tuple[Netlist, dict[int, int]]:
        """The netlist, with ``extra[i]`` (per channel, in units of the threshold) added to the
        bias of population ``i`` (the bias correction's offsets; none: the plain conversion),
        and the layer of each population stage."""
        layers: list = [head]
        index = {head_stage: 0}          # stage -> layer (with analog input the image itself is no layer)
        flat_of: dict[int, int] = {}     # layer -> its flatten layer
        for i in pops:
            if i in index or i == inp:
                continue
            norm = [_normalise(syn, lam[t.src], lam[i], st[t.src].shape, st[i].shape)
                    for t, syn in zip(plan.terms[i], plan.synapses[i])]
            bias = plan.bias(i) / lam[i] + extra.get(i, 0.0)
            sigma = 1.0 if exact else _sigma(norm, bias)
            projections = []
            for t, syn in zip(plan.terms[i], norm):
                src = index[t.src]
                if syn.kind == "dense" and len(st[t.src].shape) == 3:
                    if src not in flat_of:
                        layers.append(Flatten(shape=(int(np.prod(st[t.src].shape)),), source=src))
                        flat_of[src] = len(layers) - 1
                    src = flat_of[src]
                projections.append((syn, src))
            me = len(layers)
            b = bias * sigma if exact else bias_mantissas(bias * sigma)
            layers.append(Population(tuple(st[i].shape), neuron(sigma, readout=i == plan.output),
                                     [Projection(_to_netlist_synapse(syn, sigma, exact), None if src == me - 1 else src)
                                      for syn, src in projections],
                                     b if np.any(b) else None))
            index[i] = me
        if index[plan.output] != len(layers) - 1:
            raise NeurosimError("the model's output is not its last layer")
        net = Netlist(layers=layers, meta={
            "converted_by": "neurosim.convert.rmp", "threshold_rule": rule, "percentile": percentile,
            "alpha": alpha, "reset": reset, "readout_reset": readout_reset, "v_init_half": bool(v_init_half),
            "fold_pool": bool(fold_pool), "align_joins": bool(align_joins),
            "trained_thresholds": len(trained), "align_bias": bool(align_bias), "precision": precision,
            "input_coding": input_coding,
            **({"qcfs_limit_agreement": limit_agreement} if trained else {}),
            **({"snn_steps": int(snn_steps), "snn_samples": int(min(len(x_calib), max(1, snn_samples)))}
               if rule == "snn" else {}),
            "ann_macs": g.macs(),             # the ANN's own (folded pools add synapses to the SNN only)
            "thresholds": [float(np.max(lam[i])) for i in pops if i in index],
            "layer_names": [st[i].name for i in pops if i in index]})
        if align_joins:
            net = align_delays(net)
        if align_bias:
            net = bias_onset(net)
        net.check()
        return net, index

    net, index = build({})
    if bias_correction is not None:
        net = _correct(net, lambda extra: build(extra)[0], index, forward, pops, lam, plan.output,
                       x_calib[:max(1, bias_correction_samples)], int(bias_correction), int(bias_correction_passes),
                       "float" if exact else "fixed", batch_size, progress)
    return net
