"""The netlist's way into the Lava worker (no Lava run here).

* Why a codec and not the HDF5 netlist file: HDF5 rounds float-mode weights to float32.
* The codec gives back every field of every schema dataclass exactly (type, dtype, value),
  a field added to a schema class included, and the metadata.
* The worker checks the netlist it received as the parent does, and refuses what the parent
  would have refused.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from neurosim.lava import jobs, netcodec, worker
from neurosim.lava.lifetime import PARENT_ENV
from neurosim.netlist import CUBA, RMP, Flatten, Input, Netlist, conv, dense, hdf5, identity, join, pool
from neurosim.netlist.schema import Projection, Schedule
from neurosim.netlist.synapses import Identity
from tests.conftest import assert_same_layer


def detailed_net() -> Netlist:
    """Fractional float64 arrays, a NumPy scalar, non-default values in every kind of field
    (neurons, synapse geometry, an explicit source with a delay, a schedule) and metadata."""
    rng = np.random.default_rng(0)
    return Netlist([
        Input((2, 5, 5), CUBA(10, iDecay=1000, vDecay=7, refDelay=3, reset="soft", vInit=2.5),
              weight=0.3, bias=np.float64(0.1)),
        conv((4, 3, 3), rng.normal(0, 3, (4, 1, 3, 3)), RMP(12, vDecay=200, reset="hard", vInit=-1.25),
             stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=2, bias=rng.normal(0, 1, 4),
             schedule=Schedule(scale=rng.random((3, 4)), bias=rng.normal(0, 1, (2, 4)), scale_exp=2)),
        pool((4, 1, 1), np.array([[1.5, 0.25], [2.0, 1.0]]), RMP(4), stride=(2, 2)),
        join(identity((4, 1, 1), RMP(3), weight=0.5), Projection(Identity(0.75), source=2, delay=3)),
        Flatten((4,)),
        dense((3,), rng.normal(0, 5, (3, 4)), CUBA(9, iDecay=2048), bias=np.arange(3.0) - 0.5),
    ], meta={"dataset": "digits", "timesteps": 8, "ann_accuracy": 0.97, "notes": {"shape": [1, 2.5, None]}})


def transported(net: Netlist) -> Netlist:
    """``net`` as the worker gets it: the description through JSON, the arrays through .npz."""
    desc, arrays = netcodec.encode_net(net)
    return netcodec.decode_net(json.loads(json.dumps(desc)), arrays)


def assert_same_net(a: Netlist, b: Netlist) -> None:
    assert_same_layer(a, b, "net")                  # classes, field values, list vs tuple
    for la, lb in zip(a.layers, b.layers):          # and the arrays' dtypes
        assert getattr(getattr(la, "bias", None), "dtype", None) == getattr(getattr(lb, "bias", None), "dtype", None)
        for pa, pb in zip(getattr(la, "projections", []), getattr(lb, "projections", [])):
            assert np.asarray(pa.synapse.weight).dtype == np.asarray(pb.synapse.weight).dtype


def test_hdf5_rounds_float_mode_weights_so_the_worker_takes_the_codec(tmp_path):
    """The measurement behind :mod:`neurosim.lava.netcodec`: an HDF5 netlist file stores weights,
    biases, schedules and the input weight as float32. Should this test fail, HDF5 carries a
    float-mode netlist exactly and the worker can take the netlist through it instead."""
    net = detailed_net()
    back = hdf5.load(hdf5.save(net, tmp_path / "net.net"))
    for name, a, b in (("conv weight", net.layers[1].synapse.weight, back.layers[1].synapse.weight),
                       ("conv bias", net.layers[1].bias, back.layers[1].bias),
                       ("schedule scale", net.layers[1].schedule.scale, back.layers[1].schedule.scale),
                       ("dense weight", net.layers[5].synapse.weight, back.layers[5].synapse.weight),
                       ("input weight", net.layers[0].weight, back.layers[0].weight)):
        diff = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        print(f"{name}: HDF5 round trip off by up to {diff:.2g}")
        assert 0 < diff < 1e-5 * max(1.0, float(np.max(np.abs(a))))       # float32 rounding
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    assert back.meta == net.meta
    assert_same_net(net, transported(net))          # the codec: exact


def test_codec_round_trips_every_field():
    net = detailed_net()
    assert net.layers[3].projections[1].delay == 3 and net.layers[3].projections[1].source == 2
    assert_same_net(net, transported(net))
    spiking = Netlist([dense((3,), np.ones((3, 4)), RMP(2))], input_shape=(4,))
    assert_same_net(spiking, transported(spiking))


@dataclasses.dataclass
class TaggedIdentity(Identity):
    """A synapse kind with one field more than its base: what a new schema field looks like."""
    tag: int = 0


def test_codec_carries_a_field_it_was_not_written_for(monkeypatch):
    monkeypatch.setitem(netcodec.CLASSES, "TaggedIdentity", TaggedIdentity)
    net = Netlist([Input((3,), RMP(5)), identity((3,), RMP(4))])
    net.layers[1].projections[0] = Projection(TaggedIdentity(weight=2.0, tag=7), delay=2)
    back = transported(net)
    assert back.layers[1].projections[0] == Projection(TaggedIdentity(weight=2.0, tag=7), delay=2)
    monkeypatch.delitem(netcodec.CLASSES, "TaggedIdentity")
    with pytest.raises(TypeError, match="not a netlist class"):
        netcodec.encode_net(net)


@pytest.mark.parametrize("mode, broken, refusal", [
    ("fixed", "fractional", "integer"),          # the fixed-point rule
    ("float", "forward source", "not an earlier layer"),     # Netlist.check
    ("float", "delay", "delay must be an integer"),           # Netlist.check, the new field
])
def test_worker_refuses_what_the_parent_would(tmp_path, monkeypatch, mode, broken, refusal):
    """A job whose netlist skipped the parent's checks ends with the check's message in
    error.json, before any Lava process exists."""
    monkeypatch.delenv(PARENT_ENV, raising=False)
    net = Netlist([Input((4,), RMP(5)), dense((3,), np.ones((3, 4)), RMP(4)), dense((2,), np.ones((2, 3)), RMP(3))])
    if broken == "fractional":
        net.layers[1].projections[0].synapse.weight[0, 0] = 0.5
    elif broken == "forward source":
        net.layers[1].projections[0].source = 2
    else:
        net.layers[2].projections[0].delay = 0
    jobs.write_job(tmp_path, net, np.ones((1, 4)), mode=mode, steps=3, raw_current=False, record=None,
                   graph_hook=None, sys_path=[])
    assert worker.main(str(tmp_path)) == 1
    error = json.loads((tmp_path / jobs.ERROR).read_text())
    assert refusal in error["message"] and error["stage"] == "loading the job", error["message"]
    assert not (tmp_path / jobs.RESULT).exists()


def test_worker_reads_back_a_valid_job(tmp_path):
    net = Netlist([Input((4,), RMP(5)), dense((3,), np.arange(12.0).reshape(3, 4) / 7, RMP(4))])
    x = np.random.default_rng(0).random((2, 4))
    jobs.write_job(tmp_path, net, x, mode="float", steps=3, raw_current=False, record=[1],
                   graph_hook=None, sys_path=[])
    job, back, x_back = jobs.read_job(tmp_path)
    assert job["mode"] == "float" and job["steps"] == 3 and job["record"] == [1]
    assert_same_net(net, back)
    np.testing.assert_array_equal(x, x_back)
