"""Measure a netlist on a test split: accuracy over T, spikes, SynOps, energy, and Lava agreement.

The result is the report documented in ``docs/report.md``; :func:`write_report` saves it as
JSON with a PNG next to it (accuracy, SynOps and energy against T, spikes per layer, the Lava
check). One simulation of the longest T gives the metrics at every T of the sweep.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from neurosim.data.dataset import Split
from neurosim.errors import NeurosimError
from neurosim.io.atomic import write_json, write_png
from neurosim.metrics.energy import energy_per_sample
from neurosim.netlist.schema import MAX_TIMESTEPS, Netlist
from neurosim.sim.simulator import SimResult, Simulator

#: The time steps a report sweeps by default (those up to ``steps``, see :func:`default_sweep`).
DEFAULT_SWEEP = (4, 8, 16, 32, 64, 128, 256)

LAVA_TAGS = {"fixed": "fixed_pt", "float": "floating_pt"}
#: ``lava_samples`` naming the whole split.
LAVA_ALL = "all"
#: The Lava check keeps every layer's spikes of at most this many bytes of samples (one bool per
#: neuron and step), per mode: beyond, the later samples are checked by their readout only.
LAVA_SPIKE_BYTES = 1 << 30
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


def default_sweep(steps: int) -> list[int]:
    """The time steps swept when the caller names none: those of :data:`DEFAULT_SWEEP` up to
    ``steps``, and ``steps`` itself."""
    return sorted({t for t in DEFAULT_SWEEP if t <= steps} | {int(steps)})


def check_sweep(sweep: Sequence[int]) -> list[int]:
    """``sweep`` as sorted distinct ints, or a NeurosimError naming the argument."""
    try:
        values = list(sweep)
    except TypeError:
        raise NeurosimError(f"sweep must be a list of time steps, got {sweep!r:.80}") from None
    if not values:
        raise NeurosimError("sweep must name at least one time step T")
    out = set()
    for t in values:
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)):
            raise NeurosimError(f"sweep: time steps must be whole numbers, got {t!r:.40}")
        if not 1 <= int(t) <= MAX_TIMESTEPS:
            raise NeurosimError(f"sweep: time steps must lie in 1..{MAX_TIMESTEPS}, got {int(t)}")
        out.add(int(t))
    return sorted(out)


def papers_depth(net: Netlist) -> int:
    """``D``, the Lava steps before the readout integrates anything: the output layer's depth
    (every projection delays by one step). A run of ``T + D`` Lava steps lets every layer of
    the readout's path integrate ``T`` steps of its input, as a time-synchronous simulation of
    ``T`` steps does (the T of the papers and of SpikingJelly)."""
    return int(net.depths()[net.output_layer])


def describe_neurons(net: Netlist) -> str:
    """The SNN's neurons in a few words, for labels: the neuron kinds and resets of its hidden
    layers (the output layer alone for a one-layer net), e.g. ``RMP soft reset``, ``LIF soft
    reset (BNTT)``, ``CUBA hard reset (lava-dl)``. ``RMP`` with a leak is named ``LIF``."""
    hidden = [i for i in net.neuron_layers if i != net.output_layer] or [net.output_layer]
    kinds: list[str] = []
    for i in hidden:
        n = net.layers[i].neuron
        name = "LIF" if n.type_name == "RMP" and int(n.vDecay) > 0 else n.type_name
        kind = f"{name} {n.reset} reset"
        if kind not in kinds:
            kinds.append(kind)
    origin = ("BNTT" if net.meta.get("trained_by") == "neurosim.bntt" else
              "lava-dl" if "netx_simulation" in net.meta else None)
    return " + ".join(kinds) + (f" ({origin})" if origin else "")


def _ann_macs(net: Netlist) -> Optional[int]:
    """The ANN's MACs when the netlist records an ANN (metadata ``ann_macs``: the converter and
    the BNTT export write it), else None (e.g. a lava-dl netlist: there is no ANN to compare)."""
    macs = net.meta.get("ann_macs")
    return None if macs is None else int(macs)


def _energy(synops: float, macs: Optional[int], spikes: float, neuron_steps: int, sources: bool) -> dict:
    """:func:`energy_per_sample`, without the ANN's entries when there is no ANN."""
    e = energy_per_sample(synops, 0 if macs is None else macs, spikes, neuron_steps)
    if macs is None:
        for key in ("ann_j", "ann_over_snn"):
            del e["cmos45nm"][key]
    if not sources:
        del e["sources"]
    return e


def _metrics_at(net: Netlist, res: SimResult, T: int, k: int, macs: Optional[int], neurons: int,
                sources: bool = False) -> dict:
    """Spikes, SynOps and energy per sample (means over the batch) of the first ``T`` steps,
    from column ``k`` of the run's traces (``res.readout_steps[k] == T``)."""
    names = layer_names(net)
    spikes_layer = {names[i]: float(res.layer_spikes_trace[i][:, k].mean()) for i in net.neuron_layers}
    synops_layer = {**({} if net.has_input_layer else {"input": float(res.input_synops_trace[:, k].mean())}),
                    **{names[i]: float(res.synops_trace[i][:, k].mean()) for i in net.neuron_layers}}
    spikes = float(sum(spikes_layer.values()))
    synops = float(res.synops_per_sample_trace[:, k].mean())
    return {"spikes_per_sample": spikes, "spikes_per_sample_per_layer": spikes_layer,
            "synops_per_sample": synops, "synops_per_sample_per_layer": synops_layer,
            "input_spikes_per_sample": None if net.has_input_layer else float(res.input_spikes_trace[:, k].mean()),
            "neuron_updates_per_sample": neurons * T,
            "energy": _energy(synops, macs, spikes, neurons * T, sources)}


def evaluate(net: Netlist, test: Split, steps: int, *, ann_accuracy: Optional[float] = None,
             sweep: Optional[Sequence[int]] = None,
             lava_samples: Union[int, str] = 0, lava_modes: Sequence[str] = ("fixed", "float"),
             lava_timeout: Optional[float] = None, mode: str = "fixed",
             progress: bool = True, lava_workers: int = 1) -> dict:
    """Run ``net`` on ``test`` (reference simulator, whole split; Lava on the first
    ``lava_samples`` samples, or on the whole split with :data:`LAVA_ALL`, see :func:`lava_check`).

    One run of ``max(sweep + [steps])`` steps gives everything: the accuracy, spikes, SynOps
    and energy had the run stopped after each T of ``sweep`` and after ``steps`` (a shorter run
    is a prefix of a longer one), read after those steps. ``sweep=None``: :func:`default_sweep`.
    The report's top-level metrics are those at ``steps``; ``per_timestep`` has them per T.
    """
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or not 1 <= steps <= MAX_TIMESTEPS:
        raise NeurosimError(f"steps must be a whole number in 1..{MAX_TIMESTEPS}, got {steps!r:.40}")
    steps = int(steps)
    swept = default_sweep(steps) if sweep is None else check_sweep(sweep)
    wanted = sorted(set(swept) | {steps})
    longest = wanted[-1]
    x = test.x
    if not net.has_input_layer:                     # a spike raster: the first `longest` steps of it
        if x.ndim < 2 or x.shape[1] < longest:
            have = x.shape[1] if x.ndim >= 2 else 0
            raise NeurosimError(f"sweep and steps reach T = {longest}, but the spike input has {have} steps")
        x = x[:, :longest]

    t0 = time.time()
    sim = Simulator(net, mode)
    run = sim.run(x, longest, readout_steps=wanted, per_neuron=False, progress=progress)
    t_sim = time.time() - t0

    accuracy = run.accuracy_at(test.y)
    depth = papers_depth(net)
    macs = _ann_macs(net)
    neurons = int(sum(np.prod(net.layers[i].shape) for i in net.neuron_layers))
    col = {T: k for k, T in enumerate(run.readout_steps)}
    per_t = {str(T): {"accuracy": accuracy[T], **_metrics_at(net, run, T, col[T], macs, neurons)}
             for T in wanted}
    at_steps = _metrics_at(net, run, steps, col[steps], macs, neurons, sources=True)
    names = layer_names(net)

    report = {
        "ann_accuracy": ann_accuracy,
        "snn_accuracy": accuracy[steps],
        "timesteps": steps,
        "sweep": swept,
        "mode": mode,
        "test_samples": len(test),
        "dataset": test.name,
        "neuron_model": describe_neurons(net),
        "depth": depth,
        "accuracy_vs_papers_t": {str(T - depth): accuracy[T] for T in wanted if T > depth},
        "accuracy_vs_timesteps": {str(T): accuracy[T] for T in wanted},
        "spikes_per_sample": at_steps["spikes_per_sample"],
        "spikes_per_sample_per_layer": at_steps["spikes_per_sample_per_layer"],
        "spikes_per_step": {names[i]: (run.step_counts[i][:steps] / len(test)).tolist() for i in net.neuron_layers},
        "synops_per_sample": at_steps["synops_per_sample"],
        "synops_per_sample_per_layer": at_steps["synops_per_sample_per_layer"],
        "input_spikes_per_sample": at_steps["input_spikes_per_sample"],
        "ann_macs_per_sample": macs,
        "neurons": neurons,
        "neuron_updates_per_sample": neurons * steps,
        "energy": at_steps["energy"],
        "per_timestep": per_t,
        "seconds": {"reference_simulator": t_sim},
        "lava_samples": 0,
        "lava_spike_mismatches": {},
        "lava_spikes_compared": {},
    }
    n_lava = len(test) if lava_samples == LAVA_ALL else min(int(lava_samples), len(test))
    if n_lava > 0:
        first = Split(test.name, test.x[:n_lava] if net.has_input_layer else test.x[:n_lava, :steps], test.y[:n_lava])
        report.update(lava_check(net, first, steps, lava_modes, lava_timeout, lava_workers, progress))
    return report


def lava_check(net: Netlist, test: Split, steps: int, modes: Sequence[str] = ("fixed", "float"),
               timeout: Optional[float] = None, workers: int = 1, progress: bool = True) -> dict:
    """Every sample of ``test`` on Lava's CPU simulator in each of ``modes`` (all modes at once,
    ``workers`` batched worker processes per mode, :func:`neurosim.lava.runner.run_lava_modes`)
    against the reference simulator: Lava's accuracy beside the simulator's on the same samples
    and the samples whose prediction differs; every layer's spikes and final voltages compared
    on the first ``lava_spike_samples`` samples (all that fit :data:`LAVA_SPIKE_BYTES`); Lava's
    samples per second of wall time (the modes run side by side)."""
    from neurosim.lava.runner import run_lava_modes

    x, n = test.x, len(test)
    per_sample = steps * sum(int(np.prod(net.layers[i].shape)) for i in net.neuron_layers)
    keep = min(n, max(1, LAVA_SPIKE_BYTES // per_sample))
    t0 = time.time()
    runs = run_lava_modes(net, x, steps, modes, timeout=timeout, workers=workers, spike_samples=keep,
                          progress=progress)
    wall = time.time() - t0
    out = {"lava_samples": n, "lava_spike_samples": keep, "lava_spike_mismatches": {}, "lava_spikes_compared": {},
           "lava_voltage_mismatches": {}, "lava_mismatches_per_layer": {}, "lava_seconds": {},
           "lava_samples_per_s": {}, "lava_accuracy": {}, "lava_simulator_accuracy": {},
           "lava_prediction_mismatches": {}, "lava_batch": next(iter(runs.values())).batch,
           "lava_workers": int(workers), "lava_float_note": FLOAT_MISMATCH_NOTE}
    for mode, lava in runs.items():
        tag = LAVA_TAGS[mode]
        sim = Simulator(net, mode)
        ref = sim.run(x[:keep], steps, record_spikes=True)
        predictions = ref.predictions if keep == n else sim.run(x, steps).predictions
        cmp = compare_spikes(net, ref, lava)
        out["lava_spike_mismatches"][tag] = cmp["mismatches"]
        out["lava_spikes_compared"][tag] = cmp["reference_spikes"]
        out["lava_voltage_mismatches"][tag] = cmp["voltage_mismatches"]
        out["lava_mismatches_per_layer"][tag] = cmp["per_layer"]
        out["lava_seconds"][tag] = wall
        out["lava_samples_per_s"][tag] = n / wall
        out["lava_accuracy"][tag] = float(np.mean(lava.predictions == test.y))
        out["lava_simulator_accuracy"][tag] = float(np.mean(predictions == test.y))
        out["lava_prediction_mismatches"][tag] = int(np.count_nonzero(lava.predictions != predictions))
    return out


def _log2_x(ax, ts: list[int]) -> None:
    """A base-2 logarithmic T axis when the swept T span a factor of 8 or more."""
    if ts and min(ts) > 0 and max(ts) >= 8 * min(ts):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ts, [str(t) for t in ts])
        ax.minorticks_off()


def _lava_text(report: dict) -> Optional[str]:
    """One line per Lava tag for the plot: spike mismatches, accuracy and samples/s, or None when
    Lava was not run."""
    n = report.get("lava_samples") or 0
    if n <= 0 or not report.get("lava_spike_mismatches"):
        return None
    parts = []
    for tag, mism in report["lava_spike_mismatches"].items():
        acc = report.get("lava_accuracy", {}).get(tag)
        rate = report.get("lava_samples_per_s", {}).get(tag)
        parts.append(f"{tag}: {mism} spike mismatches of {report['lava_spikes_compared'].get(tag, 0)} spikes"
                     + ("" if acc is None else f", Lava accuracy {100 * acc:.1f} %")
                     + ("" if rate is None else f", {rate:.1f} samples/s"))
    keep = report.get("lava_spike_samples", n)
    spikes = "every layer" if keep == n else f"every layer of the first {keep}"
    return f"Lava check ({n} samples, T = {report['timesteps']}, {spikes}): " + "\n".join(parts)


def write_report(report: dict, out_dir: Path, stem: str = "report") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.png`` into ``out_dir`` atomically; return both paths.

    The plot: accuracy, SynOps per sample and energy per sample against T (the SNN at each
    swept T; the ANN as a line when the report has one), spikes per layer at the reported T
    (log scale), and the Lava check's result when Lava ran.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    json_path, png_path = out_dir / f"{stem}.json", out_dir / f"{stem}.png"
    write_json(json_path, report)

    T, n, mode = report["timesteps"], report["test_samples"], report["mode"]
    snn = f"SNN: {report.get('neuron_model') or 'reference simulator'}"
    curve = report["accuracy_vs_timesteps"]
    ts = sorted(int(t) for t in curve)
    per_t = report.get("per_timestep") or {str(T): {"synops_per_sample": report["synops_per_sample"],
                                                    "energy": report["energy"]}}
    ets = sorted(int(t) for t in per_t)
    macs = report.get("ann_macs_per_sample")
    ann_e = report["energy"]["cmos45nm"].get("ann_j")
    lava = _lava_text(report)

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (ax_acc, ax_ops), (ax_e, ax_spk) = axes
    fig.suptitle(f"{report['dataset']}: {n} test samples, {mode} mode; {snn}", fontsize=11)

    ax_acc.plot(ts, [100 * curve[str(t)] for t in ts], "o-", label=snn)
    if report.get("ann_accuracy") is not None:
        ax_acc.axhline(100 * report["ann_accuracy"], color="k", ls="--", label="ANN")
    ax_acc.axvline(T, color="gray", ls=":", label=f"T = {T} (reported)")
    ax_acc.set(xlabel="time steps T", ylabel="test accuracy (%)",
               title=f"Accuracy vs T ({n} samples, {mode} mode)")

    ax_ops.plot(ets, [per_t[str(t)]["synops_per_sample"] for t in ets], "o-", label=snn)
    if macs is not None:
        ax_ops.axhline(macs, color="k", ls="--", label="ANN MACs")
    ax_ops.axvline(T, color="gray", ls=":", label=f"T = {T} (reported)")
    ax_ops.set(xlabel="time steps T", ylabel="per sample", title="SynOps per sample vs T")

    ax_e.plot(ets, [per_t[str(t)]["energy"]["cmos45nm"]["snn_j"] for t in ets], "o-", label="SNN, 45 nm CMOS")
    ax_e.plot(ets, [per_t[str(t)]["energy"]["loihi"]["snn_j"] for t in ets], "s-", label="SNN, Loihi 1")
    if ann_e is not None:
        ax_e.axhline(ann_e, color="k", ls="--", label="ANN, 45 nm CMOS")
    ax_e.axvline(T, color="gray", ls=":", label=f"T = {T} (reported)")
    ax_e.set_yscale("log")
    ax_e.set(xlabel="time steps T", ylabel="joules per sample", title="Energy per sample vs T")

    for ax, xs in ((ax_acc, ts), (ax_ops, ets), (ax_e, ets)):
        _log2_x(ax, xs)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8, framealpha=0.8)

    layers = report["spikes_per_sample_per_layer"]
    values = list(layers.values())
    ax_spk.bar(range(len(layers)), values)
    ax_spk.set_yscale("symlog", linthresh=1)        # the output layer's few spikes stay visible; 0 too
    ax_spk.set_ylim(0, max(10.0, 3 * max(values, default=1)))
    for k, v in enumerate(values):
        ax_spk.annotate(f"{v:.3g}", (k, v), ha="center", va="bottom", fontsize=7)
    ax_spk.set_xticks(range(len(layers)), list(layers.keys()), rotation=30, ha="right")
    ax_spk.set(ylabel="spikes per sample (log)", title=f"Spikes per layer (T = {T}, {n} samples)")
    ax_spk.grid(alpha=0.3, axis="y")

    if lava:
        fig.text(0.5, 0.01, lava, ha="center", va="bottom", fontsize=9)
    fig.tight_layout(rect=(0, 0.06 if lava else 0, 1, 0.96))
    write_png(png_path, fig)
    return json_path, png_path
