#!/usr/bin/env python
"""Threads benchmark (issue 17, item 1): three user commands on a machine with other work on it.

    .venv/bin/python benchmarks/threads.py --load 2 --out benchmarks/results/threads

Each command runs in a fresh process, while ``--load`` other processes keep cores busy (each a
torch matrix product loop on one thread: "other work on the machine"), under four settings:

- ``spin, 2 threads``: OpenMP's default wait policy (idle threads spin), 2 threads: neurosim
  before issue 17;
- ``spin, 1 thread``: the same with ``--threads 1`` (what ``OMP_NUM_THREADS=1`` did);
- ``sleep, 2 threads``: ``OMP_WAIT_POLICY=PASSIVE`` (what ``import neurosim`` now sets), 2 threads;
- ``sleep, 1 thread``.

The commands: ``neurosim convert`` of the MNIST CNN recipe (1 epoch on 5,000 images, trained
once into ``--work``) at ``--steps 32 --limit 150 --lava-samples 0``; ``neurosim run`` of that
netlist on 100 test images at T = 64; one ``train-bntt`` epoch (digits, CNN, T = 8, 1,000
images). Settings take turns within each round (a drifting machine hits all alike); the table
gives the median wall time over ``--rounds`` and the range. Writes ``<out>/results.json`` and
``<out>/report.md``; prints the table.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

from neurosim.io.atomic import write_json, write_text  # noqa: E402

SETTINGS = {                     # name: (OMP_WAIT_POLICY, --threads)
    "spin, 2 threads": ("ACTIVE", 2),
    "spin, 1 thread": ("ACTIVE", 1),
    "sleep, 2 threads": ("PASSIVE", 2),
    "sleep, 1 thread": ("PASSIVE", 1),
}
LOAD_CODE = ("import torch; torch.set_num_threads(1); a = torch.rand(384, 384)\n"
             "while True: a = (a @ a).clamp_(-1, 1)")
MODEL = "import torch.nn as nn\nfrom neurosim.architectures.mnist_cnn import build\n\n\nclass Net(nn.Sequential):\n" \
        "    def __init__(self):\n        super().__init__(*build())\n"


def neurosim(args: list[str], policy: str, threads: int, cwd: Path) -> float:
    """Wall seconds of ``python -m neurosim ARGS --threads N --quiet`` under ``policy``."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_NUM_THREADS", None)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "neurosim", *args, "--threads", str(threads), "--quiet"],
                          cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(args)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def prepare(work: Path, data_dir: str) -> Path:
    """The MNIST CNN (1 epoch on 5,000 images, seeded) and its weights, once."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "mnist_model.py").write_text(MODEL)
    weights = work / "mnist_cnn" / "weights.pt"
    if not weights.exists():
        subprocess.run([sys.executable, "-m", "models.mnist_cnn", "--epochs", "1", "--limit", "5000",
                        "--test-limit", "500", "--data-dir", data_dir, "--out", str(work / "mnist_cnn"),
                        "--no-progress", "--no-eval"], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    return weights


def commands(work: Path, weights: Path, data_dir: str) -> dict[str, list[str]]:
    return {
        "convert MNIST CNN (T = 32, 150 images)": [
            "convert", "--model", str(work / "mnist_model.py") + ":Net", "--weights", str(weights), "--dataset",
            "mnist", "--data-dir", data_dir, "--steps", "32", "--limit", "150", "--lava-samples", "0",
            "--out", str(work / "convert")],
        "run MNIST CNN netlist (T = 64, 100 images)": [
            "run", str(work / "convert" / "network.net"), "--dataset", "mnist", "--data-dir", data_dir,
            "--steps", "64", "--limit", "100", "--out", str(work / "run")],
        "train-bntt, 1 epoch (digits CNN, T = 8)": [
            "train-bntt", "--dataset", "digits", "--arch", "cnn", "--steps", "8", "--epochs", "1", "--limit", "1000",
            "--test-limit", "100", "--lava-samples", "0", "--out", str(work / "bntt")],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--load", type=int, default=2, help="busy processes beside the measured one (default 2)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-threads")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "threads")
    args = p.parse_args()
    weights = prepare(args.work, args.data_dir)
    cmds = commands(args.work, weights, args.data_dir)
    neurosim(cmds["convert MNIST CNN (T = 32, 150 images)"], "PASSIVE", 2, ROOT)    # the netlist `run` reads
    load = [subprocess.Popen([sys.executable, "-c", LOAD_CODE]) for _ in range(args.load)]
    times: dict[str, dict[str, list[float]]] = {c: {s: [] for s in SETTINGS} for c in cmds}
    try:
        time.sleep(2)
        for r in range(args.rounds):
            for cmd, argv in cmds.items():
                for name, (policy, threads) in SETTINGS.items():
                    if cmd.startswith("train-bntt"):
                        (args.work / "bntt" / "bntt.pt").unlink(missing_ok=True)
                    times[cmd][name].append(neurosim(argv, policy, threads, ROOT))
                    print(f"round {r + 1}: {cmd}, {name}: {times[cmd][name][-1]:.1f} s", flush=True)
    finally:
        for proc in load:
            proc.kill()
    lines = [f"Command: `python benchmarks/threads.py --load {args.load} --rounds {args.rounds}`, "
             f"{_dt.date.today()}, {os.cpu_count()} cores, {args.load} busy processes beside each command.", "",
             "| command | " + " | ".join(SETTINGS) + " |", "|---|" + "---|" * len(SETTINGS)]
    for cmd, per in times.items():
        lines.append(f"| {cmd} | " + " | ".join(
            f"{statistics.median(v):.1f} s ({min(v):.1f}–{max(v):.1f})" for v in per.values()) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", {"load": args.load, "rounds": args.rounds, "seconds": times,
                                           "settings": {k: list(v) for k, v in SETTINGS.items()}})
    write_text(args.out / "report.md", "# Threads benchmark\n\n" + text)


if __name__ == "__main__":
    main()
