#!/usr/bin/env python
"""BNTT benchmark (issue 10): BNTT against no BN and one BN shared over time, at T = 25 and 10.

    .venv/bin/python benchmarks/bntt.py --dataset fashion-mnist --arch cnn --epochs 4 --limit 10000
    .venv/bin/python benchmarks/bntt.py --dataset nmnist --arch cnn --epochs 10

For every norm (``bntt``, ``shared``, ``none``) and every T of ``--steps`` it trains the same
net with the same seed, epochs and data (``neurosim.bntt.train``, resumable: a rerun continues
from the checkpoints under ``--out``), exports the fixed-point netlist and measures it on the
first ``--test-limit`` test samples (seeded input spikes): the SLAYER model's accuracy, the
float and fixed netlists' accuracy (the loss to fixed point), spikes per layer per sample,
SynOps and energy (45 nm against the same net as an ANN, Loihi), for BNTT the paper's early-exit
sweep, and for every net the calibrated exit (not the paper's rule: the first step within 0.5
point of the last on 1,000 training images). Writes ``<out>/results.json``, ``<out>/report.md`` (tables) and ``<out>/curves.png``
(training curves); prints the tables.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

from neurosim.bntt.train import BNTTConfig  # noqa: E402
from neurosim.data.augment import AUGMENTS  # noqa: E402
from neurosim.bntt.workflow import train_and_deploy  # noqa: E402
from neurosim.io.atomic import write_json, write_png, write_text  # noqa: E402

NORMS = ("bntt", "shared", "none")


def _energy_cells(e: dict) -> str:
    """SNN/ANN energy (45 nm, the papers' convention) and Loihi 1 µJ; results stored before the
    energy model of issue 21 have the keys 'cmos45nm' and 'loihi' (the same two figures)."""
    if "papers45nm" in e:
        ratio = e["papers45nm"].get("snn_over_ann_fp32")
        return f"{ratio:.2f} | {e['loihi1']['snn_j'] * 1e6:.2f}" if ratio is not None else \
            f"– | {e['loihi1']['snn_j'] * 1e6:.2f}"
    return f"{e['cmos45nm']['snn_j'] / e['cmos45nm']['ann_j']:.2f} | {e['loihi']['snn_j'] * 1e6:.2f}"


def table(results: dict) -> str:
    lines = ["| T | norm | SLAYER model | float netlist | fixed netlist | fixed − float | spikes/sample | "
             "SynOps/sample | SNN/ANN energy 45 nm (papers) | Loihi 1 µJ | early exit (α=0.1): step, acc | "
             "calibrated exit (0.5 pt): step, acc |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in results["runs"].items():
        b = r["bntt"]
        ee = b.get("early_exit_default")
        ee_acc = b["accuracy_vs_trained_step"].get(str(ee["exit_step"])) if ee else None
        ce = b.get("calibrated_exit")
        e = r["energy"]
        lines.append(f"| {r['steps']} | {r['norm']} | {100 * b['model_accuracy']:.2f} | "
                     f"{100 * b['float_netlist_accuracy']:.2f} | {100 * b['fixed_netlist_accuracy']:.2f} | "
                     f"{100 * (b['fixed_netlist_accuracy'] - b['float_netlist_accuracy']):+.2f} | "
                     f"{r['spikes_per_sample']:,.0f} | {r['synops_per_sample']:,.0f} | "
                     f"{_energy_cells(e)} | "
                     + (f"{ee['exit_step']}/{r['steps']}, {100 * ee_acc:.2f} |" if ee else "– |")
                     + (f" {ce['exit_step']}/{r['steps']}, {100 * ce['accuracy']:.2f} |" if ce else " – |"))
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, r in results["runs"].items():
        h = r["bntt"]["history"]
        ep = [x["epoch"] for x in h]
        style = {"bntt": "-", "shared": "--", "none": ":"}[r["norm"]]
        axes[0].plot(ep, [x["loss"] for x in h], style, marker=".", label=key)
        axes[1].plot(ep, [100 * x.get("test_acc", float("nan")) for x in h], style, marker=".", label=key)
    axes[0].set_xlabel("epoch"), axes[0].set_ylabel("training loss")
    axes[1].set_xlabel("epoch"), axes[1].set_ylabel("test accuracy (%) of the SLAYER model")
    axes[1].legend(fontsize=7)
    fig.suptitle(f"BNTT vs baselines: {results['dataset']}, {results['arch']}")
    fig.tight_layout()
    write_png(path, fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--arch", default="cnn")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--steps", default="25,10", help="T values (default 25,10)")
    p.add_argument("--norms", default=",".join(NORMS))
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--augment", choices=AUGMENTS, default="none",
                   help="training augmentation: crop-flip is the official code's (default none)")
    p.add_argument("--limit", type=int, default=None, help="first N training samples")
    p.add_argument("--test-limit", type=int, default=1000)
    p.add_argument("--lava-samples", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    out = args.out or HERE / "results" / f"bntt-{args.dataset}-{_dt.datetime.now():%Y-%m-%d_%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    results = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "dataset": args.dataset,
               "arch": args.arch, "width": args.width, "epochs": args.epochs, "augment": args.augment, "limit": args.limit,
               "test_limit": args.test_limit, "runs": {}}
    for T in (int(t) for t in args.steps.split(",")):
        for norm in args.norms.split(","):
            cfg = BNTTConfig(dataset=args.dataset, arch=args.arch, width=args.width, steps=T, epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr, norm=norm, limit=args.limit,
                             test_limit=args.test_limit, data_dir=args.data_dir, augment=args.augment)
            print(f"== T={T} norm={norm}", flush=True)
            rep = train_and_deploy(cfg, out / f"T{T}-{norm}", report_limit=args.test_limit,
                                   lava_samples=args.lava_samples if norm == "bntt" else 0,
                                   progress=not args.no_progress)
            keep = ("bntt", "spikes_per_sample", "spikes_per_sample_per_layer", "synops_per_sample", "energy",
                    "ann_macs_per_sample", "lava_spike_mismatches", "seconds")
            results["runs"][f"T{T}-{norm}"] = {"steps": T, "norm": norm, **{k: rep.get(k) for k in keep}}
            write_json(out / "results.json", results)
    text = f"# BNTT benchmark\n\nCommand: `{results['command']}`\n\n" + table(results)
    write_text(out / "report.md", text)
    plot(results, out / "curves.png")
    print(text)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
