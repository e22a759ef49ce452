"""``pool``: sum pooling with one kernel shared by every channel (SLAYER ``pool``; netx cannot
load it). Average pooling is a uniform kernel ``1/(kh*kw)`` (scaled with the layer).

    a[c, y, x] = sum_{i, j} weight[i, j] * s[c, y*sy - py + i, x*sx - px + j]

HDF5 keys: ``weight`` (1, 1, kh, kw) (also read: (kh, kw), a scalar with ``kernelSize``),
``kernelSize``, ``stride``, ``padding``, ``dilation`` (must be 1).
``fixed`` mode: sums wrap to signed 24 bits. Lava: ``Conv`` with ``groups = C``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from neurosim.netlist.schema import STATE_BITS, Shape, conv_output_hw
from neurosim.netlist.synapses.base import SynapseKind, taps
from neurosim.netlist.synapses.conv import geometry_problem, read_geometry

#: Most values in a pool's kernel (kh * kw).
KERNEL_MAX = 1 << 12


@dataclass
class Pool(SynapseKind):
    """Sum pooling: one ``weight`` kernel (kh, kw) for all channels, ``stride``/``padding`` (y, x)."""
    weight: np.ndarray
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (0, 0)

    type_name: ClassVar[str] = "pool"
    wrap_bits: ClassVar[Optional[int]] = STATE_BITS

    @property
    def kernel_size(self) -> tuple[int, int]:
        return tuple(int(k) for k in self.weight.shape[-2:])

    def rules(self) -> Optional[tuple[str, str]]:
        """Stride and padding: :func:`~neurosim.netlist.synapses.conv.geometry_problem`; at most
        KERNEL_MAX kernel values."""
        if np.size(self.weight) > KERNEL_MAX:
            return "weight", f"a kernel of {np.size(self.weight)} values exceeds the limit of {KERNEL_MAX}"
        return geometry_problem(self.stride, self.padding)

    def out_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 3:
            raise ValueError(f"pool needs (C, H, W) input, got {tuple(in_shape)}")
        if self.weight.ndim != 2:
            raise ValueError(f"pool weight must be one (kh, kw) kernel, got shape {self.weight.shape}")
        for k, size, pad in zip(self.kernel_size, in_shape[1:], self.padding):
            if k > size + 2 * pad:
                raise ValueError(f"kernel {self.kernel_size} is larger than the padded input {tuple(in_shape)}")
        return (int(in_shape[0]), *conv_output_hw(in_shape[1:], self.kernel_size, self.stride, self.padding))

    def fanout(self, in_shape: Shape) -> np.ndarray:
        (kh, kw), (oh, ow) = self.kernel_size, self.out_shape(in_shape)[1:]
        ys = taps(in_shape[1], oh, kh, self.stride[0], self.padding[0])
        xs = taps(in_shape[2], ow, kw, self.stride[1], self.padding[1])
        return np.ascontiguousarray(np.broadcast_to(np.outer(ys, xs), tuple(in_shape)))

    def write(self, g) -> None:
        g.create_dataset("kernelSize", data=np.asarray(self.kernel_size, dtype=np.int64))
        g.create_dataset("stride", data=np.asarray(self.stride, dtype=np.int64))
        g.create_dataset("padding", data=np.asarray(self.padding, dtype=np.int64))
        g.create_dataset("dilation", data=np.asarray((1, 1), dtype=np.int64))
        g.create_dataset("weight",
                         data=np.asarray(self.weight, dtype=np.float32).reshape(1, 1, *self.kernel_size))

    @classmethod
    def read(cls, keys, in_shape: Shape, shape: Shape) -> "Pool":
        """The file's forms: the kernel as (kh, kw), (1, 1, kh, kw[, 1]) or a scalar with
        ``kernelSize``; ``dilation`` 1. Geometry and shapes are :meth:`rules` and :meth:`out_shape`."""
        stride, padding, dilation = read_geometry(keys, default_stride=None)
        weight = keys.array("weight", ndim=(0, 2, 4, 5), max_size=KERNEL_MAX)
        if weight.ndim == 0:
            kernel = keys.ints("kernelSize", 2)
            if min(kernel) < 1 or math.prod(kernel) > KERNEL_MAX:
                raise keys.error(f"kernelSize {kernel} is not a kernel of 1..{KERNEL_MAX} values", "kernelSize")
            weight = np.full(kernel, weight.item())
        elif weight.ndim >= 4:
            if weight.shape[:2] != (1, 1) or weight.shape[4:] not in ((), (1,)):
                raise keys.error(f"expected one (kh, kw) kernel shared by all channels, found {weight.shape}",
                                 "weight")
            weight = weight[0, 0].reshape(weight.shape[2:4])
        if dilation != (1, 1):
            raise keys.error("dilated pooling is not supported", "dilation")
        return cls(weight, stride=stride, padding=padding)
