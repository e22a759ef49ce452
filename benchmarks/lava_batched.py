#!/usr/bin/env python
"""Samples per second of Lava's CPU simulator: the per-sample graph against the batched graph (issue 20).

    .venv/bin/python benchmarks/lava_batched.py                       # digits main job + mnist_bootstrap
    .venv/bin/python benchmarks/lava_batched.py --netlist runs/digits/network.net --rounds 2
    .venv/bin/python benchmarks/lava_batched.py --nets mainjob,mnist_bootstrap,oxford,mnist_cnn --batches 1,16,64,256

For each net, at the net's own T, in ``fixed_pt`` (``--mode float`` for ``floating_pt``), every
configuration is one guarded :func:`neurosim.lava.runner.run_lava` (a fresh worker: start-up,
compile, runs):

* ``per-sample``: the graph of Lava's own processes, one sample per Lava run, ``Var.set`` resets
  and ``Var.get`` voltages between samples (``batch=None``, what ran before issue 20);
* ``B = 1, 16, 64``: the batched graph, B samples per Lava run (``--batches``);
* ``stock netx``: lava-dl's own netx on the nets it builds (mnist_bootstrap; the main job's RMP net
  has soft reset, which netx cannot express), ``--per-sample`` samples of its own inputs
  (``benchmarks/nets.make_inputs``), one compiled run, states reset by Lava's ``Reset`` processes.

Reported per configuration (median over ``--rounds``; the rounds interleave the configurations,
so a change of the machine's load hits all of them alike): the wall time of the call, samples/s
end to end (samples / wall: worker start-up and compile included) and in steady state (the
samples after the first run over the runs' and loads' time), the speed-up of each over the
per-sample graph, the synaptic events per second of the call's wall time (the simulator's
SynOps of the same samples), the peak resident memory of the Lava processes (the worker and its
model processes, sampled every 0.25 s), and the spike and voltage mismatches of every layer
against ``Simulator(net, mode).run`` (0 expected). The load average before and after is printed.

Nets (``--nets``): the main job's digits net (``mainjob``: ``--netlist``, else built once with
:func:`neurosim.workflow.export_and_measure` into ``--work``), lava-dl's ``mnist_bootstrap``
(``../shared/netx-reference``, MNIST test images from ``../shared/datasets/mnist``) and ``oxford``
(its input raster, windows of T = 64 steps), and the MNIST CNN of ``models/`` (``mnist_cnn``:
``benchmarks/checkpoints/mnist_cnn`` converted once into ``--work``, channel thresholds and
theta/2, T = 32); each skipped when its files are absent.

First, the arithmetic of one synapse step, outside Lava (best of 20): the main job's widest
projection at B = 64 on the spikes the simulator gives at step 30, as Lava's ``Sparse``
``fixed_pt`` model computes it (``W[:, s].sum(axis=1)`` on the block-diagonal CSR matrix of
the B copies) and as neurosim's ``SparseSynapse`` does (one CSC column per spike, or each
spiking input's column for the whole batch), with the sums checked equal.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from nets import REFERENCE_DIR, make_inputs  # noqa: E402
from neurosim.data.dataset import load_dataset  # noqa: E402
from neurosim.data.encodings import encode, infer_encoding  # noqa: E402
from neurosim.lava.runner import run_lava  # noqa: E402
from neurosim.lava.supervisor import descendants, resident_bytes  # noqa: E402
from neurosim.netlist.hdf5 import load  # noqa: E402
from neurosim.netlist.schema import Netlist  # noqa: E402
from neurosim.sim.simulator import Simulator  # noqa: E402

REFERENCE = REFERENCE_DIR / "mnist_bootstrap" / "network.net"
CHECKPOINTS = ROOT / "benchmarks" / "checkpoints"


def mainjob_net(netlist: Optional[Path], work: Path) -> Path:
    """``--netlist``, or the main job's digits net built (once) into ``work``."""
    if netlist is not None:
        return netlist
    path = work / "mainjob" / "network.net"
    if not path.exists():
        from neurosim.workflow import export_and_measure
        print(f"building the main job's digits net into {path.parent} (about a minute)")
        export_and_measure(path.parent, lava_samples=0, progress=False)
    return path


def mnist_cnn_net(work: Path) -> Path:
    """The MNIST CNN of ``models/`` (``benchmarks/checkpoints/mnist_cnn``) converted once into
    ``work`` as docs/benchmarks.md's 10,000-image run does (channel thresholds, theta/2, T = 32)."""
    path = work / "mnist_cnn" / "network.net"
    if not path.exists():
        from neurosim.workflow import convert_and_measure
        print(f"converting the MNIST CNN into {path.parent} (about a minute)")
        convert_and_measure("neurosim.architectures.mnist_cnn:build", CHECKPOINTS / "mnist_cnn" / "weights.pt",
                            "mnist", path.parent, steps=32, rule="channel", v_init_half=True, limit=500,
                            lava_samples=0, progress=False)
    return path


#: The synapse-step comparison uses at most B = this / (the projection's synapses) samples (its
#: block-diagonal matrix of B copies and Lava's column selection of it must fit in memory).
MAX_STEP_SYNAPSES = 20_000_000
#: T of the oxford net here (its raster is 1,889 steps long; netx's test runs it whole).
OXFORD_STEPS = 64


def nets_to_run(names: Sequence[str], netlist: Optional[Path], work: Path) -> dict[str, tuple]:
    """name -> (netlist path, its T, ``inputs(net, n)``) of the nets that are available."""
    out = {}
    for name in names:
        if name == "mainjob":
            out[name] = (mainjob_net(netlist, work), None, lambda net, n: samples(net, "digits", n))
        elif name == "mnist_bootstrap" and REFERENCE.exists():
            out[name] = (REFERENCE, None, lambda net, n: samples(net, "mnist", n))
        elif name == "oxford" and (REFERENCE_DIR / "oxford").exists():
            out[name] = (REFERENCE_DIR / "oxford" / "network.net", OXFORD_STEPS,
                         lambda net, n: make_inputs("oxford", net, n, OXFORD_STEPS).sim)
        elif name == "mnist_cnn" and (CHECKPOINTS / "mnist_cnn" / "weights.pt").exists():
            out[name] = (mnist_cnn_net(work), None, lambda net, n: samples(net, "mnist", n))
        else:
            print(f"{name}: not available, skipped")
    return out


def samples(net: Netlist, dataset: str, n: int) -> np.ndarray:
    """The first ``n`` test images of ``dataset`` (cycled) through the net's encoding."""
    _, test = load_dataset(dataset)
    images = test.x[np.arange(n) % len(test.x)]
    return encode(infer_encoding(net), images, net)


def _descendants_rss() -> int:
    """Bytes resident in every process below this one (the Lava worker and its model processes)."""
    return sum(resident_bytes(p) for p in descendants(os.getpid()))


class PeakMemory:
    """The largest total resident memory of this process's descendants while the block runs
    (sampled every ``interval`` s by a thread: a lower bound of the true peak)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakMemory":
        def sample() -> None:
            while not self._stop.wait(self.interval):
                self.peak = max(self.peak, _descendants_rss())
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure(net: Netlist, x: np.ndarray, steps: int, mode: str, batch: Optional[int]) -> dict:
    """One guarded Lava run of ``x``; its timing, rates, the Lava processes' peak memory, the
    synaptic events per second of Lava's wall time (the simulator's count of the same samples)
    and the mismatches against the simulator."""
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        res = run_lava(net, x, steps, mode, batch=batch, progress=False)
    wall = time.perf_counter() - t0
    ref = Simulator(net, mode).run(x, steps, record_spikes=True)
    spikes = sum(int(np.count_nonzero(res.spikes[i] != ref.spikes[i])) for i in net.neuron_layers)
    volts = sum(int(np.count_nonzero(res.v[i] != ref.v[i])) for i in net.neuron_layers)
    t = res.timing
    first = min(len(x), batch or 1)
    steady = (len(x) - first) / (t["run_s"] + t["io_s"]) if len(x) > first else float("nan")
    synops = float(np.sum(ref.synops_per_sample))
    return {"wall_s": wall, "end_to_end": len(x) / wall, "steady": steady,
            "startup_s": t["import_s"] + t["build_s"] + t["compile_s"], "mismatches": spikes + volts,
            "peak_gb": mem.peak / 2 ** 30, "synops_per_s": synops / wall}


def stock_netx(name: str, path: Path, steps: int, n: int) -> Optional[dict]:
    """lava-dl's own netx (``lava.lib.dl.netx.hdf5.Network``, one compiled run streaming the
    samples, states reset by Lava's ``Reset`` processes as netx's tests do) on ``n`` samples of
    ``benchmarks/nets.make_inputs``, in a fresh process (``benchmarks/bench_worker.py lava_netx``);
    None for a net stock netx cannot build."""
    import json
    import subprocess
    import tempfile

    from neurosim.netlist.validate import validate
    from neurosim.netlist import netx_compat  # noqa: F401  (registers the 'netx' profile)
    try:
        validate(load(path), "netx")
    except Exception as exc:                                   # noqa: BLE001 (any refusal: no row)
        print(f"  {name}: stock netx cannot build it ({str(exc).splitlines()[0][:120]})")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps({"net": name, "net_path": str(path), "steps": steps, "samples": n, "seed": 0}))
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_worker.py"), "lava_netx", str(spec),
                            str(out)], cwd=ROOT, timeout=1800, check=False)
            wall = time.perf_counter() - t0
        res = json.loads(out.read_text()) if out.exists() else {"ok": False, "error": "no result"}
    if not res.get("ok"):
        print(f"  {name}: stock netx failed: {res.get('error')}")
        return None
    t = res["timing"]
    return {"wall_s": wall, "end_to_end": n / wall, "steady": res.get("samples_per_s_with_io", float("nan")),
            "startup_s": t["startup_s"], "mismatches": float("nan"), "peak_gb": mem.peak / 2 ** 30,
            "synops_per_s": float("nan")}


def synapse_step(net: Netlist, x: np.ndarray, steps: int, batch: int = 64) -> str:
    """Milliseconds of one synapse step of the net's widest projection (see the module docstring)."""
    from scipy import sparse

    from neurosim.lava.models import add_columns, scatter_columns
    from neurosim.lava.synapses import connection

    x = x[:batch]
    spikes = Simulator(net, "fixed").run(x, steps, record_spikes=True).spikes
    i, p = max(((i, p) for i in net.neuron_layers[1:] for p in range(len(net.layers[i].projections))),
               key=lambda ip: net.layers[ip[0]].projections[ip[1]].synapse.fanout(net.in_shape(*ip)).sum())
    m = connection(net.layers[i].projections[p].synapse, net.in_shape(i, p), net.layers[i].shape, "fixed").matrix
    s = spikes[net.resolve(net.inputs(i)[p][0])][:, min(30, steps - 1), :].astype(np.int32)
    s = s[:max(1, min(len(s), MAX_STEP_SYNAPSES // max(m.nnz, 1)))]     # B copies must fit in memory
    x = x[:len(s)]
    n_out = m.shape[0]
    ptr, idx, data = m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data.astype(np.int32)
    blocks = sparse.block_diag([m.tocsr()] * len(x), format="csr").astype(np.int32)

    def lava_sparse():
        return np.asarray(blocks[:, s.reshape(-1).astype(bool)].sum(axis=1)).reshape(len(x), n_out)

    def scattered():
        out = np.zeros(len(x) * n_out, dtype=np.int32)
        scatter_columns(np.flatnonzero(s), s.shape[1], n_out, ptr, idx, data, out)
        return out.reshape(len(x), n_out)

    def columns():
        out = np.zeros((n_out, len(x)), dtype=np.int32)
        add_columns(s, ptr, idx, data, out)
        return out.T

    ref = scattered()
    cells = []
    for name, fn in (("Lava Sparse (block-diagonal CSR)", lava_sparse), ("CSC, a column per spike", scattered),
                     ("CSC, batch columns", columns)):
        assert np.array_equal(fn(), ref), name
        best = min(_seconds(fn) for _ in range(5 if fn is lava_sparse else 20))
        cells.append(f"{name} {1e3 * best:.1f} ms")
    return (f"one synapse step, layer {i} ({m.nnz} synapses, {s.mean():.0%} of {s.shape[1]} inputs spiking, "
            f"B = {len(x)}): " + ", ".join(cells))


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def table(name: str, steps: int, rows: dict[str, list[dict]], n: dict[str, int]) -> str:
    """The markdown table of one net (medians over the rounds)."""
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in rows.items()}
    base = med["per-sample"]
    lines = [f"{name}, T = {steps}", "",
             "| graph | samples | wall (s) | start-up (s) | samples/s end to end | samples/s steady "
             "| x per-sample (end to end) | x per-sample (steady) | SynOps/s (end to end) | peak GB | mismatches |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    def cell(v: float, fmt: str) -> str:
        return "–" if v != v else format(v, fmt)             # NaN: not measured for this row

    for k, m in med.items():
        lines.append(f"| {k} | {n[k]} | {m['wall_s']:.1f} | {m['startup_s']:.1f} | {m['end_to_end']:.2f} | "
                     f"{cell(m['steady'], '.2f')} | {m['end_to_end'] / base['end_to_end']:.1f} | "
                     f"{cell(m['steady'] / base['steady'], '.1f')} | {cell(m['synops_per_s'], '.3g')} | "
                     f"{m['peak_gb']:.2f} | {cell(max(r['mismatches'] for r in rows[k]), 'g')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--netlist", type=Path, default=None, help="the main job's digits net (default: built)")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "lava_batched", help="where a built net goes")
    p.add_argument("--mode", choices=("fixed", "float"), default="fixed")
    p.add_argument("--batches", default="1,16,64", help="batch sizes of the batched graph (default 1,16,64)")
    p.add_argument("--per-sample", type=int, default=6, help="samples through the per-sample graph (default 6)")
    p.add_argument("--runs", type=int, default=3, help="Lava runs per batched configuration (default 3)")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians are reported (default 1)")
    p.add_argument("--nets", default="mainjob,mnist_bootstrap",
                   help="comma-separated: mainjob, mnist_bootstrap, oxford, mnist_cnn (default mainjob,mnist_bootstrap)")
    p.add_argument("--no-netx", action="store_true", help="no stock netx row (lava-dl's own netx, nets it can build)")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    nets = nets_to_run(args.nets.split(","), args.netlist, args.work)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    for name, (path, steps, inputs_of) in nets.items():
        net = load(path)
        steps = steps or int(net.meta.get("timesteps", 64))
        configs = {"per-sample": (None, args.per_sample), **{f"B = {b}": (b, b * args.runs) for b in batches}}
        inputs = {k: inputs_of(net, count) for k, (_, count) in configs.items()}
        print(f"{name}: {synapse_step(net, inputs_of(net, 64), steps)}", flush=True)
        rows: dict[str, list[dict]] = {k: [] for k in configs}
        for r in range(args.rounds):
            for k, (batch, _) in configs.items():
                row = measure(net, inputs[k], steps, args.mode, batch)
                rows[k].append(row)
                print(f"  {name} round {r + 1} {k}: {row['wall_s']:.1f} s, {row['end_to_end']:.2f} samples/s "
                      f"end to end, {row['steady']:.2f} steady, {row['mismatches']} mismatches", flush=True)
            if not args.no_netx and (row := stock_netx(name, path, steps, args.per_sample)) is not None:
                rows.setdefault("stock netx", []).append(row)
                print(f"  {name} round {r + 1} stock netx: {row['wall_s']:.1f} s, {row['end_to_end']:.2f} samples/s "
                      f"end to end, {row['steady']:.2f} steady", flush=True)
        counts = {k: c for k, (_, c) in configs.items()}
        counts["stock netx"] = args.per_sample
        print("\n" + table(name, steps, rows, counts) + "\n")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
