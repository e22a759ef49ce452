"""BNTT folded into per-step scale and bias, and the trained net exported as a netlist (v2).

Folding (evaluation mode, per layer, step ``t`` and channel; :meth:`TimeNorm.scale_bias`)::

    s_t = gamma_t / sqrt(sigma2_t + eps)         b_t = -gamma_t * mu_t / sqrt(sigma2_t + eps)

so the neuron receives ``s_t * (W o_t) + b_t`` with ``W`` shared over time: the netlist's
per-step *schedule* (``scale``, ``bias``) of a population whose synapse holds ``W``. After the
last trained step the netlist holds the last row, i.e. step ``T-1``'s ``s, b`` (the
network itself refuses more steps than it was trained with; the netlist runs any T).

Time: Lava delays every projection by one step, so a layer at depth ``d`` (the first hidden
layer has depth 1: the spike input is one step away) sees at step ``d + t`` what the trained
net sees at step ``t``. Its schedule is therefore shifted by ``d``: rows ``0..d-1`` carry no
bias (nothing has arrived yet) and row ``d + t`` holds ``s_t, b_t``. The output layer (depth
``D``) integrates ``W o`` without leak and never fires (threshold ``VTH_MAX``, soft reset), so
its readout ``count * vth + v`` after step ``D + T - 1`` is ``T`` times the trained logits.

Structure: average pooling (spikes averaged, seen only by the next synapse) is folded into that
synapse exactly (:func:`neurosim.convert.rmp.fold_pool`); signed input spikes become 2C input
channels with first-layer weights ``[W, -W]`` (:mod:`neurosim.bntt.encoding`).

Numeric modes: ``float`` keeps the real weights, scales and biases with threshold 1 (the
trained model's own numbers); ``fixed`` (Lava ``fixed_pt``, Loihi) rounds per layer
(:mod:`neurosim.netlist.quantize`): weights to even 8-bit mantissas ``round(W g_w)`` with ``g_w =
254 / max|W|``, threshold ``G = clip(floor(4095 / max|b|), 1, 4096)`` (the integer scale without
a weight term: at most 4096 and within the 13-bit bias range), scale mantissas ``round(s_t G /
g_w 2**e)`` with exponent ``e``, biases ``round(b_t G)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from neurosim.bntt.network import BNTTNet
from neurosim.convert.graph import Stage, connections
from neurosim.convert.rmp import fold_pool
from neurosim.dynamics import MODES
from neurosim.errors import NeurosimError
from neurosim.metrics.workload import AnnLayer, ann_layers_to_meta
from neurosim.netlist.quantize import bias_mantissas, even_mantissas, integer_scale, scale_mantissas, weight_gain
from neurosim.netlist.schema import VTH_MAX, Flatten, Netlist, Population, Projection, Schedule
from neurosim.netlist.neurons import RMP
from neurosim.netlist.synapses import Conv, Dense

#: Largest threshold mantissa of a fixed-point layer (keeps the 24-bit state far from overflow).
THRESHOLD_MAX = 1 << 12
#: Floor of a layer's largest weight magnitude for its gain: an all-zero layer keeps zero weights.
_WEIGHT_FLOOR = 1e-30


@dataclass
class Folded:
    """One spiking (or output) layer in ANN-like form: ``weight`` (conv (O, I, kh, kw) or dense
    (O, I)), its geometry, and the folded per-step ``scale``/``bias`` (T_s, C) (None: none)."""
    kind: str
    weight: np.ndarray
    shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    scale: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    output: bool = False
    macs: int = 0                 # multiply-accumulates of the same layer in an ANN (per step)
    ann_weights: int = 0          # its weights in the ANN (the trained layer's, before the split and folding)


def fold(net: BNTTNet) -> list[Folded]:
    """The layers of ``net`` with pools folded, the signed input split and BNTT folded."""
    net = net.eval()
    c, h, w = net.input_shape
    if net.signed_input:
        c = 2 * c
    shape: tuple[int, ...] = (c, h, w)
    pending: Optional[Stage] = None            # a pool waiting for its synapse
    out: list[Folded] = []
    first = True
    for layer in net.plan:
        if layer.kind == "pool":
            k = layer.size
            pending = Stage("pool", "pool", [], (), np.full((k, k), 1.0 / (k * k)), None, (k, k), (0, 0))
            continue
        syn = net.synapses[layer.index]
        wt = syn.weight.detach().double().numpy()
        if first and net.signed_input:
            wt = np.concatenate([wt, -wt], axis=1)         # W o = W o+ - W o-
        first = False
        if wt.shape[2:4] == (1, 1) and layer.kind != "conv":
            kind, weight, stride, padding = "dense", wt.reshape(wt.shape[0], -1), (1, 1), (0, 0)
        else:
            p = net.kernel // 2
            kind, weight, stride, padding = "conv", wt[..., 0], (1, 1), (p, p)
        in_shape = shape
        macs = _macs(kind, tuple(syn.weight.shape), in_shape[1:], padding, pending)
        if pending is not None:
            lin = Stage(kind, layer.kind, [], (), weight, None, stride, padding)
            folded = fold_pool(pending, lin, in_shape)
            if folded is None:
                raise NeurosimError(f"layer {layer.index}: the average pooling before it cannot be folded "
                                    "into its synapse exactly")
            weight, stride, padding = folded.weight, tuple(folded.stride), tuple(folded.padding)
            pending = None
        if kind == "conv":
            oh = (in_shape[1] + 2 * padding[0] - weight.shape[2]) // stride[0] + 1
            ow = (in_shape[2] + 2 * padding[1] - weight.shape[3]) // stride[1] + 1
            shape = (weight.shape[0], oh, ow)
        else:
            shape = (weight.shape[0],)
        f = Folded(kind, weight, shape, stride, padding, output=layer.kind == "output", macs=macs,
                   ann_weights=int(syn.weight.numel()))
        if layer.kind != "output" and net.norms[layer.index].mode != "none":
            s, b = net.norms[layer.index].scale_bias(net.norms[layer.index].steps)
            f.scale, f.bias = s.detach().double().numpy(), b.detach().double().numpy()
        out.append(f)
    return out


def _macs(kind: str, wshape: tuple, spatial: tuple, padding: tuple, pool: Optional[Stage]) -> int:
    """MACs per step of the layer in an ANN, from its SLAYER weight shape ``wshape`` (before the
    signed split and pool folding), on its (pooled) input of size ``spatial``
    (:func:`neurosim.convert.graph.connections`)."""
    if kind == "dense":
        return connections(Stage("dense", "", [], (), np.ones((wshape[0], int(np.prod(wshape[1:]))))), ())
    (h, w), (o, c, kh, kw) = spatial, wshape[:4]
    if pool is not None:
        h, w = h // pool.stride[0], w // pool.stride[1]
    return connections(Stage("conv", "", [], (), np.ones((o, c, kh, kw)), None, (1, 1), padding), (c, h, w))


def _shifted(rows: Optional[np.ndarray], depth: int, bias: bool) -> Optional[np.ndarray]:
    """Schedule rows shifted by ``depth`` steps: zeros (bias) or the first row (scale) before."""
    if rows is None:
        return None
    head = np.zeros((depth, rows.shape[1])) if bias else np.repeat(rows[:1], depth, axis=0)
    return np.vstack([head, rows])


def _full_scale(weight: np.ndarray) -> tuple[np.ndarray, float]:
    """``(even_mantissas(g * weight), g)`` with the gain ``g = 254 / max|weight|``
    (:func:`neurosim.netlist.quantize.weight_gain`): the largest weight on the even grid's top."""
    g = weight_gain(max(float(np.abs(weight).max()), _WEIGHT_FLOOR))
    return even_mantissas(weight * g), g


def export(net: BNTTNet, mode: str = "fixed") -> Netlist:
    """The trained ``net`` as a netlist with spike input (N, T, C', H, W) (see the module text)."""
    if mode not in MODES:
        raise NeurosimError(f"mode must be one of {MODES}, got {mode!r}")
    layers: list = []
    folded = fold(net)
    in_shape = (2 * net.input_shape[0] if net.signed_input else net.input_shape[0], *net.input_shape[1:])
    prev_shape: tuple[int, ...] = tuple(in_shape)
    scales = []
    for depth, f in enumerate(folded, start=1):
        source = None
        if f.kind == "dense" and len(prev_shape) == 3:
            layers.append(Flatten(shape=(int(np.prod(prev_shape)),), source=None if layers else -1))
        elif not layers:
            source = -1                                   # the spike input
        weight, scale, bias, e = f.weight, f.scale, f.bias, 0
        if f.output:
            neuron = RMP(vThMant=VTH_MAX, vDecay=0, reset="soft")
            if mode == "fixed":
                weight, _ = _full_scale(weight)
        elif mode == "float":
            neuron = RMP(vThMant=1, vDecay=net.v_decay, reset=net.reset)
            if scale is None:
                scale = np.ones((1, f.shape[0]))
        else:
            weight, g_w = _full_scale(weight)
            # the threshold G: the integer scale of bias and threshold alone (the schedule carries G / g_w)
            G = integer_scale(weight_max=0.0, bias_max=float(np.abs(bias).max()) if bias is not None else 0.0,
                              cap=THRESHOLD_MAX)
            scale, e = scale_mantissas((scale if scale is not None else np.ones((1, f.shape[0]))) * (G / g_w))
            bias = None if bias is None else bias_mantissas(bias * G)
            neuron = RMP(vThMant=G, vDecay=net.v_decay, reset=net.reset)
            scales.append(G)
        synapse = (Conv(weight, f.stride, f.padding) if f.kind == "conv" else Dense(weight))
        schedule = None
        if scale is not None or bias is not None:
            schedule = Schedule(scale=_shifted(scale, depth, bias=False), bias=_shifted(bias, depth, bias=True),
                                scale_exp=e)
        layers.append(Population(tuple(int(s) for s in f.shape), neuron, [Projection(synapse, source)], None,
                                 schedule))
        prev_shape = f.shape
    out = Netlist(layers=layers, input_shape=tuple(int(s) for s in in_shape), meta={
        "trained_by": "neurosim.bntt", "mode": mode, "bntt": net.config(), "timesteps": net.steps,
        "latency": len(folded), "thresholds": scales,
        "ann_macs": int(sum(f.macs for f in folded)),           # the same net as an ANN, one step
        "ann_layers": ann_layers_to_meta(ann_layers(net, folded), sum(f.ann_weights for f in folded))})
    out.check()
    return out


def ann_layers(net: BNTTNet, folded: list[Folded]) -> list[AnnLayer]:
    """The trained net run as an ANN, the energy model's rows: its input (the image's values,
    each read once: the signed input's two channels per value are one), then every layer's
    MACs on its pooled input (:attr:`Folded.macs`, not the netlist's connections, whose folded
    pools have larger kernels) and its outputs."""
    return [AnnLayer("input", 0.0, int(np.prod(net.input_shape)))] + \
        [AnnLayer(f"{d}:{f.kind}", float(f.macs), int(np.prod(f.shape))) for d, f in enumerate(folded, start=1)]


def netlist_input(spikes: torch.Tensor, signed: bool, latency: int) -> np.ndarray:
    """The netlist input for network input ``spikes`` (N, C, H, W, T): the raster of
    :func:`neurosim.bntt.encoding.to_raster` followed by ``latency`` silent steps, so the
    output layer (depth ``latency``) has integrated all T steps at the end."""
    from neurosim.bntt.encoding import to_raster
    r = to_raster(spikes, signed)
    pad = np.zeros((r.shape[0], latency, *r.shape[2:]), dtype=r.dtype)
    return np.concatenate([r, pad], axis=1)
