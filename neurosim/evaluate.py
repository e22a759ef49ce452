"""Measure a netlist on a test split: accuracy over T, spikes, SynOps, energy, and Lava agreement.

The result is the report documented in ``docs/report.md``; :func:`write_report` saves it as
JSON with a PNG (accuracy vs T, spikes per layer) next to it.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from neurosim.data.dataset import Split
from neurosim.io.atomic import write_json, write_png
from neurosim.metrics.energy import energy_per_sample
from neurosim.metrics.synops import ann_macs
from neurosim.netlist.schema import Netlist
from neurosim.sim.simulator import SimResult, Simulator

LAVA_TAGS = {"fixed": "fixed_pt", "float": "floating_pt"}
FLOAT_MISMATCH_NOTE = (
    "floating_pt: Lava's float ProcessModels (numpy float64, scipy convolution) and the simulator "
    "(torch float64) add the same numbers in different orders; a sum that lands within rounding "
    "error of a threshold can fire in one and not the other. With integer mantissas below 2**53 "
    "every sum is exact, so the count is 0 unless weights or inputs are non-integer."
)


def layer_names(net: Netlist) -> list[str]:
    return [f"{i}:{l.type_name}" for i, l in enumerate(net.layers)]


def compare_spikes(net: Netlist, ref: SimResult, lava) -> dict:
    """Entry-wise disagreement of spike trains (every layer) and final voltages."""
    per_layer, compared, v_mismatch = {}, 0, 0
    for i in net.neuron_layers:
        a, b = ref.spikes[i], lava.spikes[i]
        per_layer[layer_names(net)[i]] = int(np.count_nonzero(a != b))
        compared += int(a.sum())
        v_mismatch += int(np.count_nonzero(ref.v[i] != lava.v[i]))
    return {"mismatches": sum(per_layer.values()), "per_layer": per_layer,
            "reference_spikes": compared, "voltage_mismatches": v_mismatch}


def evaluate(net: Netlist, test: Split, steps: int, *, ann_accuracy: Optional[float] = None,
             curve_steps: Sequence[int] = (8, 16, 24, 32, 48, 64, 96, 128),
             lava_samples: int = 0, lava_modes: Sequence[str] = ("fixed", "float"),
             lava_timeout: Optional[float] = None, mode: str = "fixed",
             progress: bool = True) -> dict:
    """Run ``net`` on ``test`` (reference simulator, whole split; Lava on the first samples).

    Accuracy vs T comes from one run of the longest T, read after each T of the curve.
    """
    t0 = time.time()
    sim = Simulator(net, mode)
    longest = max(max(curve_steps, default=steps), steps)
    wanted = sorted(set(curve_steps) | {steps})
    full = sim.run(test.x, longest, readout_steps=wanted, per_neuron=False, progress=progress)
    curve = {str(T): acc for T, acc in full.accuracy_at(test.y).items()}
    main = full if longest == steps else sim.run(test.x, steps, per_neuron=False, progress=progress)
    t_sim = time.time() - t0

    names = layer_names(net)
    spikes_layer = {names[i]: float(main.layer_spikes[i].mean()) for i in net.neuron_layers}
    synops = float(main.synops_per_sample.mean())
    spikes = float(sum(spikes_layer.values()))
    neurons = int(sum(np.prod(net.layers[i].shape) for i in net.neuron_layers))
    macs = int(net.meta.get("ann_macs") or ann_macs(net))     # the converter records the ANN's own

    report = {
        "ann_accuracy": ann_accuracy,
        "snn_accuracy": curve[str(steps)],
        "timesteps": steps,
        "mode": mode,
        "test_samples": len(test),
        "dataset": test.name,
        "accuracy_vs_timesteps": curve,
        "spikes_per_sample": spikes,
        "spikes_per_sample_per_layer": spikes_layer,
        "spikes_per_step": {names[i]: (main.step_counts[i] / len(test)).tolist() for i in net.neuron_layers},
        "synops_per_sample": synops,
        "synops_per_sample_per_layer": {**({} if net.has_input_layer else {"input": float(main.input_synops.mean())}),
                                        **{names[i]: float(main.synops[i].mean()) for i in net.neuron_layers}},
        "input_spikes_per_sample": float(main.input_spikes.mean()) if not net.has_input_layer else None,
        "ann_macs_per_sample": macs,
        "neurons": neurons,
        "neuron_updates_per_sample": neurons * steps,
        "energy": energy_per_sample(synops, macs, spikes, neurons * steps),
        "seconds": {"reference_simulator": t_sim},
        "lava_samples": 0,
        "lava_spike_mismatches": {},
        "lava_spikes_compared": {},
    }
    if lava_samples > 0:
        report.update(_lava_check(net, test, steps, lava_samples, lava_modes, lava_timeout))
    return report


def _lava_check(net: Netlist, test: Split, steps: int, n: int, modes: Sequence[str],
                timeout: Optional[float]) -> dict:
    from neurosim.lava.runner import run_lava

    x = test.x[:n]
    out = {"lava_samples": len(x), "lava_spike_mismatches": {}, "lava_spikes_compared": {},
           "lava_voltage_mismatches": {}, "lava_mismatches_per_layer": {}, "lava_seconds": {},
           "lava_accuracy": {}, "lava_float_note": FLOAT_MISMATCH_NOTE}
    for mode in modes:
        tag = LAVA_TAGS[mode]
        ref = Simulator(net, mode).run(x, steps, record_spikes=True)
        t0 = time.time()
        lava = run_lava(net, x, steps, mode, timeout=timeout)
        out["lava_seconds"][tag] = time.time() - t0
        cmp = compare_spikes(net, ref, lava)
        out["lava_spike_mismatches"][tag] = cmp["mismatches"]
        out["lava_spikes_compared"][tag] = cmp["reference_spikes"]
        out["lava_voltage_mismatches"][tag] = cmp["voltage_mismatches"]
        out["lava_mismatches_per_layer"][tag] = cmp["per_layer"]
        out["lava_accuracy"][tag] = float(np.mean(lava.predictions == test.y[:n]))
    return out


def write_report(report: dict, out_dir: Path, stem: str = "report") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.png`` into ``out_dir`` atomically; return both paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    json_path, png_path = out_dir / f"{stem}.json", out_dir / f"{stem}.png"
    write_json(json_path, report)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    curve = report["accuracy_vs_timesteps"]
    ts = sorted(int(t) for t in curve)
    ax1.plot(ts, [100 * curve[str(t)] for t in ts], "o-", label="SNN (RMP, reference simulator)")
    if report.get("ann_accuracy") is not None:
        ax1.axhline(100 * report["ann_accuracy"], color="k", ls="--", label="ANN")
    ax1.axvline(report["timesteps"], color="gray", ls=":", label=f"default T = {report['timesteps']}")
    ax1.set(xlabel="time steps T", ylabel="test accuracy (%)", title=f"Accuracy vs T ({report['dataset']})")
    ax1.legend(loc="lower right")
    ax1.grid(alpha=0.3)
    layers = report["spikes_per_sample_per_layer"]
    ax2.bar(range(len(layers)), list(layers.values()))
    ax2.set_xticks(range(len(layers)), list(layers.keys()), rotation=30)
    ax2.set(ylabel="spikes per sample", title=f"Spikes per layer (T = {report['timesteps']})")
    ax2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    write_png(png_path, fig)
    return json_path, png_path
