"""Synaptic arithmetic of each layer type, per numeric mode, on batched PyTorch tensors.

``float``: the exact linear map (dense matmul, cross-correlation, sum pooling) in float64.
``fixed``: the same map on integer mantissas, then what Lava's ``fixed_pt`` synapse models do:
``dense`` weights are mapped to Loihi's synapse exactly as netx and Lava do it (:func:`loihi_dense`;
lossless for integer weights in [-256, 254]);
``conv`` and ``pool`` sums wrap to signed 24 bits (``lava.proc.conv.utils.signed_clamp``).
Spikes are 0/1, so a float64 sum of integer weights is exact (below 2**53).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.netlist.schema import STATE_BITS, Conv, Dense, Layer, Pool


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

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        """Synaptic input for a batch ``s`` of shape (M, *in_shape); returns (M, *shape)."""
        a = self._linear(s.to(self.dtype), self.weight)
        if not self.fixed:
            return a.to(torch.float64)
        a = a.to(torch.int64)        # exact: the sums are integers (see the module docstring)
        if isinstance(self.layer, Dense):
            if self.weight_exp == 0:
                return a
            return a << self.weight_exp if self.weight_exp > 0 else a >> -self.weight_exp
        return signed_wrap(a) if self.wraps else a     # no sum can reach 2**23: nothing wraps

    def _linear(self, s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        if isinstance(layer, Dense):
            return s.reshape(s.shape[0], weight.shape[1]) @ weight.T
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
