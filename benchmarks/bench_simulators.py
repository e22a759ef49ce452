#!/usr/bin/env python
"""Benchmark neurosim's simulator against lava-dl SLAYER and Lava's CPU simulator (issue 3).

    .venv/bin/python benchmarks/bench_simulators.py --quick            # smoke run, small sizes
    .venv/bin/python benchmarks/bench_simulators.py                    # the real run
    .venv/bin/python benchmarks/bench_simulators.py --netlist runs/digits/network.net

At equal T on five nets (lava-dl's ``oxford``, ``mnist_bootstrap``, ``pilotnet_lif`` netlists,
the project's main-job net, a VGG-style CIFAR net built here) it measures

1. samples/s of ``neurosim.sim.simulator.Simulator(net, 'fixed').run(x, T)`` over a scan of
   batch sizes, and the peak RSS of each configuration (fresh process each);
2. samples/s of lava-dl SLAYER's batched forward of the same net built from the netlist
   (``benchmarks/slayer_from_netlist.py``), same scan, ``torch.no_grad()``;
3. Lava's CPU simulator (``fixed_pt``) in steady state: one compiled run streaming samples,
   time per step after the first sample; start-up reported separately (stock netx for the
   reference nets, ``neurosim.lava.runner.run_lava`` for the RMP nets);
4. ratios from this one run, and scaling tables of the simulator (batch size, T, layer width);
5. optional spike comparison simulator vs Lava, every layer, on a few samples.

Writes ``benchmarks/results/<date>_<time>.json`` and ``.md`` (``-quick`` appended for ``--quick``)
and prints the tables.
``docs/benchmarks.md`` describes what is measured.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from nets import (  # noqa: E402
    REFERENCE_DIR, REFERENCE_NETS, build_cifar_vgg, build_dense, describe, load_net, neuron_count,
)
from neurosim.lava.supervisor import shm_snapshot, stop_group  # noqa: E402  (no Lava import)
from neurosim.netlist.schema import Population  # noqa: E402

WORKER = HERE / "bench_worker.py"
RESULTS = HERE / "results"
CACHE = RESULTS / "cache"
NETS = ("oxford", "mnist_bootstrap", "pilotnet_lif", "mainjob", "cifar_vgg")
RMP_NETS = ("mainjob", "cifar_vgg")
GB = 1024.0

#: Everything that differs between the smoke run and the real run.
PROFILES = {
    "quick": {
        "steps": 8,
        "batches": {"small": [1, 32], "pilotnet_lif": [1], "cifar_vgg": [4]},
        "slayer_batches": {"small": [32], "pilotnet_lif": [1], "cifar_vgg": [4]},
        "min_time": 0.3, "max_reps": 5,
        "cifar": {"width": 0.25, "hw": 32},
        "lava_samples": {"oxford": 3, "mnist_bootstrap": 3, "pilotnet_lif": 0, "mainjob": 3, "cifar_vgg": 0},
        "compare_samples": {"oxford": 2, "mnist_bootstrap": 2, "pilotnet_lif": 0},
        "scale_T": {"net": "mnist_bootstrap", "batch": 16, "steps": [8, 32]},
        "scale_width": {"batch": 16, "widths": [256, 1024]},
        "child_timeout": 300,
    },
    "full": {
        "steps": 16,
        "batches": {"small": [1, 16, 64, 256, 1024], "mnist_bootstrap": [1, 16, 64, 256, 1024, 4096],
                    "pilotnet_lif": [1, 4, 16], "cifar_vgg": [1, 4, 16]},
        "slayer_batches": {"small": [1, 16, 64, 256, 1024], "pilotnet_lif": [1, 4, 16],
                           "cifar_vgg": [1, 4, 16]},
        "min_time": 1.0, "max_reps": 10,
        "cifar": {"width": 1.0, "hw": 32},
        "lava_samples": {"oxford": 8, "mnist_bootstrap": 8, "pilotnet_lif": 3, "mainjob": 4, "cifar_vgg": 3},
        "compare_samples": {"oxford": 4, "mnist_bootstrap": 4, "pilotnet_lif": 1},
        "scale_T": {"net": "mnist_bootstrap", "batch": 64, "steps": [8, 16, 32, 64, 128]},
        "scale_width": {"batch": 64, "widths": [256, 1024, 4096]},
        "child_timeout": 900,
    },
}

#: Configurations whose estimated memory exceeds this are skipped (the machine is shared).
DEFAULT_MEM_CAP_GB = 6.0
TARGET_SPEEDUP = 2.0
TARGET_PEAK_GB = 2.0


# ----------------------------------------------------------------------------- children

def run_child(mode: str, spec: dict, timeout: float, workdir: Path) -> dict:
    """Run one measurement in a fresh process (own session); kill its group on timeout."""
    fd, spec_path = tempfile.mkstemp(suffix=".json", dir=workdir)
    os.close(fd)
    out_path = Path(spec_path).with_suffix(".out.json")
    log_path = Path(spec_path).with_suffix(".log")
    Path(spec_path).write_text(json.dumps(spec))
    shm_before = shm_snapshot()
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(WORKER), mode, spec_path, str(out_path)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=str(ROOT))
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            removed = stop_group(proc, shm_before)
        except BaseException:
            stop_group(proc, shm_before)
            raise
    wall = time.perf_counter() - t0
    if timed_out:
        result = {"ok": False, "error": f"timed out after {timeout:g} s (killed"
                  + (f", removed {removed} leaked /dev/shm segments)" if removed else ")")}
    elif out_path.exists():
        result = json.loads(out_path.read_text())
    else:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-8:]
        result = {"ok": False, "error": f"child exited with code {proc.returncode} without a result",
                  "log_tail": "\n".join(tail)}
    result["child_wall_s"] = wall
    return result


# ----------------------------------------------------------------------------- nets

def prepare_nets(args, profile: dict, workdir: Path) -> dict:
    """name -> {'path', 'net' (Netlist)} for every net of the run."""
    from neurosim.netlist.hdf5 import save

    nets = {}
    for name in args.nets:
        if name in REFERENCE_NETS:
            path = args.reference_dir / name / "network.net"
        elif name == "mainjob":
            path = mainjob_netlist(args, workdir)
            if path is None:
                continue
        elif name == "cifar_vgg":
            c = profile["cifar"]
            net = build_cifar_vgg(seed=args.seed, width=c["width"], hw=c["hw"], neuron=args.cifar_neuron,
                                  calib_steps=profile["steps"], channels=tuple(args.cifar_channels))
            path = save(net, workdir / "cifar_vgg.net")
        else:
            raise SystemExit(f"unknown net '{name}'")
        try:
            net = load_net(path)
        except Exception as exc:   # report and go on with the other nets
            print(f"[bench] cannot load {name} from {path}: {exc}", file=sys.stderr)
            nets[name] = {"path": str(path), "error": f"{type(exc).__name__}: {exc}"}
            continue
        nets[name] = {"path": str(path), "net": net}
    return nets


def mainjob_netlist(args, workdir: Path) -> Optional[Path]:
    """--netlist, else (quick: a cached build) a fresh ``deploy/export.py --lava-samples 0`` build."""
    if args.netlist is not None:
        return Path(args.netlist).resolve()
    cached = CACHE / "mainjob" / "network.net"
    if args.quick and cached.exists():
        print(f"[bench] main-job net: reusing {cached.relative_to(ROOT)} (quick mode; "
              "delete it or pass --netlist to change)")
        return cached
    out = workdir / "mainjob"
    cmd = [sys.executable, str(ROOT / "deploy" / "export.py"), "--out", str(out), "--lava-samples", "0"]
    print(f"[bench] building the main-job net: {' '.join(cmd[1:])} (about 2 min; pass --netlist to skip)")
    log = workdir / "mainjob-export.log"
    t0 = time.perf_counter()
    with open(log, "wb") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=str(ROOT),
                               stdin=subprocess.DEVNULL)
    path = out / "network.net"
    if code != 0 or not path.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        print(f"[bench] main-job export failed (code {code}); skipping the main-job net:\n  "
              + "\n  ".join(tail), file=sys.stderr)
        return None
    print(f"[bench] main-job net built in {time.perf_counter() - t0:.0f} s")
    CACHE.joinpath("mainjob").mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, cached)
    return path


def net_info(name: str, entry: dict) -> dict:
    if "net" not in entry:
        return {"path": entry["path"], "error": entry["error"]}
    net = entry["net"]
    return {"path": entry["path"], "layers": describe(net), "neurons": neuron_count(net),
            "neuron_types": sorted(net.neuron_types), "input_layer": net.has_input_layer,
            "synapses": weight_count(net),
            "thresholds": [None if not hasattr(l, "neuron") else float(l.neuron.vThMant) for l in net.layers],
            "input_values": int(np.prod(net.layers[0].shape)) if net.has_input_layer
            else int(np.prod(net.input_shape))}


def weight_count(net) -> int:
    """Stored weights of every projection (an identity's scalar weight and the input layer's
    ``weight * x + bias`` do not count; a pool counts its one shared kernel)."""
    return int(sum(np.size(p.synapse.weight) for l in net.layers if isinstance(l, Population)
                   for p in l.projections if np.ndim(p.synapse.weight) > 0))


def estimate_gb(engine: str, net, batch: int, steps: int) -> float:
    """Rough peak memory of one configuration (to skip what would not fit on a shared machine)."""
    sizes = [int(np.prod(l.shape)) for l in net.layers if hasattr(l, "neuron")]
    n_in = int(np.prod(net.layers[0].shape)) if net.has_input_layer else int(np.prod(net.input_shape)) * steps
    if engine == "sim":   # inputs (float64) + counts and v of every layer (int64) + bounded chunks
        per_sample = 8 * n_in + 16 * sum(sizes)
        return 0.5 + 0.75 + batch * per_sample / 1024 ** 3
    # SLAYER: float32 (N, n, T) tensors, several per layer alive at the peak
    per_sample = 4 * steps * (2 * sum(sizes) + 8 * max(sizes) + n_in)
    return 0.6 + batch * per_sample / 1024 ** 3


# ----------------------------------------------------------------------------- measurements

def _spec(args, name: str, path, steps: int, **extra) -> dict:
    """What a child needs to rebuild the net and the batch: net name and file, T, seed, data dir."""
    return {"net": name, "net_path": str(path), "steps": steps, "seed": args.seed,
            "reference_dir": str(args.reference_dir), "threads": args.threads, **extra}


def scan(engine: str, name: str, entry: dict, batches: list, profile: dict, args, workdir: Path,
         bar) -> list:
    rows = []
    for batch in batches:
        bar.set_postfix_str(f"{engine} {name} B={batch}")
        est = estimate_gb(engine, entry["net"], batch, profile["steps"])
        if est > args.mem_cap_gb:
            rows.append({"batch": batch, "ok": False, "skipped": True,
                         "error": f"skipped: estimated {est:.1f} GB > --mem-cap-gb {args.mem_cap_gb:g}"})
            bar.update(1)
            continue
        spec = _spec(args, name, entry["path"], profile["steps"], batch=batch, min_time=profile["min_time"],
                     max_reps=profile["max_reps"])
        res = run_child(engine, spec, profile["child_timeout"], workdir)
        res["batch"] = batch
        res["estimated_gb"] = est
        rows.append(res)
        bar.update(1)
    return rows


def best_of(rows: list) -> Optional[dict]:
    ok = [r for r in rows if r.get("ok")]
    return max(ok, key=lambda r: r["samples_per_s"]) if ok else None


def lava_measure(name: str, entry: dict, profile: dict, args, workdir: Path, bar) -> dict:
    n = profile["lava_samples"].get(name, 0) if args.lava_samples is None else args.lava_samples
    if name == "cifar_vgg" and args.lava_cifar_samples is not None:
        n = args.lava_cifar_samples
    if n == 0:
        return {"ok": False, "skipped": True, "error": "not run in this profile (see --lava-samples)"}
    n = max(2, n)          # sample 0 is start-up; steady state needs at least one more
    steps = profile["steps"]
    bar.set_postfix_str(f"lava {name} ({n} samples)")
    if name in RMP_NETS or not entry["net"].neuron_types <= {"CUBA"}:
        try:
            import importlib.util
            have_runner = importlib.util.find_spec("neurosim.lava.runner") is not None
        except ImportError:
            have_runner = False
        if not have_runner:
            return {"ok": False, "skipped": True, "error": "n/a: neurosim.lava.runner not available"}
        timeout = args.lava_timeout or profile["child_timeout"]
        spec = _spec(args, name, entry["path"], steps, samples=n, timeout=timeout)
        res = run_child("lava_runner", spec, timeout + 120, workdir)
        res["method"] = "neurosim.lava.runner.run_lava (explicit Var resets, spikes of every layer read)"
        return res
    spec = _spec(args, name, entry["path"], steps, samples=n)
    res = run_child("lava_netx", spec, args.lava_timeout or profile["child_timeout"], workdir)
    res["method"] = "stock netx hdf5.Network, Reset processes every T steps, output layer extracted"
    return res


def lava_compare(name: str, entry: dict, profile: dict, args, workdir: Path, bar) -> dict:
    n = profile["compare_samples"].get(name, 0) if args.compare_samples is None else args.compare_samples
    if n == 0:
        return {"ok": False, "skipped": True, "error": "not run in this profile (see --compare-samples)"}
    bar.set_postfix_str(f"compare {name} ({n} samples)")
    spec = _spec(args, name, entry["path"], profile["steps"], samples=n)
    return run_child("lava_compare", spec, args.lava_timeout or profile["child_timeout"], workdir)


# ----------------------------------------------------------------------------- tables

def md_table(header: list, rows: list) -> str:
    def cell(v):
        if v is None:
            return "n/a"
        if isinstance(v, float):
            if v == 0:
                return "0"
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _err(r: Optional[dict]) -> str:
    if r is None:
        return "not run"
    return r.get("error", "failed").splitlines()[0][:120]


def build_report(results: dict) -> str:
    meta, out = results["meta"], []
    out.append(f"# Simulator benchmark {meta['date']} ({meta['profile']})\n")
    out.append(f"T = {meta['steps']} for every engine and net; host {meta['host']['cpus']} CPUs, "
               f"torch threads {meta['host']['torch_threads']}, load average at start "
               f"{meta['host']['loadavg_start']}, at end {meta['host'].get('loadavg_end')}; "
               f"git {meta['git']}; wall time {meta.get('wall_s', 0):.0f} s.\n")
    out.append("## Nets\n")
    out.append(md_table(["net", "layers", "neurons", "neuron types", "input"],
                        [[n, i.get("layers", i.get("error")), i.get("neurons"), ",".join(i.get("neuron_types", [])),
                          None if "error" in i else "current (input layer)" if i.get("input_layer") else "spikes"]
                         for n, i in results["nets"].items()]))
    out.append("\n## Throughput at best batch size (samples/s) and ratios\n")
    rows = []
    for name, r in results["summary"].items():
        rows.append([name, r["sim_best"], r["sim_best_batch"], r["slayer_best"], r["slayer_best_batch"],
                     r["lava"], r["lava_startup_s"], r["sim_vs_slayer"], r["sim_vs_lava"],
                     r["sim_peak_gb"], r["slayer_peak_gb"]])
    out.append(md_table(["net", "simulator", "B", "SLAYER", "B", "Lava (steady)", "Lava start-up s",
                         "sim/SLAYER", "sim/Lava", "sim peak GB (all B)", "SLAYER peak GB (all B)"], rows))
    out.append("\nLava samples/s = 1 / (T x time per step after the first sample), host I/O "
               "(input bias set, output read, resets) excluded; see the Lava table for it. "
               "RMP nets in SLAYER use CUBA blocks with current_decay=1 as a timing proxy.\n")
    rows = []
    for name, sc in results["scan"].items():
        r = next((r for r in sc.get("slayer", []) if r.get("ok")), None)
        if r is not None:
            rows.append([name, "yes" if r["shape_ok"] else f"NO {r['output_shape']} != {r['expected_shape']}",
                         "yes" if r["produces_spikes"] else "NO",
                         " ".join("-" if v is None else str(v) for v in r["spikes_per_layer_2_samples"]),
                         "8-bit hook" if r["quantize_8bit_hook"] else "exact", "yes" if r["rmp_proxy"] else "no"])
    if rows:
        out.append("\nSLAYER model checks (first 2 samples): output (N, *output shape, T), spikes per layer, "
                   "weights through SLAYER's quantize_8bit hook or exact, RMP timing proxy.\n")
        out.append(md_table(["net", "output shape ok", "spikes", "spikes per layer", "weights", "RMP proxy"], rows))
    out.append("\n## Batch-size scans (simulator | SLAYER)\n")
    for name, sc in results["scan"].items():
        rows = []
        by_b = {}
        for eng in ("sim", "slayer"):
            for r in sc.get(eng, []):
                by_b.setdefault(r["batch"], {})[eng] = r
        for b in sorted(by_b):
            s, l = by_b[b].get("sim"), by_b[b].get("slayer")
            rows.append([b,
                         s["samples_per_s"] if s and s.get("ok") else _err(s),
                         s["best_s"] if s and s.get("ok") else None,
                         s["peak_rss_mb"] / GB if s and s.get("ok") else None,
                         l["samples_per_s"] if l and l.get("ok") else _err(l),
                         l["best_s"] if l and l.get("ok") else None,
                         l["peak_rss_mb"] / GB if l and l.get("ok") else None])
        out.append(f"\n### {name}\n")
        out.append(md_table(["B", "sim samples/s", "sim s/batch", "sim peak GB", "SLAYER samples/s",
                             "SLAYER s/batch", "SLAYER peak GB"], rows))
    out.append("\n## Lava's CPU simulator (fixed_pt)\n")
    rows = []
    for name, r in results["lava"].items():
        if not r.get("ok"):
            rows.append([name, _err(r), None, None, None, None, None, r.get("method")])
            continue
        t = r["timing"]
        rows.append([name, r.get("samples_per_s"), r.get("per_step_s", 0) * 1e3, t.get("startup_s"),
                     r.get("io_per_sample_s"), r.get("samples_per_s_with_io"), r["samples"], r.get("method")])
    out.append(md_table(["net", "samples/s (steady)", "ms/step", "start-up s", "host I/O s/sample",
                         "samples/s incl. I/O", "samples", "method"], rows))
    out.append("\n## Spike comparison simulator vs Lava (every layer)\n")
    rows = []
    for name, r in results["compare"].items():
        if not r.get("ok"):
            rows.append([name, _err(r), None, None])
            continue
        c = r["compare"]
        per_layer = ", ".join(f"{l['layer']}:{l['type']}={l['mismatches']}/{l['sim_spikes']}" for l in c["layers"])
        rows.append([name, c["total_mismatches"], c["samples"], per_layer])
    out.append(md_table(["net", "mismatches (total)", "samples", "per layer: mismatches/sim spikes"], rows))
    sc = results["scaling"]
    out.append("\n## Scaling of the simulator\n")
    out.append(f"\n### vs T ({sc['T'].get('net')}, B = {sc['T'].get('batch')})\n")
    out.append(md_table(["T", "s/batch", "samples/s", "ms per sample-step", "peak GB"],
                        [[r["steps"], r.get("best_s"), r.get("samples_per_s"),
                          (r["best_s"] / r["batch"] / r["steps"] * 1e3) if r.get("ok") else None,
                          r["peak_rss_mb"] / GB if r.get("ok") else _err(r)] for r in sc["T"].get("rows", [])]))
    out.append(f"\n### vs layer width (200-W-200 dense CUBA, spike input p=0.1, B = {sc['width'].get('batch')}, "
               f"T = {meta['steps']})\n")
    out.append(md_table(["W", "synapses", "s/batch", "samples/s", "peak GB"],
                        [[r["width"], r.get("synapses"), r.get("best_s"), r.get("samples_per_s"),
                          r["peak_rss_mb"] / GB if r.get("ok") else _err(r)] for r in sc["width"].get("rows", [])]))
    out.append("\n### vs batch size\n\nSee the simulator columns of the batch-size scans above.\n")
    out.append("\n## Targets\n")
    t = results["targets"]
    out.append(md_table(["target", "met", "detail"],
                        [[k, {True: "yes", False: "NO", None: "n/a"}[v["met"]], v["detail"]] for k, v in t.items()]))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- main

def summarize(results: dict) -> None:
    summary = {}
    for name in results["nets"]:
        sc = results["scan"].get(name, {})
        sim, sl = best_of(sc.get("sim", [])), best_of(sc.get("slayer", []))
        lava = results["lava"].get(name, {})
        lava_sps = lava.get("samples_per_s") if lava.get("ok") else None
        sim_ok = [r for r in sc.get("sim", []) if r.get("ok")]
        sl_ok = [r for r in sc.get("slayer", []) if r.get("ok")]
        summary[name] = {
            "sim_best": sim["samples_per_s"] if sim else None, "sim_best_batch": sim["batch"] if sim else None,
            "slayer_best": sl["samples_per_s"] if sl else None, "slayer_best_batch": sl["batch"] if sl else None,
            "lava": lava_sps, "lava_startup_s": lava.get("timing", {}).get("startup_s") if lava.get("ok") else None,
            "sim_vs_slayer": sim["samples_per_s"] / sl["samples_per_s"] if sim and sl else None,
            "sim_vs_lava": sim["samples_per_s"] / lava_sps if sim and lava_sps else None,
            "sim_peak_gb": max(r["peak_rss_mb"] for r in sim_ok) / GB if sim_ok else None,
            "slayer_peak_gb": max(r["peak_rss_mb"] for r in sl_ok) / GB if sl_ok else None,
            "sim_max_batch": max(r["batch"] for r in sim_ok) if sim_ok else None,
        }
        info = results["nets"].get(name, {})
        if info.get("neurons") and sim_ok:
            # what a SimResult keeps per sample (counts and v of every layer, int64) plus the
            # float64 input: memory that grows with the batch size, whatever the chunking
            steps = 1 if info.get("input_layer") else results["meta"]["steps"]
            per_sample = 16 * info["neurons"] + 8 * info.get("input_values", 0) * steps
            base = min(r["peak_rss_mb"] for r in sim_ok) * 1024 ** 2
            summary[name]["sim_bytes_per_sample"] = per_sample
            summary[name]["sim_batch_at_2gb_extrapolated"] = int(max(0, TARGET_PEAK_GB * 1024 ** 3 - base)
                                                                 // per_sample)
    results["summary"] = summary

    speed = [(n, s["sim_vs_slayer"]) for n, s in summary.items()]
    missing = [n for n, r in speed if r is None]
    measured = [r for _, r in speed if r is not None]
    met = (False if any(r < TARGET_SPEEDUP for r in measured)
           else None if missing or not measured else True)
    detail = ", ".join(f"{n} {r:.2f}x" if r is not None else f"{n} n/a" for n, r in speed)
    targets = {f">= {TARGET_SPEEDUP:g}x SLAYER's best samples/s on every net": {"met": met, "detail": detail}}

    peaks = [(n, s["sim_peak_gb"], s["sim_max_batch"]) for n, s in summary.items() if s["sim_peak_gb"] is not None]
    extra = [r["peak_rss_mb"] / GB for key in ("T", "width") for r in results["scaling"].get(key, {}).get("rows", [])
             if r.get("ok")]
    all_peaks = [p for _, p, _ in peaks] + extra
    skipped = [f"{n} B={r['batch']}" for n, sc in results["scan"].items() for r in sc.get("sim", []) if r.get("skipped")]
    extrap = [f"{n} ~B={s['sim_batch_at_2gb_extrapolated']:,}" for n, s in summary.items()
              if s.get("sim_batch_at_2gb_extrapolated") is not None]
    targets[f"simulator peak memory <= {TARGET_PEAK_GB:g} GB at any batch size"] = {
        "met": (max(all_peaks) <= TARGET_PEAK_GB and not skipped) if all_peaks else None,
        "detail": (", ".join(f"{n} {p:.2f} GB (B<={b})" for n, p, b in peaks)
                   + (f"; scaling runs max {max(extra):.2f} GB" if extra else "")
                   + (f"; skipped as too large: {', '.join(skipped)}" if skipped else "")
                   + "; whole-process peak RSS incl. Python/torch (measured up to the B shown)"
                   + ("; extrapolated from the per-sample result arrays (16 B x neurons + input), "
                      "2 GB would be reached at " + ", ".join(extrap) if extrap else ""))}

    comp = {n: r["compare"]["total_mismatches"] for n, r in results["compare"].items() if r.get("ok")}
    comp.update({n: r["compare"]["total_mismatches"] for n, r in results["lava"].items()
                 if r.get("ok") and "compare" in r})
    not_run = [n for n in results["nets"] if n not in comp]
    targets["zero spike mismatches vs Lava in every layer"] = {
        "met": (False if any(v != 0 for v in comp.values()) else None if not comp or not_run else True),
        "detail": ", ".join(f"{n} {v}" for n, v in comp.items())
                  + (f"; not compared: {', '.join(not_run)}" if not_run else "")}
    results["targets"] = targets


def _channels(text: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C1,C2,D, got '{text}'") from None
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive numbers C1,C2,D, got '{text}'")
    return values


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run (< 2 min with a "
                   "cached or given main-job netlist)")
    p.add_argument("--netlist", type=Path, default=None, help="the main-job netlist (default: build one "
                   "with deploy/export.py --lava-samples 0 into a temp dir, ~2 min)")
    p.add_argument("--nets", nargs="+", default=list(NETS), choices=NETS, help="nets to run")
    p.add_argument("--steps", type=int, default=None, help="T for every net (quick 8, full 16)")
    p.add_argument("--reference-dir", type=Path, default=REFERENCE_DIR)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads in the children (default: torch's)")
    p.add_argument("--skip-slayer", action="store_true")
    p.add_argument("--skip-lava", action="store_true", help="no Lava timing and no spike comparison")
    p.add_argument("--skip-compare", action="store_true", help="no spike comparison for the reference nets")
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--lava-samples", type=int, default=None, help="samples per Lava timing run (default per net)")
    p.add_argument("--lava-cifar-samples", type=int, default=None,
                   help="samples of the CIFAR net on Lava (0 = skip; full default 3, about 1 min)")
    p.add_argument("--compare-samples", type=int, default=None, help="samples per spike comparison")
    p.add_argument("--lava-timeout", type=float, default=None, help="seconds per Lava run")
    p.add_argument("--cifar-neuron", choices=("RMP", "CUBA"), default="RMP")
    p.add_argument("--cifar-channels", type=_channels, default=(64, 120, 256), metavar="C1,C2,D",
                   help="CIFAR net widths: conv C1, C1, pool, conv C2, pool, dense D, dense 10 (default "
                        "64,120,256: neurosim's Lava backend pools with a grouped conv whose 'groups' Lava "
                        "keeps in int8, so it refuses pooling over 128 channels; 64,128,256 runs everywhere "
                        "but on Lava)")
    p.add_argument("--mem-cap-gb", type=float, default=DEFAULT_MEM_CAP_GB,
                   help="skip configurations estimated above this (default 6)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    profile = dict(PROFILES["quick" if args.quick else "full"])
    if args.steps:
        profile["steps"] = args.steps
    t_start = time.perf_counter()
    now = _dt.datetime.now()
    stamp = now.strftime("%Y-%m-%d_%H%M%S") + ("-quick" if args.quick else "")
    workdir = Path(tempfile.mkdtemp(prefix="neurosim-bench-"))
    try:
        results = run_all(args, profile, workdir, now)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["wall_s"] = time.perf_counter() - t_start
    results["meta"]["host"]["loadavg_end"] = _loadavg()
    summarize(results)
    report = build_report(results)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out_dir / f"{stamp}.json", args.out_dir / f"{stamp}.md"
    json_path.write_text(json.dumps(results, indent=1, default=_json_default))
    md_path.write_text(report)
    print("\n" + report)
    print(f"[bench] wrote {json_path} and {md_path} ({results['meta']['wall_s']:.0f} s)")
    return 0


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _git() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return rev + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def _versions() -> dict:
    from importlib import metadata
    out = {"python": platform.python_version()}
    for pkg in ("lava-nc", "lava-dl", "torch", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def run_all(args, profile: dict, workdir: Path, now) -> dict:
    import torch

    steps = profile["steps"]
    results = {
        "meta": {"date": now.isoformat(timespec="seconds"), "profile": "quick" if args.quick else "full",
                 "steps": steps, "argv": sys.argv[1:], "git": _git(), "versions": _versions(),
                 "profile_settings": profile,
                 "host": {"cpus": os.cpu_count(), "torch_threads": args.threads or torch.get_num_threads(),
                          "machine": platform.machine(), "loadavg_start": _loadavg()}},
        "nets": {}, "scan": {}, "lava": {}, "compare": {}, "scaling": {"T": {}, "width": {}},
    }
    print(f"[bench] {results['meta']['profile']} run, T = {steps}, nets: {', '.join(args.nets)}")
    nets = prepare_nets(args, profile, workdir)
    for name, entry in nets.items():
        results["nets"][name] = net_info(name, entry)
    runnable = {n: e for n, e in nets.items() if "net" in e}

    def batches(kind: str, name: str) -> list:
        table = profile[kind]
        return table.get(name, table["small"])

    n_jobs = sum(len(batches("batches", n)) + (0 if args.skip_slayer else len(batches("slayer_batches", n)))
                 for n in runnable)
    if not args.skip_lava:
        n_jobs += 2 * len(runnable)
    if not args.skip_scaling:
        n_jobs += len(profile["scale_T"]["steps"]) + len(profile["scale_width"]["widths"])
    bar = tqdm(total=n_jobs, desc="benchmark", unit="run")
    try:
        for name, entry in runnable.items():
            results["scan"][name] = {"sim": scan("sim", name, entry, batches("batches", name), profile, args,
                                                 workdir, bar)}
            if not args.skip_slayer:
                results["scan"][name]["slayer"] = scan("slayer", name, entry, batches("slayer_batches", name),
                                                       profile, args, workdir, bar)
            if not args.skip_lava:
                results["lava"][name] = lava_measure(name, entry, profile, args, workdir, bar)
                bar.update(1)
                if name in REFERENCE_NETS and not args.skip_compare:
                    results["compare"][name] = lava_compare(name, entry, profile, args, workdir, bar)
                bar.update(1)
        if not args.skip_scaling:
            results["scaling"] = scaling(args, profile, runnable, workdir, bar)
    finally:
        bar.close()
    return results


def scaling(args, profile: dict, nets: dict, workdir: Path, bar) -> dict:
    from neurosim.netlist.hdf5 import save

    out = {"T": {}, "width": {}}
    st = profile["scale_T"]
    if st["net"] in nets:
        rows = []
        for steps in st["steps"]:
            bar.set_postfix_str(f"scaling T={steps}")
            spec = _spec(args, st["net"], nets[st["net"]]["path"], steps, batch=st["batch"],
                         min_time=profile["min_time"], max_reps=profile["max_reps"])
            res = run_child("sim", spec, profile["child_timeout"], workdir)
            res.update(steps=steps, batch=st["batch"])
            rows.append(res)
            bar.update(1)
        out["T"] = {"net": st["net"], "batch": st["batch"], "rows": rows}
    sw = profile["scale_width"]
    rows = []
    for width in sw["widths"]:
        bar.set_postfix_str(f"scaling W={width}")
        net = build_dense(width, seed=args.seed, calib_steps=profile["steps"])
        path = save(net, workdir / f"dense_w{width}.net")
        spec = _spec(args, f"dense_w{width}", path, profile["steps"], batch=sw["batch"],
                     min_time=profile["min_time"], max_reps=profile["max_reps"])
        res = run_child("sim", spec, profile["child_timeout"], workdir)
        res.update(width=width, batch=sw["batch"], synapses=weight_count(net),
                   thresholds=[int(l.neuron.vThMant) for l in net.layers])
        rows.append(res)
        bar.update(1)
    out["width"] = {"batch": sw["batch"], "rows": rows}
    return out


if __name__ == "__main__":
    sys.exit(main())
