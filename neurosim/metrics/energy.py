"""The energy of one inference, term by term, in three models (constants: :mod:`.constants`).

Every model prices the counts of :mod:`neurosim.metrics.workload` (per sample); each term is
its own number, per layer and in total (joules):

``papers45nm`` -- the papers' convention (Horowitz 2014, 45 nm, 32-bit float): SNN
    ``E = ACs x 0.9 pJ`` (and analog-driven MACs x 4.6 pJ: none in neurosim's nets), fp32 ANN
    ``E = MACs x 4.6 pJ``, quantised ANN ``E = MACs x (0.2 + 0.1) pJ`` (8-bit multiply, 32-bit
    add); nothing else. Compares with published tables, and ignores memory.
``deployed45nm`` -- the deployed arithmetic on 45 nm with memory traffic (Horowitz 2014):
    SNN, event-driven: each synaptic event reads its 8-bit weight and read-modify-writes its
    target's 24-bit accumulator (an int add); each neuron update (every neuron, every step)
    reads the accumulator and the potential and writes the potential (24 bits each), with 2
    int adds (integrate, compare), 1 more per spike (reset) and the multiplies of
    :func:`~neurosim.metrics.workload.update_mults`. ANN, output-stationary (partial sums in a
    register): each MAC reads its weight and its input activation (fp32: 32 + 32 bits, fp32
    MAC; quantised: 8 + b bits, 8-bit multiply and 32-bit add); each output is written
    (32 or b bits) after 2 adds (bias, ReLU compare), the quantised one also rescaled (one
    32-bit multiply). A ``bits``-bit access of a memory of M bits costs
    ``E_64(M) x bits / 64``, ``E_64`` Horowitz's 64-bit read of the smallest SRAM that holds
    the memory (8 KB, 32 KB, 1 MB); a larger memory is banks of 1 MB SRAM, an access reading
    one bank. Memory is on chip for both nets (as on a neuromorphic chip, whose cores hold
    every weight and potential in SRAM): no DRAM traffic is priced, for either. Spike
    routing is not priced (no published 45 nm figure per spike).
``loihi1`` -- Loihi 1 as published (Davies et al. 2018): 23.6 pJ per synaptic event (its
    weight read and accumulation included), 81 pJ per neuron update of a neuron that fires in
    that step and 52 pJ otherwise, 1.7 pJ per spike (within a tile: a lower bound, mesh hops
    not modelled). No ANN runs on Loihi 1: no ANN entries.

Loihi 2 has no model: Intel has published no per-operation energies (:mod:`.constants`).
"""
from __future__ import annotations

from typing import Callable, Optional

from neurosim.metrics import constants as C
from neurosim.metrics.workload import AnnLayer, Memories, SnnLayer, activation_bits

MODELS = ("papers45nm", "deployed45nm", "loihi1")
LABELS = {
    "papers45nm": "45 nm, papers' convention (fp32 AC 0.9 pJ, MAC 4.6 pJ; no memory)",
    "deployed45nm": "45 nm, deployed arithmetic (8-bit weights, 24-bit int state, SRAM traffic)",
    "loihi1": "Loihi 1 as published (Davies et al. 2018)",
}
SOURCES = {
    "papers45nm": C.HOROWITZ_2014 + ": fp32 add 0.9 pJ, fp32 mult 3.7 pJ (MAC 4.6 pJ); int8 mult 0.2 pJ, "
                  "int32 add 0.1 pJ (quantised ANN)",
    "deployed45nm": C.HOROWITZ_2014 + ": int32 add 0.1 pJ, int8 mult 0.2 pJ, int32 mult 3.1 pJ, fp32 add 0.9 / "
                    "mult 3.7 pJ; SRAM 64-bit read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB; larger memories "
                    "are 1 MB banks)",
    "loihi1": C.DAVIES_2018 + ": synaptic spike op 23.6 pJ, neuron update 81 pJ active / 52 pJ inactive, "
              "within-tile spike 1.7 pJ",
    "loihi2": "not modelled: Intel has published no per-operation energies for Loihi 2",
}
NOT_PRICED = {
    "papers45nm": "neuron updates, memory traffic and spike routing (the papers' convention counts operations only)",
    "deployed45nm": "spike routing (no published 45 nm energy per spike)",
    "loihi1": "mesh hops beyond the first tile (no placement): spike routing is a lower bound",
}

Terms = dict[str, float]


def access(bits: float, memory_bits: float) -> float:
    """Joules of one ``bits``-bit access to a memory of ``memory_bits`` bits (45 nm):
    ``E_64 x bits / 64`` with ``E_64`` the 64-bit read of the smallest SRAM that holds it, or of
    the largest (1 MB) for a memory too large for one: it is built of such banks."""
    size = memory_bits / 8
    e64 = next((e for cap, e in C.SRAM_64BIT_45NM if size <= cap), C.SRAM_64BIT_45NM[-1][1])
    return e64 * bits / C.WORD_BITS_45NM


def _snn_terms(model: str, row: SnnLayer, mem: Memories) -> Terms:
    host = _host_terms(model, row, mem) if row.host_macs else {}
    if model == "papers45nm":
        return {"synaptic_acs": row.acs * C.FP32_ADD_45NM, **host}
    if model == "deployed45nm":
        state = access(C.STATE_BITS, mem.state)
        return {**host, "synaptic_acs": row.acs * C.INT32_ADD_45NM,
                "neuron_updates": (row.neuron_updates * (2 * C.INT32_ADD_45NM + row.update_mults * C.INT32_MULT_45NM)
                                   + row.spikes * C.INT32_ADD_45NM),
                "weight_reads": row.acs * access(C.WEIGHT_BITS, mem.weights),
                "accumulator_reads_writes": row.acs * 2 * state,
                "potential_reads_writes": row.neuron_updates * 3 * state}
    if model == "loihi1":
        return {**host, "synaptic_acs": row.acs * C.SYNOP_LOIHI1,
                "neuron_updates": (row.spikes * C.NEURON_ACTIVE_LOIHI1
                                   + (row.neuron_updates - row.spikes) * C.NEURON_INACTIVE_LOIHI1),
                "spike_routing": row.spikes * C.SPIKE_WITHIN_TILE_LOIHI1}
    raise ValueError(f"energy model must be one of {', '.join(MODELS)}, got {model!r}")


def _host_terms(model: str, row: SnnLayer, mem: Memories) -> Terms:
    """An analog input layer's host multiply-accumulates (once per sample): an fp32 MAC each
    in the papers' convention (as they price a first layer fed with analog values), else an
    8-bit multiply and a 32-bit add with its weight read (45 nm, in every other model: the
    host is not the neuromorphic chip)."""
    if model == "papers45nm":
        return {"host_macs": row.host_macs * C.FP32_MAC_45NM}
    return {"host_macs": row.host_macs * (C.INT8_MULT_45NM + C.INT32_ADD_45NM
                                          + access(C.WEIGHT_BITS, mem.weights))}


def _ann_terms(model: str, row: AnnLayer, weights: int, outputs: int, bits: Optional[int]) -> Terms:
    """``bits`` None: fp32 ANN; else the quantised ANN (8-bit weights, ``bits``-bit activations)."""
    mac = C.FP32_MAC_45NM if bits is None else C.INT8_MULT_45NM + C.INT32_ADD_45NM
    if model == "papers45nm":
        return {"synaptic_macs": row.macs * mac}
    wb, ab = (C.FP32_BITS, C.FP32_BITS) if bits is None else (C.WEIGHT_BITS, bits)
    update = (2 * C.FP32_ADD_45NM if bits is None else 2 * C.INT32_ADD_45NM + C.INT32_MULT_45NM)
    act = access(ab, outputs * ab)
    return {"synaptic_macs": row.macs * mac,
            "neuron_updates": row.outputs * update,
            "weight_reads": row.macs * access(wb, weights * wb),
            "activation_reads": row.macs * act,
            "activation_writes": row.outputs * act}


def _priced(rows: list, terms_of: Callable[[object], Terms]) -> dict:
    """Total, per-term and per-layer joules of ``rows``."""
    per_layer, terms = {}, {}
    for row in rows:
        t = terms_of(row)
        per_layer[row.name] = sum(t.values())
        for k, v in t.items():
            terms[k] = terms.get(k, 0.0) + v
    return {"j": sum(per_layer.values()), "terms": terms, "per_layer": per_layer}


def energy(snn: list[SnnLayer], mem: Memories, steps: int,
           ann: Optional[tuple[list[AnnLayer], int]] = None) -> dict:
    """Joules per sample of the SNN (``steps`` steps) in every model of :data:`MODELS`, each
    with its terms and layers; with ``ann`` (its rows and stored weights), the fp32 ANN and
    the quantised ANN (:func:`~neurosim.metrics.workload.activation_bits` of ``steps``) in the
    45 nm models, and the SNN's energy over each."""
    bits = activation_bits(steps)
    out = {}
    for model in MODELS:
        s = _priced(snn, lambda r: _snn_terms(model, r, mem))
        e = {"label": LABELS[model], "snn_j": s["j"], "snn_terms": s["terms"], "snn_per_layer": s["per_layer"],
             "not_priced": NOT_PRICED[model]}
        if ann is not None and model != "loihi1":
            rows, weights = ann
            outputs = sum(r.outputs for r in rows)
            for tag, b in (("fp32", None), ("quantised", bits)):
                a = _priced(rows, lambda r: _ann_terms(model, r, weights, outputs, b))
                e.update({f"ann_{tag}_j": a["j"], f"ann_{tag}_terms": a["terms"], f"ann_{tag}_per_layer": a["per_layer"],
                          f"snn_over_ann_{tag}": s["j"] / a["j"] if a["j"] > 0 else None})
            e["ann_quantised_bits"] = bits
        out[model] = e
    return out
