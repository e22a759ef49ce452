"""The batched simulator against hand-computed timing and its own invariants."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurosim.errors import NeurosimError
from neurosim.netlist import CUBA, Input, Netlist, RMP, dense
from neurosim.sim.simulator import Simulator
from tests.conftest import small_conv_net


def test_one_step_synaptic_delay_by_hand():
    net = Netlist([Input((1,), RMP(10), weight=10.0), dense((1,), np.array([[5.0]]), RMP(7))])
    res = Simulator(net, "float").run(np.array([[1.0]]), 8, record_spikes=True)
    # input: v = 10, 20>10 (spike, ->10), 20 (spike) ... -> spikes from t=1 on
    assert res.spikes[0][0, :, 0].astype(int).tolist() == [0, 1, 1, 1, 1, 1, 1, 1]
    # dense: a[t] = 5 s_in[t-1] -> a = 0,0,5,5,...; v = 0,0,5,10>7(->3),8(->1),6,11(->4),9(->2)
    assert res.spikes[1][0, :, 0].astype(int).tolist() == [0, 0, 0, 1, 1, 0, 1, 1]
    assert res.v[1][0, 0] == 2.0


def test_fixed_equals_float_for_integer_nets():
    net = small_conv_net()
    x = np.random.default_rng(0).integers(0, 129, (6, 1, 6, 6)) / 128.0
    f = Simulator(net, "fixed").run(x, 30, record_spikes=True)
    g = Simulator(net, "float").run(x, 30, record_spikes=True)
    for i in net.neuron_layers:
        np.testing.assert_array_equal(f.spikes[i], g.spikes[i])
        np.testing.assert_array_equal(f.v[i], 64 * g.v[i])


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_chunks_and_windows_do_not_change_results(mode):
    net = small_conv_net(neuron=CUBA)
    x = np.random.default_rng(1).random((7, 1, 6, 6))
    whole = Simulator(net, mode).run(x, 20, record_spikes=True, readout_steps=range(1, 21))
    neurons = sum(int(np.prod(l.shape)) for l in net.layers if hasattr(l, "neuron"))
    # 1 byte: one sample and one step at a time; 6 cells: chunks of 2 samples (one short), windows of 3 steps
    for workspace in (1, 4 * neurons * 6):
        sim = Simulator(net, mode, workspace_bytes=workspace)
        plan = sim.plan(len(x), 20)
        assert (plan.chunk, plan.window) == ((1, 1) if workspace == 1 else (1, 6))
        cut = sim.run(x, 20, record_spikes=True, readout_steps=range(1, 21))
        for i in net.neuron_layers:
            for name in ("counts", "v", "step_counts", "layer_spikes", "synops", "spikes"):
                np.testing.assert_array_equal(getattr(whole, name)[i], getattr(cut, name)[i], err_msg=name)
        np.testing.assert_array_equal(whole.readout, cut.readout)
        np.testing.assert_array_equal(whole.readout_trace, cut.readout_trace)
    assert whole.step_counts[net.output_layer].sum() > 0


def test_fixed_mode_refuses_fractional_weights():
    net = small_conv_net()
    net.layers[1].synapse.weight = net.layers[1].synapse.weight + 0.5
    with pytest.raises(NeurosimError, match="layer 1: key 'weight': fixed-point mode needs integer"):
        Simulator(net, "fixed")


def test_wrong_input_shape_is_refused():
    with pytest.raises(NeurosimError, match="expects"):
        Simulator(small_conv_net(), "fixed").run(np.zeros((2, 1, 5, 5)), 4)


def test_loihi_dense_matches_netx_and_lava():
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    from neurosim.sim.synapse import loihi_dense

    rng = np.random.default_rng(0)
    cases = [rng.integers(-256, 255, (6, 9)), rng.integers(-30, 30, (6, 9)) * 2, rng.integers(0, 90, (6, 9)),
             -rng.integers(0, 128, (6, 9)), rng.integers(-300, 300, (6, 9)), rng.integers(-7, 7, (6, 9)) * 8]
    for w in cases:
        w = w.astype(np.float32)
        netx_w, bits, exp, _ = optimize_weight_bits(w)
        mode = determine_sign_mode(netx_w)
        lava_w = truncate_weights(clip_weights(netx_w, mode, num_bits=8), mode, bits)
        mine, my_exp = loihi_dense(w)
        np.testing.assert_array_equal(mine, lava_w)
        assert my_exp == exp
        s = rng.integers(0, 2, 9)
        acc = lava_w.dot(s)
        expected = np.left_shift(acc, exp) if exp > 0 else np.right_shift(acc, -exp)
        if np.abs(w).max() <= 254:
            np.testing.assert_array_equal(expected, w.astype(int) @ s)   # lossless in range


def test_readout_trace_equals_shorter_runs():
    net = small_conv_net()
    x = np.random.default_rng(2).random((5, 1, 6, 6))
    labels = np.arange(5) % 5
    sim = Simulator(net, "fixed")
    long = sim.run(x, 12, readout_steps=[7, 3, 12])
    assert long.readout_steps == (3, 7, 12)
    acc = long.accuracy_at(labels)
    for k, T in enumerate((3, 7, 12)):
        short = sim.run(x, T)
        np.testing.assert_array_equal(long.readout_trace[:, k], short.readout)
        assert acc[T] == np.mean(short.predictions == labels)
    # windows of 5 steps: the picks of one window land in the right columns
    neurons = sum(int(np.prod(l.shape)) for l in net.layers if hasattr(l, "neuron"))
    windowed = Simulator(net, "fixed", workspace_bytes=4 * neurons * 5)
    assert (windowed.plan(5, 12).chunk, windowed.plan(5, 12).window) == (1, 5)
    cut = windowed.run(x, 12, readout_steps=[7, 3, 12])
    np.testing.assert_array_equal(cut.readout_trace, long.readout_trace)
    with pytest.raises(NeurosimError, match="readout_steps must lie in 1..12"):
        sim.run(x, 12, readout_steps=[13])


def test_single_step_runs():
    net = small_conv_net()
    res = Simulator(net, "fixed").run(np.ones((2, 1, 6, 6)), 1, record_spikes=True)
    assert res.spikes[1].shape == (2, 1, 144) and not res.spikes[4].any()   # nothing arrives in step 0


def test_wrap_is_skipped_only_when_provably_the_identity():
    from neurosim.netlist import Netlist, conv

    small = Simulator(small_conv_net(), "fixed")
    assert not small.synapses[1][0].wraps and not small.pops[1].may_wrap
    # 576 synapses x 254: the sum fits the conv's 24 bits, but a << 6 can leave the current's
    big = Netlist([Input((64, 4, 4), RMP(10)), conv((2, 4, 4), np.full((2, 64, 3, 3), 254.0), RMP(10), padding=(1, 1))])
    sim = Simulator(big, "fixed")
    assert not sim.synapses[1][0].wraps and sim.pops[1].may_wrap
    res = sim.run(np.full((1, 64, 4, 4), 20.0), 3, raw_current=True, record_spikes=True)
    # every input neuron fires at step 0 (20 > 10); step 1: centre sum 146,304 << 6 > 2**23 wraps negative
    assert res.spikes[0][0, 0].all() and not res.spikes[1][0, 1].reshape(2, 4, 4)[:, 1:3, 1:3].any()


def test_reused_workspace_gives_the_same_results_as_a_fresh_simulator():
    net = small_conv_net(neuron=CUBA)
    x = np.random.default_rng(3).random((9, 1, 6, 6))
    sim = Simulator(net, "fixed", workspace_bytes=4 * 2000 * 12)     # small: several chunks and windows
    for n, steps in ((9, 20), (4, 20), (9, 7), (9, 20)):
        again = sim.run(x[:n], steps, record_spikes=True)
        fresh = Simulator(net, "fixed").run(x[:n], steps, record_spikes=True)
        for i in net.neuron_layers:
            np.testing.assert_array_equal(again.spikes[i], fresh.spikes[i])
            np.testing.assert_array_equal(again.v[i], fresh.v[i])


def test_spike_input_must_be_binary_and_finite():
    net = Netlist([dense((3,), np.full((3, 4), 2.0), CUBA(1))], input_shape=(4,))
    sim = Simulator(net, "fixed")
    good = np.zeros((2, 5, 4))
    good[0, 1, 2] = 1
    assert sim.run(good, 5).layer_spikes[0].tolist() == [3, 0]
    assert sim.run(good.astype(bool), 5).layer_spikes[0].tolist() == [3, 0]
    for bad, message in ((good * 2, "spike input must be 0/1"), (good * np.nan, "must be 0/1"),
                         (good.astype(str), "must be numeric")):
        with pytest.raises(NeurosimError, match=message):
            sim.run(bad, 5)


@pytest.mark.parametrize("stride,padding", [((1, 1), (1, 1)), ((2, 2), (0, 0))])
def test_folded_pool_conv_is_computed_as_pool_then_conv_exactly(stride, padding):
    """A conv folded from avg-pool 2x2 + conv (fold_pool's kernel) takes the pool-then-conv
    path, with currents equal to the direct conv's; a kernel that is no such fold does not."""
    import torch
    import torch.nn.functional as F

    from neurosim.convert.graph import Stage
    from neurosim.convert.rmp import fold_pool
    from neurosim.netlist.quantize import even_mantissas
    from neurosim.netlist.synapses import Conv
    from neurosim.sim.synapse import Synapse

    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 4, 3, 3))
    pool = Stage("pool", "", [], (), np.full((2, 2), 0.25), None, (2, 2), (0, 0), (1, 1), 1)
    lin = Stage("conv", "", [], (), w, None, stride, padding, (1, 1), 1)
    folded = fold_pool(pool, lin, (4, 12, 12))
    kind = Conv(even_mantissas(folded.weight * 40), folded.stride, folded.padding)
    s = torch.as_tensor(rng.random((3, 4, 12, 12)) < 0.3)
    for fixed in (True, False):
        syn = Synapse(kind, (4, 12, 12), fixed)
        assert syn.pool == 2
        direct = F.conv2d(s.to(syn.dtype), syn.weight, stride=kind.stride, padding=kind.padding)
        assert torch.equal(syn(s), direct if not fixed or not syn.wraps else direct.to(torch.int64))
    odd = Conv(kind.weight.copy(), kind.stride, kind.padding)
    odd.weight[0, 0, 0, 1] += 2                       # one 2x2 block no longer constant
    assert Synapse(odd, (4, 12, 12), True).pool is None


@pytest.mark.parametrize("stride,padding,dilation", [((1, 1), (1, 1), (1, 1)), ((1, 1), (0, 2), (1, 2)),
                                                     ((2, 1), (0, 2), (1, 2))])
def test_small_reduction_conv_and_sum_pool_equal_torch(stride, padding, dilation):
    """The im2col path of a stride-1 conv with few inputs per output (an image's first conv;
    a strided one is PyTorch's) and the strided-add sum pool give PyTorch's numbers exactly,
    for spikes and integer weights."""
    import torch
    import torch.nn.functional as F

    from neurosim.netlist.synapses import Conv
    from neurosim.sim.synapse_maps import SMALL_REDUCTION, conv2d, sum_pool, synapse_map

    g = torch.Generator().manual_seed(0)
    s = (torch.rand((5, 1, 13, 11), generator=g) < 0.4).float()
    w = torch.randint(-128, 128, (7, 1, 3, 3), generator=g).float()
    assert 1 * 3 * 3 <= SMALL_REDUCTION
    kind = Conv(w.numpy(), stride, padding, dilation)
    assert torch.equal(synapse_map(kind).linear(s, w), F.conv2d(s, w, stride=stride, padding=padding, dilation=dilation))
    wide = torch.randint(-128, 128, (7, 4, 3, 3), generator=g).float()       # 36 terms: PyTorch's conv
    s4 = (torch.rand((5, 4, 13, 11), generator=g) < 0.4).float()
    assert torch.equal(conv2d(s4, wide, stride, padding, dilation, 1),
                       F.conv2d(s4, wide, stride=stride, padding=padding, dilation=dilation))
    for p in (2, 3):
        x = (torch.rand((3, 2, 6 * p, 4 * p), generator=g) < 0.5).double()
        assert torch.equal(sum_pool(x, p), F.avg_pool2d(x, p, divisor_override=1))


@pytest.mark.parametrize("kernel,padding", [((3, 3), (1, 1)), ((1, 1), (0, 0)), ((5, 3), (2, 0)), ((2, 4), (1, 3))])
def test_event_driven_conv_equals_torch(kernel, padding, monkeypatch):
    """The event-driven conv (stride 1) gives PyTorch's sums exactly, on one thread and cut
    among two; a geometry it does not take (stride, dilation, groups, padding >= kernel) has
    no event weights."""
    import torch
    import torch.nn.functional as F

    from neurosim.netlist.synapses import Conv
    from neurosim.sim import kernels
    from neurosim.sim.synapse_maps import synapse_map

    g = torch.Generator().manual_seed(1)
    s = (torch.rand((9, 3, 13, 11), generator=g) < 0.2).float()
    w = torch.randint(-255, 256, (5, 3, *kernel), generator=g).float()
    kind = Conv(w.numpy(), (1, 1), padding)
    cmap = synapse_map(kind)
    ew = cmap.event_weight(w.numpy(), (3, 13, 11))
    want = F.conv2d(s.double(), w.double(), padding=padding).float()
    assert torch.equal(cmap.event_linear(s, ew, None), want)
    monkeypatch.setattr(kernels, "MIN_PARALLEL_WORK", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    out = torch.full((want.numel(),), float("nan"))
    assert torch.equal(cmap.event_linear(s, ew, out), want) and torch.equal(out.view_as(want), want)
    for other in (Conv(w.numpy(), (2, 1), padding), Conv(w.numpy(), (1, 1), padding, (1, 2)),
                  Conv(w.numpy()[:, :1].copy(), (1, 1), padding, groups=3),
                  Conv(w.numpy(), (1, 1), (kernel[0], padding[1]))):
        assert synapse_map(other).event_weight(other.weight, (3, 13, 11)) is None


def test_event_driven_conv_is_exact_up_to_the_float32_bound():
    """Integer weights whose row of |w| sums to just below 2**24 stay float32, and the
    event-driven sums (another order than PyTorch's) equal the int64 ones: every partial sum
    of an output is a sum of some terms of its row."""
    import torch
    import torch.nn.functional as F

    from neurosim.netlist.synapses import Conv
    from neurosim.sim.synapse import Synapse

    rng = np.random.default_rng(2)
    big = (2 ** 24 - 1) // 36                                      # 4 channels x 3 x 3 terms per row
    w = rng.choice([-1, 1], (3, 4, 3, 3)) * rng.integers(big - 1000, big + 1, (3, 4, 3, 3))
    assert np.abs(w).reshape(3, -1).sum(1).max() < 2 ** 24
    kind = Conv(w.astype(float), (1, 1), (1, 1))
    s = torch.as_tensor(rng.random((6, 4, 7, 7)) < 0.6).float()
    want = F.conv2d(s.double(), torch.as_tensor(w, dtype=torch.float64), padding=1).to(torch.int64)
    syn = Synapse(kind, (4, 7, 7), fixed=False)
    assert syn.dtype == torch.float32 and syn.event_weight is not None
    got = syn.map.event_linear(s, syn.event_weight, None)
    assert torch.equal(got.to(torch.int64), want)


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_event_driven_conv_does_not_change_results(mode, monkeypatch):
    """A net of stride-1 convs with a shortcut join runs spike for spike and voltage for
    voltage the same with every conv event-driven as with every conv dense."""
    from neurosim.netlist import Flatten, Projection, conv, join
    from neurosim.netlist.synapses import Identity
    from neurosim.sim.synapse_maps import ConvMap

    rng = np.random.default_rng(3)
    net = Netlist([
        Input((2, 9, 9), RMP(100), weight=150.0),
        conv((6, 9, 9), 2 * rng.integers(-40, 60, (6, 2, 3, 3)).astype(float), RMP(120), padding=(1, 1)),
        join(conv((6, 9, 9), 2 * rng.integers(-30, 50, (6, 6, 3, 3)).astype(float), RMP(150), padding=(1, 1)),
             Projection(Identity(60.0), source=1)),
        Flatten((486,)),
        dense((4,), 2 * rng.integers(-20, 30, (4, 486)).astype(float), RMP(90)),
    ])
    x = rng.random((5, 2, 9, 9))
    runs = []
    for events in (True, False):
        monkeypatch.setattr(ConvMap, "events_pay", lambda self, shape, spikes, on=events: on)
        runs.append(Simulator(net, mode).run(x, 25, record_spikes=True))
    for i in net.neuron_layers:
        np.testing.assert_array_equal(runs[0].spikes[i], runs[1].spikes[i])
        np.testing.assert_array_equal(runs[0].v[i], runs[1].v[i])
    assert runs[0].step_counts[2].sum() > 0


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_schedule_runs_scan_like_one_row_per_step(mode, monkeypatch):
    """A window whose schedule changes at a few steps (a bias onset) is scanned run by run
    with one row each; the results equal the scan with one row per step."""
    from neurosim.netlist.schema import Population, Schedule
    from neurosim.sim import simulator

    net = small_conv_net()
    for i in net.neuron_layers[1:]:
        layer = net.layers[i]
        c = layer.shape[0]
        rows = np.zeros((3 + i, c))
        rows[2 + i:] = np.arange(c) % 5 - 2                     # bias on from step 2 + i
        scale = np.full((2 * i, c), 3)
        scale[i:] = 5
        net.layers[i] = Population(layer.shape, layer.neuron, layer.projections, None,
                                   Schedule(scale=scale, bias=rows, scale_exp=2))
    x = np.random.default_rng(3).random((4, 1, 6, 6))
    sim = Simulator(net, mode)
    assert len(sim.pops[net.neuron_layers[-1]].segments(0, 30)) == 3
    runs = sim.run(x, 30, record_spikes=True, readout_steps=range(1, 31))
    monkeypatch.setattr(simulator, "MAX_SEGMENTS", 0)          # one scan with a row per step
    steps = Simulator(net, mode).run(x, 30, record_spikes=True, readout_steps=range(1, 31))
    for i in net.neuron_layers:
        np.testing.assert_array_equal(runs.spikes[i], steps.spikes[i])
        np.testing.assert_array_equal(runs.v[i], steps.v[i])
    np.testing.assert_array_equal(runs.readout_trace, steps.readout_trace)
    assert runs.step_counts[net.output_layer].sum() > 0


def _assert_counts_at_readout_steps_equal_shorter_runs(net, x, steps, readout, mode, workspace=None):
    """Every per-readout-step count of one run equals the count of a separate run of that length."""
    kw = {} if workspace is None else {"workspace_bytes": workspace}
    long = Simulator(net, mode, **kw).run(x, steps, readout_steps=readout, per_neuron=False)
    assert long.readout_steps == tuple(sorted(set(readout)))
    total = long.synops_per_sample_trace
    for k, T in enumerate(long.readout_steps):
        short = Simulator(net, mode).run(x if net.has_input_layer else x[:, :T], T)
        for i in net.neuron_layers:
            assert long.layer_spikes_trace[i].dtype == long.synops_trace[i].dtype == np.int64
            np.testing.assert_array_equal(long.layer_spikes_trace[i][:, k], short.layer_spikes[i], err_msg=f"T={T} {i}")
            np.testing.assert_array_equal(long.synops_trace[i][:, k], short.synops[i], err_msg=f"T={T} layer {i}")
        np.testing.assert_array_equal(long.input_spikes_trace[:, k], short.input_spikes)
        np.testing.assert_array_equal(long.input_synops_trace[:, k], short.input_synops)
        np.testing.assert_array_equal(total[:, k], short.synops_per_sample)
        np.testing.assert_array_equal(long.readout_trace[:, k], short.readout)
    plain = Simulator(net, mode).run(x, steps)                  # the totals of the whole run, as without readout steps
    for i in net.neuron_layers:
        np.testing.assert_array_equal(long.layer_spikes[i], plain.layer_spikes[i])
        np.testing.assert_array_equal(long.synops[i], plain.synops[i])
    np.testing.assert_array_equal(long.readout, plain.readout)
    return long


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_counts_at_readout_steps_equal_shorter_runs(mode):
    """Spikes and SynOps per layer and sample after each readout step (a few or every step), in
    whole runs and runs cut into chunks and windows, for current and spike input, residual joins
    and schedules: exactly those of a run of that many steps."""
    from tests.dag_nets import random_dag

    kinds = set()
    for seed in range(8):
        net, x = random_dag(seed, steps=14, n_samples=3)
        kinds.add(net.has_input_layer)
        neurons = sum(int(np.prod(l.shape)) for l in net.layers if hasattr(l, "neuron"))
        neurons += 0 if net.has_input_layer else int(np.prod(net.input_shape))
        for readout in ([3, 1, 14, 8], range(1, 15), [2, 5, 6, 7, 8, 9, 10, 12, 14]):
            for workspace in (None, 4 * neurons * 5):          # whole; chunks of 1 sample, windows of 5 steps
                _assert_counts_at_readout_steps_equal_shorter_runs(net, x, 14, list(readout), mode, workspace)
    assert kinds == {True, False}
    res = Simulator(net, mode).run(x, 14)
    assert res.layer_spikes_trace is None and res.synops_trace is None
    with pytest.raises(NeurosimError, match="readout_steps"):
        res.synops_per_sample_trace


def test_per_step_totals_are_exact_with_fan_outs_split_into_digits(monkeypatch):
    """The per-step spike and SynOps totals are float32 products with the fan-outs cut into
    digits that keep every sum within 2**24; with a tiny bound (many digits) the counts at the
    readout steps are still those of shorter runs."""
    from neurosim.sim import simulator
    from neurosim.sim.simulator import _step_columns
    from tests.dag_nets import random_dag

    fan = np.array([0, 1, 7, 300, 4095, 70000, 12], np.int64)
    for bound in (1 << 24, 64, 2):
        monkeypatch.setattr(simulator, "_F32_EXACT", bound)
        matrix, shifts = _step_columns(fan)
        matrix = matrix.numpy()
        assert matrix.dtype == np.float32 and (matrix[0] == 1).all()
        assert matrix.sum(1).max() <= max(bound, len(fan))                  # no row sums past the bound
        np.testing.assert_array_equal(matrix[1:].astype(np.int64).T @ (1 << np.array(shifts)), fan)
    assert matrix.shape[0] == 1 + 17                                       # base 2: 17 binary digits of 70000
    monkeypatch.setattr(simulator, "_F32_EXACT", 64)
    x = np.random.default_rng(4).random((4, 1, 6, 6))
    res = _assert_counts_at_readout_steps_equal_shorter_runs(small_conv_net(), x, 24, list(range(1, 25)), "fixed")
    assert (np.diff(res.synops_per_sample_trace, axis=1) >= 0).all() and res.synops_per_sample.min() > 0
    net, x = random_dag(6, steps=12, n_samples=3)
    assert not net.has_input_layer
    _assert_counts_at_readout_steps_equal_shorter_runs(net, x, 12, [1, 4, 5, 12], "float")


def _distances_forward(net: Netlist) -> list:
    """Each neuron layer's distance to the output, walked forward along ``projections_from``
    (the schema walks backward): an independent reading of the definition."""
    out, memo = net.output_layer, {}

    def far(j):
        if j not in memo:
            if j == out:
                memo[j] = 0
            else:
                via = [far(i) + int(net.layers[i].projections[p].delay) for i, p in net.projections_from(j)
                       if far(i) is not None]
                memo[j] = min(via) if via else None
        return memo[j]
    return [far(j) if hasattr(layer, "neuron") else None for j, layer in enumerate(net.layers)]


def _delayed(net: Netlist, seed: int) -> Netlist:
    rng = np.random.default_rng(seed)
    layers = [dataclasses.replace(l, projections=[dataclasses.replace(p, delay=int(rng.integers(1, 5)))
                                                  for p in l.projections]) if hasattr(l, "projections") else l
              for l in net.layers]
    return Netlist(layers=layers, input_shape=net.input_shape, meta=net.meta)


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_until_readout_keeps_the_readout_and_counts_the_steps_that_reach_it(mode):
    """``until_readout``: the readout after every step is the full run's, bit for bit; each layer's
    spikes are the full run's over its first ``T - distance`` steps and none after; its counts
    are theirs. On random DAGs with residual joins, schedules and delays 1..4, whole and cut
    into windows of 3 steps (so a layer's horizon falls inside a window)."""
    from tests.dag_nets import random_dag

    T, tails = 14, 0
    for seed in range(10):
        net, x = random_dag(seed, steps=T, n_samples=3)
        if seed % 2:
            net = _delayed(net, seed)
        far = net.distances()
        assert far == _distances_forward(net)
        neurons = sum(int(np.prod(l.shape)) for l in net.layers if hasattr(l, "neuron"))
        neurons += 0 if net.has_input_layer else int(np.prod(net.input_shape))
        for workspace in (1 << 25, 4 * neurons * 3):
            sim = Simulator(net, mode, workspace_bytes=workspace)
            full = sim.run(x, T, record_spikes=True, readout_steps=range(1, T + 1))
            cut = sim.run(x, T, record_spikes=True, readout_steps=range(1, T + 1), until_readout=True)
            assert cut.until_readout and not full.until_readout
            np.testing.assert_array_equal(cut.readout_trace, full.readout_trace)
            np.testing.assert_array_equal(cut.readout, full.readout)
            for i, d in enumerate(far):
                if full.spikes[i] is None:
                    continue
                h = 0 if d is None else T - d
                np.testing.assert_array_equal(cut.spikes[i][:, :h], full.spikes[i][:, :h])
                assert not cut.spikes[i][:, h:].any()
                np.testing.assert_array_equal(cut.layer_spikes[i], full.spikes[i][:, :h].sum((1, 2)))
                np.testing.assert_array_equal(cut.step_counts[i], full.step_counts[i] * (np.arange(T) < h))
                tails += int(full.spikes[i][:, h:].sum())
            # without readout steps (the speed benchmark's run): the final totals, per neuron too
            plain = sim.run(x, T, until_readout=True)
            np.testing.assert_array_equal(plain.readout, full.readout)
            for i, d in enumerate(far):
                if full.spikes[i] is not None:
                    h = 0 if d is None else T - d
                    np.testing.assert_array_equal(plain.counts[i], full.spikes[i][:, :h].sum(1))
                    np.testing.assert_array_equal(plain.synops[i], cut.synops_trace[i][:, -1])
    assert tails > 0                         # the option did leave spikes out
    with pytest.raises(NeurosimError, match="not with until_readout"):
        sim.run(x, T, readout_steps=[T], membrane_updates=True, until_readout=True)


def test_distances_follow_the_shortest_path_to_the_output():
    """A chain input -> 1 -> 2 -> 3 (distances 3, 2, 1, 0); a skip 1 -> 3 of delay 1 brings layer
    1 to 1 (and the input to 2); a skip of delay 3 is longer than the chain and changes nothing."""
    neuron = RMP(vThMant=4)
    w = np.eye(3)
    layers = [Input((3,), neuron, weight=8.0), dense((3,), w, neuron), dense((3,), w, neuron),
              dense((3,), w, neuron)]
    net = Netlist(layers)
    assert net.distances() == [3, 2, 1, 0]
    from neurosim.netlist.schema import Projection
    from neurosim.netlist.synapses import Identity
    layers[3].projections.append(Projection(Identity(1.0), 1))
    assert Netlist(layers).distances() == [2, 1, 1, 0]
    layers[3].projections[-1] = Projection(Identity(1.0), 1, delay=3)
    assert Netlist(layers).distances() == [3, 2, 1, 0]
    # a side branch that nothing reads has no distance, and until_readout does not run it
    side = [layers[0], layers[1], dense((3,), 4 * w, neuron), dense((3,), 4 * w, neuron, source=1)]
    net = Netlist(side)
    assert net.distances() == [2, 1, None, 0] == _distances_forward(net)
    x = np.random.default_rng(0).random((4, 3))
    full = Simulator(net, "fixed").run(x, 16, record_spikes=True)
    cut = Simulator(net, "fixed").run(x, 16, record_spikes=True, until_readout=True)
    np.testing.assert_array_equal(cut.readout, full.readout)
    assert full.spikes[2].any() and not cut.spikes[2].any()
