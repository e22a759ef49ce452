"""``neurosim export-netx``: netx-native netlists written so that stock lava-dl netx loads them
and gives neurosim's spikes; everything else refused, naming the layer.

The nets are built with neurosim's own schema (not by lava-dl, unlike ``test_netx_stock.py``),
including an RMP hard-reset layer (written as CUBA with ``iDecay = 4096``) and explicit
``source`` keys that the export must drop. Each runs on stock ``netx.hdf5.Network`` (Lava
``fixed_pt``, child process) and on the simulator; every layer's spikes must be equal.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurosim.cli import main
from neurosim.errors import NeurosimError
from neurosim.netlist import CUBA, RMP, Flatten, Input, Netlist, Projection, Schedule, conv, dense, hdf5, identity, join, pool
from neurosim.netlist.netx_compat import save_netx, to_netx
from neurosim.sim.simulator import Simulator
from tests.test_netx_reference import _compare, _stock_netx

pytest.importorskip("lava.lib.dl.netx")

#: Keys a netx file must not contain (neurosim v2 extensions).
V2_KEYS = {"source", "projection", "schedule", "reset", "vInit"}


def _spike_net() -> Netlist:
    """Spike input 2x8x8 -> conv 3x3 pad 1 (CUBA, leaky, channel bias) -> conv 3x3 stride 2
    (RMP hard reset, explicit source) -> flatten -> dense 12 (CUBA) -> dense 5 (RMP, leak)."""
    rng = np.random.default_rng(7)
    return Netlist(layers=[
        conv((4, 8, 8), rng.integers(-6, 20, (4, 2, 3, 3)), CUBA(60, iDecay=1024, vDecay=123), padding=(1, 1),
             bias=np.array([6, -4, 0, 12])),
        conv((4, 3, 3), rng.integers(-10, 30, (4, 4, 3, 3)), RMP(80, reset="hard"), stride=(2, 2), source=0),
        Flatten((36,), source=1),
        dense((12,), rng.integers(-20, 60, (12, 36)), CUBA(90, iDecay=4096, vDecay=410)),
        dense((5,), rng.integers(-10, 50, (5, 12)), RMP(70, vDecay=200, reset="hard")),
    ], input_shape=(2, 8, 8), meta={"timesteps": 48})


def _input_net() -> Netlist:
    """Input neurons 3x6x6 (current drive) -> conv 3x3 -> flatten -> dense 10 (bias) -> dense 4."""
    rng = np.random.default_rng(8)
    return Netlist(layers=[
        Input((3, 6, 6), CUBA(64, iDecay=4096, vDecay=410), weight=40.0),
        conv((4, 4, 4), rng.integers(-8, 24, (4, 3, 3, 3)), CUBA(80, iDecay=1024, vDecay=123)),
        Flatten((64,)),
        dense((10,), rng.integers(-16, 40, (10, 64)), RMP(100, reset="hard"), bias=np.tile([2, -2, 0, 4, 6], 2)),
        dense((4,), rng.integers(-10, 50, (4, 10)), CUBA(60, iDecay=2048, vDecay=100)),
    ])


def _keys(path) -> set[str]:
    names: list[str] = []
    with h5py.File(path) as f:
        f.visit(names.append)
    return {n.rsplit("/", 1)[-1] for n in names}


def test_spike_input_net_loads_in_stock_netx_with_the_same_spikes(tmp_path):
    net = _spike_net()
    out = save_netx(net, tmp_path / "netx.net")
    assert not _keys(out) & V2_KEYS
    with h5py.File(out) as f:
        assert [f[f"layer/{i}/type"][0].decode() for i in range(len(f["layer"]))] == \
            ["input", "conv", "conv", "flatten", "dense", "dense"]
        assert "neuron" not in f["layer/0"] and f["layer/2/neuron/iDecay"][()] == 4096
    steps = 48
    raster = (np.random.default_rng(1).random((steps, 2, 8, 8)) < 0.25).astype(np.int32)
    lava = _stock_netx(tmp_path, out, steps, "spikes", raster.transpose(3, 2, 1, 0))     # (W, H, C, T)
    res = Simulator(net, "fixed").run(raster[None], steps, record_spikes=True)
    _compare(net, lava, res.spikes)
    back = Simulator(hdf5.load(out), "fixed").run(raster[None], steps, record_spikes=True)   # neurosim reads it as the same net
    for i in net.neuron_layers:
        assert np.array_equal(back.spikes[i], res.spikes[i]), i


def test_input_layer_net_loads_in_stock_netx_with_the_same_spikes(tmp_path):
    """netx drives the input neurons through bias_mant = weight * x + bias (neurosim: raw current)."""
    net = _input_net()
    out = save_netx(net, tmp_path / "netx.net")
    assert not _keys(out) & V2_KEYS
    steps = 40
    x = np.random.default_rng(3).random((3, 6, 6))
    bias = np.rint(net.layers[0].current(x[None], fixed=True)[0]).astype(int)          # (C, H, W) mantissas
    lava = _stock_netx(tmp_path, out, steps, "bias", bias.transpose(2, 1, 0))
    res = Simulator(net, "fixed").run(x[None], steps, record_spikes=True)
    _compare(net, lava, res.spikes)


def _with(i: int, layer) -> Netlist:
    net = _spike_net()
    net.layers[i] = layer
    return net


def _refused() -> dict[str, tuple[Netlist, int, str]]:
    base = _spike_net()
    c0, d3 = base.layers[0], base.layers[3]
    skip = _spike_net()
    skip.layers[4] = dense((5,), np.ones((5, 36)), CUBA(70), source=2)
    joined = _spike_net()
    join(joined.layers[4], Projection(base.layers[4].synapse, 3))
    pooled = Netlist(layers=[c0, pool((4, 4, 4), np.ones((2, 2)), CUBA(2)), Flatten((64,)),
                             dense((5,), np.ones((5, 64)), CUBA(70))], input_shape=(2, 8, 8))
    res = Netlist(layers=[c0, identity((4, 8, 8), CUBA(50)), Flatten((256,)), dense((5,), np.ones((5, 256)), CUBA(9))],
                  input_shape=(2, 8, 8))
    return {
        "soft": (_with(1, conv((4, 3, 3), base.layers[1].synapse.weight, RMP(80), stride=(2, 2))), 1, "soft reset"),
        "vinit": (_with(3, dense((12,), d3.synapse.weight, CUBA(90, vInit=45))), 3, "vInit = 45"),
        "schedule": (_with(3, dense((12,), d3.synapse.weight, CUBA(90), schedule=Schedule(bias=np.ones((3, 12))))),
                     3, "schedule"),
        "float": (_with(3, dense((12,), d3.synapse.weight + 0.5, CUBA(90))), 3, "non-integer weight"),
        "skip": (skip, 4, "not from the layer before"),
        "join": (joined, 4, "join of 2 projections"),
        "pool": (pooled, 1, "'pool' synapse"),
        "identity": (res, 1, "'identity' synapse"),
    }


@pytest.mark.parametrize("case", sorted(_refused()))
def test_what_netx_cannot_express_is_refused_naming_the_layer(case, tmp_path):
    net, layer, why = _refused()[case]
    with pytest.raises(NeurosimError, match=rf"layer {layer} \(.*{why}") as info:
        save_netx(net, tmp_path / "out.net")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.net").exists()


def test_cli_export_netx(tmp_path, capsys):
    src = hdf5.save(_spike_net(), tmp_path / "net.net")
    assert main(["export-netx", str(src), str(tmp_path / "netx.net")]) == 0
    assert "netx" in capsys.readouterr().out and (tmp_path / "netx.net").exists()
    soft = _refused()["soft"][0]
    hdf5.save(soft, tmp_path / "soft.net")
    assert main(["export-netx", str(tmp_path / "soft.net"), str(tmp_path / "x.net")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "layer 1 (conv)" in err and "soft reset" in err
    assert not (tmp_path / "x.net").exists()


def test_the_first_refusal_is_named_and_the_others_counted():
    net = Netlist(layers=[Input((1, 4, 4), RMP(10)), pool((1, 2, 2), np.ones((2, 2)), RMP(5))])
    with pytest.raises(NeurosimError, match="layer 0 \\(input\\).*soft reset.*and 1 more"):
        to_netx(net)


def test_a_hard_reset_conversion_loads_in_stock_netx_with_the_same_spikes(tmp_path):
    """Issue 17 (9): ``convert(reset='hard', align_bias=False, readout_reset='hard')`` of a CNN
    with both kinds of folded average pooling (into a conv: a 6x6 stride-2 kernel; into the dense
    layer's columns) is a chain stock netx builds; its spikes equal the simulator's in every layer."""
    import torch
    import torch.nn as nn

    from neurosim.convert.rmp import convert
    from neurosim.data.digits import load_digits_split

    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 2 * 2, 10)).eval()
    tr, te = load_digits_split()
    net = convert(model, tr.x[:300], (1, 8, 8), reset="hard", align_bias=False, readout_reset="hard",
                  progress=False)
    assert [l.type_name for l in net.layers] == ["input", "conv", "conv", "flatten", "dense"]
    assert net.layers[2].synapse.weight.shape[2:] == (6, 6) and net.layers[2].synapse.stride == (2, 2)
    out = save_netx(net, tmp_path / "netx.net")
    assert not _keys(out) & V2_KEYS
    steps = 32
    x = te.x[0]
    bias = np.rint(net.layers[0].current(x[None], fixed=True)[0]).astype(int)           # (C, H, W) mantissas
    lava = _stock_netx(tmp_path, out, steps, "bias", bias.transpose(2, 1, 0))
    res = Simulator(net, "fixed").run(x[None], steps, record_spikes=True)
    _compare(net, lava, res.spikes)


@pytest.mark.parametrize("case,remedy", [
    ("soft", "convert with reset='hard' (neurosim convert --reset hard)"),
    ("vinit", "convert with v_init_half=False (neurosim convert --no-v-init-half)"),
    ("schedule", "convert with align_bias=False (neurosim convert --no-bias-onset)"),
    ("pool", "could not fold this average pool"),
    ("join", "residual connection, which no convert option avoids"),
    ("identity", "residual connection, which no convert option avoids"),
])
def test_a_converted_net_is_told_the_convert_option_that_avoids_a_refusal(case, remedy, tmp_path):
    net, layer, why = _refused()[case]
    net.meta.update(converted_by="neurosim.convert.rmp", align_bias=True, fold_pool=True)
    with pytest.raises(NeurosimError, match=rf"layer {layer} \(.*{why}.*; ") as info:
        save_netx(net, tmp_path / "out.net")
    assert remedy in str(info.value) and "\n" not in str(info.value)
    assert "unless --no-fold-pool" not in str(info.value)
    plain, _, _ = _refused()[case]                  # not from the converter: no convert advice
    with pytest.raises(NeurosimError) as info:
        save_netx(plain, tmp_path / "out.net")
    assert "convert with" not in str(info.value) and "convert option" not in str(info.value)


def test_a_converted_soft_readout_and_unfolded_pool_name_their_options():
    net = Netlist(layers=[Input((1, 4, 4), RMP(10, reset="hard")),
                          pool((1, 2, 2), np.ones((2, 2)), RMP(5, reset="hard")),
                          Flatten((4,)), dense((3,), np.ones((3, 4)), RMP(9))],
                  meta={"converted_by": "neurosim.convert.rmp", "fold_pool": False, "align_bias": False})
    with pytest.raises(NeurosimError, match=r"layer 1 \(pool\).*fold_pool=True.*and 1 more.*the whole net needs "
                       r"fold_pool=True, readout_reset='hard' \(neurosim convert --readout-reset hard\)$"):
        to_netx(net)
