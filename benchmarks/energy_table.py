#!/usr/bin/env python
"""SNN/ANN energy at the operating point of stored benchmark results, every energy model (issue 21).

    .venv/bin/python benchmarks/energy_table.py --out benchmarks/results/energy-table.md   # the DEFAULT results
    .venv/bin/python benchmarks/energy_table.py benchmarks/results/conversion/mnist_cnn-2000/results.json ...

Reads the ``results.json`` of ``benchmarks/conversion.py`` (per model and setting: accuracy,
synaptic events and, since 2026-12-07, every energy model's joules at every T; the ANN's MACs
and accuracy on the same images) and of ``benchmarks/bntt.py`` (per trained T: the same, against
the same net run as an ANN), and tabulates, per net, the SNN's energy and its ratio to the fp32
and the quantised ANN (8-bit weights, ``ceil(log2(T+1))``-bit activations) in each model of
:mod:`neurosim.metrics.energy`: ``papers45nm`` (Horowitz 2014 operations only), ``deployed45nm``
(the deployed arithmetic with SRAM traffic) and ``loihi1`` (Davies et al. 2018; no ANN runs
there, so no ratio). The DEFAULT results are made by ``benchmarks/energy_nets.sh``.
Results made before the energy rows existed count events only: their ``papers45nm`` figures
are priced here from the events (the model's synaptic term is all there is), the other models
are ``–``.

For each conversion model the operating point is the smallest T whose accuracy is within 1
point of the ANN's on the same images, for the setting that reaches it with the least
``papers45nm`` energy there; a BNTT net has no ANN twin trained, so its row is at its trained T.
Writes the markdown table to ``--out`` (default: print only).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neurosim.evaluate import operating_point  # noqa: E402
from neurosim.io.atomic import write_text  # noqa: E402
from neurosim.metrics.energy import MODELS, energy  # noqa: E402
from neurosim.metrics.workload import AnnLayer, Memories, SnnLayer  # noqa: E402

#: The committed results the docs' table is made from (``benchmarks/energy_nets.sh``, and the
#: ResNet-20 twins' conversion grids of docs/conversion.md).
DEFAULT = ["benchmarks/results/energy-nets/mnist_cnn/results.json",
           "benchmarks/results/energy-nets/fashion_cnn/results.json",
           "benchmarks/results/energy-nets/cifar_vgg/results.json",
           "benchmarks/results/energy-nets/cifar_resnet20/results.json",
           "benchmarks/results/conversion-papers-resnet20-cutout/results.json",
           "benchmarks/results/conversion-papers-resnet20-qcfs4/results.json",
           "benchmarks/results/energy-nets/bntt-digits/results.json",
           "benchmarks/results/energy-nets/bntt-fashion/results.json",
           "benchmarks/results/energy-nets/bntt-nmnist/results.json",
           "benchmarks/results/energy-nets/bntt-cifar-vgg9/results.json"]


def from_events(synops: float, macs: float, steps: int) -> dict:
    """The ``papers45nm`` figures of a point stored before the energy rows (events and MACs only),
    in the layout of a stored ``energy`` entry."""
    snn = [SnnLayer("net", acs=synops, neuron_updates=0.0, update_mults=0, spikes=0.0)]
    return {"papers45nm": energy(snn, Memories(weights=0, state=0), steps,
                                 ann=([AnnLayer("net", macs=macs, outputs=0)], 0))["papers45nm"]}


def point(stored: Optional[dict], synops: float, macs: float, steps: int) -> dict:
    """The joules and ratios of one operating point, per energy model: its ``stored`` energy
    entry, or :func:`from_events` for a result stored before the energy models (no entry, or
    the older ``cmos45nm`` / ``loihi`` keys); models it lacks are left out."""
    energy_models = stored if stored and "papers45nm" in stored else from_events(synops, macs, steps)
    out = {}
    for model in MODELS:
        e = energy_models.get(model)
        if e:
            out[model] = {k: e[k] for k in ("snn_j", "snn_over_ann_fp32", "snn_over_ann_quantised",
                                            "ann_quantised_bits") if k in e}
    return out


def conversion_rows(r: dict) -> list[dict]:
    out = []
    papers = bool(r.get("papers_t"))
    for model, m in r["models"].items():
        ann = m["ann_accuracy"]
        name = f"{model} ({m['epochs']} epoch{'s' * (m['epochs'] != 1)})" if "epochs" in m else model
        best: Optional[dict] = None
        for row in m["rows"]:
            curve = {int(T): c for T, c in row["curve"].items() if "synops" in c}   # (peer rows count no events)
            T = operating_point({t: c["accuracy"] for t, c in curve.items()}, ann)
            if T is None:
                continue
            c = curve[T]
            cand = {"net": name, "images": m["test_images"], "ann": ann, "setting": row["label"], "T": T,
                    "t_kind": "papers' T" if papers else "Lava T", "acc": c["accuracy"],
                    "energy": point(c.get("energy"), c["synops"], m["ann_macs"], T)}
            if best is None or cand["energy"]["papers45nm"]["snn_j"] < best["energy"]["papers45nm"]["snn_j"]:
                best = cand
        if best is None:
            best = {"net": name, "images": m["test_images"], "ann": ann,
                    "setting": "none within 1 point", "T": None}
        out.append(best)
    return out


def bntt_rows(r: dict) -> list[dict]:
    out = []
    for run in r["runs"].values():
        if run.get("norm", "bntt") != "bntt":
            continue
        T = int(run["steps"])
        out.append({"net": f"BNTT {r.get('dataset')} {r.get('arch')} x{r.get('width', 1)}",
                    "images": r.get("test_limit"), "ann": None,
                    "setting": f"trained T = {T}", "T": T, "t_kind": "trained T",
                    "acc": run["bntt"]["fixed_netlist_accuracy"],
                    "energy": point(run.get("energy"), run["synops_per_sample"], run["ann_macs_per_sample"], T)})
    return out


def table(rows: list[dict]) -> str:
    """Per net: accuracy at the operating point and, per energy model, the SNN's µJ per inference
    and its ratio to the fp32 and to the quantised ANN (its activation bits); the last column
    names the models in which the SNN costs less than the quantised ANN."""
    lines = ["| net | test images | ANN % | setting | T at the operating point | SNN % | "
             "papers45nm µJ | / fp32 ANN | / quantised ANN (bits) | deployed45nm µJ | / fp32 ANN | / quantised ANN | "
             "loihi1 µJ | beats the quantised ANN in |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ann = "–" if r["ann"] is None else f"{100 * r['ann']:.2f}"
        if r["T"] is None:
            lines.append(f"| {r['net']} | {r['images']} | {ann} | {r['setting']} | – |" + " – |" * 9)
            continue
        e = r["energy"]
        cells = []
        for model in ("papers45nm", "deployed45nm"):
            m = e.get(model, {})
            cells += [f"{1e6 * m['snn_j']:.3g}" if "snn_j" in m else "–",
                      f"{m['snn_over_ann_fp32']:.2f}" if "snn_over_ann_fp32" in m else "–",
                      f"{m['snn_over_ann_quantised']:.1f}" if "snn_over_ann_quantised" in m else "–"]
        cells[2] += f" ({e['papers45nm']['ann_quantised_bits']})"
        cells.append(f"{1e6 * e['loihi1']['snn_j']:.3g}" if "loihi1" in e else "–")
        beats = [model for model, m in e.items() if m.get("snn_over_ann_quantised", 2.0) < 1.0]
        cells.append(", ".join(beats) or "none")
        lines.append(f"| {r['net']} | {r['images']} | {ann} | {r['setting']} | {r['T']} ({r['t_kind']}) | "
                     f"{100 * r['acc']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="*", type=Path, help="results.json files (default: the committed ones)")
    p.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    args = p.parse_args(argv)
    rows = []
    for path in args.results or [ROOT / f for f in DEFAULT]:
        path = path.resolve()
        if not path.exists():
            print(f"{path}: not found, skipped", file=sys.stderr)
            continue
        r = json.loads(path.read_text())
        rows += conversion_rows(r) if "models" in r else bntt_rows(r)
    text = table(rows)
    print(text)
    if args.out:
        write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
