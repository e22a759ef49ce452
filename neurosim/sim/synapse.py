"""Synaptic arithmetic of each layer type, per numeric mode, on batched PyTorch tensors.

``float``: the linear map (dense matmul, cross-correlation, sum pooling), in float64 for
real-valued weights.
``fixed``: the same map on integer mantissas, then what Lava's ``fixed_pt`` synapse models do:
``dense`` weights are mapped to Loihi's synapse exactly as netx and Lava do it (:func:`loihi_dense`;
lossless for integer weights in [-256, 254]);
``conv`` and ``pool`` sums wrap to signed 24 bits (``lava.proc.conv.utils.signed_clamp``).
Spikes are 0/1, so a float64 sum of integer weights is exact (below 2**53), and so is a
float32 sum while every row of ``|w|`` sums to less than 2**24 (then float32 is used, and a
sparse dense-layer input takes the event-driven path of :func:`neurosim.sim.kernels.dense_events`:
the same integers, summed in another order).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.netlist.schema import STATE_BITS, Conv, Dense, Layer, Pool
from neurosim.sim import kernels

#: The event-driven dense path is taken below this input spike density (spikes per input
#: and row) and from this many outputs on; measured on 2 cores against MKL's float32 GEMM:
#: 784 -> 512 at density 0.126 1.5x faster, 200 -> 256 at 0.005 5x; 512 -> 10 at 0.23 6x slower.
EVENT_MAX_DENSITY = 0.2
EVENT_MIN_OUTPUTS = 32


def loihi_dense(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense weights as Loihi receives them from netx: ``(w_int, weight_exp)``.

    Literally lava-dl's ``netx.utils.optimize_weight_bits`` (clip, sign mode, scale to the
    8-bit range, ``weight_exp``, ``num_weight_bits``) followed by what Lava's
    ``PyDenseModelBitAcc`` does with the result (``clip_weights``, ``truncate_weights``).
    The synaptic sum is then ``(w_int @ s)`` shifted left by ``weight_exp`` (right if < 0).
    For integer weights in range this is lossless: the sum equals ``weight @ s``.
    """
    w = np.asarray(weight, dtype=np.float64)
    if not np.any(w):
        return np.zeros(w.shape, dtype=np.int64), 0
    mx, mn = w.max(), w.min()
    if (mx > 254 and mn < 0) or (mn < -256 and mx > 0):
        w = np.clip(w, -256, 254)
        mx, mn = w.max(), w.min()
    if mx < 0:
        scale, signed = -256 / mn, 0
    elif mn >= 0:
        scale, signed = 255 / mx, 0
    else:
        scale, signed = min(127 / mx, -128 / mn), 1
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.sum(np.abs(w / 2 ** n - np.round(w / 2 ** n))) != 0:
        n -= 1
    num_weight_bits = 8 - scale_bits - (n - signed)
    w_int = np.left_shift(w.astype(np.int32), scale_bits).astype(np.int64)
    # Lava's dense model: sign mode of its own, clip to 8 bits, drop the truncated bits
    if w_int.min() >= 0:
        lo, hi, mixed, flip = 0, 255, 0, 1
    elif w_int.max() <= 0:
        lo, hi, mixed, flip = 0, 255, 0, -1
    else:
        lo, hi, mixed, flip = -256, 255, 1, 1
    w_int = flip * np.clip(flip * w_int, lo, hi)
    drop = 8 - num_weight_bits + mixed
    w_int = flip * (((flip * w_int) >> drop) << drop)
    return w_int, -scale_bits


def signed_wrap(x: torch.Tensor, bits: int = STATE_BITS) -> torch.Tensor:
    """Two's-complement wrap of integers to ``bits`` bits."""
    base = 1 << bits
    return torch.remainder(x + base // 2, base) - base // 2


class Synapse:
    """The prepared weights of one layer and the map from input spikes to its synaptic input."""

    def __init__(self, layer: Layer, fixed: bool) -> None:
        self.layer, self.fixed = layer, fixed
        self.weight_exp = 0
        if isinstance(layer, Dense):
            w, self.weight_exp = loihi_dense(layer.weight) if fixed else (layer.weight, 0)
            w_eff = w * 2.0 ** self.weight_exp
            if self.weight_exp and np.array_equal(w_eff, np.round(w_eff)):
                # (w @ s) shifted by the exponent is exactly w_eff @ s (a right shift drops
                # nothing: every term is a multiple of 2**-exp); no shift on the hot path
                w, self.weight_exp = w_eff, 0
        elif isinstance(layer, Conv):
            w = layer.weight
        elif isinstance(layer, Pool):
            c = layer.shape[0]
            w = np.broadcast_to(layer.weight, (c, 1, *layer.kernel_size))
        else:
            raise TypeError(f"{type(layer).__name__} has no synapse")
        # 0/1 spikes times integer weights: float32 sums are exact while every partial sum
        # stays below 2**24; otherwise (and for real-valued weights) compute in float64.
        w = np.ascontiguousarray(w)
        exact32 = np.array_equal(w, np.round(w)) and np.abs(w).reshape(len(w), -1).sum(1).max() < 2 ** 24
        self.dtype = torch.float32 if exact32 else torch.float64
        self.weight = torch.as_tensor(w, dtype=self.dtype)
        #: Largest possible |synaptic input| of one step (0/1 spikes): the sum of |w| of a row.
        self.bound = float(np.abs(w).reshape(len(w), -1).sum(1).max())
        if isinstance(layer, Dense) and self.weight_exp:
            self.bound *= 2.0 ** self.weight_exp
        self.wraps = not isinstance(layer, Dense) and self.bound >= 2 ** (STATE_BITS - 1)
        #: whether ``__call__`` writes into an ``out`` buffer (dense layers; torch's conv cannot)
        self.fills_out = isinstance(layer, Dense)
        #: (in, out) weights for the event-driven path: exact float32 dense layers only,
        #: because it sums in another order than the GEMM
        self.weight_t = (np.ascontiguousarray(self.weight.numpy().T) if isinstance(layer, Dense)
                         and self.dtype == torch.float32 and len(w) >= EVENT_MIN_OUTPUTS else None)

    def __call__(self, s: torch.Tensor, spikes: Optional[int] = None,
                 out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Synaptic input for a batch ``s`` of shape (M, *in_shape); returns (M, *shape).

        ``spikes``, the number of nonzero entries of ``s`` when the caller knows it, lets a
        sparse input of a dense layer take the event-driven path. ``out``, a contiguous
        tensor of ``self.dtype`` and M x prod(shape) elements, is written instead of a new
        tensor where the path allows (dense layers): a reused buffer stays mapped, while a
        new large one costs a page fault per 4 KiB.

        The values are exact; the dtype is the cheapest that holds them: the float sums
        themselves unless the fixed-point synapse must shift or wrap them (then int64).
        """
        a = self._linear(s.to(self.dtype), self.weight, spikes, out)
        if not self.fixed:
            return a
        if isinstance(self.layer, Dense):
            if self.weight_exp == 0:
                return a
            a = a.to(torch.int64)   # exact: the sums are integers (see the module docstring)
            return a << self.weight_exp if self.weight_exp > 0 else a >> -self.weight_exp
        return signed_wrap(a.to(torch.int64)) if self.wraps else a   # no sum can reach 2**23: nothing wraps

    def _linear(self, s: torch.Tensor, weight: torch.Tensor, spikes: Optional[int] = None,
                out: Optional[torch.Tensor] = None) -> torch.Tensor:
        layer = self.layer
        if isinstance(layer, Dense):
            s = s.reshape(s.shape[0], weight.shape[1])
            if out is not None:
                out = out.view(s.shape[0], weight.shape[0])
            if (spikes is not None and spikes <= EVENT_MAX_DENSITY * s.numel() and self.weight_t is not None
                    and weight is self.weight and s.is_contiguous()):
                if out is None:
                    out = torch.empty((s.shape[0], weight.shape[0]), dtype=torch.float32)
                kernels.parallel(kernels.dense_events, (s.numpy(), self.weight_t, out.numpy()), len(s), out.numel())
                return out
            return torch.matmul(s, weight.T, out=out) if out is not None else s @ weight.T
        if isinstance(layer, Conv):
            return F.conv2d(s, weight, stride=layer.stride, padding=layer.padding,
                            dilation=layer.dilation, groups=layer.groups)
        return F.conv2d(s, weight, stride=layer.stride, padding=layer.padding, groups=layer.shape[0])

    def fanout(self, in_shape: tuple[int, ...]) -> np.ndarray:
        """Number of synapses leaving each input neuron (borders included), shape ``in_shape``.

        It is the gradient of the summed output with every weight set to one.
        """
        x = torch.zeros((1, *in_shape), dtype=torch.float64, requires_grad=True)
        self._linear(x, torch.ones_like(self.weight, dtype=torch.float64)).sum().backward()
        return np.rint(x.grad[0].numpy()).astype(np.int64)
