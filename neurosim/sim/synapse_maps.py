"""The simulator's table of synapse kinds: each kind's map on a batch of spikes, in PyTorch.

:data:`MAPS` (a :class:`~neurosim.netlist.synapses.base.KindTable`) gives for each kind of
:data:`neurosim.netlist.synapses.KINDS` a :class:`SynapseMap` subclass; ``MAPS.of(kind)(kind)``
is the map of one projection, used by :class:`neurosim.sim.synapse.Synapse`:

* :meth:`SynapseMap.torch_weight`: the weight array :meth:`~SynapseMap.linear` takes;
* :meth:`SynapseMap.linear`: the map on a batch ``s`` (M, *in_shape), (M, *out_shape) out;
* :meth:`SynapseMap.pool_split` / :meth:`~SynapseMap.pooled_linear`: a folded pool computed
  as a sum pool then a smaller map (:mod:`neurosim.netlist.synapses.conv`'s docstring);
* :meth:`SynapseMap.event_weight` / :meth:`~SynapseMap.events_pay` /
  :meth:`~SynapseMap.event_linear`: an event-driven path for sparse 0/1 spikes.

How the conv sums are computed (all exact for spikes and integer weights): PyTorch's direct
convolution, except where its kernels are slow on the shapes a converted net has, measured on
2 cores for a batch of 128: a stride-1 reduction of at most :data:`SMALL_REDUCTION` terms over
a kernel larger than 1 x 1 (an image's first conv: 1 channel x 3 x 3) as im2col and one GEMM
(5.5 against 20 ms; a strided or 1 x 1 conv is faster in PyTorch: the 16 -> 32 channel,
stride-2 shortcut of a ResNet at 32 x 32, batch 43, takes 0.7 against 3.1 ms), and the sum
pool as ``p**2`` strided adds (2.6 against 8.3 ms for ``avg_pool2d`` at 32 x 28 x 28). A
stride-1 conv on sparse spikes is event-driven (:func:`neurosim.sim.kernels.conv_events`)
where :meth:`ConvMap.events_pay`'s cost model says so: on one core, batch 43, 3 x 3 kernels,
at 10 % spikes 16 -> 16 channels at 32 x 32 take 2.2 ms against PyTorch's 3-6.6 ms, 64 -> 64
at 8 x 8 1.2 against 1.8 ms; at 1 % spikes 1.1 and 0.4 ms.
"""
from __future__ import annotations

from math import gcd
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.netlist.schema import Shape, conv_output_hw
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool
from neurosim.netlist.kinds import KindTable
from neurosim.netlist.synapses.base import SynapseKind
from neurosim.sim import kernels

#: Reductions (in/groups x kh x kw terms) up to this size are one GEMM over unfolded patches
#: (stride 1, kernel larger than 1 x 1).
SMALL_REDUCTION = 16
#: The event-driven conv's cost model (:meth:`ConvMap.events_pay`), in multiply-adds of
#: PyTorch's direct conv: per weight a spike adds, and per input or accumulator element of an
#: image (listing the spikes, clearing and reading the accumulator); fitted on one core to
#: 3 x 3 convs of 1 to 128 channels at 8 x 8 to 32 x 32, 1 x 1 and 5 x 5 ones, at 1-20 % spikes.
EVENT_WEIGHT_COST = 3
EVENT_ELEMENT_COST = 30


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
    if groups == 1 and i * kh * kw <= SMALL_REDUCTION and kh * kw > 1 and tuple(stride) == (1, 1):
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

    def event_weight(self, weight: np.ndarray, in_shape: Shape) -> Optional[np.ndarray]:
        """The prepared ``weight`` as :meth:`event_linear` takes it, or None if the map has no
        event-driven path for this geometry."""
        return None

    def events_pay(self, shape: tuple[int, ...], spikes: int) -> bool:
        """Whether :meth:`event_linear` is expected to be faster than :meth:`linear` on a batch of
        ``shape`` (M, *in_shape) holding ``spikes`` ones."""
        return False

    def event_linear(self, s: torch.Tensor, event_weight: np.ndarray, out: Optional[torch.Tensor]) -> torch.Tensor:
        """:meth:`linear` of float32 0/1 spikes ``s`` (contiguous) with the float32 weights of
        :meth:`event_weight`, the same sums in another order (exact for integers while every row
        of ``|w|`` sums below 2**24); written into ``out`` (M x prod(out_shape) float32
        elements) if given."""
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

    def event_weight(self, weight: np.ndarray, in_shape: Shape) -> Optional[np.ndarray]:
        """``weight`` flipped, output channel last, (in, kh, kw x out), as
        :func:`neurosim.sim.kernels.conv_events` takes it; None for a stride or dilation other
        than 1, groups, or padding of the kernel's size or more."""
        k = self.kind
        o, i, kh, kw = weight.shape
        if (tuple(k.stride) != (1, 1) or tuple(k.dilation) != (1, 1) or k.groups != 1
                or k.padding[0] >= kh or k.padding[1] >= kw):
            return None
        return np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 2, 3, 0)).reshape(i, kh, kw * o)

    def events_pay(self, shape: tuple[int, ...], spikes: int) -> bool:
        """The cost model of :data:`EVENT_WEIGHT_COST` and :data:`EVENT_ELEMENT_COST` against
        the direct conv's multiply-adds."""
        k = self.kind
        m, c, h, w = shape
        o, _, kh, kw = k.weight.shape
        oh, ow = conv_output_hw((h, w), (kh, kw), k.stride, k.padding, k.dilation)
        dense = m * o * oh * ow * c * kh * kw
        events = (spikes * kh * kw * o * EVENT_WEIGHT_COST
                  + m * (c * h * w + (h + kh - 1) * (w + kw - 1) * o) * EVENT_ELEMENT_COST)
        return events < dense

    def event_linear(self, s: torch.Tensor, event_weight: np.ndarray, out: Optional[torch.Tensor]) -> torch.Tensor:
        k = self.kind
        m, _, h, w = s.shape
        o, _, kh, kw = k.weight.shape
        oh, ow = conv_output_hw((h, w), (kh, kw), k.stride, k.padding, k.dilation)
        out = torch.empty((m, o, oh, ow), dtype=torch.float32) if out is None else out.view(m, o, oh, ow)
        kernels.parallel(kernels.conv_events, (s.numpy(), event_weight, *k.padding, out.numpy()), m, out.numel())
        return out


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
