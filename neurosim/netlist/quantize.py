"""Loihi's number formats and the rounding to them (NumPy only), written once for every writer of
fixed-point netlists: the converter (:mod:`neurosim.convert.rmp`), BNTT's export
(:mod:`neurosim.bntt.fold`) and ``neurosim quantize-loihi2`` (:mod:`neurosim.loihi2.quantize`).

Formats (the neuron's own limits, ``VTH_MAX``, ``BIAS_MANT_BITS``, ``SCALE_EXP_MAX``, are in
:mod:`neurosim.netlist.schema`):

* dense / conv / pool weights: even integers in ``[WEIGHT_MANT_MIN, WEIGHT_MANT_MAX] = [-256,
  254]``, which netx's and Lava's 8-bit path keeps unchanged
  (:func:`neurosim.netlist.synapses.dense.loihi_dense`): :func:`even_mantissas`;
* identity weights: ``m * 2**e`` with an integer ``|m| <= MANTISSA8_MAX = 255`` and ``0 <= e <=
  WEIGHT_EXP_MAX = 7``: :func:`mantissa8`;
* biases: signed ``BIAS_MANT_BITS`` = 13-bit integers, ``|b| <= BIAS_MANT_MAX = 4095``:
  :func:`bias_mantissas`; thresholds: integers ``<= VTH_MAX``: :func:`threshold_mantissa`;
* schedule scales (neurosim's schedule): integer mantissas ``<= SCALE_MANT_MAX`` of ``2**-e``:
  :func:`scale_mantissas`.

A layer's spikes do not change when its weights, bias and threshold are multiplied by one
``sigma > 0``, so a real-valued layer (threshold 1) is scaled before it is rounded. The
integer scale of a layer (:func:`integer_scale`) puts its largest weight at 254 as long as the
identity weights, the bias and the threshold ``sigma`` itself stay in their formats::

    sigma = clip(floor(min(254 / max|W|, 32640 / max|w_id|, 4095 / max|b|)), 1, cap)

(a term whose maximum is 0 is left out; without a nonzero conv/dense/pool weight the identity
weights take the first term, ``254 / max|w_id|``; without any term ``sigma = cap``). An input
layer driven by ``x`` gets the power-of-two current scale :func:`input_scale`.
"""
from __future__ import annotations

import math

import numpy as np

from neurosim.netlist.schema import BIAS_MANT_BITS, SCALE_EXP_MAX, VTH_MAX

#: Dense / conv / pool weight mantissas: the even grid [-256, 254] that netx's
#: ``optimize_weight_bits`` and Lava's ``PyDenseModelBitAcc`` (8-bit mixed-sign weights, the
#: lowest bit dropped) pass through unchanged (:func:`neurosim.netlist.synapses.dense.loihi_dense`).
WEIGHT_MANT_MIN, WEIGHT_MANT_MAX = -256, 254
#: Loihi 2's synaptic weight as the identity synapse holds it: an 8-bit mantissa ``|m| <= 255``
#: times ``2**e``, weight exponent ``0 <= e <= 7``; the largest such weight is 255 * 2**7.
MANTISSA8_MAX, WEIGHT_EXP_MAX = 255, 7
LOIHI_WEIGHT_MAX = float(MANTISSA8_MAX << WEIGHT_EXP_MAX)
#: Lava LIF's ``bias_mant``: signed ``BIAS_MANT_BITS`` (13) bits.
BIAS_MANT_MAX = (1 << (BIAS_MANT_BITS - 1)) - 1
#: Largest schedule scale mantissa. The per-step schedule is neurosim's (a custom neuron program
#: on Loihi 2, no Lava format): its exponent is chosen so that the largest mantissa uses 15 bits.
SCALE_MANT_MAX = (1 << 15) - 1


def even_mantissas(w: np.ndarray) -> np.ndarray:
    """Even integer weight mantissas ``clip(2 round(w / 2), -256, 254)`` (half to even), float64."""
    return np.clip(2 * np.round(np.asarray(w, dtype=np.float64) / 2), WEIGHT_MANT_MIN, WEIGHT_MANT_MAX)


def mantissa8(w: float) -> float:
    """The nearest ``m * 2**e`` to ``w`` with an integer ``|m| <= 255`` and ``e >= 0``."""
    e = max(0, math.ceil(math.log2(abs(w) / MANTISSA8_MAX))) if abs(w) > MANTISSA8_MAX else 0
    m = round(w / 2 ** e)
    if abs(m) > MANTISSA8_MAX:                 # rounded up past 255: one more bit of exponent
        e += 1
        m = round(w / 2 ** e)
    return float(m * 2 ** e)


def bias_mantissas(b: np.ndarray) -> np.ndarray:
    """Integer bias mantissas ``round(b)`` (half to even, ``b``'s float type); within
    ``+-BIAS_MANT_MAX`` when ``b`` was scaled by a rule that bounds it (:func:`integer_scale`)."""
    return np.rint(np.asarray(b))


def threshold_mantissa(vth: float) -> int:
    """The integer threshold mantissa ``round(vth)`` (half to even)."""
    return int(round(vth))


def weight_gain(weight_max: float) -> float:
    """``g = WEIGHT_MANT_MAX / max|w|`` (``weight_max > 0``): the gain that puts the largest
    weight magnitude on the top of the even grid."""
    return WEIGHT_MANT_MAX / weight_max


def integer_scale(weight_max: float, identity_max: float = 0.0, bias_max: float = 0.0,
                  cap: int = VTH_MAX) -> int:
    """One integer scale for a layer of threshold 1 whose conv/dense/pool weights peak at
    ``weight_max``, identity weights at ``identity_max`` and biases at ``bias_max`` (module
    text)::

        sigma = clip(floor(min(254 / weight_max, 32640 / identity_max, 4095 / bias_max)), 1, cap)

    leaving out the terms of a zero maximum; with ``weight_max = 0`` the first term is ``254 /
    identity_max``, and with no term at all ``sigma = cap``. The threshold ``sigma`` is then
    exact (``cap <= VTH_MAX``)."""
    if weight_max > 0:
        sigma = weight_gain(weight_max)
    else:
        sigma = weight_gain(identity_max) if identity_max > 0 else cap
    if identity_max > 0:
        sigma = min(sigma, LOIHI_WEIGHT_MAX / identity_max)
    if bias_max > 0:
        sigma = min(sigma, BIAS_MANT_MAX / bias_max)
    return int(max(1, min(math.floor(sigma), cap)))


def input_scale(in_max: float) -> float:
    """The input layer's current scale for inputs up to ``in_max > 0``: the largest power of two
    that keeps the current ``scale * x`` within the bias mantissa,
    ``2**floor(log2(BIAS_MANT_MAX / in_max))``."""
    return 2.0 ** np.floor(np.log2(BIAS_MANT_MAX / in_max))


def scale_mantissas(real: np.ndarray) -> tuple[np.ndarray, int]:
    """``(round(real * 2**e), e)``: schedule scale mantissas of ``real`` with the one exponent
    ``e = clip(floor(log2(SCALE_MANT_MAX / max|real|)), 0, SCALE_EXP_MAX)`` that uses 15 bits
    (``e = 0`` for an all-zero ``real``)."""
    peak = float(np.abs(real).max())
    e = int(min(SCALE_EXP_MAX, max(0, math.floor(math.log2(SCALE_MANT_MAX / peak))))) if peak > 0 else 0
    return np.round(real * 2.0 ** e), e
