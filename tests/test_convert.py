"""ANN -> RMP conversion: folding, mantissa ranges and accuracy close to the ANN."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurosim.ann.train import TrainConfig, accuracy, train
from neurosim.convert.graph import trace
from neurosim.convert.rmp import convert
from neurosim.convert.threshold_balancing import balance
from neurosim.data.digits import load_digits_split
from neurosim.errors import NeurosimError
from neurosim.netlist.quantize import WEIGHT_MANT_MAX as WEIGHT_MAX
from neurosim.netlist.schema import VTH_MAX, Flatten, Input
from neurosim.netlist.neurons import RMP
from neurosim.sim.simulator import Simulator


def test_batchnorm_is_folded_exactly():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)
    bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
    model = nn.Sequential(conv, bn, nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 2)).eval()
    st = trace(model, (2, 4, 4)).stages[1]
    assert st.kind == "conv" and model.training is False
    x = torch.randn(4, 2, 4, 4)
    folded = nn.functional.conv2d(x, torch.tensor(st.weight, dtype=torch.float32),
                                  torch.tensor(st.bias, dtype=torch.float32), padding=1)
    torch.testing.assert_close(folded, bn(conv(x)), rtol=1e-4, atol=1e-5)


def test_unsupported_module_is_named():
    with pytest.raises(NeurosimError, match=r"node '_1' \(call_module MaxPool2d '1'\)"):
        trace(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), (1, 8, 8))


def test_threshold_rules():
    acts = np.concatenate([np.zeros(100), np.linspace(0, 1, 10001)[1:], [50.0]])
    assert balance([acts], "max") == [50.0]
    assert balance([acts], "percentile", 99.0)[0] == pytest.approx(0.99, abs=0.01)
    ch = balance([np.array([[1.0, 5.0], [3.0, 0.0]])], "channel")[0]
    np.testing.assert_array_equal(ch, [3.0, 5.0])


def test_channel_percentile_is_the_mean_over_batches_of_each_channels_percentile():
    """SpikingJelly's channel-wise percentile: per batch and channel the p-th percentile of all the
    channel's values (zeros included), averaged over the batches; a silent channel gets the floor,
    CHANNEL_FLOOR times the layer's maximum."""
    from neurosim.convert.threshold_balancing import CHANNEL_FLOOR, LayerStats, quantile_rows

    rng = np.random.default_rng(1)
    batches = [np.maximum(rng.normal(size=(8, 3, 5, 5)) * [[[[1.0]], [[4.0]], [[0.0]]]], 0) for _ in range(4)]
    st = LayerStats("channel-percentile", 99.9)
    for b in batches:
        st.update(torch.as_tensor(b, dtype=torch.float32))
    per_batch = [np.percentile(b.transpose(1, 0, 2, 3).reshape(3, -1), 99.9, axis=1) for b in batches]
    want = np.mean(per_batch, axis=0)
    want[2] = CHANNEL_FLOOR * max(float(b.max()) for b in batches)          # the silent channel
    np.testing.assert_allclose(st.threshold(), want, rtol=1e-5)
    rows = torch.as_tensor(rng.random((3, 1000)), dtype=torch.float32)
    torch.testing.assert_close(quantile_rows(rows, 0.999), torch.quantile(rows, 0.999, dim=1))


def test_percentile_is_streamed_in_bounded_memory():
    from neurosim.convert.threshold_balancing import LayerStats

    rng = np.random.default_rng(0)
    st = LayerStats("percentile", 99.0, capacity=5000)
    data = rng.random((40, 1000)).astype(np.float32)
    for row in data:
        st.update(torch.as_tensor(row[None]))
    assert st.values.numel() == 5000 and st.seen == data.size
    assert st.threshold() == pytest.approx(np.percentile(data, 99.0), abs=0.01)


@pytest.fixture(scope="module")
def trained():
    tr, te = load_digits_split()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 16, 10))
    train(model, tr.x, tr.y, TrainConfig(epochs=15, lr=5e-3), progress=False)
    return model, tr, te


def test_converted_net_is_fixed_point_and_close_to_ann(trained):
    model, tr, te = trained
    net = convert(model, tr.x, (1, 8, 8), "percentile", 99.9, progress=False)
    # the pool is folded into the dense layer's columns: input, conv, flatten, dense
    assert isinstance(net.layers[0], Input) and isinstance(net.layers[2], Flatten) and len(net.layers) == 4
    for layer in net.layers:
        if isinstance(layer, Flatten):
            continue
        assert isinstance(layer.neuron, RMP) and 1 <= layer.neuron.vThMant <= VTH_MAX
        if not isinstance(layer, Input):
            w = layer.synapse.weight
            assert np.all(w % 2 == 0) and w.max() <= WEIGHT_MAX and w.min() >= -256
    ann = accuracy(model, te.x, te.y)
    snn = float(np.mean(Simulator(net, "fixed").run(te.x, 96).predictions == te.y))
    assert ann > 0.9
    assert snn >= ann - 0.02, (ann, snn)


def test_hard_reset_conversion_without_bias_onset_is_netx_compatible(trained, tmp_path):
    """Issue 17 (9): reset='hard', align_bias=False and readout_reset='hard' give a chain of hard-reset
    neurons with constant biases (the pool folded into the dense layer) that save_netx writes; the
    default conversion is refused naming the layer and every convert option the net needs."""
    from neurosim.netlist.netx_compat import save_netx

    model, tr, te = trained
    net = convert(model, tr.x, (1, 8, 8), "percentile", 99.9, reset="hard", align_bias=False,
                  readout_reset="hard", progress=False)
    assert [l.type_name for l in net.layers] == ["input", "conv", "flatten", "dense"]
    assert all(l.neuron.reset == "hard" and l.neuron.vInit == 0 for l in net.layers if not isinstance(l, Flatten))
    assert all(l.schedule is None for l in net.layers[1:] if not isinstance(l, Flatten))
    assert net.meta["readout_reset"] == "hard" and net.meta["align_bias"] is False
    save_netx(net, tmp_path / "netx.net")
    snn = float(np.mean(Simulator(net, "fixed").run(te.x, 64).predictions == te.y))
    assert snn >= 0.8, snn          # 84.2 % measured: hard reset drops what exceeds the threshold (soft: >= ANN - 2)

    with pytest.raises(NeurosimError, match=r"layer 0 \(input\): .*soft reset.*reset='hard' \(neurosim convert "
                       r"--reset hard\).*the whole net needs reset='hard', align_bias=False, readout_reset='hard'"):
        save_netx(convert(model, tr.x, (1, 8, 8), "percentile", 99.9, progress=False), tmp_path / "x.net")
    soft_readout = convert(model, tr.x, (1, 8, 8), "percentile", 99.9, reset="hard", align_bias=False, progress=False)
    assert soft_readout.layers[-1].neuron.reset == "soft"           # the default readout integrates
    with pytest.raises(NeurosimError, match=r"layer 3 \(dense\): .*soft reset.*readout_reset='hard'"):
        save_netx(soft_readout, tmp_path / "x.net")
    onset = convert(model, tr.x, (1, 8, 8), "percentile", 99.9, reset="hard", readout_reset="hard", progress=False)
    with pytest.raises(NeurosimError, match=r"layer 1 \(conv\): per-step schedule.*align_bias=False"):
        save_netx(onset, tmp_path / "x.net")
    pooled = convert(model, tr.x, (1, 8, 8), "percentile", 99.9, reset="hard", align_bias=False,
                     readout_reset="hard", fold_pool=False, progress=False)
    with pytest.raises(NeurosimError, match=r"layer 2 \(pool\): 'pool' synapse.*fold_pool=True"):
        save_netx(pooled, tmp_path / "x.net")
    assert not (tmp_path / "x.net").exists()
    with pytest.raises(NeurosimError, match="readout_reset"):
        convert(model, tr.x[:10], (1, 8, 8), readout_reset="none", progress=False)
