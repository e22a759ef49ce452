"""An analog input layer: an ``Input`` with a host synapse (:mod:`neurosim.netlist.host`).

The host computes ``weight * synapse(x) + bias[c]`` once per sample; every executor takes that
current from ``Input.current``. Checked here: the host's arithmetic against PyTorch, the file
round trip, the validator's refusals, the formats that refuse it, the converter's
``input_coding='analog'`` (spike-exact on Lava) and the host MACs in the energy report.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.ann.train import TrainConfig, train
from neurosim.convert.rmp import convert
from neurosim.data.digits import load_digits_split
from neurosim.data.dataset import Split
from neurosim.errors import NeurosimError
from neurosim.evaluate import evaluate
from neurosim.interop.nir_io import to_nir
from neurosim.lava.runner import run_lava
from neurosim.loihi2.quantize import quantize
from neurosim.netlist import hdf5
from neurosim.netlist.host import HOST
from neurosim.netlist.netx_compat import to_netx
from neurosim.netlist.quantize import BIAS_MANT_MAX
from neurosim.netlist.synapses import Conv, Dense, Pool
from neurosim.netlist.validate import ValidationError
from neurosim.sim.simulator import Simulator
from tests.conftest import analog_net, assert_same_layer


GEOMETRIES = [dict(stride=(1, 1), padding=(0, 0)), dict(stride=(2, 1), padding=(1, 2)),
              dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1)), dict(stride=(1, 1), padding=(1, 1), groups=2)]


@pytest.mark.parametrize("geom", GEOMETRIES, ids=[str(g) for g in GEOMETRIES])
def test_the_host_conv_is_pytorchs_cross_correlation(geom):
    rng = np.random.default_rng(1)
    groups = geom.get("groups", 1)
    syn = Conv(rng.normal(size=(4, 4 // groups, 3, 2)), **geom)
    x = rng.random((3, 4, 7, 8))
    ref = F.conv2d(torch.tensor(x), torch.tensor(syn.weight), None, syn.stride, syn.padding, syn.dilation,
                   groups).numpy()
    np.testing.assert_allclose(HOST.of(syn)(syn, x), ref, rtol=1e-12, atol=1e-12)
    d = Dense(rng.normal(size=(5, 4 * 7 * 8)))
    np.testing.assert_allclose(HOST.of(d)(d, x), x.reshape(3, -1) @ d.weight.T, rtol=1e-12)


def test_the_current_is_weight_times_synapse_plus_channel_bias_rounded_in_fixed_mode():
    net = analog_net()
    layer = net.layers[0]
    x = np.random.default_rng(2).random((3, 2, 6, 6))
    ref = F.conv2d(torch.tensor(x), torch.tensor(layer.synapse.weight), padding=1).numpy() \
        + layer.bias[None, :, None, None]
    np.testing.assert_allclose(layer.current(x, False), ref, rtol=1e-12)
    np.testing.assert_array_equal(layer.current(x, True), np.rint(ref))
    assert net.sample_shape == (2, 6, 6) and net.layers[0].shape == (4, 6, 6)


@pytest.mark.parametrize("per_channel", [True, False])
def test_an_analog_input_layer_round_trips_through_hdf5(tmp_path, per_channel):
    net = analog_net(per_channel=per_channel)
    back = hdf5.load(hdf5.save(net, tmp_path / "a.net"))
    for a, b in zip(net.layers, back.layers):
        assert_same_layer(a, b)


@pytest.mark.parametrize("change, key", [
    (dict(synapse=Pool(np.ones((2, 2)), (2, 2))), "synapse/type"),
    (dict(bias=np.zeros(3)), "bias"),
    (dict(sample_shape=(3, 6, 6)), "synapse/weight"),
    (dict(sample_shape=(2, 5, 5)), "shape"),
    (dict(sample_shape=None), "synapse/inShape"),
    (dict(synapse=None), "bias"),                  # a per-channel bias needs a host synapse
])
def test_the_validator_refuses_a_broken_analog_input_layer_naming_the_key(change, key):
    net = analog_net()
    vars(net.layers[0]).update(change)
    with pytest.raises(ValidationError) as err:
        net.check()
    assert err.value.key == key and err.value.layer == 0, str(err.value)


def test_formats_that_take_spikes_only_refuse_it_in_one_line():
    net = analog_net()
    for call, fragment in ((lambda: to_netx(net), "analog input layer"), (lambda: to_nir(net), "analog input layer"),
                           (lambda: quantize(net), "analog input layer")):
        with pytest.raises(NeurosimError, match=fragment) as err:
            call()
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_an_analog_input_layer_is_spike_exact_on_lava(mode):
    net = analog_net()
    x = np.random.default_rng(3).random((3, 2, 6, 6))
    res = run_lava(net, x, 10, mode, progress=False, batch=3)
    ref = Simulator(net, mode).run(x, 10, record_spikes=True)
    assert ref.spikes[0].sum() > 0 and ref.spikes[2].sum() > 0
    for i in (0, 2):
        np.testing.assert_array_equal(res.spikes[i], ref.spikes[i])
        np.testing.assert_allclose(res.v[i], ref.v[i], rtol=1e-9, atol=1e-9)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.conv = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, 10)

    def forward(self, x):
        y = self.stem(x)
        y = F.relu(self.conv(y) + y)
        return self.fc(F.avg_pool2d(y, 2).flatten(1))


class _ImageTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(1, 4, 3, padding=1)
        self.c = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        y = F.relu(self.a(x))
        return self.fc(F.relu(self.b(x) + self.c(y)).flatten(1))


@pytest.fixture(scope="module")
def trained():
    tr, te = load_digits_split()
    torch.manual_seed(0)
    model = _Residual()
    train(model, tr.x, tr.y, TrainConfig(epochs=4, batch_size=64, lr=3e-3, seed=0), progress=False)
    return model.eval(), tr, te


def test_analog_conversion_computes_the_first_conv_on_the_host_and_runs_exactly_on_lava(trained):
    model, tr, te = trained
    spikes = convert(model, tr.x[:500], (1, 8, 8), v_init_half=True, progress=False)
    net = convert(model, tr.x[:500], (1, 8, 8), v_init_half=True, progress=False, input_coding="analog")
    layer = net.layers[0]
    assert isinstance(layer.synapse, Conv) and layer.sample_shape == (1, 8, 8) and layer.shape == (6, 8, 8)
    assert net.meta["input_coding"] == "analog" and len(net.neuron_layers) == len(spikes.neuron_layers) - 1
    assert max(net.depths()) == max(spikes.depths()) - 1
    cal = layer.current(tr.x[:500], True)
    assert np.abs(cal).max() <= BIAS_MANT_MAX            # the converter keeps it in Loihi's bias mantissa
    # the image as a current converges faster: at T = 4 (papers' T) at least the spiking input's accuracy
    T, D, Ds = 4, max(net.depths()), max(spikes.depths())
    acc = {}
    for name, n, d in (("analog", net, D), ("spikes", spikes, Ds)):
        r = Simulator(n, "fixed").run(te.x, T + d)
        acc[name] = float((r.readout.reshape(len(te.x), -1).argmax(1) == te.y).mean())
    assert acc["analog"] >= acc["spikes"] - 0.005 and acc["analog"] > 0.8, acc
    x = te.x[:3]
    res = run_lava(net, x, 12, "fixed", progress=False, batch=3)
    ref = Simulator(net, "fixed").run(x, 12, record_spikes=True)
    for i in net.neuron_layers:
        np.testing.assert_array_equal(res.spikes[i], ref.spikes[i], err_msg=f"layer {i}")


def test_the_energy_report_prices_the_host_macs_once_per_sample(trained):
    model, tr, te = trained
    net = convert(model, tr.x[:200], (1, 8, 8), v_init_half=True, progress=False, input_coding="analog")
    report = evaluate(net, Split("test", te.x[:40], te.y[:40]), 8, lava_samples=0, progress=False)
    e = report["energy"]["papers45nm"] if "energy" in report else None
    macs = 6 * 22 * 22          # 6 kernels; along each axis 2 + 6 x 3 + 2 taps of a 3-tap pad-1 window fall inside
    assert macs == net.layers[0].synapse.fanout((1, 8, 8)).sum()
    assert e is not None and e["snn_terms"]["host_macs"] > 0, report.keys()


def test_the_converter_refuses_analog_input_where_the_image_feeds_two_layers():
    tr, _ = load_digits_split()
    with pytest.raises(NeurosimError, match="the image feeds 2 layers"):
        convert(_ImageTwice(), tr.x[:50], (1, 8, 8), progress=False, input_coding="analog")
    with pytest.raises(NeurosimError, match="input_coding must be one of"):
        convert(_ImageTwice(), tr.x[:50], (1, 8, 8), progress=False, input_coding="poisson")
