"""Per-projection delays (``Projection.delay``) on every backend: the schema's rule, the
simulator, Lava, HDF5, netx export, NIR, the Loihi 2 report, SynOps, and the converter's
aligned joins."""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from neurosim.errors import NetlistError, NeurosimError
from neurosim.interop.nir_io import from_nir, to_nir
from neurosim.lava.runner import run_lava
from neurosim.loihi2.report import deployment_report
from neurosim.metrics.synops import event_synops
from neurosim.netlist import hdf5
from neurosim.netlist.netx_compat import layer_refusal, save_netx
from neurosim.netlist.schema import INPUT, MAX_DELAY, Input, Netlist, Population, Projection
from neurosim.netlist.neurons import CUBA, RMP
from neurosim.netlist.synapses import Conv, Dense, Identity
from neurosim.netlist.transforms import align_delays
from neurosim.sim.simulator import Simulator
from tests.dag_nets import random_dag
from tests.test_netx_reference import _compare, _stock_netx


def _relay(delay: int, n: int = 5) -> Netlist:
    """Spike input -> one population that fires exactly when a spike arrives (weight 2 over a
    threshold of 1, hard reset): its spikes are the input's, ``delay`` steps later."""
    return Netlist([Population((n,), RMP(1, reset="hard"), [Projection(Identity(2.0), INPUT, delay)])],
                   input_shape=(n,))


def _residual(delay_skip: int = 1) -> Netlist:
    """Input -> a -> b, and b's join takes a second projection straight from the input."""
    rng = np.random.default_rng(3)
    w = lambda: np.round(rng.normal(0, 8, (4, 4)))
    n = RMP(vThMant=10)
    return Netlist([Input((4,), n),
                    Population((4,), n, [Projection(Dense(w()))]),
                    Population((4,), n, [Projection(Dense(w()))]),
                    Population((4,), n, [Projection(Dense(w())), Projection(Identity(3.0), 0, delay_skip)])])


def _with_delays(net: Netlist, seed: int) -> Netlist:
    """``net`` with random delays 1..4 on every projection."""
    rng = np.random.default_rng(seed)
    layers = [dataclasses.replace(l, projections=[dataclasses.replace(p, delay=int(rng.integers(1, 5)))
                                                  for p in l.projections]) if isinstance(l, Population) else l
              for l in net.layers]
    return Netlist(layers=layers, input_shape=net.input_shape, meta=net.meta)


@pytest.mark.parametrize("delay", [1, 2, 5])
@pytest.mark.parametrize("workspace", [1 << 25, 64])
def test_a_projection_delivers_its_spikes_delay_steps_late(delay, workspace):
    rng = np.random.default_rng(delay)
    x = (rng.random((3, 12, 5)) < 0.4).astype(np.float32)
    sim = Simulator(_relay(delay), "fixed", workspace_bytes=workspace)
    assert workspace > 1000 or sim.plan(3, 12).window < delay + 2        # windows shorter than the delay
    out = sim.run(x, 12, record_spikes=True).spikes[0]
    expect = np.zeros_like(out)
    expect[:, delay:] = x[:, :12 - delay] > 0
    assert np.array_equal(out, expect)


def test_delays_are_checked_and_set_the_depth():
    for bad in (0, -1, 1.5, MAX_DELAY + 1):
        with pytest.raises(NeurosimError, match=r"^layer 3 projection 1: delay must be an integer"):
            _residual(bad).check()
    assert _residual().depths() == [0, 1, 2, 1]
    assert _residual(4).depths() == [0, 1, 2, 3]


def test_align_delays_makes_every_path_into_a_join_arrive_together():
    net = _residual()
    aligned = align_delays(net)
    assert [p.delay for p in aligned.layers[3].projections] == [1, 3]
    assert aligned.depths() == [0, 1, 2, 3]
    assert [p.delay for p in net.layers[3].projections] == [1, 1]          # the input is not changed
    again = align_delays(aligned)
    assert [p.delay for p in again.layers[3].projections] == [1, 3]
    longer = align_delays(_residual(5))                                    # delays only grow
    assert [p.delay for p in longer.layers[3].projections] == [3, 5]       # main path from depth 2


def test_synops_do_not_depend_on_delays():
    x = np.random.default_rng(0).uniform(0, 20, (4, 4))
    sim = Simulator(align_delays(_residual()), "fixed")
    res = sim.run(x, 20, per_neuron=True)
    for i in sim.net.neuron_layers:
        assert np.array_equal(res.synops[i], event_synops(res.counts[i], sim.fanouts[i]))


@pytest.mark.parametrize("seed", [2, 5])
def test_random_dags_with_delays_on_lava_equal_the_simulator(seed):
    net, x = random_dag(seed, steps=14)
    net = _with_delays(net, seed)
    assert any(p.delay > 1 for l in net.layers if isinstance(l, Population) for p in l.projections)
    for mode in ("fixed", "float"):
        sim = Simulator(net, mode).run(x, 14, record_spikes=True)
        lava = run_lava(net, x, 14, mode=mode, progress=False)
        for i in net.neuron_layers:
            assert np.array_equal(sim.spikes[i], lava.spikes[i]), (mode, i)
        assert any(sim.spikes[i].any() for i in net.neuron_layers)


def test_hdf5_keeps_delays_and_reads_netx_delay_keys(tmp_path):
    net = _with_delays(random_dag(5)[0], 5)
    back = hdf5.load(hdf5.save(net, tmp_path / "d.net"))
    assert [[p.delay for p in l.projections] for l in back.layers if isinstance(l, Population)] == \
        [[p.delay for p in l.projections] for l in net.layers if isinstance(l, Population)]
    plain = hdf5.load(hdf5.save(_residual(), tmp_path / "plain.net"))       # no key: delay 1
    with h5py.File(tmp_path / "plain.net") as f:
        assert not any("delay" in f[f"layer/{i}"] for i in range(4))
    assert [p.delay for p in plain.layers[3].projections] == [1, 1]
    for value, match in ((np.array([1, 2, 1, 1]), "differ between synapses"), (np.int64(-1), "outside")):
        with h5py.File(tmp_path / "plain.net", "r+") as f:
            if "delay" in f["layer/2"]:
                del f["layer/2/delay"]
            f["layer/2"].create_dataset("delay", data=value)
        with pytest.raises(NetlistError, match=f"layer 2.*'delay'.*{match}"):
            hdf5.load(tmp_path / "plain.net")
    with h5py.File(tmp_path / "plain.net", "r+") as f:         # netx's per-synapse form, all equal
        del f["layer/2/delay"]
        f["layer/2"].create_dataset("delay", data=np.full((4, 4), 2))
    assert hdf5.load(tmp_path / "plain.net").layers[2].projections[0].delay == 3


def test_netx_export_takes_dense_delays_and_refuses_conv_delays(tmp_path):
    n = CUBA(vThMant=8, iDecay=4096, vDecay=0)
    dense = Netlist([Population((3,), n, [Projection(Dense(np.eye(3) * 10), INPUT, 3)])], input_shape=(3,))
    with h5py.File(save_netx(dense, tmp_path / "d.net")) as f:
        assert int(f["layer/1/delay"][()]) == 2                      # netx's key: steps on top of the synapse's
    conv = Netlist([Population((1, 3, 3), n, [Projection(Conv(np.ones((1, 1, 1, 1)) * 10), INPUT, 2)])],
                   input_shape=(1, 3, 3))
    assert "netx delays only dense layers" in layer_refusal(conv, 0)
    far = Netlist([Population((3,), n, [Projection(Dense(np.eye(3) * 10), INPUT, 64)])], input_shape=(3,))
    assert "at most 63" in layer_refusal(far, 0)


def test_dense_delays_exported_to_netx_equal_stock_netx_spike_for_spike(tmp_path):
    rng = np.random.default_rng(0)
    n = CUBA(vThMant=20, iDecay=2048, vDecay=512)
    w = lambda o, i: Dense(np.round(rng.normal(0, 30, (o, i))))
    net = Netlist([Population((12,), n, [Projection(w(12, 10), INPUT, 1)]),
                   Population((8,), n, [Projection(w(8, 12), None, 4)]),
                   Population((6,), n, [Projection(w(6, 8), None, 2)])], input_shape=(10,))
    steps = 40
    raster = (rng.random((steps, 10)) < 0.4).astype(np.int32)
    lava = _stock_netx(tmp_path, save_netx(net, tmp_path / "n.net"), steps, "spikes", raster.T)
    _compare(net, lava, Simulator(net, "fixed").run(raster[None], steps, record_spikes=True).spikes)


def test_nir_round_trip_keeps_delays():
    net = align_delays(_residual())
    back = from_nir(to_nir(net, consumer="nir"))
    assert [p.delay for p in back.layers[3].projections] == [1, 3]


def test_loihi2_report_names_delays_beyond_loihi2():
    net = _residual(70)
    row = deployment_report(net)["layers"][3]
    assert row["delays"] == [1, 70]
    assert any("delay 70 > 63" in p for p in row["format_problems"])
    assert "delay line" in row["synapse_processes"][1]
    assert not deployment_report(net)["totals"]["fits_loihi2_formats"]
