"""Loihi 2's table of synapse kinds: whether a kind's weights are in Loihi 2's synapse format.

:data:`FORMATS` (a :class:`~neurosim.netlist.synapses.base.KindTable`) gives for each kind of
:data:`neurosim.netlist.synapses.KINDS` a function ``kind -> why its weights do not fit, or
None``; :func:`loihi2_problem` applies it (:func:`neurosim.loihi2.quantize.layer_problems`).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from neurosim.netlist.synapses import Conv, Dense, Identity, Pool
from neurosim.netlist.kinds import KindTable
from neurosim.netlist.synapses.base import SynapseKind
from neurosim.netlist.synapses.dense import loihi_dense
from neurosim.netlist.synapses.identity import fits_loihi


def mantissa_exponent_problem(kind: SynapseKind) -> Optional[str]:
    """The weights must be integers that the 8-bit-mantissa-plus-exponent path of netx and Lava
    (:func:`neurosim.netlist.synapses.dense.loihi_dense`) keeps unchanged."""
    w = np.asarray(kind.weight, dtype=np.float64)
    if np.array_equal(w, np.rint(w)):
        w_int, exp = loihi_dense(w)
        if np.array_equal(np.ldexp(w_int.astype(np.float64), exp), w):
            return None
    return "weights are not 8-bit mantissas with one exponent"


def identity_problem(kind: Identity) -> Optional[str]:
    """The one weight must be an 8-bit mantissa times ``2**0..7``."""
    if fits_loihi(float(kind.weight)):
        return None
    return f"weight {float(kind.weight):g} is not an 8-bit mantissa times 2**0..7"


#: Synapse kind class -> its weight-format check on Loihi 2.
FORMATS: KindTable[Callable[[SynapseKind], Optional[str]]] = KindTable("Loihi 2", {
    Dense: mantissa_exponent_problem,
    Conv: mantissa_exponent_problem,
    Pool: mantissa_exponent_problem,
    Identity: identity_problem,
})


def loihi2_problem(kind: SynapseKind) -> Optional[str]:
    """Why ``kind``'s weights are not in Loihi 2's synapse format (or the kind has no Loihi 2
    form), or None."""
    return FORMATS.refusal(kind) or FORMATS.of(kind)(kind)
