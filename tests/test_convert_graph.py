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


def test_residual_net_on_lava_equals_simulator(resnet, digits):
    from neurosim.lava.runner import run_lava

    tr, te = digits
    net = convert(resnet, tr.x[:300], SHAPE, progress=False, reset="hard", v_init_half=True)
    x, steps = te.x[:2], 12
    lava = run_lava(net, x, steps, "fixed", progress=False)
    ref = Simulator(net, "fixed").run(x, steps, record_spikes=True)
    for i in net.neuron_layers:
        np.testing.assert_array_equal(lava.spikes[i], ref.spikes[i], err_msg=f"layer {i}")
        np.testing.assert_array_equal(lava.v[i], ref.v[i], err_msg=f"layer {i}")
    np.testing.assert_array_equal(lava.readout, ref.readout)


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
