#!/usr/bin/env python
"""Loihi 2 quantisation benchmark (issue 11): accuracy before and after rounding to Loihi 2's formats.

    .venv/bin/python benchmarks/loihi2_quantization.py                       # every net found
    .venv/bin/python benchmarks/loihi2_quantization.py --models mnist_cnn --bntt runs/bntt-digits

For each net, three netlists of the same trained model on the same inputs:

- ``float``: the unrounded net (real weights and biases, threshold 1 in hidden layers), run in
  the simulator's float mode: the accuracy before quantisation.
- ``neurosim fixed``: the netlist neurosim writes (``neurosim.convert.rmp.convert`` or
  ``neurosim.bntt.fold.export`` in fixed point).
- ``quantize-loihi2``: ``neurosim.loihi2.quantize.quantize`` of the float net (``neurosim
  quantize-loihi2``), run in fixed mode.

and whether each fixed net fits Loihi 2's formats (``fit_report``). Nets: the conversion
recipes under ``--runs`` (``python -m models.<recipe>``; converted with the benchmark's headline
setting: soft reset, θ/2, the default percentile rule, bias onset) at T = ``--steps``, and the
BNTT runs given with ``--bntt`` (``neurosim train-bntt`` folders) at their trained T plus the
readout latency. Resumable: nets already in ``<out>/results.json`` with the same settings are
kept. Writes ``<out>/results.json`` and ``<out>/report.md``; prints the table.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import neurosim  # noqa: E402,F401  (before torch: neurosim.threads)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from conversion import CALIB_SAMPLES, load_model  # noqa: E402
from neurosim.data.dataset import load_dataset  # noqa: E402
from neurosim.io.atomic import write_json, write_text  # noqa: E402
from neurosim.loihi2.quantize import fit_report, quantize  # noqa: E402
from neurosim.sim.simulator import Simulator  # noqa: E402


@functools.lru_cache(maxsize=None)
def _dataset(name: str):
    """The data set's splits, loaded once per run (several nets share one)."""
    return load_dataset(name)


def _accuracies(nets: dict, x: np.ndarray, y: np.ndarray, steps: list[int]) -> dict:
    """{name: {T: accuracy}} of ``nets`` ({name: (netlist, mode)}), one run each to max(steps)."""
    out = {}
    for name, (net, mode) in nets.items():
        res = Simulator(net, mode).run(x, max(steps), readout_steps=steps, per_neuron=False, progress=False)
        out[name] = {int(t): float(a) for t, a in res.accuracy_at(y).items()}
    return out


def _fits(net) -> bool:
    return not any(fit_report(net).values())


def conversion_net(folder: Path, limit: int, steps: list[int]) -> dict:
    """The three netlists of a conversion recipe's trained model, measured."""
    from neurosim.convert.rmp import convert

    model, result, recipe = load_model(folder)
    tr, te = _dataset(recipe.DATASET)
    x, y = te.x[:limit], te.y[:limit]
    x_cal = tr.x[np.sort(np.random.default_rng(0).permutation(len(tr.x))[:CALIB_SAMPLES])]
    kw = dict(reset="soft", v_init_half=True, progress=False)
    flt = convert(model, x_cal, x.shape[1:], precision="float", **kw)
    fixed = convert(model, x_cal, x.shape[1:], **kw)
    q, _ = quantize(flt)
    acc = _accuracies({"float": (flt, "float"), "neurosim fixed": (fixed, "fixed"),
                       "quantize-loihi2": (q, "fixed")}, x, y, steps)
    return {"kind": "RMP conversion (soft, θ/2)", "dataset": recipe.DATASET, "samples": len(y),
            "accuracy": acc, "fits": {"neurosim fixed": _fits(fixed), "quantize-loihi2": _fits(q)}}


def bntt_net(folder: Path, limit: int) -> dict:
    """The three netlists of a trained ``neurosim train-bntt`` folder, measured at its T + latency."""
    from neurosim.bntt.fold import export, netlist_input
    from neurosim.bntt.train import BNTTConfig, load_data, train_bntt
    from neurosim.bntt.workflow import test_spikes

    state = torch.load(folder / "bntt.pt", map_location="cpu", weights_only=False)
    cfg = BNTTConfig(**{**state["config"], "epochs": int(state["epoch"])})
    data = load_data(cfg)
    model, _ = train_bntt(cfg, folder, progress=False, data=data)        # complete: loads, no training
    spikes, y = test_spikes(data, cfg.steps, cfg.seed, limit)
    flt, fixed = export(model, "float"), export(model, "fixed")
    q, _ = quantize(flt)
    latency = int(fixed.meta["latency"])
    x = netlist_input(spikes, model.signed_input, latency)
    T = cfg.steps + latency
    acc = _accuracies({"float": (flt, "float"), "neurosim fixed": (fixed, "fixed"),
                       "quantize-loihi2": (q, "fixed")}, x, y, [T])
    return {"kind": f"BNTT ({cfg.norm}, T={cfg.steps})", "dataset": cfg.dataset, "samples": len(y),
            "accuracy": acc, "fits": {"neurosim fixed": _fits(fixed), "quantize-loihi2": _fits(q)}}


def table(results: dict) -> str:
    lines = ["| net | kind | samples | Lava steps | float | neurosim fixed | quantize-loihi2 | "
             "quantised − float | fits Loihi 2 (fixed / quantised) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results["nets"].items():
        a = r["accuracy"]
        for t in sorted(a["float"], key=int):
            f, n, q = (100 * a[k][t] for k in ("float", "neurosim fixed", "quantize-loihi2"))
            fits = " / ".join("yes" if r["fits"][k] else "no" for k in ("neurosim fixed", "quantize-loihi2"))
            lines.append(f"| {name} | {r['kind']} | {r['samples']} | {t} | {f:.2f} | {n:.2f} | {q:.2f} | "
                         f"{q - f:+.2f} | {fits} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench", help="conversion recipe runs")
    p.add_argument("--models", default=None, help="comma-separated sub-folders of --runs (default: all)")
    p.add_argument("--bntt", default="", help="comma-separated neurosim train-bntt output folders")
    p.add_argument("--steps", default="16,32,64", help="T of the converted nets (default 16,32,64)")
    p.add_argument("--test-limit", type=int, default=500, help="first N test samples (default 500)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "loihi2")
    args = p.parse_args(argv)
    steps = sorted({int(s) for s in args.steps.split(",")})
    names = (args.models.split(",") if args.models else
             sorted(d.name for d in args.runs.iterdir() if (d / "weights.pt").is_file()) if args.runs.is_dir() else [])
    bntt = [Path(b) for b in args.bntt.split(",") if b]
    if not names and not bntt:
        sys.exit(f"error: no trained models under {args.runs} and no --bntt folders")
    args.out.mkdir(parents=True, exist_ok=True)
    res_path = args.out / "results.json"
    results = json.loads(res_path.read_text()) if res_path.is_file() else {"nets": {}}
    results["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    jobs = [(n, lambda n=n: conversion_net(args.runs / n, args.test_limit, steps), steps) for n in names]
    jobs += [("/".join(b.parts[-2:]), lambda b=b: bntt_net(b, args.test_limit), None) for b in bntt]
    for name, job, want in jobs:
        old = results["nets"].get(name)
        if old and old.get("test_limit") == args.test_limit and \
                (want is None or sorted(int(t) for t in old["accuracy"]["float"]) == want):
            continue
        t0 = time.perf_counter()
        r = job()
        r["seconds"], r["test_limit"] = time.perf_counter() - t0, args.test_limit
        results["nets"][name] = r
        write_json(res_path, results)
        print(f"{name}: {r['accuracy']}  ({r['seconds']:.0f} s)", flush=True)
    text = f"# Loihi 2 quantisation: accuracy before and after\n\nCommand: `{results['command']}`\n\n" + table(results)
    write_text(args.out / "report.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
