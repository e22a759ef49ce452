#!/usr/bin/env python
"""SNN/ANN energy at the operating point of stored benchmark results, in the papers' convention (issue 21).

    .venv/bin/python benchmarks/energy_table.py                     # the committed results below
    .venv/bin/python benchmarks/energy_table.py benchmarks/results/conversion/mnist_cnn-2000/results.json ...

Reads the ``results.json`` of ``benchmarks/conversion.py`` (per model and setting: accuracy,
synaptic events and spikes per sample at every T, the ANN's MACs and accuracy on the same
images) and of ``benchmarks/bntt.py`` (per trained T: synaptic events, the same net's MACs),
and prices them with :mod:`neurosim.metrics.energy`'s ``papers45nm`` model (Horowitz 2014:
SNN ``ACs x 0.9 pJ``, fp32 ANN ``MACs x 4.6 pJ``, quantised ANN ``MACs x (0.2 + 0.1) pJ``,
8-bit weights and ``ceil(log2(T+1))``-bit activations) and Loihi 1's synaptic events
(``x 23.6 pJ``; its neuron updates need the neuron counts, which these files do not keep).
Results made before 2026-12-07 count events only, so ``deployed45nm`` (memory traffic per
layer) is not derivable from them (``–``); newer ``conversion.py`` rows and ``bntt.py`` runs
keep every model's joules as the reports price them (``energy``), and their ``deployed45nm``
ratios fill the last columns.

For each conversion model the operating point is the smallest T whose accuracy is within 1
point of the ANN's on the same images, for the setting that reaches it with the fewest
synaptic events there; a BNTT net has no ANN twin trained, so its row is at its trained T.
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

from neurosim.io.atomic import write_text  # noqa: E402
from neurosim.metrics.energy import energy  # noqa: E402
from neurosim.metrics.workload import AnnLayer, Memories, SnnLayer  # noqa: E402

#: The committed results the docs' table is made from.
DEFAULT = ["benchmarks/results/conversion/mnist_cnn-2000/results.json",
           "benchmarks/results/conversion/fashion_cnn-2000/results.json",
           "benchmarks/results/conversion/cifar_vgg-1000/results.json",
           "benchmarks/results/conversion-joins-resnet20/results.json",
           "benchmarks/results/conversion-papers-resnet20/results.json",
           "benchmarks/results/conversion-papers-resnet20-cutout/results.json",
           "benchmarks/results/bntt-digits/results.json",
           "benchmarks/results/bntt/fashion-full/results.json",
           "benchmarks/results/bntt/nmnist/results.json",
           "benchmarks/results/bntt/cifar-vgg9/results.json"]
TOLERANCE = 0.01


def priced(synops: float, macs: float, steps: int) -> dict:
    """The papers' convention for one point (:func:`neurosim.metrics.energy.energy`, model
    ``papers45nm``, on the totals: synaptic operations of the SNN, MACs of the ANN), joules and
    ratios, and the synaptic part of the Loihi 1 model (the only counts the results keep)."""
    snn = [SnnLayer("net", acs=synops, neuron_updates=0.0, update_mults=0, spikes=0.0)]
    ann = ([AnnLayer("net", macs=macs, outputs=0)], 0)
    e = energy(snn, Memories(weights=0, state=0), steps, ann=ann)
    p = e["papers45nm"]
    return {"snn_j": p["snn_j"], "fp32_j": p["ann_fp32_j"], "quant_j": p["ann_quantised_j"],
            "bits": p["ann_quantised_bits"], "snn_over_fp32": p["snn_over_ann_fp32"],
            "snn_over_quant": p["snn_over_ann_quantised"], "loihi1_synops_j": e["loihi1"]["snn_terms"]["synaptic_acs"]}


def deployed(energy_models: dict) -> dict:
    """The ``deployed45nm`` SNN/ANN ratios of a point whose result kept every model's energy
    (``{}`` when it did not)."""
    d = energy_models.get("deployed45nm")
    if not d or "snn_over_ann_fp32" not in d:
        return {}
    return {"deployed_over_fp32": d["snn_over_ann_fp32"], "deployed_over_quant": d["snn_over_ann_quantised"]}


def conversion_rows(path: Path, r: dict) -> list[dict]:
    out = []
    papers = bool(r.get("papers_t"))
    for name, m in r["models"].items():
        ann = m["ann_accuracy"]
        best: Optional[dict] = None
        for row in m["rows"]:
            within = [(int(T), c) for T, c in row["curve"].items()        # (peer rows count no events)
                      if "synops" in c and c["accuracy"] >= ann - TOLERANCE - 1e-12]
            if not within:
                continue
            T, c = min(within)
            cand = {"net": name, "source": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                    "images": m["test_images"], "ann": ann, "setting": row["label"], "T": T,
                    "t_kind": "papers' T" if papers else "Lava T", "acc": c["accuracy"],
                    **priced(c["synops"], m["ann_macs"], T), **deployed(c.get("energy", {}))}
            if best is None or cand["snn_j"] < best["snn_j"]:
                best = cand
        if best is None:
            best = {"net": name, "source": str(path), "images": m["test_images"], "ann": ann,
                    "setting": "none within 1 point", "T": None}
        out.append(best)
    return out


def bntt_rows(path: Path, r: dict) -> list[dict]:
    out = []
    for key, run in r["runs"].items():
        if run.get("norm", "bntt") != "bntt":
            continue
        T = int(run["steps"])
        out.append({"net": f"BNTT {r.get('dataset')} {r.get('arch')} x{r.get('width', 1)}",
                    "source": str(path.relative_to(ROOT)), "images": r.get("test_limit"), "ann": None,
                    "setting": f"trained T = {T}", "T": T, "t_kind": "trained T",
                    "acc": run["bntt"]["fixed_netlist_accuracy"],
                    **priced(run["synops_per_sample"], run["ann_macs_per_sample"], T),
                    **deployed(run.get("energy", {}))})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| net | test images | ANN % | setting | T at the operating point | SNN % | SNN µJ | "
             "SNN / fp32 ANN | SNN / quantised ANN (bits) | Loihi 1 synaptic µJ | beats the quantised ANN | "
             "deployed45nm SNN / fp32 ANN | deployed45nm SNN / quantised ANN |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        ann = "–" if r["ann"] is None else f"{100 * r['ann']:.2f}"
        if r["T"] is None:
            lines.append(f"| {r['net']} | {r['images']} | {ann} | {r['setting']} | – | – | – | – | – | – | – | – | – |")
            continue
        lines.append(f"| {r['net']} | {r['images']} | {ann} | {r['setting']} | {r['T']} ({r['t_kind']}) | "
                     f"{100 * r['acc']:.2f} | {1e6 * r['snn_j']:.3g} | {r['snn_over_fp32']:.2f} | "
                     f"{r['snn_over_quant']:.1f} ({r['bits']}) | {1e6 * r['loihi1_synops_j']:.3g} | "
                     f"{'yes' if r['snn_over_quant'] < 1 else 'no'} | "
                     + " | ".join(f"{r[k]:.2f}" if k in r else "–" for k in ("deployed_over_fp32", "deployed_over_quant"))
                     + " |")
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
        rows += conversion_rows(path, r) if "models" in r else bntt_rows(path, r)
    text = table(rows)
    print(text)
    if args.out:
        write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
