"""One validator with profiles (neurosim.netlist.validate): the schema's rules hold for netlists in
memory as in files (what ``save`` writes ``load`` reads), names of any length round-trip, and a
command validates a netlist once."""
from __future__ import annotations

import dataclasses
import functools
from collections import Counter

import h5py
import numpy as np
import pytest

from neurosim.errors import NetlistError, NeurosimError
from neurosim.netlist import CUBA, RMP, Dense, Input, Netlist, Schedule, dense, hdf5, identity
from neurosim.netlist import validate as V
from neurosim.netlist.schema import MAX_DELAY, MAX_TIMESTEPS
from neurosim.netlist.synapses import KINDS
from neurosim.sim.simulator import Simulator
from tests.conftest import assert_same_layer, small_conv_net


def _base() -> Netlist:
    """small_conv_net with CUBA neurons, a schedule on layer 1 and metadata."""
    net = small_conv_net(neuron=CUBA)
    net.layers[1].schedule = Schedule(scale=np.ones((2, 4)), bias=np.zeros((2, 4)), scale_exp=2)
    net.meta = {"dataset": "digits", "timesteps": 8}
    return net


def _neuron(i, **kw):
    def edit(net):
        net.layers[i].neuron = dataclasses.replace(net.layers[i].neuron, **kw)
    return edit


def _set(i, attr, value, sub=None):
    def edit(net):
        target = net.layers[i] if sub is None else getattr(net.layers[i], sub)
        setattr(target, attr, value)
    return edit


def _syn(i, **kw):
    def edit(net):
        proj = net.layers[i].projections[0]
        proj.synapse = dataclasses.replace(proj.synapse, **kw)
    return edit


def _delay(i, d):
    def edit(net):
        net.layers[i].projections[0].delay = d
    return edit


def _meta(**kw):
    def edit(net):
        net.meta.update(kw)
    return edit


#: (layer, key, the value as a file holds it, the same change in memory). Every range the reader
#: enforced before is here: neuron parameters, magnitudes, geometry, schedules, delays, metadata.
CASES = [
    (1, "neuron/iDecay", 9000, _neuron(1, iDecay=9000)),
    (1, "neuron/vDecay", -300, _neuron(1, vDecay=-300)),
    (4, "neuron/vDecay", 0.5, _neuron(4, vDecay=0.5)),
    (2, "neuron/vThMant", 1 << 18, _neuron(2, vThMant=1 << 18)),
    (4, "neuron/vInit", 1e6, _neuron(4, vInit=1e6)),
    (1, "neuron/refDelay", 1 << 17, _neuron(1, refDelay=1 << 17)),
    (0, "weight", 1e12, _set(0, "weight", 1e12)),
    (0, "bias", -1e12, _set(0, "bias", -1e12)),
    (1, "bias", np.full(4, 1e12), _set(1, "bias", np.full(4, 1e12))),
    (4, "weight", np.full((5, 36), 3e9), _syn(4, weight=np.full((5, 36), 3e9))),
    (1, "stride", np.array([2000, 1]), _syn(1, stride=(2000, 1))),
    (1, "padding", np.array([-1, 0]), _syn(1, padding=(-1, 0))),
    (1, "groups", 0, _syn(1, groups=0)),
    (2, "stride", np.array([0, 2]), _syn(2, stride=(0, 2))),
    (1, "schedule/scaleExp", 25, _set(1, "scale_exp", 25, "schedule")),
    (1, "schedule/scale", np.ones((MAX_TIMESTEPS + 1, 4)), _set(1, "scale", np.ones((MAX_TIMESTEPS + 1, 4)), "schedule")),
    (1, "schedule/bias", np.full((2, 4), np.inf), _set(1, "bias", np.full((2, 4), np.inf), "schedule")),
    (4, "delay", MAX_DELAY, _delay(4, MAX_DELAY + 1)),
    (None, "neurosim/meta", b'{"timesteps": 0}', _meta(timesteps=0)),
    (None, "neurosim/meta", b'{"ann_accuracy": 2}', _meta(ann_accuracy=2.0)),
]


def _where(layer, key) -> str:
    return ("" if layer is None else f"layer {layer}: ") + f"key '{key}'"


@pytest.mark.parametrize("layer, key, stored, edit", CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_save_refuses_what_load_refuses(tmp_path, layer, key, stored, edit):
    """The same value is refused in memory (check, simulator), by save (before writing, one line
    naming layer and key) and in a file by load, naming the same layer and key."""
    good = hdf5.save(_base(), tmp_path / "good.net")
    net = _base()
    edit(net)
    with pytest.raises(V.ValidationError) as info:
        net.check()
    assert (info.value.layer, info.value.key) == (layer, key)
    with pytest.raises(NeurosimError, match="not written: " + _where(layer, key)) as info:
        hdf5.save(net, tmp_path / "bad.net")
    assert "\n" not in str(info.value) and not (tmp_path / "bad.net").exists()
    with pytest.raises(V.ValidationError):
        Simulator(net, "float")
    with h5py.File(good, "r+") as f:
        name = key if layer is None else f"layer/{layer}/{key}"
        if name in f:
            del f[name]
        f[name] = stored
    with pytest.raises(NetlistError, match=_where(layer, key)):
        hdf5.load(good)


def test_identity_weight_limit_and_kind_geometry_are_schema_rules(tmp_path):
    net = Netlist([Input((3,), RMP(1)), identity((3,), RMP(1), weight=float(1 << 23))])
    with pytest.raises(V.ValidationError, match="layer 1: key 'weight': identity weight"):
        net.check()
    with pytest.raises(NeurosimError, match="not written: layer 1: key 'weight'"):
        hdf5.save(net, tmp_path / "n.net")


def test_error_messages_name_the_projection_or_the_key():
    net = _base()
    net.layers[4].projections[0].delay = 0
    with pytest.raises(NeurosimError, match=r"^layer 4 projection 0: delay must be an integer in 1\.\.1024"):
        net.check()
    net = _base()
    net.layers[1].projections[0].synapse.weight[0, 0, 0, 0] = 0.5
    with pytest.raises(NeurosimError, match=r"^layer 1: key 'weight': fixed-point mode needs integer"):
        Simulator(net, "fixed")
    Simulator(net, "float")


class LongNamedDense(Dense):
    """A dense synapse under a name longer than netx's 'S10' (test-only kind)."""
    type_name = "depthwise_conv_long_name"


def test_names_of_any_length_round_trip(tmp_path, monkeypatch):
    monkeypatch.setitem(KINDS, LongNamedDense.type_name, LongNamedDense)
    net = Netlist([Input((3,), RMP(1)), dense((4,), np.ones((4, 3)), RMP(2)), dense((2,), np.ones((2, 4)), RMP(2))])
    net.layers[1].projections[0].synapse = LongNamedDense(np.ones((4, 3)))
    join = net.layers[2]
    join.projections.append(dataclasses.replace(join.projections[0], synapse=LongNamedDense(np.ones((2, 3))),
                                                source=0))
    path = hdf5.save(net, tmp_path / "long.net")
    with h5py.File(path) as f:
        assert f["layer/1/type"][0] == b"depthwise_conv_long_name" and f["layer/1/type"].dtype == "S24"
        assert f["layer/2/projection/1/type"][0] == b"depthwise_conv_long_name"
    back = hdf5.load(path)
    for a, b in zip(net.layers, back.layers):
        assert_same_layer(a, b)
    assert type(back.layers[2].projections[1].synapse) is LongNamedDense


def test_a_fractional_threshold_round_trips(tmp_path):
    """vThMant was written as int64 (0.5 became 0); float mode's thresholds are kept."""
    net = Netlist([Input((3,), RMP(0.5)), dense((2,), np.full((2, 3), 0.25), CUBA(1.5))])
    back = hdf5.load(hdf5.save(net, tmp_path / "f.net"))
    assert back.layers[0].neuron.vThMant == 0.5 and back.layers[1].neuron.vThMant == 1.5


def test_values_saved_as_float32_stay_within_the_limit(tmp_path):
    """The magnitude limit is a float32 (2**31 - 128): a float64 within it is within it after save."""
    net = Netlist([Input((3,), RMP(1)), dense((2,), np.full((2, 3), 2147483520.0), RMP(1))])
    hdf5.load(hdf5.save(net, tmp_path / "n.net"))
    net.layers[1].projections[0].synapse.weight[0, 0] = 2147483600.0      # float32 would round it to 2**31
    with pytest.raises(V.ValidationError, match="exceed the limit"):
        net.check()


def _counting(monkeypatch) -> Counter:
    """Count the runs of every profile's check, and of the per-layer rules."""
    calls: Counter = Counter()
    for name, prof in list(V.PROFILES.items()):
        def check(net, _check=prof.check, _name=name):
            calls[_name] += 1
            _check(net)
        monkeypatch.setitem(V.PROFILES, name, V.Profile(check, prof.requires))

    @functools.wraps(V.check_layer)
    def layer(net, i, _orig=V.check_layer):
        calls["check_layer"] += 1
        _orig(net, i)
    monkeypatch.setattr(hdf5, "check_layer", layer)
    monkeypatch.setattr(V, "check_layer", layer)
    return calls


def test_a_netlist_is_validated_once_per_content(tmp_path, monkeypatch):
    path = hdf5.save(small_conv_net(), tmp_path / "n.net")
    calls = _counting(monkeypatch)
    net = hdf5.load(path)                          # the schema's rules, layer by layer as read
    assert calls == {"check_layer": 5}
    x = np.random.default_rng(0).random((2, 1, 6, 6))
    Simulator(net, "fixed").run(x, 4)
    Simulator(net, "fixed").run(x, 4)
    Simulator(net, "float")
    hdf5.save(net, tmp_path / "again.net")
    net.check()
    assert calls == {"check_layer": 5, "fixed": 1}
    assert V.passed(net) == {"schema", "fixed"}
    net.layers[1].projections[0].synapse.weight[0, 0, 0, 0] = 0.5     # in place: validated again
    assert V.passed(net) == frozenset()
    with pytest.raises(V.ValidationError, match="integer mantissas"):
        Simulator(net, "fixed")
    assert calls["schema"] == 1 and calls["fixed"] == 2
    Simulator(net, "float")
    assert calls["schema"] == 1


def test_neurosim_run_validates_once(tmp_path, monkeypatch):
    """``neurosim run NET --input X.npy``: load checks each layer once, the simulator adds only the
    fixed-point rule (before: Netlist.check twice, every conv geometry check 5 times)."""
    from neurosim.cli import main

    path = hdf5.save(small_conv_net(), tmp_path / "n.net")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((3, 1, 6, 6)))
    calls = _counting(monkeypatch)
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--steps", "4"]) == 0
    assert calls == {"check_layer": 5, "fixed": 1}


def test_profiles_require_their_bases_and_unknown_ones_are_refused(monkeypatch):
    import neurosim.lava.layout  # noqa: F401  (registers 'lava' and 'lava-fixed')

    calls = _counting(monkeypatch)
    net = small_conv_net()
    V.validate(net, "lava-fixed")
    assert list(calls) == ["schema", "check_layer", "fixed", "lava", "lava-fixed"]
    with pytest.raises(ValueError, match="unknown validation profile 'nope'"):
        V.validate(net, "nope")
