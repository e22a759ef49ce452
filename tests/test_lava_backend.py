"""The Lava backend (real Lava runs in a guarded child process) against the reference simulator.

Both graphs: the per-sample graph of Lava's own processes (``batch=None``) and the batched
graph (``batch=3`` for 4 samples: a full batch and a short one). ``fixed`` (Lava ``fixed_pt``)
must equal the simulator spike for spike in every layer and in the final voltages; ``float``
(``floating_pt``) with integer weights too, and with fractional weights up to rounding. A
ProcessModel that raises or hangs must end in ``LavaRunError`` within the time limit, naming
the samples it was on, leaving no process and no shared memory behind.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurosim.errors import LavaRunError, NeurosimError
from neurosim.lava.layout import from_lava, from_lava_steps, lava_shape, to_lava, to_lava_time
from neurosim.lava.netcodec import decode_net, encode_net
from neurosim.lava.runner import run_lava
from neurosim.lava.supervisor import group_members
from neurosim.netlist.hdf5 import save
from neurosim.netlist import CUBA, RMP, Flatten, Input, Netlist, conv, dense, pool
from neurosim.netlist.neurons import NETX_DENSE_WITHOUT_NEURON
from neurosim.sim.simulator import Simulator
from tests.conftest import assert_same_layer, small_conv_net
from tests.test_lava_lifetime import orphan_shm

ROOT = Path(__file__).resolve().parents[1]
T = 12          # steps per sample
N = 4           # samples per run
#: The graphs: per sample (Lava's own processes), batched (3 samples per Lava run).
GRAPHS = {"per-sample": None, "batched": 3}


# ----------------------------------------------------------------------------- nets

def cuba_dense_net(scale: float = 1.0, seed: int = 2) -> Netlist:
    """1-D input -> dense CUBA (mixed odd weights, bias) -> dense CUBA (iDecay 0) -> netx readout."""
    rng = np.random.default_rng(seed)
    return Netlist([
        Input((20,), CUBA(10, iDecay=4096, vDecay=0), weight=15.0, bias=1.0),
        dense((16,), scale * rng.integers(-7, 12, (16, 20)).astype(float), CUBA(20, iDecay=1024, vDecay=256),
              bias=rng.integers(-2, 4, 16).astype(float)),
        dense((6,), scale * rng.integers(0, 9, (6, 16)).astype(float), CUBA(15, iDecay=0, vDecay=128)),
        dense((3,), scale * rng.integers(-5, 6, (3, 6)).astype(float), NETX_DENSE_WITHOUT_NEURON),
    ])


def mixed_net(seed: int = 3) -> Netlist:
    """CUBA input -> grouped, strided, dilated, padded conv (RMP, leaky) -> asymmetric pool ->
    flatten -> dense RMP -> dense CUBA."""
    rng = np.random.default_rng(seed)
    return Netlist([
        Input((2, 7, 7), CUBA(8), weight=10.0),
        conv((4, 4, 3), rng.integers(-3, 7, (4, 1, 3, 3)).astype(float), RMP(10, vDecay=200),
             stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, bias=np.array([1., 0., -1., 2.])),
        pool((4, 2, 2), np.array([[1., 2.], [3., 1.]]), RMP(4), stride=(2, 1)),
        Flatten((16,)),
        dense((6,), rng.integers(-4, 9, (6, 16)).astype(float), RMP(12), bias=np.arange(6.) - 2),
        dense((3,), rng.integers(-6, 10, (3, 6)).astype(float), CUBA(9, iDecay=2048, vDecay=100)),
    ])


def spike_input_net(seed: int = 4) -> Netlist:
    """No input layer: 0/1 spikes (T, 2, 5, 5) -> conv CUBA -> flatten -> dense RMP."""
    rng = np.random.default_rng(seed)
    return Netlist([
        conv((3, 3, 3), rng.integers(-2, 6, (3, 2, 3, 3)).astype(float), CUBA(6, iDecay=512, vDecay=64)),
        Flatten((27,)),
        dense((4,), rng.integers(-3, 8, (4, 27)).astype(float), RMP(5)),
    ], input_shape=(2, 5, 5))


def samples(net: Netlist, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if net.has_input_layer:
        return rng.random((N, *net.layers[0].shape))
    return (rng.random((N, T, *net.input_shape)) < 0.3).astype(float)


def compare(net: Netlist, mode: str, res, x: np.ndarray) -> int:
    """Spike mismatches between Lava and the simulator over all layers; checks counts and v."""
    ref = Simulator(net, mode).run(x, T, record_spikes=True)
    total, spikes = 0, 0
    for i, s in enumerate(res.spikes):
        if s is None:
            assert ref.spikes[i] is None
            continue
        assert s.shape == ref.spikes[i].shape == (len(x), T, int(np.prod(net.layers[i].shape)))
        mism = int((s != ref.spikes[i]).sum())
        total += mism
        spikes += int(ref.spikes[i].sum())
        np.testing.assert_array_equal(res.counts[i], s.sum(1))
        if mode == "fixed":
            np.testing.assert_array_equal(res.v[i], ref.v[i], err_msg=f"layer {i} v")
        elif mism == 0:
            np.testing.assert_allclose(res.v[i], ref.v[i], rtol=1e-9, atol=1e-9, err_msg=f"layer {i} v")
    print(f"\n{mode}: {spikes} reference spikes, {total} mismatches; models {sorted(set(res.models.values()))}")
    t = res.timing
    print(f"  wall {t['wall_s']:.2f} s (worker start-up+compile {t['import_s'] + t['build_s'] + t['compile_s']:.2f} s), "
          f"per step {1e3 * t.get('per_step_s', float('nan')):.2f} ms, set/get {t['io_s']:.2f} s")
    assert spikes > 0, "test net too quiet"
    return total


# ----------------------------------------------------------------------------- equality

FIXED_NETS = {
    "rmp_conv": lambda: small_conv_net(seed=0),
    "cuba_dense": cuba_dense_net,
    "mixed": mixed_net,
    "spike_input": spike_input_net,
}


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("name", sorted(FIXED_NETS))
def test_fixed_equals_simulator(name, graph, tmp_path):
    net = FIXED_NETS[name]()
    x = samples(net)
    if name == "mixed":    # this one goes through a netlist file
        path = save(net, tmp_path / "net.h5")
        res = run_lava(path, x, T, "fixed", progress=False, batch=GRAPHS[graph])
    else:
        res = run_lava(net, x, T, "fixed", progress=False, batch=GRAPHS[graph])
    assert res.mode == "fixed" and res.steps == T and res.batch == GRAPHS[graph]
    assert compare(net, "fixed", res, x) == 0
    assert all(m.endswith(("BitAcc", "Fixed")) for m in res.models.values()), res.models


FLOAT_NETS = {
    "rmp_conv": lambda: small_conv_net(seed=0),
    "mixed": mixed_net,
    "cuba_dense_fractional": lambda: cuba_dense_net(scale=0.37),
}


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("name", sorted(FLOAT_NETS))
def test_float_equals_simulator(name, graph):
    net = FLOAT_NETS[name]()
    x = samples(net)
    res = run_lava(net, x, T, "float", progress=False, batch=GRAPHS[graph])
    mism = compare(net, "float", res, x)
    assert all(m.endswith("Float") for m in res.models.values()), res.models
    if "fractional" in name:     # summation order may differ: rounding, rarely a spike
        assert mism <= 0.001 * x.shape[0] * T * sum(np.prod(l.shape) for l in net.layers)
    else:
        assert mism == 0


@pytest.mark.parametrize("graph", GRAPHS)
def test_raw_current_input_and_recording_some_layers(graph):
    """``raw_current``: x is the input current itself (``Simulator.run(raw_current=True)``);
    ``record``: only those layers (and the output layer) are read back."""
    net = small_conv_net(seed=5)
    x = np.round(np.random.default_rng(1).random((2, 1, 6, 6)) * 150)
    res = run_lava(net, x, T, "fixed", progress=False, raw_current=True, record=[1], batch=GRAPHS[graph])
    ref = Simulator(net, "fixed").run(x, T, record_spikes=True, raw_current=True)
    assert [i for i, s in enumerate(res.spikes) if s is not None] == [1, net.output_layer]
    for i in (1, net.output_layer):
        np.testing.assert_array_equal(res.spikes[i], ref.spikes[i])
        np.testing.assert_array_equal(res.v[i], ref.v[i])
    np.testing.assert_array_equal(res.readout, ref.readout)


# ----------------------------------------------------------------------------- the guard

class Faulty(AbstractProcess):
    """A sink that fails at one time step: ``mode`` 'raise' or 'hang'."""

    def __init__(self, shape, fail_at: int, mode: str) -> None:
        super().__init__(shape=shape, fail_at=fail_at, mode=mode)
        self.a_in = InPort(shape=shape)


@implements(proc=Faulty, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "floating_pt")
class PyFaultyModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

    def run_spk(self) -> None:
        self.a_in.recv()
        if self.time_step == self.proc_params["fail_at"]:
            if self.proc_params["mode"] == "raise":
                raise ValueError(f"deliberate failure at time step {self.time_step}")
            time.sleep(3600)


def _attach(graph, mode: str) -> None:
    out = graph.neurons[graph.neuron_layers[-1]]
    proc = Faulty(shape=out.s_out.shape, fail_at=T + 3, mode=mode)    # step 3 of the second run
    out.s_out.connect(proc.a_in)
    graph.model_overrides[proc] = PyFaultyModel


def attach_raising(graph) -> None:
    _attach(graph, "raise")


def attach_hanging(graph) -> None:
    _attach(graph, "hang")


@pytest.mark.parametrize("fault, batch, where", [("raising", None, "sample 1 of 4"),
                                                 ("raising", 2, "samples 2-3 of 4"),
                                                 ("hanging", 2, "samples 2-3 of 4")])
def test_failing_process_model_raises_lava_run_error(fault, batch, where):
    net = small_conv_net(seed=0)
    x = samples(net)
    timeout = 60.0 if fault == "raising" else 10.0
    before = set(os.listdir("/dev/shm"))
    t0 = time.monotonic()
    with pytest.raises(LavaRunError) as info:
        run_lava(net, x, T, "fixed", timeout=timeout, progress=False, batch=batch,
                 graph_hook=f"tests.test_lava_backend:attach_{fault}", sys_path=[str(ROOT)])
    elapsed = time.monotonic() - t0
    msg = str(info.value)
    print(f"\n{fault}: LavaRunError after {elapsed:.1f} s: {msg.splitlines()[0]}")
    assert elapsed < timeout + 15
    assert where in msg
    if fault == "raising":
        assert "deliberate failure at time step 15" in msg
    else:
        assert "timed out" in msg and "--lava-timeout" in msg      # the option a user has, not the API's name
    assert group_members(info.value.worker_pid) == []      # nothing of the worker is alive
    assert orphan_shm(before) == set()


# ----------------------------------------------------------------------------- no Lava run

def test_refuses_what_it_cannot_run():
    net = small_conv_net(seed=0)
    frac = cuba_dense_net(scale=0.37)
    with pytest.raises(NeurosimError, match="integer"):
        run_lava(frac, samples(frac), T, "fixed")
    with pytest.raises(NeurosimError, match="shape"):
        run_lava(net, np.zeros((2, 6, 6)), T, "fixed")
    with pytest.raises(NeurosimError, match="mode"):
        run_lava(net, samples(net), T, "double")
    spiking = spike_input_net()
    with pytest.raises(NeurosimError, match="0/1"):
        run_lava(spiking, samples(spiking) * 0.5, T, "fixed")
    with pytest.raises(NeurosimError, match="int16"):
        run_lava(net, samples(net) * 1000, T, "fixed")


def test_layout_and_codec_roundtrip():
    rng = np.random.default_rng(0)
    a = rng.random((3, 4, 5))
    lava = to_lava(a, (3, 4, 5))
    assert lava.shape == lava_shape((3, 4, 5)) == (5, 4, 3)
    assert lava[4, 2, 1] == a[1, 2, 4]
    np.testing.assert_array_equal(from_lava(lava), a.reshape(-1))
    s = rng.random((6, 3, 4, 5))                       # (T, C, H, W)
    buf = to_lava_time(s, (3, 4, 5))                   # (W, H, C, T)
    assert buf.shape == (5, 4, 3, 6) and buf[4, 2, 1, 5] == s[5, 1, 2, 4]
    np.testing.assert_array_equal(from_lava_steps(buf.transpose(3, 0, 1, 2)), s.reshape(6, -1))
    for net in (mixed_net(), cuba_dense_net(0.37), spike_input_net()):
        desc, arrays = encode_net(net)
        back = decode_net(desc, arrays)
        assert back.input_shape == net.input_shape
        assert len(back.layers) == len(net.layers)
        for l1, l2 in zip(net.layers, back.layers):
            assert_same_layer(l1, l2)


def test_ungrouped_conv_weight_is_equivalent():
    """More than 127 groups (Lava's Conv holds groups in int8) become one block weight."""
    import torch
    import torch.nn.functional as F

    from neurosim.netlist.synapses.conv import ungroup_conv_weight

    rng = np.random.default_rng(0)
    for groups, cin, cout in ((3, 6, 9), (130, 130, 130)):
        w = rng.integers(-3, 4, (cout, cin // groups, 2, 3)).astype(float)
        s = (rng.random((2, cin, 5, 6)) < 0.5).astype(float)
        a = F.conv2d(torch.tensor(s), torch.tensor(w), groups=groups)
        b = F.conv2d(torch.tensor(s), torch.tensor(ungroup_conv_weight(w, groups)))
        assert torch.equal(a, b)
