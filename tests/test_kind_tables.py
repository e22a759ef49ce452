"""Every synapse kind and every neuron kind is implemented, or refused with a reason, by every
executor's table.

The netlist's kinds (:data:`neurosim.netlist.synapses.KINDS`, :data:`neurosim.netlist.neurons.KINDS`)
are data and their rules; each executor owns a :class:`~neurosim.netlist.kinds.KindTable` from
kind class to its implementation. A new kind that is missing from one table fails here, so it
cannot be half-added (docs/netlist.md, "Adding a kind").
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurosim.metrics.neurobench import NEUROBENCH
from neurosim.lava.synapses import LAVA, LavaSynapse, lava_refusal, lava_step_cost
from neurosim.loihi2.synapses import FORMATS, loihi2_problem
from neurosim.errors import NeurosimError
from neurosim.interop.nir_io import NIR_NEURONS
from neurosim.lava.neurons import LAVA_NEURONS
from neurosim.loihi2.neurons import LOIHI2_NEURONS
from neurosim.netlist import Input, Netlist, dense, hdf5
from neurosim.netlist.netx_compat import NETX, NETX_NEURONS
from neurosim.netlist.neurons import CUBA, RMP, NeuronKind
from neurosim.netlist.neurons import KINDS as NEURON_KINDS
from neurosim.netlist.synapses import KINDS, Conv, Dense, Identity, Pool
from neurosim.netlist.validate import ValidationError, validate
from neurosim.sim.neurons import NEURONS
from neurosim.sim.simulator import Simulator
from neurosim.netlist.host import HOST
from neurosim.netlist.kinds import KindTable
from neurosim.netlist.synapses.base import SynapseKind
from neurosim.sim.synapse_maps import MAPS, SynapseMap, synapse_map

ROOT = Path(__file__).resolve().parents[1]

#: Every executor's table of synapse kinds.
TABLES: dict[str, KindTable] = {"sim": MAPS, "lava": LAVA, "loihi2": FORMATS, "netx": NETX, "neurobench": NEUROBENCH,
                                "host": HOST}
#: Every executor's or format's table of neuron kinds.
NEURON_TABLES: dict[str, KindTable] = {"sim": NEURONS, "lava": LAVA_NEURONS, "loihi2": LOIHI2_NEURONS,
                                       "netx": NETX_NEURONS, "nir": NIR_NEURONS}
#: One instance per neuron kind with every parameter off its default (a new kind adds one).
NEURON_EXAMPLES = {
    "CUBA": CUBA(vThMant=100, iDecay=1000, vDecay=200, refDelay=3, reset="soft", vInit=7),
    "RMP": RMP(vThMant=50, vDecay=10, reset="hard", vInit=-3),
}

#: One small instance per kind, with the shape of its input spikes (a new kind adds one).
EXAMPLES = {
    "dense": (Dense(np.arange(-12, 12, dtype=np.float64).reshape(4, 6) * 2), (6,)),
    "conv": (Conv(np.arange(2 * 3 * 3 * 3, dtype=np.float64).reshape(2, 3, 3, 3) - 20, (2, 1), (1, 0)),
             (3, 7, 6)),
    "pool": (Pool(np.ones((2, 2)), (2, 2)), (3, 6, 4)),
    "identity": (Identity(4.0), (3, 5, 5)),
}


#: Every (table, kind) pair: each synapse table with each synapse kind, each neuron table with each neuron kind.
PAIRS = ([(t, TABLES[t], KINDS[k], k) for t in TABLES for k in sorted(KINDS)]
         + [(t, NEURON_TABLES[t], NEURON_KINDS[k], k) for t in NEURON_TABLES for k in sorted(NEURON_KINDS)])


@pytest.mark.parametrize("table_name, t, cls, name", PAIRS, ids=[f"{p[0]}-{p[3]}" for p in PAIRS])
def test_every_kind_is_implemented_or_refused_with_a_reason(table_name, t, cls, name):
    assert (cls in t.implemented) != (cls in t.refused), f"{table_name}: '{name}' neither (or both)"
    if cls in t.refused:
        why = t.refusal(cls)
        assert t.refused[cls].strip() and "\n" not in why and name in why and t.executor in why
        with pytest.raises(ValueError, match=name):
            t.of(cls)
    else:
        assert t.refusal(cls) is None and t.of(cls) is not None


def test_examples_cover_every_kind():
    assert set(EXAMPLES) == set(KINDS)
    for name, (kind, _) in EXAMPLES.items():
        assert type(kind) is KINDS[name]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_implementations_answer_for_their_kind(name):
    """The simulator's map gives the kind's out_shape; Lava's refusal and cost, Loihi 2's and
    netx's checks run without Lava (only Lava's process itself imports it)."""
    kind, in_shape = EXAMPLES[name]
    out_shape = kind.out_shape(in_shape)
    m = synapse_map(kind)
    assert isinstance(m, SynapseMap)
    w = torch.as_tensor(m.torch_weight(np.asarray(kind.weight, dtype=np.float64), in_shape))
    s = torch.ones((2, *in_shape), dtype=torch.float64)
    assert tuple(m.linear(s, w).shape) == (2, *out_shape)
    assert issubclass(LAVA.of(kind), LavaSynapse)
    assert lava_refusal(kind, in_shape) is None
    assert lava_step_cost(kind, in_shape) >= 0
    assert loihi2_problem(kind) is None                    # the examples are Loihi 2 integers
    if kind in NETX:
        assert NETX.of(kind)(kind) is None


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("variant", range(3))
def test_fanout_is_the_gradient_of_the_map(name, variant):
    """The kind's NumPy fan-out (netlist) equals the synapses counted by the simulator's map:
    the gradient of the summed output with every weight one (what SynOps counted before)."""
    rng = np.random.default_rng(variant)
    kind, in_shape = EXAMPLES[name]
    if variant and name == "conv":
        groups = (1, 3)[variant - 1]
        stride = tuple(int(v) for v in rng.integers(1, 3, 2))
        kind = Conv(rng.normal(size=(6, 6 // groups, 3, 2)), stride, (1, 2), (variant, 1), groups)
        in_shape = (6, 9, 8)
    elif variant and name == "pool":
        kind, in_shape = Pool(rng.normal(size=(3, 2)), (1, 2), (1, 0)), (2, 7, 5)
    elif variant and name == "dense":
        kind, in_shape = Dense(rng.normal(size=(5, 24))), (2, 3, 4)
    kind.out_shape(in_shape)
    m = synapse_map(kind)
    w = m.torch_weight(np.asarray(kind.weight, dtype=np.float64), in_shape)
    x = torch.zeros((1, *in_shape), dtype=torch.float64, requires_grad=True)
    m.linear(x, torch.ones_like(torch.as_tensor(w), dtype=torch.float64)).sum().backward()
    expected = np.rint(x.grad[0].numpy()).astype(np.int64)
    got = kind.fanout(in_shape)
    assert got.dtype == np.int64 and got.shape == tuple(in_shape)
    np.testing.assert_array_equal(got, expected)


def test_a_kind_missing_from_a_table_is_refused_naming_the_executor():
    class Half(SynapseKind):
        type_name = "half"

    for t in TABLES.values():
        why = t.refusal(Half)
        assert why and t.executor in why and "'half'" in why
        with pytest.raises(ValueError, match="'half'"):
            t.of(Half())
    assert "Lava" in lava_refusal(Half(), (1,)) and lava_step_cost(Half(), (1,)) == 0
    assert "Loihi 2" in loihi2_problem(Half())
    with pytest.raises(ValueError):
        KindTable("x", {Dense: 1}, refused={Dense: "no"})


def test_netlist_imports_no_executor():
    """Loading and checking a netlist imports neither PyTorch, Lava nor an executor."""
    code = ("import sys; import neurosim.netlist, neurosim.netlist.hdf5, neurosim.netlist.netx_compat, "
            "neurosim.netlist.build; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lava') or m.startswith("
            "('neurosim.sim', 'neurosim.lava', 'neurosim.metrics', 'neurosim.convert', 'neurosim.interop', "
            "'neurosim.loihi2'))); print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_neuron_examples_cover_every_kind():
    assert set(NEURON_EXAMPLES) == set(NEURON_KINDS)
    for name, n in NEURON_EXAMPLES.items():
        assert type(n) is NEURON_KINDS[name]
        assert all(getattr(n, p.name) != p.default for p in n.params), f"{name}: every parameter off its default"
        assert n.reset != n.default_reset


def _net(neuron) -> Netlist:
    return Netlist([Input((3,), neuron), dense((2,), np.eye(2, 3) * 40, neuron)], input_shape=(3,))


@pytest.mark.parametrize("name", sorted(NEURON_KINDS))
def test_neuron_kind_round_trips_through_hdf5_and_its_params(tmp_path, name):
    """The HDF5 reader and writer work from the kind's parameter table: every parameter and the
    reset survive a file."""
    n = NEURON_EXAMPLES[name]
    back = hdf5.load(hdf5.save(_net(n), tmp_path / "n.net"))
    assert back.layers[0].neuron == n and back.layers[1].neuron == n


@pytest.mark.parametrize("name", sorted(NEURON_KINDS))
def test_neuron_parameter_ranges_come_from_the_kind(tmp_path, name):
    """The validator refuses each parameter just outside its range (or fractional where it must be
    an integer), naming its key; the file writer refuses the same."""
    import dataclasses
    n = NEURON_EXAMPLES[name]
    for p in n.params:
        bad = dataclasses.replace(n, **{p.name: p.hi + 1})
        with pytest.raises(ValidationError, match=f"neuron/{p.name}"):
            validate(_net(bad), "schema")
        with pytest.raises(NeurosimError, match=f"neuron/{p.name}"):
            hdf5.save(_net(bad), tmp_path / "bad.net")
        assert not (tmp_path / "bad.net").exists()
        if p.integer:
            with pytest.raises(ValidationError, match=f"neuron/{p.name}"):
                validate(_net(dataclasses.replace(n, **{p.name: p.lo + 0.5})), "schema")


@pytest.mark.parametrize("name", sorted(NEURON_KINDS))
def test_simulator_scans_every_neuron_kind_with_its_step_constants(name):
    """The simulator's scan runs each kind in both modes (exactness against Lava: test_lava_*)."""
    n = NEURON_EXAMPLES[name]
    x = np.array([[0.2, 0.9, 0.5]])
    for mode in ("fixed", "float"):
        res = Simulator(_net(n), mode).run(x, 16)
        assert res.counts[1].shape == (1, 2) and np.all(np.isfinite(res.readout))


def test_a_neuron_kind_missing_from_the_tables_is_refused_naming_the_executor():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Adaptive(NeuronKind):
        vThMant: float = 1
        reset: str = "hard"
        vInit: float = 0
        type_name = "ALIF"

    for t in NEURON_TABLES.values():
        why = t.refusal(Adaptive)
        assert why and t.executor in why and "'ALIF' neuron" in why
    with pytest.raises(ValidationError, match="unknown neuron Adaptive"):
        validate(_net(Adaptive()), "schema")


def test_a_kind_with_more_state_needs_only_its_scan_in_the_simulator(monkeypatch):
    """An adaptive-threshold kind (state v and th, :mod:`tests.adaptive_kind`) added with its
    parameter table and one scan: the simulator keeps its two state arrays and runs it; its
    spikes equal a plain NumPy loop over the same input spikes."""
    from tests import adaptive_kind as ak

    ak.register(monkeypatch.setitem)
    res = Simulator(ak.net(), "float").run(ak.X, ak.STEPS, record_spikes=True)
    spikes, v = ak.expected(fixed=False)
    assert spikes.sum() > 5
    np.testing.assert_array_equal(res.spikes[1], spikes)
    np.testing.assert_array_equal(res.v[1], v)


def test_a_kind_with_more_state_runs_on_lavas_generic_neuron_with_its_steps(tmp_path):
    """The same kind on Lava: the generic ``NetlistNeuron`` holds one Var per state variable and
    calls the kind's step; spikes and voltages equal the NumPy loop in both numeric modes (the
    run, in a process of its own: the registration ends with it, and a hang is a timeout)."""
    from tests import adaptive_kind as ak

    out = tmp_path / "alif.npz"
    proc = subprocess.run([sys.executable, "-m", "tests.adaptive_kind", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    for mode in ("float", "fixed"):
        spikes, v = ak.expected(fixed=mode == "fixed")
        assert spikes.sum() > 5
        np.testing.assert_array_equal(got[f"spikes_{mode}"], spikes, err_msg=mode)
        np.testing.assert_array_equal(got[f"v_{mode}"], v, err_msg=mode)
        assert str(got[f"model_{mode}"]).endswith(f"PyNetlistNeuron_v_th_{mode.capitalize()}")
