"""The report of ``export``, ``convert``, ``run`` (:func:`neurosim.evaluate.evaluate`'s) and of
``train-bntt`` (with its ``bntt`` section) as the lines the commands print."""
from __future__ import annotations

from typing import Optional


def report_summary(report: dict, steps_label: Optional[str] = None) -> str:
    """The report's figures as printed lines; ``steps_label`` says what T counts (default ``T=..``)."""
    lines = []
    n = report["test_samples"]
    if report.get("ann_accuracy") is not None:
        ann_n = report.get("ann_test_samples")
        where = f"  (recorded at conversion on {ann_n} test samples)" if ann_n not in (None, n) else ""
        lines.append(f"ANN accuracy            {100 * report['ann_accuracy']:.2f} %{where}")
    label = steps_label or f"T={report['timesteps']}"
    lines.append(f"SNN accuracy ({label})".ljust(24) + f"{100 * report['snn_accuracy']:.2f} %  "
                 f"({n} test samples, {report['mode']} mode)")
    curve = report["accuracy_vs_timesteps"]
    lines.append("accuracy vs T           " + "  ".join(f"{t}:{100 * a:.1f}" for t, a in
                                                       sorted(curve.items(), key=lambda kv: int(kv[0]))))
    papers = report.get("accuracy_vs_papers_t") or {}
    if papers:
        lines.append(f"  papers' T (= T - {report['depth']}) " + "  ".join(
            f"{t}:{100 * a:.1f}" for t, a in sorted(papers.items(), key=lambda kv: int(kv[0])))
            + f"   (each layer integrates T steps; Lava latency T + {report['depth']})")
    lines += lava_lines(report)
    lines.append("spikes per sample       " + ", ".join(f"{k}={v:.0f}" for k, v in
                                                         report["spikes_per_sample_per_layer"].items()))
    macs = report.get("ann_macs_per_sample")
    lines.append(f"SynOps per sample       {report['synops_per_sample']:.4g}"
                 + (f"   (ANN MACs {macs:.4g})" if macs else ""))
    lines += energy_lines(report)
    return "\n".join(lines)


def bntt_summary(report: dict, steps: int) -> str:
    """A ``train-bntt`` report as printed lines: :func:`report_summary` with T counted as the
    ``steps`` of input spikes plus the net's latency, then the BNTT section (the SLAYER model's
    and the netlists' accuracy, the early exit by the learnt gammas, the calibrated exit)."""
    b = report["bntt"]
    latency = b["latency_steps"]
    lines = [report_summary(report, f"T={steps}+{latency}"),
             f"                        T={steps}+{latency}: {steps} steps of input spikes, then {latency} "
             "steps while the last ones cross the layers (one step per layer in Lava)",
             f"BNTT                    SLAYER model {100 * b['model_accuracy']:.2f} %, float netlist "
             f"{100 * b['float_netlist_accuracy']:.2f} %, fixed netlist {100 * b['fixed_netlist_accuracy']:.2f} % "
             f"(latency {b['latency_steps']} steps)"]
    if "early_exit_default" in b:
        ee = b["early_exit_default"]
        lines.append(f"early exit (alpha {ee['alpha']})  step {ee['exit_step']} of {steps}")
    ce = b["calibrated_exit"]
    lines.append(f"calibrated exit         step {ce['exit_step']} of {steps}: {100 * ce['accuracy']:.2f} % against "
                 f"{100 * ce['full_accuracy']:.2f} % (chosen on {ce['calibration_samples']} training samples, "
                 f"tolerance {100 * ce['tolerance']:.1f} point)")
    return "\n".join(lines)


def lava_lines(report: dict) -> list[str]:
    """The Lava check of ``report`` as printed lines, one per Lava tag: accuracy beside the
    simulator's on the same samples, the spike and voltage check, samples per second; then, when
    the run was read at several T, Lava's accuracy at each."""
    lines = []
    for tag, mism in report.get("lava_spike_mismatches", {}).items():
        n, keep = report["lava_samples"], report.get("lava_spike_samples", report["lava_samples"])
        line = f"Lava {tag:<11s}        "
        if tag in report.get("lava_simulator_accuracy", {}):
            line += (f"accuracy {100 * report['lava_accuracy'][tag]:.2f} % (simulator "
                     f"{100 * report['lava_simulator_accuracy'][tag]:.2f} %, "
                     f"{report['lava_prediction_mismatches'][tag]} predictions differ) on {n} samples; ")
        line += (f"{mism} spike and {report['lava_voltage_mismatches'][tag]} voltage mismatches of "
                 f"{report['lava_spikes_compared'][tag]} spikes on {keep} samples, every layer")
        if tag in report.get("lava_samples_per_s", {}):
            line += f"; {report['lava_samples_per_s'][tag]:.1f} samples/s"
        lines.append(line)
        at = report.get("lava_at_timesteps", {})
        if len(at) > 1:             # the same run read at every swept T
            lines.append(f"  read at T = {', '.join(at)}: Lava " + " / ".join(
                f"{100 * at[t][tag]['accuracy']:.2f}" for t in at) + " %, "
                f"{sum(at[t][tag]['prediction_mismatches'] for t in at)} predictions differ from the simulator's")
    return lines


def _ratio(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.2f}"


def energy_lines(report: dict) -> list[str]:
    """The accuracy-energy table (per T: accuracy, per energy model the SNN's joules and its
    ratio to the fp32 and the quantised ANN) and the operating point, as printed lines."""
    models = list(report["energy"])
    lines = ["accuracy and energy per inference (J; SNN/ANN fp32, SNN/ANN quantised):",
             "  T     acc %  " + "".join(f"{m:<34s}" for m in models)]
    for r in report["accuracy_energy"]:
        cells = []
        for m in models:
            e = r[m]
            cells.append(f"{e['snn_j']:.3g}" + (f" ({_ratio(e.get('snn_over_ann_fp32'))}, "
                                                 f"{_ratio(e.get('snn_over_ann_quantised'))})"
                                                 if "ann_fp32_j" in e else ""))
        lines.append(f"  {r['timesteps']:<5d} {100 * r['accuracy']:6.2f}  " + "".join(f"{c:<34s}" for c in cells))
    op = report.get("operating_point") or {}
    if op.get("timesteps") is None:
        if op.get("reason"):
            lines.append(f"operating point         none: {op['reason']}")
        return lines
    lines.append(f"operating point         T = {op['timesteps']}: {100 * op['accuracy']:.2f} % "
                 f"(ANN {100 * op['ann_accuracy']:.2f} %, within {100 * op['tolerance']:.0f} point)")
    for m in models:
        e = op[m]
        line = f"  {m:<21s} SNN {e['snn_j']:.3g} J"
        if "ann_fp32_j" in e:
            line += (f", ANN fp32 {e['ann_fp32_j']:.3g} J (SNN/ANN {_ratio(e['snn_over_ann_fp32'])}), "
                     f"ANN {e['ann_quantised_bits']}-bit {e['ann_quantised_j']:.3g} J "
                     f"(SNN/ANN {_ratio(e['snn_over_ann_quantised'])})")
        lines.append(line)
    return lines
