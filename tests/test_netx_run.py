"""``neurosim run`` on what lava-dl users have: the bootstrap MNIST net with its training
protocol, a user's own ``.npy`` input (tinynet's and oxford's recorded runs), one-line errors,
and the keys netx ignores (``simulation/tSample``, ``neuron/weight_exp``)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurosim.cli import main
from neurosim.data.encodings import encode, slayer_quantize_8bit
from neurosim.netlist.hdf5 import load
from tests.conftest import needs_shared
from tests.test_netx_reference import _stock_netx


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["run", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


# ----------------------------------------------------------------------------- bootstrap MNIST

def test_bootstrap_encoding_is_slayers_normalised_input_grid():
    pixels = np.array([0, 5, 128, 255], dtype=np.float32) / 255
    folder = needs_shared("netx-reference", "mnist_bootstrap")
    net = load(folder / "network.net")
    x = encode("bootstrap", np.tile(pixels, 196).reshape(1, 1, 28, 28), net)
    assert x.shape == (1, 784)
    # (p/255 - 0.5) / 0.5 on multiples of 1/32: 0 -> -1, 5 -> -30.75/32 -> -31/32, 128 -> 0, 255 -> 1
    np.testing.assert_array_equal(x[0, :4], [-1.0, -31 / 32, 0.0, 1.0])
    assert slayer_quantize_8bit(np.array([10.0]))[0] == 254 / 64           # SLAYER's clamp


def test_bootstrap_mnist_reaches_lava_dl_accuracy(capsys, tmp_path):
    """The issue's command, on the first 1,000 test images (the full 10,000 give 99.20 %,
    docs/netx-run.md); the plain [0, 1] image instead of the trained protocol fails."""
    folder = needs_shared("netx-reference", "mnist_bootstrap")
    needs_shared("datasets", "mnist")
    code, out, _ = run_cli(capsys, folder / "network.net", "--dataset", "mnist", "--limit", "1000",
                           "--out", tmp_path)
    assert code == 0
    assert "input                   bootstrap, 16 steps; timing slayer" in out
    acc = float(out.split("SNN accuracy (T=16)")[1].split("%")[0])
    assert acc >= 98.5, out
    code, out, _ = run_cli(capsys, folder / "network.net", "--dataset", "mnist", "--limit", "300",
                           "--encoding", "current", "--out", tmp_path)
    assert code == 0 and float(out.split("SNN accuracy (T=16)")[1].split("%")[0]) < 60


def test_bootstrap_protocol_equals_slayer_spike_for_spike():
    """lava-dl's bootstrap blocks (SNN mode) against the simulator on the same weights. The input
    weight is set to 64 (1.0) so that SLAYER's input current is a whole mantissa (the trained
    76 gives 2.375 k, which Lava's bias_mant must round): then every layer's spikes and the
    readout (the output's summed input over 16 steps) are identical."""
    torch = pytest.importorskip("torch")
    bootstrap = pytest.importorskip("lava.lib.dl.bootstrap")
    slayer = pytest.importorskip("lava.lib.dl.slayer")
    from neurosim.data.dataset import load_dataset
    from neurosim.sim.simulator import Simulator

    folder = needs_shared("netx-reference", "mnist_bootstrap")
    needs_shared("datasets", "mnist")
    net = load(folder / "network.net")
    net.layers[0].weight = 64.0
    params = dict(threshold=1.25, current_decay=1, voltage_decay=0.03)
    blocks = [bootstrap.block.cuba.Input(params, weight=1, bias=0),
              bootstrap.block.cuba.Dense(params, 784, 512), bootstrap.block.cuba.Dense(params, 512, 512),
              bootstrap.block.cuba.Affine(params, 512, 10)]
    with torch.no_grad():
        blocks[0].weight[:] = 1.0
        blocks[0].bias[:] = net.layers[0].bias / 64
        for b, layer in zip(blocks[1:], net.layers[1:]):
            b.synapse.weight[:] = torch.tensor(layer.synapse.weight / 64).reshape(b.synapse.weight.shape)
    _, test = load_dataset("mnist")
    images = test.x[:64]
    z = slayer.utils.time.replicate(torch.tensor((images - 0.5) / 0.5), 16).reshape(len(images), -1, 16)
    spikes = []
    with torch.no_grad():
        for block, mode in zip(blocks, bootstrap.routine.LayerMode(0, bootstrap.Mode.SNN)):
            z = block(z, mode=mode)
            spikes.append(z.numpy().transpose(0, 2, 1) > 0)
    res = Simulator(net, "fixed").run(encode("bootstrap", images, net), 16, record_spikes=True)
    for i in range(3):      # SLAYER's blocks delay their output by one step, as Lava's synapses do
        assert np.array_equal(res.spikes[i][:, :15], spikes[i][:, 1:]), f"layer {i}"
        assert spikes[i].any()
    np.testing.assert_array_equal(res.readout, z.numpy().sum(-1) * 64 * 64)


# ----------------------------------------------------------------------------- --input on tinynet / oxford

def test_tinynet_input_reproduces_lava_dl_ground_truth(capsys, tmp_path):
    """lava-dl's tinynet test: ``input_bias.npy`` (W, H, C) as the input neurons' bias_mant, each
    layer reset after its first i steps, ``output[2:17] == gt[1:16]``. With slayer timing (the
    auto choice for this export) a plain run gives the same; with lava timing it does not."""
    folder = needs_shared("netx-reference", "tinynet")
    gt_out = np.load(folder / "output.npy")[0].reshape(36, -1).T != 0          # (T, C*H*W)
    gt_l1 = np.load(folder / "layer1.npy")[0].reshape(24 * 36, -1).T != 0
    for timing, exact in (("auto", True), ("lava", False)):
        out_dir = tmp_path / timing
        code, out, err = run_cli(capsys, folder / "network.net", "--input", folder / "input_bias.npy",
                                 "--layout", "whc", "--raw-current", "--steps", 17, "--timing", timing,
                                 "--save-spikes", out_dir)
        assert code == 0, err
        s1, s2 = np.load(out_dir / "layer1.npy")[0], np.load(out_dir / "layer2.npy")[0]
        assert s1.shape == (17, 24, 6, 6) and s2.shape == (17, 36, 1, 1)
        same = (np.array_equal(s2.reshape(17, -1)[2:17], gt_out[1:16])
                and np.array_equal(s1.reshape(17, -1)[:14], gt_l1[:14]))
        assert same == exact, timing
    assert gt_out.sum() == 92


def test_oxford_input_equals_stock_netx_over_all_steps(capsys, tmp_path):
    """oxford's events binned as SLAYER's ``read_np_spikes(...).to_tensor`` does (t in ms,
    rounded, OR), saved in lava-dl's (neurons, T) order; neurosim's output equals stock netx's
    at every one of the 2,000 steps. The recorded ``output.npy`` is not what netx gives for this
    file (stock netx and SLAYER's own SequentialNetwork both give 9,565 spikes, 17,292 entries
    away from it): see docs/netx-run.md."""
    folder = needs_shared("netx-reference", "oxford")
    events = np.load(folder / "input.npy")
    steps = 2000
    raster = np.zeros((200, steps), dtype=np.int32)
    t = np.round(events[:, 2] * 1e-3 * 1e3).astype(int)
    keep = (t >= 0) & (t < steps)
    raster[events[keep, 0].astype(int), t[keep]] = 1
    np.save(tmp_path / "raster.npy", raster)
    code, _, err = run_cli(capsys, folder / "network.net", "--input", tmp_path / "raster.npy",
                           "--time-axis", "last", "--save-spikes", tmp_path / "out")
    assert code == 0, err
    ours = np.load(tmp_path / "out" / "layer1.npy")[0]
    lava = _stock_netx(tmp_path, folder / "network.net", steps, "spikes", raster)[1] != 0
    assert ours.shape == lava.shape == (steps, 200)
    assert int(ours.sum()) == 9565
    assert np.array_equal(ours != 0, lava)
    recorded = np.load(folder / "output.npy")
    assert len(recorded) == 10361          # documented discrepancy: recorded with another model


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("array, args, message", [
    (np.zeros((5, 7)), (), "expected (T, 4) or (N, T, 4)"),
    (np.full((3, 4), 2), (), "spike input must be 0/1"),
    (np.zeros((4, 3)), ("--time-axis", "last", "--raw-current"), "--raw-current needs a net with an 'input' layer"),
])
def test_bad_input_is_one_line_naming_file_and_shape(capsys, tmp_path, array, args, message):
    from neurosim.netlist import CUBA, Netlist, dense, hdf5
    net = hdf5.save(Netlist([dense((3,), np.ones((3, 4)) * 2, CUBA(10))], input_shape=(4,)), tmp_path / "n.net")
    np.save(tmp_path / "x.npy", array)
    code, out, err = run_cli(capsys, net, "--input", tmp_path / "x.npy", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err
    if "expected" in message:
        assert str(tmp_path / "x.npy") in err


def test_not_an_npy_file_is_one_line(capsys, tmp_path):
    from neurosim.netlist import CUBA, Netlist, dense, hdf5
    net = hdf5.save(Netlist([dense((3,), np.ones((3, 4)), CUBA(10))], input_shape=(4,)), tmp_path / "n.net")
    (tmp_path / "x.npy").write_text("hello")
    code, _, err = run_cli(capsys, net, "--input", tmp_path / "x.npy")
    assert code == 2 and err.count("\n") == 1 and "not a readable .npy array" in err


# ----------------------------------------------------------------------------- keys netx ignores

def _write_dense(path, weight, bias, weight_exp=None, simulation=None):
    with h5py.File(path, "w") as h:
        g = h.create_group("layer/0")
        g.create_dataset("type", (1,), "S10", [b"dense"])
        g.create_dataset("shape", data=np.array([len(weight)]))
        g.create_dataset("weight", data=np.asarray(weight, dtype=np.float32))
        g.create_dataset("bias", data=np.asarray(bias, dtype=np.float32))
        g.create_dataset("neuron/type", data=b"CUBA")
        g.create_dataset("neuron/vThMant", data=64)
        if weight_exp is not None:
            g.create_dataset("neuron/weight_exp", data=np.array([weight_exp], dtype=np.float32))
        for key, value in (simulation or {}).items():
            h.create_dataset(f"simulation/{key}", data=value)
    return path


def test_weight_exp_scales_current_and_bias(tmp_path):
    w = np.array([[2.0, -4.0], [6.0, 8.0]])
    net = load(_write_dense(tmp_path / "a.net", w, [4.0, -2.0], weight_exp=-1))
    np.testing.assert_array_equal(net.layers[0].synapse.weight, 2 * w)
    np.testing.assert_array_equal(net.layers[0].bias, [8.0, -4.0])
    net = load(_write_dense(tmp_path / "b.net", w, [4.0, -2.0], weight_exp=1))
    np.testing.assert_array_equal(net.layers[0].synapse.weight, w / 2)
    net = load(_write_dense(tmp_path / "c.net", w, [4.0, -2.0], weight_exp=2))    # 6/4 is not whole
    assert net.layers[0].schedule.scale_exp == 2 and net.layers[0].schedule.scale.tolist() == [[1.0, 1.0]]
    np.testing.assert_array_equal(net.layers[0].bias, [1.0, -0.5])
    assert load(_write_dense(tmp_path / "d.net", w, [4.0, -2.0])).layers[0].schedule is None


def test_simulation_tsample_is_the_default_steps(tmp_path):
    net = load(_write_dense(tmp_path / "a.net", np.eye(2) * 2, [0, 0], simulation={"Ts": 1, "tSample": 16}))
    assert net.meta == {"netx_simulation": {"Ts": 1, "tSample": 16}, "timesteps": 16}
