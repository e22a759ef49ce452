"""The energy model term by term, on hand-computed counts (constants: Horowitz 2014, Davies 2018)."""
from __future__ import annotations

import numpy as np
import pytest

from neurosim.metrics import constants as C
from neurosim.metrics.energy import MODELS, access, energy
from neurosim.metrics.workload import (AnnLayer, Memories, SnnLayer, activation_bits, ann_layers_from_meta,
                                       ann_layers_to_meta, snn_memories, update_mults)
from neurosim.netlist import CUBA, RMP, dense
from tests.conftest import small_conv_net

PJ = 1e-12
SNN = [SnnLayer("0:input", 1000.0, 100.0, 0, 10.0), SnnLayer("1:dense", 0.0, 40.0, 1, 4.0)]
MEM = Memories(weights=8 * 1024 * 8, state=8 * 1024 * 8 + 8)      # 8 KB of weights, a bit over 8 KB of state
ANN = ([AnnLayer("0:input", 0.0, 10), AnnLayer("1:dense", 500.0, 50)], 500)


def test_memory_access_is_horowitz_64_bit_read_scaled_by_bits():
    assert access(64, 8 * 1024 * 8) == pytest.approx(10 * PJ)                 # 8 KB SRAM
    assert access(8, 8 * 1024 * 8 + 8) == pytest.approx(20 * PJ / 8)          # just over 8 KB: 32 KB SRAM
    assert access(64, 1024 * 1024 * 8) == pytest.approx(100 * PJ)             # 1 MB SRAM
    assert access(32, 2 * 1024 * 1024 * 8) == pytest.approx(100 * PJ / 2)     # beyond: 1 MB banks, no DRAM


def test_snn_terms_per_model():
    e = energy(SNN, MEM, 15)
    assert set(e) == set(MODELS)
    assert e["papers45nm"]["snn_terms"] == {"synaptic_acs": pytest.approx(1000 * 0.9 * PJ)}
    d = e["deployed45nm"]["snn_terms"]
    state = 20 * PJ * 24 / 64                                              # a 24-bit access of the 32 KB SRAM
    assert d["synaptic_acs"] == pytest.approx(1000 * 0.1 * PJ)
    assert d["weight_reads"] == pytest.approx(1000 * 10 * PJ * 8 / 64)
    assert d["accumulator_reads_writes"] == pytest.approx(1000 * 2 * state)
    assert d["potential_reads_writes"] == pytest.approx(140 * 3 * state)
    assert d["neuron_updates"] == pytest.approx((140 * 2 * 0.1 + 40 * 3.1 + 14 * 0.1) * PJ)
    loihi = e["loihi1"]
    assert loihi["snn_j"] == pytest.approx((1000 * 23.6 + 14 * 81 + 126 * 52 + 14 * 1.7) * PJ)
    assert loihi["snn_per_layer"]["1:dense"] == pytest.approx((4 * 81 + 36 * 52 + 4 * 1.7) * PJ)
    for model in MODELS:                                                   # terms and layers add up
        assert sum(e[model]["snn_terms"].values()) == pytest.approx(e[model]["snn_j"])
        assert sum(e[model]["snn_per_layer"].values()) == pytest.approx(e[model]["snn_j"])
        assert not any(k.startswith("ann_") for k in e[model])


def test_ann_fp32_and_quantised_with_the_same_memory_accounting():
    e = energy(SNN, MEM, 15, ANN)
    p = e["papers45nm"]
    assert p["ann_fp32_j"] == pytest.approx(500 * 4.6 * PJ)
    assert p["ann_quantised_j"] == pytest.approx(500 * 0.3 * PJ) and p["ann_quantised_bits"] == 4
    assert p["snn_over_ann_fp32"] == pytest.approx(900 / 2300)
    d = e["deployed45nm"]
    fp32_act = 10 * PJ * 32 / 64                                       # 60 activations x 32 bits < 8 KB
    fp32_w = 10 * PJ * 32 / 64                                         # 500 weights x 32 bits < 8 KB
    assert d["ann_fp32_terms"] == pytest.approx({"synaptic_macs": 500 * 4.6 * PJ, "neuron_updates": 60 * 1.8 * PJ,
                                                 "weight_reads": 500 * fp32_w, "activation_reads": 500 * fp32_act,
                                                 "activation_writes": 60 * fp32_act})
    q = d["ann_quantised_terms"]
    assert q["weight_reads"] == pytest.approx(500 * 10 * PJ * 8 / 64)
    assert q["activation_reads"] == pytest.approx(500 * 10 * PJ * 4 / 64)
    assert q["neuron_updates"] == pytest.approx(60 * (0.2 + 3.1) * PJ)
    assert d["snn_over_ann_quantised"] == pytest.approx(d["snn_j"] / d["ann_quantised_j"])
    assert "ann_fp32_j" not in e["loihi1"]


def test_activation_bits_hold_the_spike_counts_0_to_T():
    assert [activation_bits(T) for T in (1, 2, 3, 4, 7, 8, 16, 32, 64)] == [1, 2, 2, 3, 3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="steps must be at least 1"):
        activation_bits(0)


def test_neuron_update_multiplies_and_memories():
    assert update_mults(dense((2,), np.ones((2, 2)), RMP(1))) == 0
    assert update_mults(dense((2,), np.ones((2, 2)), RMP(1, vDecay=300))) == 1
    assert update_mults(dense((2,), np.ones((2, 2)), CUBA(1, iDecay=1024, vDecay=512))) == 2
    assert update_mults(dense((2,), np.ones((2, 2)), CUBA(1, iDecay=4096, vDecay=0))) == 0
    net = small_conv_net()
    mem = snn_memories(net, C.WEIGHT_BITS, C.STATE_BITS)
    assert mem.weights == (36 + 4 + 180) * 8                           # conv 4x1x3x3, pool 2x2, dense 5x36
    assert mem.state == 2 * (36 + 144 + 36 + 5) * 24


def test_ann_rows_round_trip_through_metadata():
    rows = [AnnLayer("input", 0.0, 36), AnnLayer("1:conv", 1024.0, 144), AnnLayer("2:dense", 180.0, 5)]
    assert ann_layers_from_meta({"ann_layers": ann_layers_to_meta(rows, 220)}) == (rows, 220)
    assert ann_layers_from_meta({}) is None
