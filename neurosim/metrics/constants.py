"""Published energy constants, one place, each with its source (joules).

45 nm CMOS, 0.9 V: M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, pp. 10-14, the table of operation and memory-access energies (also slide 33 of
the talk):

==========================  ==========  ===========================================
operation                   energy      used for
==========================  ==========  ===========================================
8-bit int add               0.03 pJ     (not used: accumulators are wider than 8 bits)
32-bit int add              0.1 pJ      every integer add of the deployed arithmetic
8-bit int mult              0.2 pJ      quantised ANN multiply (8-bit weight x <= 8-bit activation)
32-bit int mult             3.1 pJ      fixed-point leak / BNTT scale multiply of a neuron update
32-bit float add            0.9 pJ      SNN accumulate, papers' convention and fp32 ANN
32-bit float mult           3.7 pJ      fp32 ANN multiply (MAC = 3.7 + 0.9 = 4.6 pJ)
SRAM 8 KB, 64-bit read      10 pJ       memories of at most 8 KB
SRAM 32 KB, 64-bit read     20 pJ       memories of at most 32 KB
SRAM 1 MB, 64-bit read      100 pJ      memories of at most 1 MB
DRAM, 64-bit read           1.3-2.6 nJ  (not used: memories are on chip, larger ones 1 MB banks)
==========================  ==========  ===========================================

Horowitz gives no 24-bit add (Lava's fixed-point accumulators and potentials are 24 bits):
the 32-bit add prices it (an upper bound). Horowitz gives reads only; a write is priced as a
read of the same width (an assumption: no published 45 nm SRAM write energy in that table).

Loihi 1 (Intel 14 nm): M. Davies et al., "Loihi: a neuromorphic manycore processor with
on-chip learning", IEEE Micro 38(1):82-99, 2018, Table 1: synaptic spike operation 23.6 pJ,
synaptic update (learning) 120 pJ (not used: no learning at inference), neuron update 81 pJ
active / 52 pJ inactive, within-tile spike energy 1.7 pJ, across-tile spike energy 3.5 pJ per
hop.

Loihi 2 (Intel 4): Intel has published no per-operation energies (Orchard et al., "Efficient
neuromorphic signal processing with Loihi 2", IEEE SiPS 2021, and Shrestha et al., "Efficient
video and audio processing with Loihi 2", ICASSP 2024, report measured energy per inference of
their own workloads, not per synaptic operation, neuron update or spike); neurosim therefore
has no Loihi 2 energy model.
"""
from __future__ import annotations

from neurosim.netlist.schema import STATE_BITS  # noqa: F401  (u and v: signed 24 bits, Lava fixed_pt)

PJ = 1e-12

HOROWITZ_2014 = "M. Horowitz, ISSCC 2014, 45 nm 0.9 V energy table"
DAVIES_2018 = "M. Davies et al., IEEE Micro 38(1), 2018, Table 1 (Loihi 1, 14 nm)"

# --- 45 nm arithmetic (Horowitz 2014)
INT32_ADD_45NM = 0.1 * PJ
INT8_MULT_45NM = 0.2 * PJ
INT32_MULT_45NM = 3.1 * PJ
FP32_ADD_45NM = 0.9 * PJ
FP32_MULT_45NM = 3.7 * PJ
FP32_MAC_45NM = FP32_ADD_45NM + FP32_MULT_45NM          # 4.6 pJ

# --- 45 nm memory, per 64-bit access (Horowitz 2014): (capacity in bytes, joules)
SRAM_64BIT_45NM = ((8 * 1024, 10 * PJ), (32 * 1024, 20 * PJ), (1024 * 1024, 100 * PJ))
WORD_BITS_45NM = 64

# --- Loihi 1 (Davies et al. 2018, Table 1)
SYNOP_LOIHI1 = 23.6 * PJ
NEURON_ACTIVE_LOIHI1 = 81.0 * PJ
NEURON_INACTIVE_LOIHI1 = 52.0 * PJ
SPIKE_WITHIN_TILE_LOIHI1 = 1.7 * PJ

# --- the deployed arithmetic (docs/netlist.md, "Synapses per mode", "Neuron equations")
#: Weight bits of a fixed-point netlist: Lava's 8-bit weight range (dense: 8-bit magnitude
#: and sign mode; the exporter writes even weights in [-256, 254], 8 significant bits).
WEIGHT_BITS = 8
#: Bits of an fp32 ANN's weights, activations and accumulators.
FP32_BITS = 32
