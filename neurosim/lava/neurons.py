"""Lava's table of neuron kinds: kind -> how a population of it becomes a Lava process.

Every kind whose step is the LIF step of :mod:`neurosim.dynamics.lif` (CUBA, RMP) runs as
neurosim's :class:`~neurosim.lava.process.NetlistNeuron`, whose ProcessModels
(:mod:`neurosim.lava.models`) call that step with the kind's
:meth:`~neurosim.netlist.neurons.base.NeuronKind.step_constants` (``i_decay``, ``v_decay``,
``soft_reset``: the process's parameters of the same names). A kind may also name Lava's own
process that has its meaning exactly, used by the per-sample graph where the population has
no schedule and starts at ``v = 0`` (what netx builds): CUBA with hard reset is Lava's ``LIF``
(``fixed``: ``LIF(vth=vThMant, du=iDecay-1, dv=vDecay, bias_mant=bias, bias_exp=6)``;
``float``: ``du=iDecay/4096, dv=vDecay/4096``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from neurosim.netlist.kinds import KindTable
from neurosim.netlist.neurons import CUBA, RMP, Neuron
from neurosim.netlist.schema import DECAY_UNITY, STATE_SHIFT

if TYPE_CHECKING:                   # the table is read without Lava (the 'lava' profile); building needs it
    from lava.magma.core.process.process import AbstractProcess

#: ``native(neuron, shape, mode, bias_mant)``: Lava's own process for the neuron, or None where
#: its parameters (a soft reset) need neurosim's.
Native = Callable[[Neuron, tuple, str, np.ndarray], Optional["AbstractProcess"]]


@dataclass(frozen=True)
class LavaNeuron:
    """How Lava runs a neuron kind: :class:`~neurosim.lava.process.NetlistNeuron` with the
    kind's step constants, or Lava's own process where ``native`` gives one."""
    native: Optional[Native] = None


def _cuba_lif(n: CUBA, shape: tuple, mode: str, bias: np.ndarray) -> Optional["AbstractProcess"]:
    """netx's own neuron: Lava's ``LIF`` (hard reset only)."""
    if n.soft:
        return None
    from lava.proc.lif.process import LIF

    if mode == "fixed":
        return LIF(shape=shape, vth=int(n.vThMant), du=int(n.iDecay) - 1, dv=int(n.vDecay),
                   bias_mant=bias, bias_exp=STATE_SHIFT)
    return LIF(shape=shape, vth=float(n.vThMant), du=n.iDecay / DECAY_UNITY, dv=n.vDecay / DECAY_UNITY,
               bias_mant=bias)


#: kind class -> how Lava runs it.
LAVA_NEURONS: KindTable[LavaNeuron] = KindTable("Lava", {
    CUBA: LavaNeuron(native=_cuba_lif),
    RMP: LavaNeuron(),
})
