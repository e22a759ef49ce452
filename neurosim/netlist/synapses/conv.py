"""``conv``: 2-D convolution of (C, H, W) spikes (netx ``conv``), PyTorch's cross-correlation.

    a[o, y, x] = sum_{c, i, j} weight[o, c, i, j] * s[g(o) + c, y*sy - py + i*dy, x*sx - px + j*dx]

``weight`` (out, in/groups, kh, kw); ``stride``, ``padding``, ``dilation`` are (y, x).
HDF5 keys: ``weight`` (a trailing 1 from SLAYER is accepted), ``inChannels``, ``outChannels``,
``kernelSize``, ``stride``, ``padding``, ``dilation``, ``groups``.
``fixed`` mode: sums wrap to signed 24 bits (Lava's ``PyConvModelFixed``).
Lava: ``lava.proc.conv.process.Conv`` with netx's weight layout (:mod:`neurosim.lava.synapses`),
whose int8 geometry fields this module's :func:`check_lava_geometry` checks.

An integer kernel that is an average pool folded into a smaller conv (what
:func:`neurosim.convert.rmp.fold_pool` writes: stride ``s p``, padding ``P p``, kernel ``k p``,
every ``p x p`` block of the kernel one value) is, in the same integers with ``p**2`` fewer
multiplications (``pool_split`` of :mod:`neurosim.sim.synapse_maps`, used by the simulator)::

    conv(x, W, stride s p, padding P p) = conv(sumpool_p(x), W[..., ::p, ::p], stride s, padding P)

How the sums are computed (all exact for spikes and integer weights) is the simulator's, in
:mod:`neurosim.sim.synapse_maps`: an event-driven gather for sparse stride-1 convolutions,
im2col and one GEMM for a small stride-1 reduction (an image's first conv), PyTorch's direct
convolution otherwise, and the sum pool as ``p**2`` strided adds.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from neurosim.netlist.schema import MAX_SYNAPSES, STATE_BITS, Shape, conv_output_hw
from neurosim.netlist.synapses.base import SynapseKind, taps

#: Lava's Conv models keep kernel size, stride, padding, dilation and groups in int8 arrays.
INT8_MAX = (1 << 7) - 1


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


#: Largest stride, padding and dilation of a conv or pool window (per axis), and conv groups.
GEOMETRY_MAX = 1 << 10
GROUPS_MAX = 1 << 16


def _integers(values, n: int) -> Optional[tuple[int, ...]]:
    """``values`` as ``n`` whole numbers, or None."""
    try:
        vals = tuple(values)
    except TypeError:
        return None
    if len(vals) != n or not all(isinstance(v, numbers.Real) and float(v).is_integer() for v in vals):
        return None
    return tuple(int(v) for v in vals)


def geometry_problem(stride, padding, dilation=(1, 1)) -> Optional[tuple[str, str]]:
    """``(key, reason)`` if ``stride`` or ``dilation`` is not two integers in 1 .. GEOMETRY_MAX,
    or ``padding`` two in 0 .. GEOMETRY_MAX; else None."""
    for key, values, lo in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        vals = _integers(values, 2)
        if vals is None or not all(lo <= v <= GEOMETRY_MAX for v in vals):
            return key, f"{key} {values!r:.60} is not two integers in [{lo}, {GEOMETRY_MAX}]"
    return None


def read_geometry(keys, default_stride=(1, 1)) -> tuple:
    """``stride``, ``padding``, ``dilation`` (each (y, x); a scalar is broadcast)."""
    return (keys.ints("stride", 2, default=default_stride), keys.ints("padding", 2, default=(0, 0)),
            keys.ints("dilation", 2, default=(1, 1)))


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

    def rules(self) -> Optional[tuple[str, str]]:
        """Stride, padding, dilation: :func:`geometry_problem`; groups an integer in 1 .. GROUPS_MAX."""
        groups = _integers((self.groups,), 1)
        if groups is None or not 1 <= groups[0] <= GROUPS_MAX:
            return "groups", f"groups {self.groups!r:.40} is not an integer in [1, {GROUPS_MAX}]"
        return geometry_problem(self.stride, self.padding, self.dilation)

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

    def fanout(self, in_shape: Shape) -> np.ndarray:
        o, _, kh, kw = self.weight.shape
        oh, ow = self.out_shape(in_shape)[1:]
        ys = taps(in_shape[1], oh, kh, self.stride[0], self.padding[0], self.dilation[0])
        xs = taps(in_shape[2], ow, kw, self.stride[1], self.padding[1], self.dilation[1])
        per_channel = (o // self.groups) * np.outer(ys, xs)
        return np.ascontiguousarray(np.broadcast_to(per_channel, tuple(in_shape)))

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
        """The file's forms: a 5-D weight ending in 1 (SLAYER), ``kernelSize`` that agrees with
        the weight; geometry and shapes are :meth:`rules` and :meth:`out_shape`."""
        stride, padding, dilation = read_geometry(keys)
        groups = keys.ints("groups", 1, default=(1,))[0]

        def check(s: tuple[int, ...]) -> None:
            if len(s) == 5 and s[4] != 1:
                raise keys.error(f"a 5-D conv weight must end in 1, found {s}", "weight")

        weight = keys.array("weight", ndim=(4, 5), max_size=MAX_SYNAPSES, check_shape=check)
        if weight.ndim == 5:
            weight = weight[..., 0]
        kernel = tuple(int(k) for k in weight.shape[2:])
        if keys.has("kernelSize") and keys.ints("kernelSize", 2) != kernel:
            raise keys.error(f"kernelSize disagrees with weight shape {weight.shape}", "kernelSize")
        return cls(weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
