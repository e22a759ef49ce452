"""Netlist v2: residual joins, per-step schedules, reset as a parameter, spike-input SynOps.

The property tests run random DAG netlists (``tests/dag_nets.py``) on the simulator and on
Lava (neurosim's process graph, both numeric modes) and require the same spikes in every
layer at every step, and the same final voltages.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from neurosim.errors import NetlistError, NeurosimError
from neurosim.lava.runner import run_lava
from neurosim.metrics.synops import ann_macs
from neurosim.netlist import (
    CUBA, INPUT, RMP, Flatten, Input, Netlist, Projection, Schedule, dense, hdf5, identity, join,
)
from neurosim.netlist.synapses import KINDS, Dense, Identity
from neurosim.sim.simulator import Simulator
from tests.conftest import assert_same_layer
from tests.dag_nets import random_dag

T = 10


# ----------------------------------------------------------------------------- by hand

def test_join_timing_skip_path_arrives_first():
    """input -> a (identity) -> b (identity) with a skip input -> b: b sees the input's spike at
    step 1 through the skip and at step 2 through a, and adds both as they arrive."""
    net = Netlist([
        Input((1,), RMP(0), weight=1.0),                                         # fires every step
        identity((1,), RMP(100), weight=1.0),                                     # never fires
        join(identity((1,), RMP(1000), weight=10.0), Projection(Identity(3.0), source=0)),
    ])
    res = Simulator(net, "float").run(np.ones((1, 1)), 4, record_spikes=True, per_neuron=True)
    # layer 2: v = 3 per step from step 1 (skip), plus 10 per spike of layer 1 from step 2 (none)
    assert res.v[2][0, 0] == 3 * 3
    net.layers[1].neuron = RMP(0)                                                 # now layer 1 fires
    res = Simulator(net, "float").run(np.ones((1, 1)), 4, record_spikes=True)
    assert res.spikes[1][0, :, 0].tolist() == [False, True, True, True]
    assert res.v[2][0, 0] == 3 * 3 + 10 * 2                                       # steps 2, 3 via layer 1


def test_schedule_scales_per_step_and_holds_the_last_row():
    """scale rows (1, 2) with exponent 1: 0.5x at step 0, 1x from step 1 on (held); fixed mode
    rounds half up; the bias row adds to the neuron bias."""
    net = Netlist([dense((2,), np.array([[3.0], [5.0]]), RMP(10 ** 5),
                         schedule=Schedule(scale=np.array([[1.0, 1.0], [2.0, 2.0]]),
                                           bias=np.array([[0.0, 1.0]]), scale_exp=1))],
                  input_shape=(1,))
    x = np.ones((1, 5, 1))
    fixed = Simulator(net, "fixed").run(x, 5)
    flt = Simulator(net, "float").run(x, 5)
    # a arrives from step 1 (one-step delay), when the scale row is 2/2 = 1: 4 steps of a; bias 1 every step
    assert flt.v[0][0].tolist() == [4 * 3.0, 4 * 5.0 + 5 * 1.0]
    assert (fixed.v[0][0] >> 6).tolist() == [12, 25]
    half = Netlist([dense((2,), np.array([[3.0], [5.0]]), RMP(10 ** 5),
                          schedule=Schedule(scale=np.array([[1.0, 3.0]]), scale_exp=1))], input_shape=(1,))
    res = Simulator(half, "fixed").run(np.ones((1, 2, 1)), 2)
    # step 1: 3 * 1/2 = 1.5 -> 2 (half up); 5 * 3/2 = 7.5 -> 8
    assert (res.v[0][0] >> 6).tolist() == [2, 8]
    assert Simulator(half, "float").run(np.ones((1, 2, 1)), 2).v[0][0].tolist() == [1.5, 7.5]


def test_reset_is_a_parameter_of_both_neurons():
    for cls in (CUBA, RMP):
        x = np.ones((1, 6, 1))
        soft = Netlist([dense((1,), np.array([[7.0]]), cls(10, reset="soft"))], input_shape=(1,))
        hard = Netlist([dense((1,), np.array([[7.0]]), cls(10, reset="hard"))], input_shape=(1,))
        s, h = (Simulator(n, "fixed").run(x, 6, record_spikes=True) for n in (soft, hard))
        # 7 per step from step 1: soft keeps the residue (14 -> 4, 11 -> 1, 8, 15 -> 5): 3 spikes;
        # hard loses it (7, 14 -> 0, 7, 14 -> 0, 7): 2 spikes
        assert s.spikes[0][0, :, 0].tolist() == [False, False, True, True, False, True]
        assert h.spikes[0][0, :, 0].tolist() == [False, False, True, False, True, False]
        assert (s.v[0][0, 0] >> 6, h.v[0][0, 0] >> 6) == (5, 7)
    with pytest.raises(NeurosimError, match="reset must be one of"):
        RMP(1, reset="zero")


def test_initial_voltage_starts_every_sample():
    """IF neuron, threshold 10, input 5 per step from step 1: from vInit = 5 it first fires at
    step 2, from 0 at step 3; every sample starts again from vInit."""
    x = np.ones((2, 5, 1))
    for mode in ("fixed", "float"):
        first = []
        for v_init in (5, 0):
            net = Netlist([dense((1,), np.array([[5.0]]), RMP(10, vInit=v_init))], input_shape=(1,))
            res = Simulator(net, mode).run(x, 5, record_spikes=True)
            np.testing.assert_array_equal(res.spikes[0][0], res.spikes[0][1])
            first.append(int(np.argmax(res.spikes[0][0, :, 0])))
        assert first == [2, 3], (mode, first)


def test_input_spikes_are_counted_in_synops():
    net = Netlist([dense((4,), np.ones((4, 3)), RMP(100)), dense((2,), np.ones((2, 4)), RMP(1))], input_shape=(3,))
    x = np.zeros((1, 5, 3))
    x[0, 0, 0] = x[0, 2, 1] = x[0, 2, 2] = 1
    res = Simulator(net, "fixed").run(x, 5)
    assert res.input_spikes.tolist() == [3]
    assert res.input_synops.tolist() == [3 * 4]
    assert res.synops_per_sample.tolist() == [3 * 4]            # layer 0 never fires


def test_skip_projections_count_in_fanout_and_macs():
    net = Netlist([Input((3,), RMP(1)), dense((4,), np.ones((4, 3)), RMP(1)),
                   join(dense((2,), np.ones((2, 4)), RMP(1)), Projection(Dense(np.ones((2, 3))), source=0))])
    sim = Simulator(net, "fixed")
    assert sim.fanouts[0].tolist() == [4 + 2] * 3
    assert ann_macs(net) == 12 + 8 + 6


# ----------------------------------------------------------------------------- files

def _save(tmp_path, net) -> str:
    return str(hdf5.save(net, tmp_path / "net.net"))


def test_join_schedule_reset_keys_on_disk(tmp_path):
    net = Netlist([Input((3,), RMP(1)), dense((4,), np.ones((4, 3)), CUBA(5, reset="soft")),
                   join(dense((2,), np.ones((2, 4)), RMP(1, reset="hard"),
                              schedule=Schedule(scale=np.ones((3, 2)), scale_exp=2)),
                        Projection(Dense(2 * np.ones((2, 3))), source=0))])
    path = _save(tmp_path, net)
    with h5py.File(path) as f:
        assert f["layer/2/projection/1/type"][0] == b"dense"
        assert f["layer/2/projection/1/source"][()] == 0
        assert f["layer/2/schedule/scale"].shape == (3, 2) and f["layer/2/schedule/scaleExp"][()] == 2
        assert f["layer/1/neuron/reset"][()] == b"soft" and f["layer/2/neuron/reset"][()] == b"hard"
        assert "source" not in f["layer/1"]                       # the layer before: netx's meaning
    back = hdf5.load(path)
    for a, b in zip(net.layers, back.layers):
        assert_same_layer(a, b)


@pytest.mark.parametrize("edit, message", [
    (lambda f: f["layer/2"].create_dataset("source", data=5), "layer 2: key 'source': source 5 is not an earlier"),
    (lambda f: f["layer/2"].create_dataset("source", data=2), "layer 2: key 'source': source 2 is not an earlier"),
    (lambda f: f["layer/2/projection/1"].__delitem__("source") or
     f["layer/2/projection/1"].create_dataset("source", data=1), "layer 2: key 'projection/1/weight'"),
    (lambda f: f["layer/2/projection/1"].create_group("x"), None),
    (lambda f: f["layer/2/projection"].move("1", "2"), "projections must be named 1..1"),
    (lambda f: (f["layer/2/projection/1"].__delitem__("type"),
                f["layer/2/projection/1"].create_dataset("type", data=[b"average"])), "unknown synapse type 'average'"),
    (lambda f: f["layer/2/schedule/scale"].__setitem__((0, 0), np.nan), "NaN"),
    (lambda f: f["layer/2/neuron"].create_dataset("reset", data=b"zero"),   # RMP's default, soft, is not written
     "layer 2: key 'neuron/reset'"),
    (lambda f: f["layer/1"].create_dataset("source", data=-1), "source -1 (spike input) in a net with an 'input'"),
])
def test_bad_graphs_are_load_errors_naming_the_layer(tmp_path, edit, message):
    net = Netlist([Input((3,), RMP(1)), dense((4,), np.ones((4, 3)), RMP(1)),
                   join(dense((2,), np.ones((2, 4)), RMP(1), schedule=Schedule(scale=np.ones((2, 2)))),
                        Projection(Dense(np.ones((2, 3))), source=0))])
    path = _save(tmp_path, net)
    with h5py.File(path, "r+") as f:
        edit(f)
    if message is None:                          # unknown extra keys are ignored, as netx does
        hdf5.load(path)
        return
    with pytest.raises(NetlistError, match=message.replace("(", r"\(").replace(")", r"\)")):
        hdf5.load(path)


def test_dag_generator_covers_every_feature():
    """What the property tests draw from: over 40 seeds every v2 feature occurs."""
    seen = set()
    for seed in range(40):
        net, _ = random_dag(seed, T)
        seen.add("spike input" if net.input_shape is not None else "current input")
        for i, layer in enumerate(net.layers):
            if isinstance(layer, Flatten):
                continue
            seen.add(f"{layer.neuron.type_name} {layer.neuron.reset}")
            if layer.neuron.vInit:
                seen.add("vInit")
            if isinstance(layer, Input):
                continue
            for p, (src, kind) in enumerate(net.inputs(i)):
                seen.add(kind.type_name + (" join" if p else ""))
                if p and src == INPUT:
                    seen.add("join from the spike input")
                if p and src >= 0 and isinstance(net.layers[src], Flatten):
                    seen.add("join from a flatten")
            if layer.schedule is not None:
                seen.update(f"schedule {k}" for k in ("scale", "bias") if getattr(layer.schedule, k) is not None)
    assert seen >= {"spike input", "current input", "CUBA hard", "CUBA soft", "RMP hard", "RMP soft",
                    "dense", "conv", "pool", "identity", "dense join", "conv join", "identity join",
                    "join from the spike input", "join from a flatten", "schedule scale", "schedule bias",
                    "vInit"}, seen


def test_every_synapse_kind_is_registered():
    assert set(KINDS) == {"dense", "conv", "pool", "identity"}


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1))
def test_random_dags_survive_the_file_round_trip(tmp_path_factory, seed):
    net, x = random_dag(seed, T)
    path = hdf5.save(net, tmp_path_factory.mktemp("dag") / "net.net")
    back = hdf5.load(path)
    for a, b in zip(net.layers, back.layers):
        assert_same_layer(a, b)
    for mode in ("fixed", "float"):
        a, b = (Simulator(n, mode).run(x, T, record_spikes=True) for n in (net, back))
        for i in net.neuron_layers:
            np.testing.assert_array_equal(a.spikes[i], b.spikes[i])


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31 - 1), mode=st.sampled_from(["fixed", "float"]))
def test_random_dags_do_not_depend_on_chunks_and_windows(seed, mode):
    net, x = random_dag(seed, T, n_samples=3)
    whole = Simulator(net, mode).run(x, T, record_spikes=True)
    cut = Simulator(net, mode, workspace_bytes=1).run(x, T, record_spikes=True)     # 1 sample, 1 step at a time
    for i in net.neuron_layers:
        np.testing.assert_array_equal(whole.spikes[i], cut.spikes[i])
        np.testing.assert_array_equal(whole.v[i], cut.v[i])


# ----------------------------------------------------------------------------- Lava

@settings(max_examples=10, deadline=None, derandomize=True,      # ~2 s each; tests/test_delays.py adds more DAGs
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2 ** 31 - 1), mode=st.sampled_from(["fixed", "float"]))
def test_random_dags_on_lava_equal_the_simulator(seed, mode):
    net, x = random_dag(seed, T)
    sim = Simulator(net, mode).run(x, T, record_spikes=True)
    lava = run_lava(net, x, T, mode, progress=False)
    active = 0
    for i in net.neuron_layers:
        mism = int(np.count_nonzero(sim.spikes[i] != lava.spikes[i]))
        assert mism == 0, f"layer {i} ({net.layers[i].type_name}): {mism} spike entries differ (seed {seed}, {mode})"
        np.testing.assert_array_equal(sim.v[i], lava.v[i], err_msg=f"layer {i} voltages")
        active += bool(sim.spikes[i].any())
    assert active >= len(net.neuron_layers) // 2, "most layers silent: the comparison would prove little"


def test_spike_input_skip_from_the_input_on_lava():
    """A projection straight from the spike raster (source INPUT) next to a chain."""
    rng = np.random.default_rng(7)
    net = Netlist([dense((6,), rng.integers(0, 6, (6, 8)).astype(float), CUBA(8, iDecay=1024, reset="soft")),
                   Flatten((6,)),
                   join(dense((3,), rng.integers(0, 6, (3, 6)).astype(float), RMP(9)),
                        Projection(Dense(rng.integers(0, 4, (3, 8)).astype(float)), source=INPUT))],
                  input_shape=(8,))
    x = (rng.random((2, T, 8)) < 0.4).astype(float)
    sim = Simulator(net, "fixed").run(x, T, record_spikes=True)
    lava = run_lava(net, x, T, "fixed", progress=False)
    for i in net.neuron_layers:
        assert sim.spikes[i].any()
        np.testing.assert_array_equal(sim.spikes[i], lava.spikes[i])
