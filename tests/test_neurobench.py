"""neurosim's NeuroBench metrics (:mod:`neurosim.metrics.neurobench`) against the ``neurobench``
package itself (2.3, installed by ``scripts/setup.sh``): the SNN's metrics from the simulator's
counts equal NeuroBench's hooks on a torch model that replays the simulator's own spikes through
the netlist's dense and conv connections; the ANN's MACs that the energy model prices equal
NeuroBench's dense synaptic operations of the main job's ANN."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurosim import evaluate as ev
from neurosim.architectures import digits_cnn
from neurosim.metrics.neurobench import connection_projections, neurobench_metrics
from neurosim.netlist import RMP, Flatten, Netlist, dense
from neurosim.netlist.schema import Population
from neurosim.sim.simulator import Simulator
from neurosim.workflow import ann_layers_meta
from tests.conftest import small_conv_net

nb = pytest.importorskip("neurobench", reason="neurobench is not installed (scripts/setup.sh installs it)")
from neurobench.metrics.static import ConnectionSparsity, Footprint  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations  # noqa: E402
from neurobench.models import TorchModel  # noqa: E402


class SpikeReplay(nn.Module):
    """The netlist's dense and conv connections as torch layers, fed each step with the spikes
    the simulator recorded (N, T, n) per layer; each neuron layer's spikes pass an ``nn.ReLU``
    (the identity on 0/1) so NeuroBench's activation hooks see them."""

    def __init__(self, net, spikes):
        super().__init__()
        self.net, self.spikes = net, spikes
        self.links, self.sources = nn.ModuleList(), []
        for i, p, proj in connection_projections(net):
            k, w = proj.synapse, torch.as_tensor(np.asarray(proj.synapse.weight), dtype=torch.float32)
            if k.type_name == "dense":
                m = nn.Linear(w.shape[1], w.shape[0], bias=False)
            else:
                m = nn.Conv2d(w.shape[1] * k.groups, w.shape[0], tuple(w.shape[2:]), stride=tuple(k.stride),
                              padding=tuple(k.padding), dilation=tuple(k.dilation), groups=k.groups, bias=False)
            m.weight.data = w.reshape(m.weight.shape)
            self.links.append(m)
            self.sources.append((net.resolve(net.source_of(i, proj.source)), net.in_shape(i, p)))
        self.biases = nn.ParameterList([nn.Parameter(torch.as_tensor(layer.bias, dtype=torch.float32))
                                        for layer in net.layers if isinstance(layer, Population)
                                        and layer.bias is not None])
        self.acts = nn.ModuleList([nn.ReLU() for _ in net.neuron_layers])

    def forward(self, batch):
        steps = next(iter(self.spikes.values())).shape[1]
        for t in range(steps):
            for act, i in zip(self.acts, self.net.neuron_layers):
                act(torch.as_tensor(self.spikes[i][:, t], dtype=torch.float32))
            for link, (src, shape) in zip(self.links, self.sources):
                link(torch.as_tensor(self.spikes[src][:, t], dtype=torch.float32).reshape(-1, *shape))
        return batch


def test_snn_metrics_equal_neurobench_on_the_simulators_spikes():
    net = small_conv_net(seed=3)
    conv_w = net.layers[1].projections[0].synapse.weight
    conv_w[0, 0, 0, :] = 0                                      # zero weights: effective != dense
    net.layers[4].projections[0].synapse.weight[:, :5] = 0
    x = np.random.default_rng(0).random((16, 1, 6, 6)) * 4
    T = 12
    res = Simulator(net, "fixed").run(x, T, record_spikes=True, readout_steps=[5, T], per_neuron=False,
                                      membrane_updates=True)
    counts, inputs = ev.neuron_counts(net, res, x, T)
    ours = neurobench_metrics(net, counts, inputs, T, ev.membrane_updates(res, T))
    early, _ = ev.neuron_counts(net, res, x, 5)                  # counts at an earlier readout step
    for i in net.neuron_layers:
        np.testing.assert_array_equal(early[i] * len(x), res.spikes[i][:, :5].sum((0, 1)))

    model = TorchModel(SpikeReplay(net, {i: res.spikes[i] for i in net.neuron_layers}))
    model.register_hooks()
    batch = (torch.zeros(len(x)), torch.zeros(len(x)))
    preds = model(batch[0])
    synops, sparsity = SynapticOperations(), ActivationSparsity()
    theirs = synops(model, preds, batch)
    assert theirs["Effective_ACs"] > 0 and theirs["Effective_ACs"] < theirs["Dense"]
    assert ours["synaptic_operations"]["Dense"] == theirs["Dense"]
    assert ours["synaptic_operations"]["Effective_ACs"] == pytest.approx(theirs["Effective_ACs"], rel=1e-12)
    assert ours["synaptic_operations"]["Effective_MACs"] == theirs["Effective_MACs"] == 0
    assert ours["activation_sparsity"] == pytest.approx(sparsity(model, preds, batch), rel=1e-12)
    assert ours["footprint"] == Footprint()(model)
    assert ours["connection_sparsity"] == ConnectionSparsity()(model) > 0
    model.cleanup_hooks()


class _MembraneHook:
    """What NeuroBench's ``MembraneUpdates`` reads of an activation hook: the layer, and the
    membrane potential before and after each step."""

    def __init__(self, v_steps: list[np.ndarray]) -> None:
        self.layer = nn.Identity()
        self.pre_fire_mem_potential = [torch.as_tensor(v) for v in [np.zeros_like(v_steps[0])] + v_steps[:-1]]
        self.post_fire_mem_potential = [torch.as_tensor(v) for v in v_steps]


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_membrane_updates_equal_neurobench_on_the_simulators_potentials(mode):
    """NeuroBench's ``MembraneUpdates`` on every layer's potential after each step (from runs
    of 1..T steps: a shorter run is a prefix) equals the simulator's count in one run; a net
    with leak-free RMP layers, whose potential stays put on silent steps, so it is below the
    neurons x T a time-stepped core updates."""
    from tests.test_lava_batched import _samples, feature_net

    net, x, T = feature_net(), _samples(9), 12
    res = Simulator(net, mode).run(x, T, readout_steps=[4, T], per_neuron=False, membrane_updates=True)
    v = {i: [Simulator(net, mode).run(x, t).v[i] for t in range(1, T + 1)] for i in net.neuron_layers}
    for steps in (4, T):
        model = type("Hooked", (), {"activation_hooks": [_MembraneHook(v[i][:steps]) for i in net.neuron_layers]})
        theirs = MembraneUpdates()(model, None, (torch.zeros(len(x)),))
        ours = ev.membrane_updates(res, steps)
        assert ours == theirs
        assert 0 < ours < sum(int(np.prod(net.layers[i].shape)) for i in net.neuron_layers) * steps


def test_ann_macs_priced_by_the_energy_model_equal_neurobench_dense():
    torch.manual_seed(0)
    ann = digits_cnn.build().eval()
    rows = ann_layers_meta(ann, digits_cnn.INPUT_SHAPE)["layers"]
    ours = sum(macs for name, macs, _ in rows if name.split(":")[1] in ("conv", "dense"))
    model = TorchModel(ann)
    model.register_hooks()
    x = torch.rand(8, *digits_cnn.INPUT_SHAPE)
    theirs = SynapticOperations()(model, model(x), (x, torch.zeros(8)))
    model.cleanup_hooks()
    assert ours == theirs["Dense"] and theirs["Effective_ACs"] == 0 and 0 < theirs["Effective_MACs"] <= ours


def test_spike_input_through_flatten_counts_the_input_spikes():
    w = 2.0 * np.arange(-75, 75).reshape(3, 50)                 # one zero weight, in input column 25
    net = Netlist([Flatten((50,)), dense((3,), w, RMP(1 << 16))], input_shape=(2, 5, 5))
    x = (np.random.default_rng(1).random((6, 9, 2, 5, 5)) < 0.4).astype(np.float32)
    counts, inputs = ev.neuron_counts(net, Simulator(net, "fixed").run(x[:, :7], 7, readout_steps=[7]), x, 7)
    ours = neurobench_metrics(net, counts, inputs, 7, 0.0)
    per_input = x[:, :7].reshape(6, 7, 50).sum((0, 1)) / 6
    assert ours["synaptic_operations"]["Effective_ACs"] == pytest.approx(per_input.sum() * 3 - per_input[25])
    assert ours["synaptic_operations"]["Dense"] == 150 * 7
