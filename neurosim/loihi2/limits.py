"""Loihi 2's resource limits, and which of them are published (see ``docs/interop.md``).

Published (Intel, "Taking Neuromorphic Computing to the Next Level with Loihi 2", technology
brief, 2021; Orchard et al., "Efficient Neuromorphic Signal Processing with Loihi 2", SiPS
2021): 128 neuro cores per chip, up to 1 M neurons and 120 M synapses per chip, and a local
SRAM per neuro core that is flexibly partitioned between neuron state, synapses and routing
(128 KB in the reports this module cites).

Derived / assumed here (an *estimate*, not Intel's compiler):
``NEURONS_PER_CORE = 2**20 / 128 = 8192``; one synapse = one 8-bit weight = 1 byte, and all of
a core's SRAM may hold synapses (so a core holds at most 131,072 synapses: a lower bound on
cores, since neuron state and routing tables share that SRAM); convolutions are counted
unrolled (every connection stored, no weight sharing); every layer gets its own cores (Lava
maps each process to separate cores).
"""
from __future__ import annotations

# Number formats of Loihi's neuron and synapse (the same as Lava's bit-accurate models,
# ``docs/netlist.md``), defined once in neurosim.netlist.quantize and neurosim.netlist.schema:
# an 8-bit weight mantissa with one exponent per projection (WEIGHT_MANT_MAX), a 13-bit signed
# bias mantissa (BIAS_MANT_MAX), a 17-bit threshold mantissa, 12-bit decays, 24-bit u and v.
from neurosim.netlist.quantize import BIAS_MANT_MAX, WEIGHT_MANT_MAX

CORES_PER_CHIP = 128                      # published
NEURONS_PER_CHIP = 1 << 20                # published: "up to 1 million neurons"
SYNAPSES_PER_CHIP = 120_000_000           # published: "up to 120 million synapses"
CORE_SRAM_BYTES = 128 * 1024              # published: 128 KB per core (flexible partition)
NEURONS_PER_CORE = NEURONS_PER_CHIP // CORES_PER_CHIP      # derived: 8192
BYTES_PER_SYNAPSE = 1                     # assumption: one 8-bit weight, no index overhead
SYNAPSES_PER_CORE = CORE_SRAM_BYTES // BYTES_PER_SYNAPSE   # derived from the assumption: 131,072

SOURCE = ("Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', technology brief "
          "(2021); Orchard et al., 'Efficient Neuromorphic Signal Processing with Loihi 2', IEEE SiPS 2021")

__all__ = ["BIAS_MANT_MAX", "BYTES_PER_SYNAPSE", "CORES_PER_CHIP", "CORE_SRAM_BYTES", "NEURONS_PER_CHIP",
           "NEURONS_PER_CORE", "SOURCE", "SYNAPSES_PER_CHIP", "SYNAPSES_PER_CORE", "WEIGHT_MANT_MAX"]
