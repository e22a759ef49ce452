"""SynOps from events with real fan-out, on hand-computed cases."""
from __future__ import annotations

import numpy as np

from neurosim.metrics.synops import ann_macs, fanouts, synops_per_layer
from neurosim.netlist import Flatten, Input, Netlist, RMP, conv, dense, pool


def conv_net() -> Netlist:
    return Netlist([
        Input((1, 4, 4), RMP(1)),
        conv((2, 4, 4), np.ones((2, 1, 3, 3)), RMP(1), padding=(1, 1)),
        pool((2, 3, 3), np.ones((2, 2)), RMP(1), stride=(1, 1)),
        Flatten((18,)),
        dense((3,), np.ones((3, 18)), RMP(1)),
    ])


def test_conv_fanout_counts_borders():
    fan = fanouts(conv_net())
    # 3x3 kernel, padding 1, 4x4 map, 2 output channels: corner 4 windows, edge 6, inside 9
    expected = 2 * np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])
    np.testing.assert_array_equal(fan[0].reshape(4, 4), expected)
    # 2x2 pooling, stride 1, on 4x4: corner in 1 window, edge 2, inside 4 (per channel)
    np.testing.assert_array_equal(fan[1].reshape(2, 4, 4)[0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    assert (fan[2] == 3).all() and fan[3] is None and (fan[4] == 0).all()


def test_synops_is_spikes_times_fanout():
    net = conv_net()
    counts = [np.zeros((1, int(np.prod(l.shape))), dtype=np.int64) for l in net.layers]
    counts[3] = None
    counts[0][0, 0] = 3          # corner pixel spikes 3 times: 3 * 8
    counts[0][0, 5] = 1          # inside pixel once: 18
    counts[2][0, 4] = 2          # a pool neuron twice into the dense layer: 2 * 3
    ops = synops_per_layer(net, counts)
    assert ops[0][0] == 3 * 8 + 18 and ops[2][0] == 6 and ops[1][0] == 0


def test_ann_macs_are_all_connections():
    # conv: 16 pixels' fan-out sum = 2 * (4*4 + 8*6 + 4*9) = 200; pool: 2 * 36 = 72; dense: 18*3 = 54
    assert ann_macs(conv_net()) == 200 + 72 + 54


def test_simulator_counts_synops_from_its_own_events():
    from neurosim.sim.simulator import Simulator
    from tests.conftest import small_conv_net

    net = small_conv_net()
    x = np.random.default_rng(0).random((4, 1, 6, 6))
    res = Simulator(net, "fixed").run(x, 15)
    lean = Simulator(net, "fixed").run(x, 15, per_neuron=False)
    expected = synops_per_layer(net, res.counts)
    for i in net.neuron_layers:
        np.testing.assert_array_equal(res.synops[i], expected[i])
        np.testing.assert_array_equal(lean.synops[i], expected[i])
        np.testing.assert_array_equal(res.layer_spikes[i], res.counts[i].sum(1))
    assert lean.counts[1] is None and lean.counts[net.output_layer] is not None
    np.testing.assert_array_equal(lean.readout, res.readout)
