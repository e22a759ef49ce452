"""Loihi 2's table of neuron kinds: kind -> the Lava process of Loihi 2's standard neuron
program that runs it (with hard reset, ``vInit = 0`` and no schedule; anything else needs a
custom neuron program, :func:`neurosim.loihi2.report.neuron_needs`)."""
from __future__ import annotations

from neurosim.netlist.kinds import KindTable
from neurosim.netlist.neurons import CUBA, RMP

#: kind class -> the standard neuron program (Lava ``LIF``) that runs it natively.
LOIHI2_NEURONS: KindTable = KindTable("Loihi 2", {
    CUBA: "LIF",
    RMP: "LIF (iDecay = 4096: u = a)",
})
