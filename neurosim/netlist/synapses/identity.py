"""``identity``: one-to-one synapse with one weight, for shortcuts of residual nets
(neurosim extension; netx cannot load it).

    a[k] = weight * s[k]          (same shape in and out)

HDF5 keys: ``weight`` (scalar mantissa). ``fixed`` mode: ``weight`` is an integer with
``|weight| < 2**23``, so the current never wraps.
Lava: neurosim's ``IdentitySynapse`` process (one step of delay, as ``Dense``; :mod:`neurosim.lava.synapses`).
On Loihi 2 the weight is an 8-bit mantissa with a weight exponent: ``m * 2**e``, integer
``|m| <= 255``, ``0 <= e <= 7`` (:func:`neurosim.netlist.quantize.mantissa8` rounds to it; the
converter writes it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from neurosim.netlist.quantize import LOIHI_WEIGHT_MAX, mantissa8
from neurosim.netlist.schema import STATE_BITS, Shape
from neurosim.netlist.synapses.base import SynapseKind

WEIGHT_LIMIT = float((1 << (STATE_BITS - 1)) - 1)


def fits_loihi(w: float) -> bool:
    """Whether ``w`` is an ``m * 2**e`` Loihi 2 holds (integer ``|m| <= 255``, ``0 <= e <= 7``)."""
    return float(w) == mantissa8(float(w)) and abs(float(w)) <= LOIHI_WEIGHT_MAX


@dataclass
class Identity(SynapseKind):
    """``a = weight * s``, elementwise; the layer has its source's shape."""
    weight: float = 1.0

    type_name: ClassVar[str] = "identity"

    def rules(self) -> Optional[tuple[str, str]]:
        """One number with ``|weight| <= WEIGHT_LIMIT`` (the current never wraps in ``fixed`` mode)."""
        if np.ndim(self.weight) == 0 and abs(float(self.weight)) <= WEIGHT_LIMIT:
            return None
        return "weight", f"identity weight {self.weight!r:.40} outside +-{WEIGHT_LIMIT:g}"

    def out_shape(self, in_shape: Shape) -> Shape:
        return tuple(int(s) for s in in_shape)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weight": np.asarray(float(self.weight))}

    def fixed_weight(self) -> tuple[np.ndarray, int]:
        return np.asarray(float(self.weight)), 0

    def fanout(self, in_shape: Shape) -> np.ndarray:
        return np.ones(tuple(in_shape), dtype=np.int64)

    def write(self, g) -> None:
        g.create_dataset("weight", data=np.float32(self.weight))

    @classmethod
    def read(cls, keys, in_shape: Shape, shape: Shape) -> "Identity":
        return cls(float(keys.scalar("weight", default=1.0)))
