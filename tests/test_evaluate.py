"""The report: one simulation for every T of the sweep, the sweep's checks, what an ANN-less
net reports, and the plot's labels."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurosim import evaluate as ev
from neurosim.data.dataset import Split
from neurosim.errors import NeurosimError
from neurosim.netlist import CUBA, RMP, Flatten, Netlist, Population, conv, dense
from neurosim.netlist.schema import MAX_TIMESTEPS
from neurosim.sim.simulator import Simulator
from tests.conftest import small_conv_net

PER_T = ("accuracy", "spikes_per_sample", "spikes_per_sample_per_layer", "synops_per_sample",
         "synops_per_sample_per_layer", "input_spikes_per_sample", "neuron_updates_per_sample", "energy")


def _split(n: int = 24, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    return Split("toy", rng.random((n, 1, 6, 6)), rng.integers(0, 5, n))


def _spike_net() -> Netlist:
    """A spike-input net whose first synapse is a conv (inputs with different fan-outs)."""
    rng = np.random.default_rng(1)
    return Netlist([conv((3, 5, 5), rng.integers(-2, 6, (3, 2, 3, 3)).astype(float), CUBA(6, iDecay=2048),
                         padding=(1, 1)),
                    Flatten((75,)),
                    dense((4,), rng.integers(-3, 8, (4, 75)).astype(float), RMP(9))], input_shape=(2, 5, 5))


def _counting_runs(monkeypatch) -> list[int]:
    calls: list[int] = []
    run = Simulator.run

    def counted(self, x, steps, *args, **kwargs):
        calls.append(steps)
        return run(self, x, steps, *args, **kwargs)
    monkeypatch.setattr(Simulator, "run", counted)
    return calls


def _at_steps(report: dict) -> dict:
    """The report's top-level metrics at ``timesteps``, in the shape of a ``per_timestep`` entry."""
    out = {k: report[k] for k in PER_T if k != "accuracy"}
    out["accuracy"] = report["snn_accuracy"]
    out["energy"] = report["energy"]
    return out


@pytest.mark.parametrize("spike_input", [False, True])
def test_one_run_gives_the_metrics_of_every_swept_T(monkeypatch, spike_input):
    """One simulation of max(sweep, steps) steps; its accuracy, spikes, SynOps and energy at
    each T are those of a separate evaluation at T (equal means of equal integers)."""
    if spike_input:
        net = _spike_net()
        rng = np.random.default_rng(2)
        test = Split("spikes", (rng.random((12, 20, 2, 5, 5)) < 0.3).astype(np.float32), rng.integers(0, 4, 12))
    else:
        net, test = small_conv_net(), _split()
    net.meta["ann_macs"] = 999
    calls = _counting_runs(monkeypatch)
    report = ev.evaluate(net, test, 8, sweep=[16, 2, 4, 4], progress=False)
    assert calls == [16]                # the one run, of the longest T (NeuroBench's counts come from it too)
    assert report["sweep"] == [2, 4, 16] and report["timesteps"] == 8
    assert list(report["per_timestep"]) == list(report["accuracy_vs_timesteps"]) == ["2", "4", "8", "16"]
    assert _at_steps(report) == report["per_timestep"]["8"]
    assert len(report["spikes_per_step"][ev.layer_names(net)[0]]) == 8
    for T in (2, 4, 8, 16):
        calls.clear()
        alone = ev.evaluate(net, Split(test.name, test.x if net.has_input_layer else test.x[:, :T], test.y), T,
                            sweep=[T], progress=False)
        assert calls == [T]
        assert report["per_timestep"][str(T)] == _at_steps(alone), T
        if T == 8:          # NeuroBench's per-neuron counts at the reported T, read from the longer run
            assert report["neurobench"] == alone["neurobench"]
        assert report["accuracy_vs_timesteps"][str(T)] == alone["snn_accuracy"]
    # spikes and SynOps grow with T, and something fired
    synops = [report["per_timestep"][t]["synops_per_sample"] for t in ("2", "4", "8", "16")]
    assert synops == sorted(synops) and synops[-1] > 0
    if spike_input:
        assert report["synops_per_sample_per_layer"]["input"] > 0 and report["input_spikes_per_sample"] > 0
        with pytest.raises(NeurosimError, match="sweep and steps reach T = 32, but the spike input has 20 steps"):
            ev.evaluate(net, test, 8, sweep=[32], progress=False)


def test_default_sweep_is_the_usual_T_up_to_steps():
    assert ev.default_sweep(16) == [4, 8, 16]
    assert ev.default_sweep(100) == [4, 8, 16, 32, 64, 100]
    assert ev.default_sweep(512) == [4, 8, 16, 32, 64, 128, 256, 512]
    assert ev.default_sweep(3) == [3]
    report = ev.evaluate(small_conv_net(), _split(8), 10, progress=False)
    assert report["sweep"] == [4, 8, 10] and list(report["accuracy_vs_timesteps"]) == ["4", "8", "10"]


@pytest.mark.parametrize("sweep,message", [
    ([], "sweep must name at least one time step"),
    ([0, 4], f"sweep: time steps must lie in 1..{MAX_TIMESTEPS}, got 0"),
    ([MAX_TIMESTEPS + 1], f"sweep: time steps must lie in 1..{MAX_TIMESTEPS}, got {MAX_TIMESTEPS + 1}"),
    ([2.5], "sweep: time steps must be whole numbers"),
    (["8"], "sweep: time steps must be whole numbers"),
    ([True], "sweep: time steps must be whole numbers"),
    (8, "sweep must be a list of time steps"),
])
def test_bad_sweep_is_refused_naming_it(sweep, message, monkeypatch):
    calls = _counting_runs(monkeypatch)
    with pytest.raises(NeurosimError, match=message.replace(".", r"\.")):
        ev.evaluate(small_conv_net(), _split(4), 8, sweep=sweep, progress=False)
    assert calls == []                                          # refused before simulating
    assert ev.check_sweep(np.array([8, 2, 8])) == [2, 8]


def test_ann_figures_only_for_a_netlist_that_records_an_ann():
    net = small_conv_net()
    bare = ev.evaluate(net, _split(6), 4, sweep=[2], progress=False)
    assert bare["ann_macs_per_sample"] is None
    for model in ("papers45nm", "deployed45nm", "loihi1"):
        assert not any(k.startswith("ann_") for k in bare["energy"][model])
        assert not any(k.startswith("ann_") for k in bare["per_timestep"]["2"]["energy"][model])
    assert bare["operating_point"] == {"tolerance": 0.01, "ann_accuracy": None, "timesteps": None,
                                       "reason": "no ANN accuracy to compare with"}
    assert set(bare["energy_sources"]) == {"papers45nm", "deployed45nm", "loihi1", "loihi2"}
    net.meta["ann_macs"] = 1000
    ann = ev.evaluate(net, _split(6), 4, sweep=[2], progress=False)
    assert ann["ann_macs_per_sample"] == 1000
    papers = ann["energy"]["papers45nm"]
    assert papers["ann_fp32_j"] == pytest.approx(1000 * 4.6e-12)
    assert papers["ann_quantised_j"] == pytest.approx(1000 * 0.3e-12) and papers["ann_quantised_bits"] == 3
    assert papers["snn_j"] == bare["energy"]["papers45nm"]["snn_j"] == pytest.approx(ann["synops_per_sample"] * 0.9e-12)
    assert papers["snn_over_ann_fp32"] == pytest.approx(papers["snn_j"] / papers["ann_fp32_j"])
    assert "ann_fp32_j" not in ann["energy"]["loihi1"]           # no ANN runs on Loihi 1


def test_operating_point_is_the_smallest_T_within_one_point():
    assert ev.operating_point({4: 0.5, 8: 0.895, 16: 0.92, 32: 0.93}, 0.905) == 8
    assert ev.operating_point({4: 0.5, 8: 0.8}, 0.905) is None
    assert ev.operating_point({4: 0.5}, None) is None
    net = small_conv_net()
    net.meta["ann_macs"] = 1000
    full = ev.evaluate(net, _split(10), 16, ann_accuracy=0.0, sweep=[2, 4, 8], progress=False)
    assert full["operating_point"]["timesteps"] == 2 and full["timesteps"] == 16     # reported at steps
    op = ev.evaluate(net, _split(10), 16, ann_accuracy=0.0, sweep=[2, 4, 8], progress=False, at_operating_point=True)
    assert op["timesteps"] == 2 and op["run_timesteps"] == 16 and op["per_timestep"] == full["per_timestep"]
    assert op["energy"] == full["per_timestep"]["2"]["energy"] and op["neurobench"]["timesteps"] == 2
    assert [r["timesteps"] for r in op["accuracy_energy"]] == [2, 4, 8, 16]
    assert op["operating_point"]["papers45nm"]["snn_j"] == full["per_timestep"]["2"]["energy"]["papers45nm"]["snn_j"]


def test_neuron_model_names_kinds_resets_and_origin():
    net = small_conv_net()
    assert ev.describe_neurons(net) == "RMP soft reset"
    cuba = small_conv_net(neuron=CUBA)
    cuba.meta["netx_simulation"] = {"Ts": 1}
    assert ev.describe_neurons(cuba) == "CUBA hard reset (lava-dl)"
    leaky = Netlist([dense((4,), np.ones((4, 3)), RMP(5, vDecay=300, reset="hard")),
                     dense((2,), np.ones((2, 4)), RMP(1 << 16))], input_shape=(3,),
                    meta={"trained_by": "neurosim.bntt"})
    assert ev.describe_neurons(leaky) == "LIF hard reset (BNTT)"         # the readout's kind is not named
    mixed = small_conv_net()
    mixed.layers[2] = Population(mixed.layers[2].shape, RMP(5, reset="hard"), mixed.layers[2].projections)
    assert ev.describe_neurons(mixed) == "RMP soft reset + RMP hard reset"
    assert ev.evaluate(net, _split(4), 2, progress=False)["neuron_model"] == "RMP soft reset"


def _figure(monkeypatch, report, tmp_path):
    figs = []
    monkeypatch.setattr(ev, "write_png", lambda path, fig: figs.append(fig))
    json_path, _ = ev.write_report(report, tmp_path)
    assert json.loads(json_path.read_text())["per_timestep"] == json.loads(json.dumps(report["per_timestep"]))
    return figs[0]


def _texts(fig) -> list[str]:
    out = [t.get_text() for t in fig.texts] + ([fig._suptitle.get_text()] if fig._suptitle else [])
    for ax in fig.axes:
        out.append(ax.get_title())
        legend = ax.get_legend()
        out += [t.get_text() for t in legend.get_texts()] if legend else []
    return out


def test_plot_shows_accuracy_against_energy_and_honest_labels(monkeypatch, tmp_path):
    net = small_conv_net()
    net.meta["ann_macs"] = 1000
    report = ev.evaluate(net, _split(10), 16, ann_accuracy=0.0, sweep=[4, 8, 32], progress=False)
    fig = _figure(monkeypatch, report, tmp_path)
    texts = _texts(fig)
    joined = "\n".join(texts)
    assert len(fig.axes) == 6
    assert "SNN: RMP soft reset" in texts and "T = 16 (reported)" in texts and "ANN" in texts
    assert "ANN fp32" in texts and "ANN 8-bit w, 3-bit act (T = 4)" in texts
    assert "reference simulator" not in joined and "default T" not in joined
    assert "10 samples" in joined and "fixed mode" in joined
    acc, papers, deployed, loihi, layers, spikes = fig.axes
    assert papers.get_title() == ev.LABELS["papers45nm"] and loihi.get_title() == ev.LABELS["loihi1"]
    assert "ANN fp32" not in [t.get_text() for t in loihi.get_legend().get_texts()]
    assert spikes.get_yscale() in ("log", "symlog") and papers.get_xscale() == "log"
    # accuracy against energy at every T of the sweep, as in the report
    ts = [4, 8, 16, 32]
    for ax, model in ((papers, "papers45nm"), (deployed, "deployed45nm"), (loihi, "loihi1")):
        assert list(ax.lines[0].get_xdata()) == [report["per_timestep"][str(t)]["energy"][model]["snn_j"] for t in ts]
        assert list(ax.lines[0].get_ydata()) == [100 * report["accuracy_vs_timesteps"][str(t)] for t in ts]
    assert [t.get_text() for t in layers.get_xticklabels()] == list(report["energy"]["papers45nm"]["snn_per_layer"])
    assert not any(t.startswith("Lava check") for t in texts)
    # legends sit where matplotlib finds the fewest data points ('best'), not over the curve by fiat
    assert all(ax.get_legend()._loc == 0 for ax in (acc, papers, deployed, loihi))


def test_plot_without_ann_and_with_lava(monkeypatch, tmp_path):
    net = small_conv_net(neuron=CUBA)
    net.meta["netx_simulation"] = {"Ts": 1}
    report = ev.evaluate(net, _split(6), 8, progress=False)
    report.update({"lava_samples": 2, "lava_spike_mismatches": {"fixed_pt": 0, "floating_pt": 3},
                   "lava_spikes_compared": {"fixed_pt": 120, "floating_pt": 120},
                   "lava_accuracy": {"fixed_pt": 0.5, "floating_pt": 0.5}})
    texts = _texts(_figure(monkeypatch, report, tmp_path))
    assert "SNN: CUBA hard reset (lava-dl)" in texts and not any("ANN" in t for t in texts)
    lava = [t for t in texts if t.startswith("Lava check")]
    assert lava == ["Lava check (2 samples, T = 8, every layer): fixed_pt: 0 spike mismatches of 120 spikes, "
                    "Lava accuracy 50.0 %\nfloating_pt: 3 spike mismatches of 120 spikes, Lava accuracy 50.0 %"]


def test_write_report_writes_both_files(tmp_path):
    report = ev.evaluate(small_conv_net(), _split(4), 4, progress=False)
    json_path, png_path = ev.write_report(report, tmp_path, stem="r")
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(json_path.read_text())["neuron_model"] == "RMP soft reset"
