"""``identity``: one-to-one synapse with one weight, for shortcuts of residual nets
(neurosim extension; netx cannot load it).

    a[k] = weight * s[k]          (same shape in and out)

HDF5 keys: ``weight`` (scalar mantissa). ``fixed`` mode: ``weight`` is an integer with
``|weight| < 2**23``, so the current never wraps.
Lava: neurosim's :class:`~neurosim.lava.process.IdentitySynapse` (one step of delay, as ``Dense``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from neurosim.netlist.schema import STATE_BITS, Shape
from neurosim.netlist.synapses.base import SynapseKind

WEIGHT_LIMIT = float((1 << (STATE_BITS - 1)) - 1)


@dataclass
class Identity(SynapseKind):
    """``a = weight * s``, elementwise; the layer has its source's shape."""
    weight: float = 1.0

    type_name: ClassVar[str] = "identity"

    def out_shape(self, in_shape: Shape) -> Shape:
        if not abs(float(self.weight)) <= WEIGHT_LIMIT:
            raise ValueError(f"identity weight {self.weight} outside +-{WEIGHT_LIMIT:g}")
        return tuple(int(s) for s in in_shape)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weight": np.asarray(float(self.weight))}

    def fixed_weight(self) -> tuple[np.ndarray, int]:
        return np.asarray(float(self.weight)), 0

    def linear(self, s, weight):
        return s * weight

    def write(self, g) -> None:
        g.create_dataset("weight", data=np.float32(self.weight))

    @classmethod
    def read(cls, keys, in_shape: Shape, shape: Shape) -> "Identity":
        if tuple(shape) != tuple(in_shape):
            raise keys.error(f"identity of {tuple(in_shape)} gives {tuple(in_shape)}, found {shape}", "shape")
        return cls(float(keys.scalar("weight", default=1.0, max_abs=WEIGHT_LIMIT)))

    def lava_process(self, in_shape: Shape, out_shape: Shape, mode: str):
        from neurosim.lava.layout import lava_shape
        from neurosim.lava.process import IdentitySynapse

        w = float(self.weight)
        return IdentitySynapse(shape=lava_shape(in_shape), weight=int(round(w)) if mode == "fixed" else w)
