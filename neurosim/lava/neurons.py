"""Lava's table of neuron kinds: kind -> how a population of it becomes a Lava process.

Every kind runs as neurosim's :class:`~neurosim.lava.process.NetlistNeuron`: one Var per
name of the kind's :attr:`~neurosim.netlist.neurons.base.NeuronKind.state`, and ProcessModels
(:mod:`neurosim.lava.models`) that call the kind's :class:`Step` for the run's numeric mode with
its :meth:`~neurosim.netlist.neurons.base.NeuronKind.step_constants`. CUBA and RMP are both the
LIF step of :mod:`neurosim.dynamics.lif` (state ``u``, ``v``). A kind may also name Lava's own
process that has its meaning exactly, used by the per-sample graph where the population has
no schedule and starts at ``v = 0`` (what netx builds): CUBA with hard reset is Lava's ``LIF``
(``fixed``: ``LIF(vth=vThMant, du=iDecay-1, dv=vDecay, bias_mant=bias, bias_exp=6)``;
``float``: ``du=iDecay/4096, dv=vDecay/4096``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import numpy as np

from neurosim.dynamics.lif import lif_fixed, lif_float

from neurosim.netlist.kinds import KindTable
from neurosim.netlist.neurons import CUBA, RMP, Neuron
from neurosim.netlist.schema import DECAY_UNITY, STATE_SHIFT

if TYPE_CHECKING:                   # the table is read without Lava (the 'lava' profile); building needs it
    from lava.magma.core.process.process import AbstractProcess

#: ``native(neuron, shape, mode, bias_mant)``: Lava's own process for the neuron, or None where
#: its parameters (a soft reset) need neurosim's.
Native = Callable[[Neuron, tuple, str, np.ndarray], Optional["AbstractProcess"]]


#: ``step(state, a, bias, vth, constants) -> s``: one step of a population on NumPy arrays, in
#: the mode's units (``fixed``: int64 state units, ``a`` the scheduled synaptic input in
#: mantissa units, ``bias`` and ``vth`` in state units; ``float``: float64 mantissa units).
#: It replaces the arrays of ``state`` (one per state variable) and returns the spikes (0/1).
Step = Callable[[dict, np.ndarray, np.ndarray, Any, dict], np.ndarray]


@dataclass(frozen=True)
class LavaNeuron:
    """How Lava runs a neuron kind: :class:`~neurosim.lava.process.NetlistNeuron` with the
    kind's ``steps`` (numeric mode ``'fixed'``/``'float'`` -> :data:`Step`), or Lava's own
    process where ``native`` gives one."""
    steps: Mapping[str, Step]
    native: Optional[Native] = None


def lif_step_fixed(state: dict, a: np.ndarray, bias: np.ndarray, vth: Any, c: dict) -> np.ndarray:
    """:func:`neurosim.dynamics.lif.lif_fixed` on the state ``u``, ``v``."""
    state["u"], state["v"], s = lif_fixed(state["u"], state["v"], a, bias, vth,
                                          c["i_decay"], c["v_decay"], c["soft_reset"])
    return s


def lif_step_float(state: dict, a: np.ndarray, bias: np.ndarray, vth: Any, c: dict) -> np.ndarray:
    """:func:`neurosim.dynamics.lif.lif_float` on the state ``u``, ``v``."""
    state["u"], state["v"], s = lif_float(state["u"], state["v"], a, bias, vth,
                                          c["i_decay"], c["v_decay"], c["soft_reset"])
    return s


LIF_STEPS: Mapping[str, Step] = {"fixed": lif_step_fixed, "float": lif_step_float}


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
    CUBA: LavaNeuron(LIF_STEPS, native=_cuba_lif),
    RMP: LavaNeuron(LIF_STEPS),
})
