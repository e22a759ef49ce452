"""The simulator against stock lava-dl netx on Lava, on netlists written by lava-dl itself.

Each net runs once through ``lava.lib.dl.netx.hdf5.Network`` on Lava's CPU simulator
(``fixed_pt``) in a child process, with a sink on every block; the simulator must give the
same spikes in every layer at every step. (lava-dl's own tinynet test also resets the
neurons periodically and compares the output only; ``output.npy`` then differs from a plain
run, so the plain run is the yardstick here.)
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from neurosim.netlist.hdf5 import load
from neurosim.sim.simulator import Simulator
from tests.conftest import needs_shared

STOCK_NETX = textwrap.dedent("""
    import sys
    import numpy as np
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    path, steps, how, data, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    net = netx.hdf5.Network(net_config=path)
    if how == "bias":                 # the input layer's bias_mant, Lava layout (W, H, C)
        net.in_layer.neuron.bias_mant.init = np.load(data)
    else:                             # spikes (n, T) played into the net's input, column t at step t
        source = Source(data=np.load(data))
        source.s_out.connect(net.inp)
    sinks = []
    for block in net.layers:
        sink = Sink(shape=block.out.shape, buffer=steps)
        block.out.connect(sink.a_in)
        sinks.append(sink)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        outs = [sink.data.get() for sink in sinks]
    finally:
        net.stop()
    np.savez(out, *outs)
""")


def _stock_netx(tmp_path, net_path, steps: int, how: str, data: np.ndarray) -> list[np.ndarray]:
    """Every block's spikes from stock netx, as (T, neurons) in (C, H, W) order."""
    np.save(tmp_path / "data.npy", data)
    out = tmp_path / "lava.npz"
    proc = subprocess.Popen([sys.executable, "-c", STOCK_NETX, str(net_path), str(steps), how,
                             str(tmp_path / "data.npy"), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("stock netx run did not finish in 300 s")
    assert proc.returncode == 0, err[-3000:]
    z = np.load(out)
    blocks = [z[f"arr_{i}"] for i in range(len(z.files))]
    # (*Lava shape (W, H, C) or (n,), T) -> (T, C*H*W)
    return [(b.transpose(2, 1, 0, 3) if b.ndim == 4 else b).reshape(-1, b.shape[-1]).T for b in blocks]


def _compare(net, lava: list[np.ndarray], sim_spikes: list) -> None:
    layers = net.neuron_layers
    assert len(lava) == len(layers)
    for i, spikes in zip(layers, lava):
        sim = sim_spikes[i][0]
        assert sim.shape == spikes.shape, (i, sim.shape, spikes.shape)
        assert sim.any(), f"layer {i} never spikes: the comparison would prove nothing"
        mismatches = int(np.count_nonzero(sim != (spikes != 0)))
        assert mismatches == 0, f"layer {i}: {mismatches} of {sim.size} spike entries differ from Lava"


def test_tinynet_every_layer_equals_stock_netx(tmp_path):
    folder = needs_shared("netx-reference", "tinynet")
    net = load(folder / "network.net")
    bias_whc = np.load(folder / "input_bias.npy")                 # what lava-dl's test feeds
    steps = 16
    lava = _stock_netx(tmp_path, folder / "network.net", steps, "bias", bias_whc)
    res = Simulator(net, "fixed").run(bias_whc.transpose(2, 1, 0)[None], steps, raw_current=True,
                                   record_spikes=True)
    _compare(net, lava, res.spikes)


def test_oxford_every_layer_equals_stock_netx(tmp_path):
    folder = needs_shared("netx-reference", "oxford")
    net = load(folder / "network.net")
    events = np.load(folder / "input.npy")                       # (neuron, 0, time) events
    steps = 120
    raster = np.zeros((200, steps), dtype=np.int32)
    keep = events[:, 2] < steps
    raster[events[keep, 0].astype(int), np.floor(events[keep, 2]).astype(int)] = 1
    lava = _stock_netx(tmp_path, folder / "network.net", steps, "spikes", raster)
    res = Simulator(net, "fixed").run(raster.T[None], steps, record_spikes=True)
    _compare(net, lava, res.spikes)


def test_oxford_synops_count_the_input_spikes():
    """The issue's figure: over the first 200 steps oxford's 204 input spikes reach 256 synapses
    each (52,224 SynOps), on top of what the hidden layer's spikes cause."""
    folder = needs_shared("netx-reference", "oxford")
    net = load(folder / "network.net")
    events = np.load(folder / "input.npy")
    steps = 200
    raster = np.zeros((steps, 200), dtype=np.int32)
    keep = events[:, 2] < steps
    raster[np.floor(events[keep, 2]).astype(int), events[keep, 0].astype(int)] = 1
    res = Simulator(net, "fixed").run(raster[None], steps)
    assert res.input_spikes.tolist() == [204]
    assert res.input_synops.tolist() == [204 * 256]
    assert res.synops_per_sample.tolist() == [204 * 256 + int(res.synops[0][0])]
