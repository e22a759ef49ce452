"""Conversion of general PyTorch models (torch.fx): BatchNorm, padding='same', functional ReLU,
residual joins, refusals, rules, resets; simulator vs ANN, file round trip, Lava spike-exactness."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.ann.train import TrainConfig, accuracy, train
from neurosim.convert.graph import trace
from neurosim.convert.rmp import convert
from neurosim.convert.threshold_balancing import RULES
from neurosim.data.digits import load_digits_split
from neurosim.errors import NeurosimError
from neurosim.netlist import hdf5
from neurosim.netlist.schema import Population
from neurosim.netlist.synapses import Conv, Identity
from neurosim.sim.simulator import Simulator
from tests.conftest import assert_same_layer

SHAPE = (1, 8, 8)


class Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding="same")
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class SmallCNN(nn.Module):
    """Nested module, BN + biases, padding='same' and tuple padding, F.relu, torch.relu,
    AvgPool2d, AdaptiveAvgPool2d, reshape(x.size(0), -1), Dropout, BatchNorm1d."""

    def __init__(self) -> None:
        super().__init__()
        self.features = Features()
        self.pool = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(16)
        self.gap = nn.AdaptiveAvgPool2d(2)
        self.drop = nn.Dropout(0.1)
        self.fc1 = nn.Linear(64, 32)
        self.bn3 = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(self.features(x))
        x = self.gap(torch.relu(self.bn2(self.conv2(x))))
        x = self.drop(x.reshape(x.size(0), -1))
        return self.fc2(F.relu(self.bn3(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
        self.short = nn.Identity() if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False),
                                                                     nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.b1(self.c1(x)))
        out = self.b2(self.c2(out))
        return F.relu(out + self.short(x))


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block1 = Block(8, 8)           # identity shortcut
        self.block2 = Block(8, 12)          # 1x1-conv shortcut
        self.fc = nn.Linear(12 * 4 * 4, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(F.avg_pool2d(x, 2), 1))


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


def _train(model: nn.Module, tr, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    return train(model, tr.x, tr.y, TrainConfig(epochs=epochs, lr=5e-3, batch_size=64), progress=False)


@pytest.fixture(scope="module")
def cnn(digits):
    tr, _ = digits
    torch.manual_seed(1)
    return _train(SmallCNN(), tr, 4)


@pytest.fixture(scope="module")
def resnet(digits):
    tr, _ = digits
    torch.manual_seed(2)
    return _train(ResNet(), tr, 3)


def _agreement(model, net, x, steps):
    with torch.no_grad():
        ann = model.eval()(torch.as_tensor(x)).argmax(1).numpy()
    snn = Simulator(net, "fixed").run(x, steps).predictions
    return float(np.mean(ann == snn)), snn


def test_cnn_with_batchnorm_and_same_padding_converts(cnn, digits):
    tr, te = digits
    net = convert(cnn, tr.x, SHAPE, progress=False)
    assert net.layers[1].synapse.padding == (1, 1)            # 'same' made explicit
    agree, snn = _agreement(cnn, net, te.x, 96)
    ann = accuracy(cnn, te.x, te.y)
    assert ann > 0.85
    assert agree >= 0.9, agree
    assert np.mean(snn == te.y) >= ann - 0.04


def test_residual_net_joins_simulates_and_round_trips(resnet, digits, tmp_path):
    tr, te = digits
    net = convert(resnet, tr.x, SHAPE, progress=False)
    joins = [l for l in net.layers if isinstance(l, Population) and len(l.projections) == 2]
    assert len(joins) == 2
    kinds = sorted(type(p.synapse).__name__ for j in joins for p in j.projections)
    assert kinds.count("Identity") == 1 and kinds.count("Conv") == 3      # 3x3 + 3x3 + 1x1
    one_by_one = [p.synapse for j in joins for p in j.projections
                  if isinstance(p.synapse, Conv) and p.synapse.weight.shape[2:] == (1, 1)]
    assert len(one_by_one) == 1
    # the final avg pool is folded into the dense layer: no pool layer at all
    assert all(l.type_name != "pool" for l in net.layers if isinstance(l, Population))
    ann = accuracy(resnet, te.x, te.y)
    agree, snn = _agreement(resnet, net, te.x, 128)
    assert ann > 0.85
    assert agree >= 0.9 and np.mean(snn == te.y) >= ann - 0.04, (ann, agree)
    loaded = hdf5.load(hdf5.save(net, tmp_path / "res.net"))
    assert len(loaded.layers) == len(net.layers)
    for a, b in zip(net.layers, loaded.layers):
        assert_same_layer(a, b)
    # every number in Loihi 2's formats, the shortcut's weight an 8-bit mantissa times 2**e
    from neurosim.loihi2.quantize import fit_report
    assert not any(fit_report(net).values()), fit_report(net)


def _assert_lava_equals_simulator(net, x, steps: int) -> None:
    """Every layer's spikes and final voltages, and the readout, identical on Lava (fixed_pt)."""
    from neurosim.lava.runner import run_lava

    lava = run_lava(net, x, steps, "fixed", progress=False)
    ref = Simulator(net, "fixed").run(x, steps, record_spikes=True)
    for i in net.neuron_layers:
        np.testing.assert_array_equal(lava.spikes[i], ref.spikes[i], err_msg=f"layer {i}")
        np.testing.assert_array_equal(lava.v[i], ref.v[i], err_msg=f"layer {i}")
    np.testing.assert_array_equal(lava.readout, ref.readout)


def test_residual_net_on_lava_equals_simulator(resnet, digits):
    tr, te = digits
    net = convert(resnet, tr.x[:300], SHAPE, progress=False, reset="hard", v_init_half=True)
    _assert_lava_equals_simulator(net, te.x[:2], 12)


def test_unsupported_nodes_are_named_in_one_line():
    with pytest.raises(NeurosimError) as info:
        convert(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 2)),
                np.random.rand(4, *SHAPE), SHAPE, progress=False)
    msg = str(info.value)
    assert "'2'" in msg and "MaxPool2d" in msg and "\n" not in msg

    class Sig(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 3)

        def forward(self, x):
            return torch.sigmoid(self.fc(x.flatten(1)))

    with pytest.raises(NeurosimError, match=r"node 'sigmoid' \(call_function torch\.sigmoid\)") as info:
        trace(Sig(), SHAPE)
    assert "\n" not in str(info.value)
    with pytest.raises(NeurosimError, match="asymmetric"):
        trace(nn.Sequential(nn.Conv2d(1, 2, 2, padding="same")), SHAPE)


def test_batchnorm_statistics_and_modes_unchanged():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Dropout(0.5), nn.Linear(256, 3))
    model.train()
    model[1].eval()                                           # a mixed state must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    x = np.random.default_rng(0).random((50, *SHAPE)).astype(np.float32)
    convert(model, x, SHAPE, progress=False)
    assert [m.training for m in model.modules()] == modes
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_alpha_reset_and_v_init(cnn, digits, rule):
    tr, te = digits
    x = tr.x[:400]
    soft = convert(cnn, x, SHAPE, rule=rule, progress=False)
    hard = convert(cnn, x, SHAPE, rule=rule, reset="hard", v_init_half=True, alpha=0.8, progress=False)
    for a, b in zip(soft.neuron_layers, hard.neuron_layers):
        na, nb = soft.layers[a].neuron, hard.layers[b].neuron
        assert na.reset == "soft" and na.vInit == 0
        assert nb.reset == ("soft" if b == hard.output_layer else "hard")      # the readout integrates
        assert nb.vInit == nb.vThMant // 2 and nb.vInit == int(nb.vInit)
    assert hard.meta["alpha"] == 0.8 and hard.meta["threshold_rule"] == rule
    assert np.mean(Simulator(soft, "fixed").run(te.x[:100], 64).predictions == te.y[:100]) > 0.7
    Simulator(hard, "fixed").run(te.x[:10], 16)


def test_identity_shortcut_weight_is_ratio_of_thresholds(resnet, digits):
    tr, _ = digits
    net = convert(resnet, tr.x[:300], SHAPE, rule="max", progress=False)
    join = next(l for l in net.layers if isinstance(l, Population) and len(l.projections) == 2
                and any(isinstance(p.synapse, Identity) for p in l.projections))
    ident = next(p for p in join.projections if isinstance(p.synapse, Identity))
    assert ident.source is not None and float(ident.synapse.weight) == int(ident.synapse.weight) > 0


# ----------------------------------------------------------------------------- QCFS, SNN rule, bias onset

@pytest.fixture(scope="module")
def qcfs_resnet(digits):
    from neurosim.ann.qcfs import replace_relu
    tr, _ = digits
    torch.manual_seed(3)
    return _train(replace_relu(ResNet(), levels=4), tr, 4)


def test_qcfs_model_converts_with_its_trained_thresholds(qcfs_resnet, digits):
    from neurosim.ann.qcfs import thresholds
    tr, te = digits
    g = trace(qcfs_resnet, SHAPE)
    clipped = [s for s in g.stages if s.clip is not None]
    assert sorted(s.clip for s in clipped) == pytest.approx(sorted(thresholds(qcfs_resnet).values()))
    assert {s.levels for s in clipped} == {4}
    net = convert(qcfs_resnet, tr.x[:200], SHAPE, progress=False)
    hidden = net.meta["thresholds"][1:-1]                     # input and readout are calibrated
    assert sorted(hidden) == pytest.approx(sorted(thresholds(qcfs_resnet).values()))
    assert net.meta["v_init_half"] and net.meta["trained_thresholds"] == len(clipped)
    assert all(net.layers[i].neuron.vInit == net.layers[i].neuron.vThMant // 2 for i in net.neuron_layers)
    assert not convert(qcfs_resnet, tr.x[:200], SHAPE, v_init_half=False, progress=False).meta["v_init_half"]
    ann = accuracy(qcfs_resnet, te.x, te.y)
    agree, snn = _agreement(qcfs_resnet, net, te.x, 48)
    assert ann > 0.85 and agree >= 0.9, (ann, agree)


@pytest.mark.parametrize("model", ["cnn", "resnet", "qcfs_resnet"])
def test_population_current_is_the_ann_pre_activation(model, digits, request):
    from neurosim.convert.rmp import _Plan
    m = request.getfixturevalue(model)
    g = trace(m, SHAPE)
    plan = _Plan(g, fold_pool=True)
    outs = g.forward(torch.as_tensor(digits[1].x[:16], dtype=torch.float64))
    for i in sorted(plan.pops):
        if g.stages[i].kind != "input":
            pre = plan.current(i, {j: outs[j] for j in plan.pops})
            torch.testing.assert_close(g.stages[i].activate(pre), outs[i])


def test_snn_rule_is_the_peak_current_of_the_converted_layers_before():
    """Two inputs -> 2 hidden -> 2 out, checked against a hand-written IF simulation."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -0.5], [0.3, 0.8]]))
        model[0].bias.copy_(torch.tensor([0.1, -0.2]))
        model[2].weight.copy_(torch.tensor([[0.7, 0.2], [-0.4, 1.1]]))
        model[2].bias.copy_(torch.tensor([0.05, 0.0]))
    x = np.array([[0.9, 0.2], [0.4, 1.0], [0.1, 0.05]], np.float32)
    steps = 7
    net = convert(model, x, (2,), rule="snn", snn_steps=steps, progress=False)
    lam_in = float(x.max())
    w1, b1 = (p.detach().double().numpy() for p in (model[0].weight, model[0].bias))
    w2, b2 = (p.detach().double().numpy() for p in (model[2].weight, model[2].bias))
    v_in = np.zeros_like(x, dtype=np.float64)
    peak1 = -np.inf
    for _ in range(steps):                                   # layer 1 from the spiking input
        v_in += x / lam_in
        s = v_in >= 1
        v_in -= s
        peak1 = max(peak1, float((s * lam_in @ w1.T + b1).max()))
    v_in, v1, peak2 = np.zeros_like(x, dtype=np.float64), np.zeros((3, 2)), -np.inf
    for _ in range(steps):                                   # layer 2 from the spiking input and layer 1
        v_in += x / lam_in
        s = v_in >= 1
        v_in -= s
        v1 += (s * lam_in @ w1.T + b1) / peak1
        s1 = v1 >= 1
        v1 -= s1
        peak2 = max(peak2, float((s1 * peak1 @ w2.T + b2).max()))
    assert net.meta["thresholds"] == pytest.approx([lam_in, peak1, peak2], rel=1e-6)
    assert net.meta["threshold_rule"] == "snn" and net.meta["snn_steps"] == steps


def test_bias_onset_follows_the_depth_of_each_layer(resnet, digits):
    tr, _ = digits
    net = convert(resnet, tr.x[:100], SHAPE, progress=False)
    plain = convert(resnet, tr.x[:100], SHAPE, align_bias=False, progress=False)
    d = net.depths()
    assert d[0] == 0 and d == plain.depths()
    for i in net.neuron_layers[1:]:
        a, b = net.layers[i], plain.layers[i]
        if b.bias is None:
            continue
        assert a.bias is None and a.schedule.scale is None and a.schedule.steps == d[i] + 1
        assert not a.schedule.bias[:d[i]].any()
        np.testing.assert_array_equal(a.schedule.bias[d[i]], b.bias)
    join = next(i for i, l in enumerate(net.layers) if isinstance(l, Population) and len(l.projections) == 2)
    srcs = [net.source_of(join, p.source) for p in net.layers[join].projections]
    arrivals = {d[s] + p.delay for s, p in zip(srcs, net.layers[join].projections)}
    assert arrivals == {d[join]} and d[join] == 1 + max(d[s] for s in srcs)     # the branches arrive together
    early = convert(resnet, tr.x[:100], SHAPE, align_joins=False, progress=False)
    assert early.depths()[join] == 1 + min(early.depths()[s] for s in srcs)    # unaligned: the shortcut first


def test_qcfs_snn_rule_net_on_lava_equals_simulator(qcfs_resnet, digits):
    tr, te = digits
    net = convert(qcfs_resnet, tr.x[:100], SHAPE, rule="snn", snn_steps=16, progress=False)
    assert any(l.schedule is not None for l in net.layers if isinstance(l, Population))
    _assert_lava_equals_simulator(net, te.x[:2], 12)


def test_float_precision_is_the_fixed_conversion_unrounded(resnet, digits):
    """precision='float': the same net before rounding (threshold 1, real weights), within one
    weight mantissa and half a bias unit of the fixed net divided by its thresholds; it runs in
    float mode to the fixed net's predictions, and quantize-loihi2 makes it fit Loihi 2."""
    from neurosim.loihi2.quantize import fit_report, normalized, quantize
    tr, te = digits
    kw = dict(rule="max", v_init_half=True, progress=False)
    flt = convert(resnet, tr.x[:300], SHAPE, precision="float", **kw)
    fixed = convert(resnet, tr.x[:300], SHAPE, **kw)
    assert flt.meta["precision"] == "float" and fixed.meta["precision"] == "fixed"
    norm = normalized(fixed)
    assert len(flt.layers) == len(norm.layers)
    for i in flt.neuron_layers[1:]:
        a, b, sigma = flt.layers[i], norm.layers[i], fixed.layers[i].neuron.vThMant
        assert a.neuron.vThMant == 1.0 and a.neuron.vInit == 0.5 and a.neuron.reset == b.neuron.reset
        assert [p.source for p in a.projections] == [p.source for p in b.projections]
        for pa, pb in zip(a.projections, b.projections):
            assert type(pa.synapse) is type(pb.synapse)
            assert np.abs(np.asarray(pa.synapse.weight) - np.asarray(pb.synapse.weight)).max() <= 1.0 / sigma + 1e-9
        ba = a.bias if a.schedule is None else a.schedule.bias
        bb = b.bias if b.schedule is None else b.schedule.bias
        if ba is not None:
            assert np.abs(np.asarray(ba) - np.asarray(bb)).max() <= 0.5 / sigma + 1e-9
    pf = Simulator(flt, "float").run(te.x[:150], 64).predictions
    px = Simulator(fixed, "fixed").run(te.x[:150], 64).predictions
    assert np.mean(pf == px) >= 0.95 and np.mean(pf == te.y[:150]) > 0.7
    assert not any(fit_report(quantize(flt)[0]).values())
    with pytest.raises(NeurosimError, match="precision"):
        convert(resnet, tr.x[:10], SHAPE, precision="double", progress=False)
