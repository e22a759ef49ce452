"""Energy constants (one place, cited) and the energy model of an inference.

45 nm CMOS, 0.9 V (M. Horowitz, "Computing's energy problem", ISSCC 2014), 32-bit float:
one accumulate (an SNN synaptic operation) 0.9 pJ, one multiply-accumulate (ANN) 4.6 pJ.

Loihi (M. Davies et al., "Loihi: a neuromorphic manycore processor with on-chip learning",
IEEE Micro 38(1), 2018, Table 1): 23.6 pJ per synaptic spike operation; neuron update
81 pJ when active, 52 pJ when inactive. neurosim counts a neuron-step as *active* when
the neuron fires in that step and *inactive* otherwise.
"""
from __future__ import annotations

PJ = 1e-12
E_AC_45NM = 0.9 * PJ
E_MAC_45NM = 4.6 * PJ
E_SYNOP_LOIHI = 23.6 * PJ
E_NEURON_ACTIVE_LOIHI = 81.0 * PJ
E_NEURON_INACTIVE_LOIHI = 52.0 * PJ

CITATIONS = {
    "cmos45nm": "Horowitz, ISSCC 2014: E_AC = 0.9 pJ, E_MAC = 4.6 pJ (32-bit float, 45 nm)",
    "loihi": "Davies et al., IEEE Micro 2018: 23.6 pJ/synaptic op, 81/52 pJ active/inactive neuron update",
}


def energy_per_sample(synops: float, ann_macs: float, spikes: float, neuron_steps: float) -> dict:
    """Joules per sample: SNN and ANN on 45 nm CMOS, SNN on Loihi.

    ``synops``: synaptic events; ``ann_macs``: the ANN's MACs; ``spikes``: spikes (active
    neuron-steps); ``neuron_steps``: neurons x time steps.
    """
    loihi = (synops * E_SYNOP_LOIHI + spikes * E_NEURON_ACTIVE_LOIHI
             + (neuron_steps - spikes) * E_NEURON_INACTIVE_LOIHI)
    return {
        "cmos45nm": {"snn_j": synops * E_AC_45NM, "ann_j": ann_macs * E_MAC_45NM,
                     "ann_over_snn": (ann_macs * E_MAC_45NM) / max(synops * E_AC_45NM, 1e-30)},
        "loihi": {"snn_j": loihi, "synops_j": synops * E_SYNOP_LOIHI,
                  "neuron_updates_j": loihi - synops * E_SYNOP_LOIHI},
        "sources": CITATIONS,
    }
