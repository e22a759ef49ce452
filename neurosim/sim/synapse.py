"""Synaptic arithmetic of each layer type, per numeric mode, on batched PyTorch tensors.

``float``: the exact linear map (dense matmul, cross-correlation, sum pooling) in float64.
``fixed``: the same map on integer mantissas, then what Lava's ``fixed_pt`` synapse models do:
``dense`` weights pass through Lava's ``clip_weights``/``truncate_weights`` (8-bit, sign mode
chosen from the matrix: mixed-sign weights lose their lowest bit) and the sum is exact;
``conv`` and ``pool`` sums wrap to signed 24 bits (``lava.proc.conv.utils.signed_clamp``).
Spikes are 0/1, so a float64 sum of integer weights is exact (below 2**53).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.netlist.schema import STATE_BITS, Conv, Dense, Layer, Pool


def lava_dense_weights(weight: np.ndarray) -> np.ndarray:
    """Integer dense weights as Lava's ``PyDenseModelBitAcc`` uses them (8 bits, weight_exp 0)."""
    w = np.asarray(weight).astype(np.int64)
    if w.min() >= 0:                      # excitatory: [0, 255], no truncation
        return np.clip(w, 0, 255)
    if w.max() <= 0:                      # inhibitory: [-255, 0], no truncation
        return -np.clip(-w, 0, 255)
    return (np.clip(w, -256, 255) >> 1) << 1   # mixed: [-256, 255], lowest bit dropped


def signed_wrap(x: torch.Tensor, bits: int = STATE_BITS) -> torch.Tensor:
    """Two's-complement wrap of integers to ``bits`` bits."""
    base = 1 << bits
    return torch.remainder(x + base // 2, base) - base // 2


class Synapse:
    """The prepared weights of one layer and the map from input spikes to its synaptic input."""

    def __init__(self, layer: Layer, fixed: bool) -> None:
        self.layer, self.fixed = layer, fixed
        if isinstance(layer, Dense):
            w = lava_dense_weights(layer.weight) if fixed else layer.weight
        elif isinstance(layer, Conv):
            w = layer.weight
        elif isinstance(layer, Pool):
            c = layer.shape[0]
            w = np.broadcast_to(layer.weight, (c, 1, *layer.kernel_size))
        else:
            raise TypeError(f"{type(layer).__name__} has no synapse")
        self.weight = torch.as_tensor(np.ascontiguousarray(w), dtype=torch.float64)

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        """Synaptic input for a batch ``s`` of shape (M, *in_shape); returns (M, *shape)."""
        a = self._linear(s.to(torch.float64), self.weight)
        if not self.fixed:
            return a
        a = torch.round(a).to(torch.int64)
        return a if isinstance(self.layer, Dense) else signed_wrap(a)

    def _linear(self, s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        if isinstance(layer, Dense):
            return s.reshape(s.shape[0], -1) @ weight.T
        if isinstance(layer, Conv):
            return F.conv2d(s, weight, stride=layer.stride, padding=layer.padding,
                            dilation=layer.dilation, groups=layer.groups)
        return F.conv2d(s, weight, stride=layer.stride, padding=layer.padding, groups=layer.shape[0])

    def fanout(self, in_shape: tuple[int, ...]) -> np.ndarray:
        """Number of synapses leaving each input neuron (borders included), shape ``in_shape``.

        It is the gradient of the summed output with every weight set to one.
        """
        x = torch.zeros((1, *in_shape), dtype=torch.float64, requires_grad=True)
        self._linear(x, torch.ones_like(self.weight)).sum().backward()
        return np.rint(x.grad[0].numpy()).astype(np.int64)
