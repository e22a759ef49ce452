"""The simulator's table of synapse kinds: each kind's map on a batch of spikes, in PyTorch.

:data:`MAPS` (a :class:`~neurosim.netlist.synapses.base.KindTable`) gives for each kind of
:data:`neurosim.netlist.synapses.KINDS` a :class:`SynapseMap` subclass; ``MAPS.of(kind)(kind)``
is the map of one projection, used by :class:`neurosim.sim.synapse.Synapse`:

* :meth:`SynapseMap.torch_weight`: the weight array :meth:`~SynapseMap.linear` takes;
* :meth:`SynapseMap.linear`: the map on a batch ``s`` (M, *in_shape), (M, *out_shape) out;
* :meth:`SynapseMap.pool_split` / :meth:`~SynapseMap.pooled_linear`: a folded pool computed
  as a sum pool then a smaller map (:mod:`neurosim.netlist.synapses.conv`'s docstring).

How the conv sums are computed (all exact for spikes and integer weights): PyTorch's direct
convolution, except where its kernels are slow on the shapes a converted net has, measured on
2 cores for a batch of 128: a reduction of at most :data:`SMALL_REDUCTION` terms (an image's
first conv: 1 channel x 3 x 3) as im2col and one GEMM (5.5 against 20 ms), and the sum pool
as ``p**2`` strided adds (2.6 against 8.3 ms for ``avg_pool2d`` at 32 x 28 x 28).
"""
from __future__ import annotations

from math import gcd
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.netlist.schema import Shape, conv_output_hw
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool
from neurosim.netlist.synapses.base import KindTable, SynapseKind

#: Reductions (in/groups x kh x kw terms) up to this size are one GEMM over unfolded patches.
SMALL_REDUCTION = 16


def sum_pool(s, p: int):
    """Sum of every ``p x p`` block of ``s`` (N, C, H, W), H and W multiples of ``p``: ``p**2``
    strided adds (module docstring)."""
    rows = s[:, :, 0::p]
    for i in range(1, p):
        rows = rows + s[:, :, i::p]
    out = rows[..., 0::p]
    for j in range(1, p):
        out = out + rows[..., j::p]
    return out


def conv2d(s, weight, stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
           groups: int):
    """PyTorch's ``conv2d`` of ``s`` (N, C, H, W), or for a small reduction (module
    docstring) the same sums as im2col and one GEMM."""
    o, i, kh, kw = weight.shape
    if groups == 1 and i * kh * kw <= SMALL_REDUCTION:
        oh, ow = conv_output_hw(s.shape[2:], (kh, kw), stride, padding, dilation)
        cols = F.unfold(s, (kh, kw), dilation=dilation, padding=padding, stride=stride)
        return (weight.reshape(o, -1) @ cols).reshape(s.shape[0], o, oh, ow)
    return F.conv2d(s, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)


class SynapseMap:
    """The map of one projection of synapse kind ``kind`` on batched torch tensors."""

    def __init__(self, kind: SynapseKind) -> None:
        self.kind = kind

    def torch_weight(self, weight: np.ndarray, in_shape: Shape) -> np.ndarray:
        """The weight array :meth:`linear` takes (e.g. a shared kernel repeated per channel)."""
        return weight

    def linear(self, s, weight):
        """The map on a batch ``s`` (M, *in_shape) with ``weight`` from :meth:`torch_weight`
        (torch tensors); returns (M, *out_shape)."""
        raise NotImplementedError

    def pool_split(self, weight: np.ndarray, in_shape: Shape) -> Optional[tuple[int, np.ndarray]]:
        """``(p, small)`` if the map with the prepared ``weight`` on spikes of ``in_shape`` is a
        ``p x p`` sum pool followed by a smaller map with weights ``small``
        (:meth:`pooled_linear`), else None."""
        return None

    def pooled_linear(self, s, small, p: int):
        """:meth:`linear` computed as :meth:`pool_split`'s sum pool ``p`` and smaller map
        (``small`` as a torch tensor)."""
        raise NotImplementedError


class DenseMap(SynapseMap):
    def linear(self, s, weight):
        s = s.reshape(s.shape[0], weight.shape[1])
        return s @ weight.T


class IdentityMap(SynapseMap):
    def linear(self, s, weight):
        return s * weight


class ConvMap(SynapseMap):
    def linear(self, s, weight):
        k = self.kind
        return conv2d(s, weight, k.stride, k.padding, k.dilation, k.groups)

    def pool_split(self, weight: np.ndarray, in_shape: Shape) -> Optional[tuple[int, np.ndarray]]:
        """The largest such ``p`` (:mod:`neurosim.netlist.synapses.conv`'s docstring) for
        integer ``weight``, checked on random spikes, with ``weight[..., ::p, ::p]``; None if
        there is none."""
        k = self.kind
        if k.dilation != (1, 1) or not np.array_equal(weight, np.round(weight)):
            return None
        (sy, sx), (py, px), (kh, kw) = k.stride, k.padding, weight.shape[2:]
        g = gcd(gcd(gcd(sy, sx), gcd(py, px)), gcd(gcd(kh, kw), gcd(*in_shape[1:])))
        for p in (q for q in range(g, 1, -1) if g % q == 0):
            o, i = weight.shape[:2]
            blocks = weight.reshape(o, i, kh // p, p, kw // p, p)
            if not (blocks == blocks[:, :, :, :1, :, :1]).all():
                continue
            x = (torch.rand((2, *in_shape), generator=torch.Generator().manual_seed(0)) < 0.5).double()
            w = torch.as_tensor(weight, dtype=torch.float64)
            small = w[:, :, ::p, ::p].contiguous()
            ref, got = self.linear(x, w), self.pooled_linear(x, small, p)
            if got.shape == ref.shape and torch.equal(got, ref):
                return p, small.numpy()
        return None

    def pooled_linear(self, s, small, p: int):
        k = self.kind
        return conv2d(sum_pool(s, p), small, (k.stride[0] // p, k.stride[1] // p),
                      (k.padding[0] // p, k.padding[1] // p), (1, 1), k.groups)


class PoolMap(SynapseMap):
    def torch_weight(self, weight: np.ndarray, in_shape: Shape) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(weight, (in_shape[0], 1, *self.kind.kernel_size)))

    def linear(self, s, weight):
        k = self.kind
        return F.conv2d(s, weight, stride=k.stride, padding=k.padding, groups=weight.shape[0])


#: Synapse kind class -> its :class:`SynapseMap` in the simulator.
MAPS: KindTable[type] = KindTable("the simulator", {
    Dense: DenseMap,
    Conv: ConvMap,
    Pool: PoolMap,
    Identity: IdentityMap,
})


def synapse_map(kind: SynapseKind) -> SynapseMap:
    """The simulator's map of ``kind`` (``ValueError`` naming the reason if it has none)."""
    return MAPS.of(kind)(kind)
