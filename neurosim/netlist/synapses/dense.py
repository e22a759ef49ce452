"""``dense``: fully connected synapse (netx ``dense``).

    a[o] = sum_j weight[o, j] * s[j]          weight (out, in); s flattened in (C, H, W) order

HDF5 keys: ``weight`` (out, in) float32 mantissas, ``inFeatures``, ``outFeatures``.
``fixed`` mode: the weights as Loihi receives them from netx (:func:`loihi_dense`: 8-bit
mantissas with a per-projection exponent; lossless for even integers in [-256, 254]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from neurosim.netlist.schema import MAX_SYNAPSES, Shape
from neurosim.netlist.synapses.base import SynapseKind


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


@dataclass
class Dense(SynapseKind):
    """Fully connected: ``a = weight @ s`` with ``weight`` (out, in); ``s`` flattened (C, H, W)."""
    weight: np.ndarray

    type_name: ClassVar[str] = "dense"
    flat_input: ClassVar[bool] = True
    events: ClassVar[bool] = True

    def out_shape(self, in_shape: Shape) -> Shape:
        if self.weight.ndim != 2 or self.weight.shape[1] != math.prod(in_shape):
            raise ValueError(f"weight {self.weight.shape} does not take {math.prod(in_shape)} inputs "
                             f"(from {tuple(in_shape)})")
        return (int(self.weight.shape[0]),)

    def fixed_weight(self) -> tuple[np.ndarray, int]:
        return loihi_dense(self.weight)

    def fanout(self, in_shape: Shape) -> np.ndarray:
        return np.full(tuple(in_shape), int(self.weight.shape[0]), dtype=np.int64)

    def write(self, g) -> None:
        g.create_dataset("inFeatures", data=np.int64(self.weight.shape[1]))
        g.create_dataset("outFeatures", data=np.int64(self.weight.shape[0]))
        g.create_dataset("weight", data=np.asarray(self.weight, dtype=np.float32))

    @classmethod
    def read(cls, keys, in_shape: Shape, shape: Shape) -> "Dense":
        if len(shape) != 1:
            raise keys.error(f"a dense layer needs an (N,) shape, found {shape}", "shape")
        n_out, n_in = shape[0], math.prod(in_shape)

        def check(s: tuple[int, ...]) -> None:
            ok = (s == (n_out, n_in)) if len(s) == 2 else (s[0] == n_out * n_in)
            if not ok:
                raise keys.error(f"weight shape {s} does not match (out={shape}, in={n_in} from "
                                 f"{tuple(in_shape)})", "weight")

        weight = keys.array("weight", ndim=(1, 2), max_size=MAX_SYNAPSES, check_shape=check)
        return cls(weight.reshape(n_out, n_in))
