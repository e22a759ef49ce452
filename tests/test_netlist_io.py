"""Netlist HDF5 round trip, netx compatibility and clear errors for bad files."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurosim.errors import NetlistError
from neurosim.netlist import hdf5
from neurosim.netlist import CUBA, Input, Netlist, RMP, dense
from tests.conftest import assert_same_layer, small_conv_net


def test_round_trip_keeps_every_field(tmp_path):
    net = small_conv_net()
    net.meta = {"dataset": "digits", "timesteps": 32}
    path = hdf5.save(net, tmp_path / "n.net")
    back = hdf5.load(path)
    assert back.meta == net.meta
    assert len(back.layers) == len(net.layers)
    for a, b in zip(net.layers, back.layers):
        assert_same_layer(a, b)


def test_file_uses_netx_layout(tmp_path):
    path = hdf5.save(small_conv_net(), tmp_path / "n.net")
    with h5py.File(path) as f:
        # names as fixed-length bytes of their own length (no variable-length heap), type as (1,)
        assert f["layer/0/type"].dtype == np.dtype("S5") and f["layer/0/type"].shape == (1,)
        assert f["layer/1/type"][0] == b"conv"
        assert f["layer/1/neuron/type"][()] == b"RMP" and f["layer/1/neuron/type"].dtype == np.dtype("S3")
        assert list(f["layer/1/shape"][()]) == [4, 6, 6]          # (C, H, W)
        assert f["layer/1/weight"].shape == (4, 1, 3, 3)
        assert f["layer/4/weight"].shape == (5, 36)


def cuba_dense_net() -> Netlist:
    rng = np.random.default_rng(1)
    return Netlist([
        Input((20,), CUBA(80, iDecay=4096, vDecay=1024), weight=64.0, bias=0.0),
        dense((16,), 2 * rng.integers(-50, 80, (16, 20)).astype(float), CUBA(60, iDecay=2048, vDecay=512)),
        dense((4,), 2 * rng.integers(-50, 80, (4, 16)).astype(float), CUBA(60, iDecay=4096, vDecay=0)),
    ])


def test_cuba_netlist_loads_in_stock_netx(tmp_path):
    from lava.lib.dl.netx.hdf5 import Network

    path = hdf5.save(cuba_dense_net(), tmp_path / "cuba.net")
    net = Network(net_config=str(path))
    assert len(net) == 3
    assert net.out.shape == (4,)


def test_missing_file(tmp_path):
    with pytest.raises(NetlistError, match="no such file"):
        hdf5.load(tmp_path / "nope.net")


def test_not_hdf5(tmp_path):
    bad = tmp_path / "bad.net"
    bad.write_text("this is not HDF5\n")
    with pytest.raises(NetlistError, match="not a readable HDF5 file") as err:
        hdf5.load(bad)
    assert str(bad) in str(err.value)


def test_unknown_neuron_type_names_layer_and_key(tmp_path):
    path = hdf5.save(small_conv_net(), tmp_path / "n.net")
    with h5py.File(path, "r+") as f:
        del f["layer/1/neuron/type"]
        f["layer/1/neuron/type"] = b"IZHIKEVICH"
    with pytest.raises(NetlistError, match="layer 1: key 'neuron/type': unknown neuron type 'IZHIKEVICH'"):
        hdf5.load(path)


@pytest.mark.parametrize("edit, message", [
    (lambda f: f["layer/1/weight"].__setitem__((0, 0, 0, 0), np.nan), "NaN"),
    (lambda f: (f.__delitem__("layer/4/weight"), f.create_dataset("layer/4/weight", data=np.zeros((5, 35)))),
     "does not match"),
    (lambda f: (f.__delitem__("layer/2/shape"), f.create_dataset("layer/2/shape", data=[4, 2, 2])), "pool of"),
    (lambda f: f.__delitem__("layer/1/neuron/vThMant"), "missing"),
    (lambda f: (f.__delitem__("layer/3/type"), f.create_dataset("layer/3/type", (1,), "S10", [b"concat"])),
     "unknown layer type 'concat'"),
])
def test_bad_contents_are_refused_clearly(tmp_path, edit, message):
    path = hdf5.save(small_conv_net(), tmp_path / "n.net")
    with h5py.File(path, "r+") as f:
        edit(f)
    with pytest.raises(NetlistError, match=message):
        hdf5.load(path)


def test_failed_save_keeps_previous_file(tmp_path):
    path = hdf5.save(small_conv_net(), tmp_path / "n.net")
    before = path.read_bytes()
    broken = Netlist([Input((3,), RMP(1)), dense((2,), np.zeros((2, 3)), neuron=None)])
    with pytest.raises(Exception):
        hdf5.save(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["n.net"]
