"""``conv``: 2-D convolution of (C, H, W) spikes (netx ``conv``), PyTorch's cross-correlation.

    a[o, y, x] = sum_{c, i, j} weight[o, c, i, j] * s[g(o) + c, y*sy - py + i*dy, x*sx - px + j*dx]

``weight`` (out, in/groups, kh, kw); ``stride``, ``padding``, ``dilation`` are (y, x).
HDF5 keys: ``weight`` (a trailing 1 from SLAYER is accepted), ``inChannels``, ``outChannels``,
``kernelSize``, ``stride``, ``padding``, ``dilation``, ``groups``.
``fixed`` mode: sums wrap to signed 24 bits (Lava's ``PyConvModelFixed``).
Lava: ``lava.proc.conv.process.Conv`` with netx's weight layout (:func:`lava_conv_weight`).

An integer kernel that is an average pool folded into a smaller conv (what
:func:`neurosim.convert.rmp.fold_pool` writes: stride ``s p``, padding ``P p``, kernel ``k p``,
every ``p x p`` block of the kernel one value) is, in the same integers with ``p**2`` fewer
multiplications (:meth:`Conv.pool_split`, used by the simulator)::

    conv(x, W, stride s p, padding P p) = conv(sumpool_p(x), W[..., ::p, ::p], stride s, padding P)

How the sums are computed (all exact for spikes and integer weights, see
:mod:`neurosim.sim.synapse`): PyTorch's direct convolution, except where its kernels are slow
on the shapes a converted net has, measured on 2 cores for a batch of 128: a reduction of at
most :data:`SMALL_REDUCTION` terms (an image's first conv: 1 channel x 3 x 3) as im2col and
one GEMM (5.5 against 20 ms), and the sum pool as ``p**2`` strided adds (2.6 against 8.3 ms
for ``avg_pool2d`` at 32 x 28 x 28).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from typing import ClassVar, Optional

import numpy as np

from neurosim.netlist.schema import MAX_SYNAPSES, STATE_BITS, Shape, conv_output_hw
from neurosim.netlist.synapses.base import SynapseKind

#: Reductions (in/groups x kh x kw terms) up to this size are one GEMM over unfolded patches.
SMALL_REDUCTION = 16
#: Lava's Conv models keep kernel size, stride, padding, dilation and groups in int8 arrays.
INT8_MAX = (1 << 7) - 1


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
    import torch.nn.functional as F

    o, i, kh, kw = weight.shape
    if groups == 1 and i * kh * kw <= SMALL_REDUCTION:
        oh, ow = conv_output_hw(s.shape[2:], (kh, kw), stride, padding, dilation)
        cols = F.unfold(s, (kh, kw), dilation=dilation, padding=padding, stride=stride)
        return (weight.reshape(o, -1) @ cols).reshape(s.shape[0], o, oh, ow)
    return F.conv2d(s, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)


def lava_conv_weight(weight: np.ndarray) -> np.ndarray:
    """PyTorch cross-correlation weight (out, in, kh, kw) to Lava's conv weight (out, kw, kh, in)."""
    w = np.asarray(weight)
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose((0, 3, 2, 1)))


def ungroup_conv_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv weight (out, in/groups, kh, kw) as the equivalent ``groups = 1`` weight
    (out, in, kh, kw), zero outside each group's block.

    Lava's Conv models hold ``groups`` in int8, so more than 127 groups (e.g. pooling of 128+
    channels, which is a conv with ``groups = C``) cannot be expressed; the block weight gives
    the same sums (the zeros add nothing, in float and fixed point) at the cost of one
    ``convolve2d`` per output/input channel pair in Lava's Conv model.
    """
    out, in_g, kh, kw = weight.shape
    out_g = out // groups
    full = np.zeros((out, in_g * groups, kh, kw), dtype=weight.dtype)
    for g in range(groups):
        full[g * out_g:(g + 1) * out_g, g * in_g:(g + 1) * in_g] = weight[g * out_g:(g + 1) * out_g]
    return full


def check_lava_geometry(kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                        dilation: tuple[int, int]) -> Optional[str]:
    """Why Lava's Conv cannot take this geometry (int8 fields), or None."""
    for key, values in (("kernelSize", kernel), ("stride", stride), ("padding", padding),
                        ("dilation", dilation)):
        if max(values) > INT8_MAX:
            return (f"'{key}' = {tuple(values)}: Lava's Conv ProcessModels keep it in int8, values "
                    f"above {INT8_MAX} are not supported")
    return None


def lava_conv_process(weight: np.ndarray, groups: int, stride, padding, dilation, in_shape: Shape,
                      out_shape: Shape, mode: str):
    """``lava.proc.conv.process.Conv`` for a PyTorch-layout weight (groups above 127 expanded)."""
    from lava.proc.conv.process import Conv as LavaConv

    from neurosim.lava.layout import lava_shape

    fixed = mode == "fixed"
    if groups > INT8_MAX:
        weight, groups = ungroup_conv_weight(np.asarray(weight), groups), 1
    w = lava_conv_weight(np.asarray(weight, dtype=np.float64))
    w = np.round(w).astype(np.int64) if fixed else w
    proc = LavaConv(weight=w, input_shape=lava_shape(in_shape), stride=tuple(stride[::-1]),
                    padding=tuple(padding[::-1]), dilation=tuple(dilation[::-1]), groups=int(groups),
                    num_message_bits=0)
    if tuple(proc.output_shape) != lava_shape(out_shape):
        raise ValueError(f"Lava's Conv gives shape {tuple(proc.output_shape)[::-1]} for a layer of "
                         f"shape {tuple(out_shape)}")
    return proc


def read_geometry(keys, default_stride=(1, 1)) -> tuple:
    """``stride``, ``padding``, ``dilation`` (each (y, x); a scalar is broadcast)."""
    stride = keys.ints("stride", 2, default=default_stride, lo=1, hi=1 << 10)
    padding = keys.ints("padding", 2, default=(0, 0), lo=0, hi=1 << 10)
    dilation = keys.ints("dilation", 2, default=(1, 1), lo=1, hi=1 << 10)
    return stride, padding, dilation


@dataclass
class Conv(SynapseKind):
    """2-D cross-correlation, PyTorch semantics: ``weight`` (out, in/groups, kh, kw);
    ``stride``, ``padding``, ``dilation`` (y, x)."""
    weight: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    type_name: ClassVar[str] = "conv"
    wrap_bits: ClassVar[Optional[int]] = STATE_BITS

    def out_shape(self, in_shape: Shape) -> Shape:
        w = self.weight
        if len(in_shape) != 3:
            raise ValueError(f"conv needs (C, H, W) input, got {tuple(in_shape)}")
        if w.ndim != 4 or in_shape[0] % self.groups or w.shape[0] % self.groups \
                or w.shape[1] * self.groups != in_shape[0]:
            raise ValueError(f"weight {w.shape} with groups={self.groups} does not take "
                             f"{in_shape[0]} input channels")
        for k, size, pad, d in zip(w.shape[2:], in_shape[1:], self.padding, self.dilation):
            if d * (k - 1) + 1 > size + 2 * pad:
                raise ValueError(f"kernel {tuple(w.shape[2:])} is larger than the padded input {tuple(in_shape)}")
        return (int(w.shape[0]), *conv_output_hw(in_shape[1:], w.shape[2:], self.stride, self.padding,
                                                  self.dilation))

    def linear(self, s, weight):
        return conv2d(s, weight, self.stride, self.padding, self.dilation, self.groups)

    def pool_split(self, weight: np.ndarray, in_shape: Shape) -> Optional[tuple[int, np.ndarray]]:
        """The largest such ``p`` (module docstring) for integer ``weight``, checked on random
        spikes, with ``weight[..., ::p, ::p]``; None if there is none."""
        import torch

        if self.dilation != (1, 1) or not np.array_equal(weight, np.round(weight)):
            return None
        (sy, sx), (py, px), (kh, kw) = self.stride, self.padding, weight.shape[2:]
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
        return conv2d(sum_pool(s, p), small, (self.stride[0] // p, self.stride[1] // p),
                      (self.padding[0] // p, self.padding[1] // p), (1, 1), self.groups)

    def write(self, g) -> None:
        g.create_dataset("inChannels", data=np.int64(self.weight.shape[1] * self.groups))
        g.create_dataset("outChannels", data=np.int64(self.weight.shape[0]))
        g.create_dataset("kernelSize", data=np.asarray(self.weight.shape[2:], dtype=np.int64))
        g.create_dataset("stride", data=np.asarray(self.stride, dtype=np.int64))
        g.create_dataset("padding", data=np.asarray(self.padding, dtype=np.int64))
        g.create_dataset("dilation", data=np.asarray(self.dilation, dtype=np.int64))
        g.create_dataset("groups", data=np.int64(self.groups))
        g.create_dataset("weight", data=np.asarray(self.weight, dtype=np.float32))

    @classmethod
    def read(cls, keys, in_shape: Shape, shape: Shape) -> "Conv":
        if len(in_shape) != 3 or len(shape) != 3:
            raise keys.error(f"'conv' needs (C, H, W) shapes, got input {tuple(in_shape)} and shape {shape}",
                             "shape")
        stride, padding, dilation = read_geometry(keys)
        groups = keys.ints("groups", 1, default=(1,), lo=1, hi=1 << 16)[0]

        def check(s: tuple[int, ...]) -> None:
            if len(s) == 5 and s[4] != 1:
                raise keys.error(f"a 5-D conv weight must end in 1, found {s}", "weight")
            if in_shape[0] % groups or s[0] % groups or s[1] * groups != in_shape[0]:
                raise keys.error(f"weight {s} with groups={groups} does not take {in_shape[0]} input "
                                 "channels", "weight")
            if s[0] != shape[0]:
                raise keys.error(f"weight {s} gives {s[0]} output channels, the layer's shape is {shape}",
                                 "weight")
            for k, size, pad, d in zip(s[2:4], in_shape[1:], padding, dilation):
                if d * (k - 1) + 1 > size + 2 * pad:
                    raise keys.error(f"kernel {tuple(s[2:4])} is larger than the padded input "
                                     f"{tuple(in_shape)}", "weight")

        weight = keys.array("weight", ndim=(4, 5), max_size=MAX_SYNAPSES, check_shape=check)
        if weight.ndim == 5:
            weight = weight[..., 0]
        kernel = tuple(int(k) for k in weight.shape[2:])
        if keys.has("kernelSize") and keys.ints("kernelSize", 2, lo=1) != kernel:
            raise keys.error(f"kernelSize disagrees with weight shape {weight.shape}", "kernelSize")
        return cls(weight, stride=stride, padding=padding, dilation=dilation, groups=groups)

    def lava_process(self, in_shape: Shape, out_shape: Shape, mode: str):
        return lava_conv_process(self.weight, self.groups, self.stride, self.padding, self.dilation,
                                 in_shape, out_shape, mode)

    def lava_refusal(self, in_shape: Shape) -> Optional[str]:
        return check_lava_geometry(self.weight.shape[2:], self.stride, self.padding, self.dilation)

    def lava_step_cost(self, in_shape: Shape) -> int:
        return int(self.weight.shape[0] * self.weight.shape[1])
