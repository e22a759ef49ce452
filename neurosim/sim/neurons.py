"""The simulator's table of neuron kinds: kind -> the scan that advances a population of it.

A scan runs the kind's step (its :attr:`~neurosim.netlist.neurons.base.NeuronKind.dynamics`)
over a window of steps for every neuron of a population, in place, through the compiled
kernels of :mod:`neurosim.sim.kernels`, which take the step functions of the dynamics module
and the kind's :meth:`~neurosim.netlist.neurons.base.NeuronKind.step_constants`. CUBA and RMP
are both the LIF step (:mod:`neurosim.dynamics.lif`), with their constants.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from neurosim.netlist.kinds import KindTable
from neurosim.netlist.neurons import CUBA, RMP
from neurosim.sim import kernels

#: ``scan(fixed, constants, a, bias, vth, may_wrap, state, s_out, counts, v_trace, v_changed)``:
#: advance the neurons over a window of ``W`` steps in place; ``state`` holds one (M,) array per name of the
#: kind's :attr:`~neurosim.netlist.neurons.base.NeuronKind.state` (mode units), ``a`` (W or 1, M)
#: the synaptic input, ``bias`` (W or 1, M), ``s_out`` (W, M) gets the spikes, ``counts`` (M,) adds
#: them, ``v_trace`` (W, M) gets v after every step, ``v_changed`` (W, M) uint8 1 where the step
#: changed v, else 0 (NeuroBench's membrane updates); either may have no rows (skip it).
Scan = Callable[..., None]


def lif_scan(fixed: bool, constants: dict[str, Any], a: np.ndarray, bias: np.ndarray, vth, may_wrap: bool,
             state: dict[str, np.ndarray], s_out: np.ndarray, counts: np.ndarray, v_trace: np.ndarray,
             v_changed: np.ndarray) -> None:
    """The LIF step of :mod:`neurosim.dynamics.lif` (state ``u``, ``v``) over a window
    (:func:`neurosim.sim.kernels.scan`)."""
    kernels.scan(fixed, a, bias, vth, constants["i_decay"], constants["v_decay"], constants["soft_reset"],
                 may_wrap, state["u"], state["v"], s_out, counts, v_trace, v_changed)


#: kind class -> its scan.
NEURONS: KindTable[Scan] = KindTable("the simulator", {CUBA: lif_scan, RMP: lif_scan})
