"""ANN -> RMP-SNN conversion (Han, Srinivasan & Roy, CVPR 2020) into a fixed-point netlist.

The ANN is an ``nn.Sequential`` of Conv2d / Linear (BatchNorm folded in), ReLU, AvgPool2d
and Flatten. Each linear stage ``l`` becomes a layer of RMP neurons (IF, soft reset
``v <- v - v_th``). With ``lambda_l`` the balanced threshold of stage ``l`` (see
:mod:`neurosim.convert.threshold_balancing`) and spikes standing for ``lambda_{l-1}``::

    weights  W_l * lambda_{l-1},   bias  b_l,   threshold  lambda_l

so a neuron's rate times ``lambda_l`` approximates the ANN activation. Average pooling
is a spiking layer too (uniform kernel ``lambda_{l-1} / k^2``). The input layer is driven
by the image as a constant current with threshold ``lambda_0``.

Every layer is then scaled by its own factor ``sigma_l`` (IF dynamics are scale-free) and
rounded to Loihi mantissas: weights to even integers in [-256, 254] (8-bit signed x 2,
unchanged by Lava's dense weight truncation), bias to 13 bits, threshold to 17 bits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from neurosim.convert.threshold_balancing import DEFAULT_PERCENTILE, DEFAULT_RULE, balance
from neurosim.errors import NeurosimError
from neurosim.netlist.build import conv, dense, pool
from neurosim.netlist.schema import BIAS_MANT_BITS, RMP, VTH_MAX, Flatten, Input, Netlist

WEIGHT_MAX = 254                      # largest even 8-bit-signed x 2 mantissa
BIAS_MAX = (1 << (BIAS_MANT_BITS - 1)) - 1


@dataclass
class Stage:
    """One linear map of the ANN (``conv``, ``dense``, ``pool``) or a ``flatten``, with its ReLU."""
    kind: str
    module: Optional[nn.Module]
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    relu: bool = False
    stride: tuple[int, int] = (1, 1)


def parse(model: nn.Sequential) -> list[Stage]:
    """Split a Sequential into stages, folding BatchNorm into the preceding conv/linear."""
    stages: list[Stage] = []
    for idx, m in enumerate(model):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.detach().double().numpy().copy()
            b = m.bias.detach().double().numpy().copy() if m.bias is not None else None
            stages.append(Stage("conv" if isinstance(m, nn.Conv2d) else "dense", m, w, b))
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            if not stages or stages[-1].kind not in ("conv", "dense") or stages[-1].relu:
                raise NeurosimError(f"module {idx} ({type(m).__name__}) must directly follow a conv/linear")
            st = stages[-1]
            scale = (m.weight.detach().double() / torch.sqrt(m.running_var.double() + m.eps)).numpy()
            shift = m.bias.detach().double().numpy() - m.running_mean.double().numpy() * scale
            st.weight = st.weight * scale.reshape(-1, *([1] * (st.weight.ndim - 1)))
            st.bias = (st.bias if st.bias is not None else 0.0) * scale + shift
        elif isinstance(m, nn.ReLU):
            if not stages or stages[-1].kind == "flatten" or stages[-1].relu:
                raise NeurosimError(f"module {idx} (ReLU) must follow a conv, linear or pooling layer")
            stages[-1].relu = True
        elif isinstance(m, nn.AvgPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size, m.kernel_size)
            s = m.stride if isinstance(m.stride, tuple) else (m.stride, m.stride)
            p = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
            if any(p):
                raise NeurosimError(f"module {idx} (AvgPool2d): padding is not supported")
            # pooling of non-negative activations needs no ReLU; relu=True marks it as such
            stages.append(Stage("pool", m, np.full(k, 1.0 / (k[0] * k[1])), None, relu=True, stride=tuple(s)))
        elif isinstance(m, nn.Flatten):
            stages.append(Stage("flatten", m))
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        else:
            raise NeurosimError(f"module {idx} ({type(m).__name__}) cannot be converted: use Conv2d, "
                                "Linear, BatchNorm, ReLU, AvgPool2d, Flatten")
    linear = [s for s in stages if s.kind != "flatten"]
    if not linear:
        raise NeurosimError("the model has no conv or linear layer")
    if any(not s.relu for s in linear[:-1]):
        raise NeurosimError("every conv/linear layer except the last must be followed by ReLU")
    return stages


@torch.no_grad()
def stage_activations(model: nn.Sequential, x: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
    """Outputs of every non-flatten stage (after its ReLU) over the samples ``x``."""
    n_stages = sum(s.kind != "flatten" for s in parse(model))
    linear = (nn.Conv2d, nn.Linear, nn.AvgPool2d)
    outs: list[list[np.ndarray]] = [[] for _ in range(n_stages)]
    for i in range(0, len(x), batch_size):
        h = torch.as_tensor(x[i:i + batch_size], dtype=torch.float32)
        k, last = -1, [None] * n_stages
        for m in model:
            h = m(h)
            k += isinstance(m, linear)
            if isinstance(m, linear + (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU)):
                last[k] = h   # the stage's output so far (after BN and ReLU when present)
        for o, h_k in zip(outs, last):
            o.append(h_k.numpy().copy())
    return [np.concatenate(o) for o in outs]


def _mantissas(weight: np.ndarray, bias: Optional[np.ndarray], vth: float):
    """Scale one layer so its largest weight is WEIGHT_MAX (within bias/threshold ranges) and round."""
    sigma = WEIGHT_MAX / max(np.abs(weight).max(), 1e-12)
    if bias is not None and np.abs(bias).max() > 0:
        sigma = min(sigma, BIAS_MAX / np.abs(bias).max())
    sigma = min(sigma, VTH_MAX / vth)
    w = 2 * np.round(weight * sigma / 2)
    b = None if bias is None else np.round(bias * sigma)
    return np.clip(w, -256, WEIGHT_MAX), b, int(max(1, round(vth * sigma)))


def convert(model: nn.Sequential, x_train: np.ndarray, input_shape: tuple[int, ...],
            rule: str = DEFAULT_RULE, percentile: float = DEFAULT_PERCENTILE) -> Netlist:
    """Convert ``model`` to a fixed-point RMP netlist balanced on ``x_train`` (N, *input_shape)."""
    stages = parse(model)
    acts = stage_activations(model, x_train)
    lam_in, *lams = balance([x_train] + acts, rule, percentile)
    in_max = float(np.abs(x_train).max()) or 1.0
    in_scale = 2.0 ** np.floor(np.log2(BIAS_MAX / in_max))
    layers: list = [Input(shape=tuple(input_shape), neuron=RMP(vThMant=int(round(lam_in * in_scale))),
                          weight=float(in_scale), bias=0.0)]
    shape = tuple(input_shape)
    lam_prev, k = lam_in, 0
    for st in stages:
        if st.kind == "flatten":
            shape = (int(np.prod(shape)),)
            layers.append(Flatten(shape=shape))
            continue
        lam = lams[k]
        out_shape = tuple(acts[k].shape[1:])
        if st.kind == "pool":
            w, _, vth = _mantissas(st.weight * lam_prev, None, lam)
            layers.append(pool(out_shape, w, RMP(vth), stride=st.stride))
        elif st.kind == "conv":
            m = st.module
            w, b, vth = _mantissas(st.weight * lam_prev, st.bias, lam)
            layers.append(conv(out_shape, w, RMP(vth), stride=tuple(m.stride), padding=tuple(m.padding),
                               dilation=tuple(m.dilation), groups=m.groups, bias=b))
        else:
            w, b, vth = _mantissas(st.weight * lam_prev, st.bias, lam)
            layers.append(dense(out_shape, w, RMP(vth), bias=b))
        shape, lam_prev, k = out_shape, lam, k + 1
    return Netlist(layers=layers, meta={"converted_by": "neurosim.convert.rmp", "threshold_rule": rule,
                                        "percentile": percentile, "thresholds": [lam_in] + lams})
