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
from neurosim.dynamics import MODES
from neurosim.errors import NeurosimError
from neurosim.io.atomic import write_json, write_png
from neurosim.metrics.constants import STATE_BITS, WEIGHT_BITS
from neurosim.metrics.energy import LABELS, MODELS, SOURCES, energy
from neurosim.metrics.neurobench import neurobench_metrics
from neurosim.metrics.workload import (AnnLayer, SnnLayer, ann_layers_from_meta, host_macs, neurons_of, snn_memories,
                                       stored_weights, update_mults)
from neurosim.netlist.schema import MAX_TIMESTEPS, Netlist
from neurosim.sim.simulator import SimResult, Simulator

#: The time steps a report sweeps by default (those up to ``steps``, see :func:`default_sweep`).
DEFAULT_SWEEP = (4, 8, 16, 32, 64, 128, 256)

#: The operating point: the smallest T within this much accuracy (1 point) of the ANN's.
OPERATING_TOLERANCE = 0.01

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


def ann_workload(net: Netlist, neurons: int) -> Optional[tuple[list[AnnLayer], int]]:
    """The ANN's rows and stored weights: the metadata ``ann_layers`` (the main job, ``convert``
    and ``train-bntt`` record it), else one row of the metadata's ``ann_macs`` with the
    netlist's neurons as outputs and its weights (an older netlist), else None."""
    recorded = ann_layers_from_meta(net.meta)
    if recorded is not None:
        return recorded
    macs = _ann_macs(net)
    return None if macs is None else ([AnnLayer("all layers", float(macs), neurons)], stored_weights(net))


def metrics_at(net: Netlist, res: SimResult, T: int, k: int, ann, neurons: int) -> dict:
    """Spikes, SynOps and energy per sample (means over the batch) of the first ``T`` steps,
    from column ``k`` of the run's traces (``res.readout_steps[k] == T``)."""
    names = layer_names(net)
    spikes_layer = {names[i]: float(res.layer_spikes_trace[i][:, k].mean()) for i in net.neuron_layers}
    synops_layer = {**({} if net.has_input_layer else {"input": float(res.input_synops_trace[:, k].mean())}),
                    **{names[i]: float(res.synops_trace[i][:, k].mean()) for i in net.neuron_layers}}
    on_host = float(host_macs(net))                 # an analog input layer's (layer 0), else 0
    rows = [SnnLayer(names[i], synops_layer[names[i]], neurons_of(net, i) * T, update_mults(net.layers[i]),
                     spikes_layer[names[i]], on_host if i == 0 else 0.0) for i in net.neuron_layers]
    if not net.has_input_layer:
        rows.insert(0, SnnLayer("input", synops_layer["input"], 0.0, 0, 0.0))
    spikes = float(sum(spikes_layer.values()))
    synops = float(res.synops_per_sample_trace[:, k].mean())
    return {"spikes_per_sample": spikes, "spikes_per_sample_per_layer": spikes_layer,
            "synops_per_sample": synops, "synops_per_sample_per_layer": synops_layer,
            "input_spikes_per_sample": None if net.has_input_layer else float(res.input_spikes_trace[:, k].mean()),
            "neuron_updates_per_sample": neurons * T,
            "energy": energy(rows, snn_memories(net, WEIGHT_BITS, STATE_BITS), T, ann)}


def operating_point(accuracy: dict[int, float], ann_accuracy: Optional[float],
                    tolerance: float = OPERATING_TOLERANCE) -> Optional[int]:
    """The smallest T whose accuracy is within ``tolerance`` (1 point) of the ANN's, or None
    (no ANN accuracy, or no T close enough)."""
    if ann_accuracy is None:
        return None
    return next((T for T in sorted(accuracy) if accuracy[T] >= ann_accuracy - tolerance - 1e-12), None)


def accuracy_energy_table(per_t: dict) -> list[dict]:
    """One row per T: accuracy, and per energy model the SNN's joules and its ratio to the fp32
    and the quantised ANN (when there is an ANN)."""
    rows = []
    for T in sorted(per_t, key=int):
        row = {"timesteps": int(T), "accuracy": per_t[T]["accuracy"]}
        for model, e in per_t[T]["energy"].items():
            row[model] = {k: e[k] for k in ("snn_j", "ann_fp32_j", "ann_quantised_j", "ann_quantised_bits",
                                            "snn_over_ann_fp32", "snn_over_ann_quantised") if k in e}
        rows.append(row)
    return rows


def neuron_counts(net: Netlist, run: SimResult, x: np.ndarray, steps: int
                  ) -> tuple[list[Optional[np.ndarray]], Optional[np.ndarray]]:
    """Mean spikes per sample of every neuron in the first ``steps`` steps of ``run`` (a run of
    the samples ``x`` with ``steps`` among its ``readout_steps``), per layer (None for flatten),
    and of every input of a spike raster ``x`` (None with an input layer)."""
    k = run.readout_steps.index(steps)
    n = len(x)
    counts = [None if c is None else c[k] / n for c in run.neuron_counts_trace]
    inputs = None if net.has_input_layer else x[:, :steps].reshape(n, steps, -1).sum((0, 1)) / n
    return counts, inputs


def membrane_updates(run: SimResult, steps: int) -> float:
    """NeuroBench's membrane updates per sample in the first ``steps`` steps of ``run`` (a run
    with ``membrane_updates=True`` and ``steps`` among its ``readout_steps``), all layers."""
    k = run.readout_steps.index(steps)
    return sum(int(u[k]) for u in run.membrane_updates_trace if u is not None) / len(run.readout)


def evaluate(net: Netlist, test: Split, steps: int, *, ann_accuracy: Optional[float] = None,
             sweep: Optional[Sequence[int]] = None,
             lava_samples: Union[int, str] = 0, lava_modes: Sequence[str] = MODES,
             lava_timeout: Optional[float] = None, mode: str = "fixed",
             progress: bool = True, lava_workers: int = 1, at_operating_point: bool = False,
             device: str = "cpu") -> dict:
    """Run ``net`` on ``test`` (reference simulator, whole split; Lava on the first
    ``lava_samples`` samples, or on the whole split with :data:`LAVA_ALL`, see :func:`lava_check`).

    One run of ``max(sweep + [steps])`` steps gives everything: the accuracy, spikes, SynOps
    and energy had the run stopped after each T of ``sweep`` and after ``steps`` (a shorter run
    is a prefix of a longer one), read after those steps. ``sweep=None``: :func:`default_sweep`.
    The report's top-level metrics are those at ``steps``, or with ``at_operating_point`` at
    the :func:`operating_point` when there is one (the Lava check and NeuroBench's metrics
    too); ``per_timestep`` has them per T, ``accuracy_energy`` the table of accuracy and energy.
    The Lava run is read after every swept T up to the reported one as well
    (``lava_at_timesteps``, :func:`lava_check`). ``device``: where the simulator's float mode
    computes its synaptic maps (:class:`~neurosim.sim.simulator.Simulator`).
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
    sim = Simulator(net, mode, device=device)
    run = sim.run(x, longest, readout_steps=wanted, per_neuron=False, progress=progress, membrane_updates=True)
    t_sim = time.time() - t0

    accuracy = run.accuracy_at(test.y)
    depth = papers_depth(net)
    macs = _ann_macs(net)
    neurons = int(sum(np.prod(net.layers[i].shape) for i in net.neuron_layers))
    ann = ann_workload(net, neurons)
    col = {T: k for k, T in enumerate(run.readout_steps)}
    per_t = {str(T): {"accuracy": accuracy[T], **metrics_at(net, run, T, col[T], ann, neurons)}
             for T in wanted}
    t_op = operating_point(accuracy, ann_accuracy)
    reported = t_op if at_operating_point and t_op is not None else steps
    at = per_t[str(reported)]
    names = layer_names(net)
    counts, input_counts = neuron_counts(net, run, x, reported)

    report = {
        "ann_accuracy": ann_accuracy,
        "snn_accuracy": accuracy[reported],
        "timesteps": reported,
        "run_timesteps": steps,
        "sweep": swept,
        "mode": mode,
        "test_samples": len(test),
        "dataset": test.name,
        "neuron_model": describe_neurons(net),
        "depth": depth,
        "accuracy_vs_papers_t": {str(T - depth): accuracy[T] for T in wanted if T > depth},
        "accuracy_vs_timesteps": {str(T): accuracy[T] for T in wanted},
        "spikes_per_sample": at["spikes_per_sample"],
        "spikes_per_sample_per_layer": at["spikes_per_sample_per_layer"],
        "spikes_per_step": {names[i]: (run.step_counts[i][:reported] / len(test)).tolist() for i in net.neuron_layers},
        "synops_per_sample": at["synops_per_sample"],
        "synops_per_sample_per_layer": at["synops_per_sample_per_layer"],
        "input_spikes_per_sample": at["input_spikes_per_sample"],
        "ann_macs_per_sample": macs,
        "neurons": neurons,
        "neuron_updates_per_sample": neurons * reported,
        "energy": at["energy"],
        "energy_sources": SOURCES,
        "operating_point": _operating_point_entry(t_op, accuracy, ann_accuracy, per_t),
        "accuracy_energy": accuracy_energy_table(per_t),
        "neurobench": {**neurobench_metrics(net, counts, input_counts, reported, membrane_updates(run, reported)),
                       "samples": len(x)},
        "per_timestep": per_t,
        "seconds": {"reference_simulator": t_sim},
        "lava_samples": 0,
        "lava_spike_mismatches": {},
        "lava_spikes_compared": {},
    }
    n_lava = len(test) if lava_samples == LAVA_ALL else min(int(lava_samples), len(test))
    if n_lava > 0:
        first = Split(test.name, test.x[:n_lava] if net.has_input_layer else test.x[:n_lava, :reported],
                      test.y[:n_lava])
        report.update(lava_check(net, first, reported, lava_modes, lava_timeout, lava_workers, progress,
                                 readout_steps=[t for t in wanted if t <= reported]))
    return report


def _operating_point_entry(t_op: Optional[int], accuracy: dict[int, float], ann_accuracy: Optional[float],
                           per_t: dict) -> dict:
    """The report's ``operating_point``: its T, accuracy, and per energy model the SNN's and the
    ANNs' joules and ratios there; ``timesteps`` None with the reason when there is none."""
    entry = {"tolerance": OPERATING_TOLERANCE, "ann_accuracy": ann_accuracy, "timesteps": t_op}
    if ann_accuracy is None:
        return {**entry, "reason": "no ANN accuracy to compare with"}
    if t_op is None:
        best = max(accuracy, key=lambda T: (accuracy[T], -T))
        return {**entry, "reason": f"no swept T within {100 * OPERATING_TOLERANCE:.0f} point of the ANN "
                                   f"(best {100 * accuracy[best]:.2f} % at T = {best})"}
    row = next(r for r in accuracy_energy_table({str(t_op): per_t[str(t_op)]}))
    return {**entry, **row, "accuracy_loss": ann_accuracy - accuracy[t_op]}


def lava_check(net: Netlist, test: Split, steps: int, modes: Sequence[str] = MODES,
               timeout: Optional[float] = None, workers: int = 1, progress: bool = True,
               readout_steps: Sequence[int] = ()) -> dict:
    """Every sample of ``test`` on Lava's CPU simulator in each of ``modes`` (all modes at once,
    ``workers`` batched worker processes per mode, :func:`neurosim.lava.runner.run_lava_modes`)
    against the reference simulator: Lava's accuracy beside the simulator's on the same samples
    and the samples whose prediction differs; every layer's spikes and final voltages compared
    on the first ``lava_spike_samples`` samples (all that fit :data:`LAVA_SPIKE_BYTES`); Lava's
    samples per second of wall time (the modes run side by side).

    ``readout_steps`` (step counts up to ``steps``): the same Lava run read after each of them
    too (a shorter run is a prefix, so one compiled run answers every T): ``lava_at_timesteps``
    holds, per T and Lava tag, Lava's and the simulator's accuracy, the predictions that differ,
    and the spike mismatches of every layer in the first T steps."""
    from neurosim.lava.runner import run_lava_modes

    x, n = test.x, len(test)
    per_sample = steps * sum(int(np.prod(net.layers[i].shape)) for i in net.neuron_layers)
    keep = min(n, max(1, LAVA_SPIKE_BYTES // per_sample))
    read_at = sorted({int(t) for t in readout_steps} | {steps})
    t0 = time.time()
    runs = run_lava_modes(net, x, steps, modes, timeout=timeout, workers=workers, spike_samples=keep,
                          progress=progress, readout_steps=read_at)
    wall = time.time() - t0
    out = {"lava_samples": n, "lava_spike_samples": keep, "lava_spike_mismatches": {}, "lava_spikes_compared": {},
           "lava_voltage_mismatches": {}, "lava_mismatches_per_layer": {}, "lava_seconds": {},
           "lava_samples_per_s": {}, "lava_accuracy": {}, "lava_simulator_accuracy": {},
           "lava_prediction_mismatches": {}, "lava_batch": next(iter(runs.values())).batch,
           "lava_workers": int(workers), "lava_float_note": FLOAT_MISMATCH_NOTE,
           "lava_at_timesteps": {str(t): {} for t in read_at}}
    for mode, lava in runs.items():
        tag = LAVA_TAGS[mode]
        sim = Simulator(net, mode)
        ref = sim.run(x[:keep], steps, record_spikes=True, readout_steps=read_at)
        whole = ref if keep == n else sim.run(x, steps, readout_steps=read_at)
        predictions = whole.predictions
        sim_at, lava_at = whole.accuracy_at(test.y), lava.accuracy_at(test.y)
        differ_by_step = np.cumsum(sum(np.count_nonzero(ref.spikes[i] != lava.spikes[i], axis=(0, 2))
                                       for i in net.neuron_layers))     # spike mismatches in steps 1..t
        for k, t in enumerate(read_at):
            differ = np.argmax(whole.readout_trace[:, k], 1) != np.argmax(lava.readout_trace[:, k], 1)
            out["lava_at_timesteps"][str(t)][tag] = {
                "accuracy": lava_at[t], "simulator_accuracy": sim_at[t],
                "prediction_mismatches": int(np.count_nonzero(differ)),
                "spike_mismatches": int(differ_by_step[t - 1])}
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

    The plot: accuracy against T; accuracy against energy per inference in each energy model
    (the SNN at each swept T, the ANN in fp32 and quantised as reference lines, the operating
    point marked); each layer's energy at the reported T; spikes per layer (log scale); and the
    Lava check's result when Lava ran.
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
    lava = _lava_text(report)

    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    (ax_acc, *ax_models), (ax_loihi, ax_layers, ax_spk) = axes
    ax_models.append(ax_loihi)
    fig.suptitle(f"{report['dataset']}: {n} test samples, {mode} mode; {snn}", fontsize=11)

    ax_acc.plot(ts, [100 * curve[str(t)] for t in ts], "o-", label=snn)
    if report.get("ann_accuracy") is not None:
        ax_acc.axhline(100 * report["ann_accuracy"], color="k", ls="--", label="ANN")
    ax_acc.axvline(T, color="gray", ls=":", label=f"T = {T} (reported)")
    ax_acc.set(xlabel="time steps T", ylabel="test accuracy (%)",
               title=f"Accuracy vs T ({n} samples, {mode} mode)")
    _log2_x(ax_acc, ts)
    for ax, model in zip(ax_models, MODELS):
        _accuracy_energy_axes(ax, report, model, snn)
    for ax in (ax_acc, *ax_models):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7, framealpha=0.8)
    _layer_energy_axes(ax_layers, report)

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


def _accuracy_energy_axes(ax, report: dict, model: str, snn: str) -> None:
    """Accuracy against joules per inference in ``model``: the SNN at each T (labelled), the fp32
    and the quantised ANN (at the operating point's bits, else the reported T's) as vertical
    lines, the ANN's accuracy as a horizontal line, the operating point as a star."""
    rows = report["accuracy_energy"]
    xs = [r[model]["snn_j"] for r in rows]
    ax.plot(xs, [100 * r["accuracy"] for r in rows], "o-", label=snn)
    for r, x in zip(rows, xs):
        ax.annotate(f"T={r['timesteps']}", (x, 100 * r["accuracy"]), fontsize=6, xytext=(3, -8),
                    textcoords="offset points")
    op = report.get("operating_point") or {}
    ref = op if op.get("timesteps") is not None else next(r for r in rows if r["timesteps"] == report["timesteps"])
    e = ref[model]
    if report.get("ann_accuracy") is not None:
        ax.axhline(100 * report["ann_accuracy"], color="k", ls="--", lw=0.8, label="ANN accuracy")
    if "ann_fp32_j" in e:
        ax.axvline(e["ann_fp32_j"], color="k", ls="--", label="ANN fp32")
        ax.axvline(e["ann_quantised_j"], color="tab:red", ls=":",
                   label=f"ANN 8-bit w, {e['ann_quantised_bits']}-bit act (T = {ref['timesteps']})")
    if op.get("timesteps") is not None:
        ratio = e.get("snn_over_ann_fp32")
        ax.plot([e["snn_j"]], [100 * op["accuracy"]], "*", ms=14, color="tab:orange",
                label=f"T = {op['timesteps']}: within 1 point" + (f", SNN/ANN {ratio:.2f}" if ratio else ""))
    ax.set_xscale("log")
    ax.set(xlabel="joules per inference", ylabel="test accuracy (%)", title=LABELS[model])
    ax.title.set_fontsize(8)


def _layer_energy_axes(ax, report: dict) -> None:
    """Each layer's SNN energy at the reported T in every model, grouped bars on a log scale."""
    e = report["energy"]
    layers = list(e[MODELS[0]]["snn_per_layer"])
    width = 0.8 / len(MODELS)
    for k, model in enumerate(MODELS):
        vals = [e[model]["snn_per_layer"][name] for name in layers]
        ax.bar(np.arange(len(layers)) + (k - (len(MODELS) - 1) / 2) * width, vals, width, label=model)
    ax.set_yscale("log")
    ax.set_xticks(range(len(layers)), layers, rotation=30, ha="right")
    ax.set(ylabel="joules per inference (log)",
           title=f"SNN energy per layer (T = {report['timesteps']}): its spikes' events and its neuron updates")
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
