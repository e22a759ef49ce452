#!/usr/bin/env python
"""ANN -> SNN conversion benchmark (issue 9): accuracy vs T, SynOps and energy, against SpikingJelly.

    # 1. train the recipes (resumable; see docs/conversion.md for the epochs used)
    .venv/bin/python -m models.mnist_cnn --epochs 2 --out runs/bench/mnist_cnn
    .venv/bin/python -m models.mnist_cnn --epochs 2 --qcfs 4 --out runs/bench/mnist_cnn_qcfs4
    # 2. benchmark every trained model found under runs/bench
    .venv/bin/python benchmarks/conversion.py --runs runs/bench --test-limit 1000
    .venv/bin/python benchmarks/conversion.py --speed --out benchmarks/results/conversion/speed   # samples/s
    # 3. samples/s of neurosim's simulator against SpikingJelly 2.0 (its venv), interleaved rounds
    .venv/bin/python benchmarks/conversion.py --runs runs/bench --speed --speed-model cifar_resnet20_cutout \
        --speed-batch 256 --speed-steps 32 --papers-t --out benchmarks/results/conversion-speed-resnet20

For each trained model (``<runs>/<name>/weights.pt`` + ``result.json`` written by
``python -m models.<recipe>``) and each conversion setting of the grid (reset soft | hard,
threshold rule max | percentile | channel | snn, initial membrane potential 0 | theta/2; a
QCFS-trained model uses its trained thresholds), it converts with
:func:`neurosim.convert.rmp.convert` on the same 2,000 training images, runs the fixed-point
netlist (Lava's semantics, :class:`neurosim.sim.simulator.Simulator`) once for the longest T on
the first ``--test-limit`` test images and reads the accuracy after every T of ``--steps``;
spikes and SynOps after T are the per-layer totals scaled by the fraction of the layer's
spikes fired by step T.

The peer rows are SpikingJelly 2.0's recipes on the same checkpoint, calibration and test
images, run from its own virtualenv (``scripts/setup_peer.sh`` makes ``.venv-peer``: Python
3.11, torch 2.13, SpikingJelly 2.0.0; ``--peer-venv``): the images go to
``benchmarks/peer_spikingjelly.py`` in an ``.npz``, it runs in a subprocess (``--peer-timeout``)
and answers with a JSON, rows ``spikingjelly 2.0.0 <recipe>`` (channel-wise rate coding with
theta/2, Max and 99.9 % modes; local threshold balancing; for a QCFS-trained model its trained
thresholds with theta/2 neurons). Without a peer virtualenv, a SpikingJelly installed in this
venv (``pip install -e .[bench]``) gives the fallback row: its
``spikingjelly.activation_based.ann2snn.Converter`` (99.9 % mode, same calibration images),
labelled with its version.

Writes ``<out>/results.json`` (after every setting, atomically), ``<out>/report.md`` (tables)
and ``<out>/<model>.png`` (accuracy vs T); prints the tables.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import inspect
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

import neurosim  # noqa: E402,F401  (first: idle OpenMP threads sleep, neurosim.threads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from neurosim.ann.train import accuracy  # noqa: E402
from neurosim.convert import DEFAULT_PERCENTILE, RULES  # noqa: E402
from neurosim.convert.rmp import convert  # noqa: E402
from neurosim.data.dataset import Split, load_dataset  # noqa: E402
from neurosim.device import device_arg, resolve_device  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.evaluate import accuracy_energy_table, ann_workload, metrics_at, papers_depth  # noqa: E402
from neurosim.io.atomic import write_json, write_png, write_text  # noqa: E402
from neurosim.sim.simulator import Simulator  # noqa: E402
from neurosim.workflow import ann_layers_meta  # noqa: E402

STEPS = (4, 8, 16, 32, 64, 128, 256, 512)
CALIB_SAMPLES = 2000
SNN_RULE_STEPS = 64
PEER_VENV = ROOT / ".venv-peer"
PEER_SCRIPT = HERE / "peer_spikingjelly.py"
PEER_TIMEOUT = 6 * 3600


@dataclass(frozen=True)
class Setting:
    """One conversion setting of the grid."""
    reset: str = "soft"
    rule: str = "percentile"
    v_init_half: bool = False
    align_bias: bool = True
    fold_pool: bool = True
    align_joins: bool = True
    percentile: float = DEFAULT_PERCENTILE
    precision: str = "fixed"        # 'float': unrounded weights and thresholds, the simulator's float mode
    input_coding: str = "spikes"    # 'analog': the first conv on the host (convert's input_coding)
    bias_correction: Optional[int] = None   # convert's bias_correction: the T the hidden biases are corrected at
    correction_passes: int = 1              # convert's bias_correction_passes

    @property
    def label(self) -> str:
        extra = (("" if self.align_bias else " no-bias-onset") + ("" if self.fold_pool else " pools-as-layers")
                 + ("" if self.align_joins else " joins-unaligned"))
        pct = f" {self.percentile:g}" if self.percentile != DEFAULT_PERCENTILE else ""
        prec = " float" if self.precision == "float" else ""
        coding = " analog-input" if self.input_coding == "analog" else ""
        corrected = f" bias-corrected T={self.bias_correction}" if self.bias_correction else ""
        corrected += f" ({self.correction_passes} passes)" if self.correction_passes != 1 else ""
        return f"{self.reset} {self.rule}{pct}{' θ/2' if self.v_init_half else ''}{extra}{prec}{coding}{corrected}"


GRIDS = ("full", "core", "small", "peer", "joins", "papers", "precision", "analog", "corrected", "rules")
#: The T the ``corrected`` grid corrects the biases at (one row each).
CORRECTION_STEPS = (8, 32, 128)


def grid(kind: str, qcfs: bool, longest: Optional[int] = None, passes: int = 1) -> list[Setting]:
    """The settings benchmarked. ``full``: every reset x rule x initial potential, plus the
    structural ablations (no bias onset, pools as layers); ``core``: every reset x rule, and
    theta/2 with the default rule for both resets and with the channel rule; ``small``: both
    resets with the default rule, theta/2, the other three rules with soft reset, and theta/2
    with the channel rule; ``peer``: the two theta/2 settings (default and channel rule), the
    best at low T, for the comparison with SpikingJelly on more images; ``joins``: the best setting
    with and without aligned residual joins (issue 18); ``papers``: the best setting with soft and
    with hard reset, and without aligned joins (issue 19's CIFAR-10 table: RMP's soft-vs-hard claim
    and the joins on one run each, and SpikingJelly's per-channel 99.9th percentile with θ/2);
    ``precision``: the two soft θ/2 settings of ``papers`` in ``precision='float'`` (no 8-bit
    weights, no integer state: what the rounding costs); ``analog``: the soft θ/2 settings of
    ``papers`` with the first conv computed on the host (``input_coding='analog'``: the image as
    the papers and SpikingJelly present it), and the second of them without aligned joins and in
    ``precision='float'``; ``corrected``: the best analog setting with its hidden biases corrected
    at each T of :data:`CORRECTION_STEPS` up to ``longest`` (``bias_correction``, SNN calibration;
    ``passes``: convert's ``bias_correction_passes``); ``rules``: soft reset, θ/2 and analog input
    with the three rules ``analog`` does not have (``percentile``, ``max``, ``snn``; for a QCFS
    model, whose rule sets only the input layer and the readout, ``analog``'s one setting).
    A QCFS-trained model (trained thresholds: the rule
    only sets the input layer and the readout) gets its own four, or with ``analog`` its first
    with analog input, with ``corrected`` that one corrected at each T."""
    if kind == "rules" and not qcfs:
        return [Setting("soft", rule, True, input_coding="analog") for rule in ("percentile", "max", "snn")]
    if qcfs and kind in ("analog", "rules"):
        return [Setting("soft", "percentile", True, input_coding="analog")]
    if kind == "corrected":
        best = (Setting("soft", "percentile", True, input_coding="analog") if qcfs else
                Setting("soft", "channel-percentile", True, percentile=99.9, input_coding="analog"))
        return [replace(best, bias_correction=t, correction_passes=passes)
                for t in CORRECTION_STEPS if longest is None or t <= longest]
    if qcfs:
        return [Setting("soft", "percentile", True), Setting("soft", "percentile", False),
                Setting("hard", "percentile", True), Setting("soft", "percentile", True, align_bias=False)]
    if kind == "peer":
        return [Setting("soft", "percentile", True), Setting("soft", "channel", True)]
    if kind == "joins":
        return [Setting("soft", "channel", True), Setting("soft", "channel", True, align_joins=False)]
    if kind == "analog":
        return [Setting("soft", "channel", True, input_coding="analog"),
                Setting("soft", "channel-percentile", True, percentile=99.9, input_coding="analog"),
                Setting("soft", "channel-percentile", True, percentile=99.9, align_joins=False, input_coding="analog"),
                Setting("soft", "channel-percentile", True, percentile=99.9, precision="float", input_coding="analog")]
    if kind == "precision":
        return [Setting("soft", "channel", True, precision="float"),
                Setting("soft", "channel-percentile", True, percentile=99.9, precision="float")]
    if kind == "papers":
        return [Setting("soft", "channel", True), Setting("hard", "channel", True),
                Setting("soft", "channel", True, align_joins=False),
                Setting("soft", "channel-percentile", True, percentile=99.9)]
    if kind == "small":
        return [Setting("soft", "percentile"), Setting("hard", "percentile"), Setting("soft", "percentile", True),
                Setting("soft", "max"), Setting("soft", "channel"), Setting("soft", "snn"),
                Setting("soft", "channel", True)]
    if kind == "core":
        return ([Setting(r, rule) for r in ("soft", "hard") for rule in RULES]
                + [Setting("soft", "percentile", True), Setting("hard", "percentile", True),
                   Setting("soft", "channel", True)])
    out = [Setting(r, rule, v) for r in ("soft", "hard") for rule in RULES for v in (False, True)]
    return out + [Setting("soft", "percentile", align_bias=False), Setting("soft", "percentile", fold_pool=False)]


# ----------------------------------------------------------------------------- models

def load_model(folder: Path) -> tuple[torch.nn.Module, dict, object]:
    """The trained model of a ``python -m models.<recipe>`` run folder, its result.json and recipe."""
    import importlib

    from models.recipe import build_model

    res_path, w_path = folder / "result.json", folder / "weights.pt"
    if not res_path.is_file() or not w_path.is_file():
        raise NeurosimError(f"{folder}: no result.json/weights.pt (train with python -m models.<recipe> "
                            f"--out {folder})")
    result = json.loads(res_path.read_text())
    recipe = importlib.import_module(result["recipe"])
    model = build_model(recipe, result["width"], result.get("qcfs_levels"))
    model.load_state_dict(torch.load(w_path, map_location="cpu", weights_only=True))
    return model.eval(), result, recipe


# ----------------------------------------------------------------------------- measuring

def curve_metrics(net, res, labels: np.ndarray, steps: list[int], depth: int = 0) -> dict:
    """Accuracy, spikes, SynOps and energy per sample after each T of ``steps`` (one run; the
    run's exact per-readout counts), keyed by ``T - depth`` (``depth``: see ``--papers-t``).
    Energy as every report prices it (:func:`neurosim.evaluate.metrics_at`: each layer, every
    energy model, the ANN of the netlist's ``ann_layers`` in fp32 and quantised): ``energy``
    holds each model's SNN and ANN joules and ratios, ``snn_j_45nm`` / ``ann_j_45nm`` the papers'
    convention, ``snn_j_loihi`` Loihi 1."""
    acc = res.accuracy_at(labels)
    neurons = int(sum(np.prod(net.layers[i].shape) for i in net.neuron_layers))
    ann = ann_workload(net, neurons)
    out = {}
    for k, T in enumerate(res.readout_steps):
        if T not in steps:
            continue
        m = metrics_at(net, res, T, k, ann, neurons)
        e = m["energy"]
        priced = accuracy_energy_table({str(T): {"accuracy": acc[T], "energy": e}})[0]
        out[T - depth] = {"accuracy": acc[T], "lava_steps": T, "spikes": m["spikes_per_sample"],
                          "synops": m["synops_per_sample"],
                          "snn_j_45nm": e["papers45nm"]["snn_j"], "ann_j_45nm": e["papers45nm"]["ann_fp32_j"],
                          "snn_j_loihi": e["loihi1"]["snn_j"],
                          "energy": {model: priced[model] for model in e}}
    return out


def summary(curve: dict, ann: float) -> dict:
    """First T within 1 and 0.1 point of the ANN, best accuracy and its first T, and the smallest
    T at which the SNN (45 nm) costs less than the ANN while within 1 point of it."""
    ts = sorted(int(t) for t in curve)
    first = lambda ok: next((t for t in ts if ok(curve[t])), None)  # noqa: E731
    best = max(curve[t]["accuracy"] for t in ts)
    return {"t_within_1": first(lambda c: c["accuracy"] >= ann - 0.01 - 1e-12),
            "t_within_0.1": first(lambda c: c["accuracy"] >= ann - 0.001 - 1e-12),
            "best": best, "t_best": first(lambda c: c["accuracy"] >= best - 1e-12),
            "t_cheaper_within_1": first(lambda c: c["accuracy"] >= ann - 0.01 - 1e-12
                                        and c["snn_j_45nm"] < c["ann_j_45nm"])}


def convert_setting(model, setting: Setting, x_cal, shape: tuple[int, ...], progress: bool = False,
                    device: str = "cpu"):
    """``model`` converted with ``setting`` (:func:`neurosim.convert.rmp.convert`)."""
    return convert(model, x_cal, shape, rule=setting.rule, percentile=setting.percentile, reset=setting.reset,
                   v_init_half=setting.v_init_half, align_bias=setting.align_bias, fold_pool=setting.fold_pool,
                   align_joins=setting.align_joins, snn_steps=SNN_RULE_STEPS, precision=setting.precision,
                   progress=progress, device=device, input_coding=setting.input_coding,
                   bias_correction=setting.bias_correction, bias_correction_passes=setting.correction_passes)


def neurosim_row(model, setting: Setting, x_cal, test: Split, steps: list[int], progress: bool,
                 papers_t: bool = False, device: str = "cpu") -> dict:
    """One setting: convert, run once, read every T. ``papers_t``: ``steps`` are the papers' T
    (every layer integrates T steps), read after ``T + D`` Lava steps (D: the readout's depth).
    ``device``: where calibration and a ``precision='float'`` net's synaptic maps compute."""
    t0 = time.perf_counter()
    net = convert_setting(model, setting, x_cal, tuple(test.x.shape[1:]), progress, device)
    net.meta["ann_layers"] = ann_layers_meta(model, tuple(test.x.shape[1:]))      # the ANN the energy compares
    t_conv = time.perf_counter() - t0
    depth = papers_depth(net) if papers_t else 0
    lava = [t + depth for t in steps]
    sim_device = device if setting.precision == "float" else "cpu"      # fixed point: CPU kernels
    res = Simulator(net, setting.precision, device=sim_device).run(test.x, max(lava), readout_steps=lava,
                                                                   per_neuron=False, progress=progress)
    t_sim = time.perf_counter() - t0 - t_conv
    return {"setting": setting.__dict__, "label": setting.label, "layers": len(net.neuron_layers),
            "depth": max(net.depths()), "readout_depth": papers_depth(net), "papers_t": papers_t,
            "ann_macs": int(net.meta["ann_macs"]),
            **({"bias_correction": net.meta["bias_correction"]} if "bias_correction" in net.meta else {}),
            "curve": curve_metrics(net, res, test.y, lava, depth),
            "seconds": {"convert": t_conv, "simulate": t_sim}}


def spikingjelly_row(model, x_cal: np.ndarray, test: Split, steps: list[int], batch: int = 250,
                     progress: bool = True) -> dict:
    """SpikingJelly's ann2snn (99.9 % mode), installed in this venv, on the same model: accuracy
    after each T (the fallback when there is no peer virtualenv)."""
    import copy
    import logging

    logging.disable(logging.WARNING)
    from spikingjelly.activation_based import ann2snn, functional
    t0 = time.perf_counter()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(x_cal)), batch_size=250)
    conv = ann2snn.Converter(mode="99.9%", dataloader=_XOnly(loader))
    snn = conv(copy.deepcopy(model).eval()).eval()
    t_conv = time.perf_counter() - t0
    hits = {T: 0 for T in steps}
    with torch.no_grad():
        for s in tqdm(range(0, len(test.x), batch), desc="spikingjelly", disable=not progress, leave=False):
            xb = torch.as_tensor(test.x[s:s + batch])
            yb = torch.as_tensor(test.y[s:s + batch])
            functional.reset_net(snn)
            acc = 0
            for t in range(1, max(steps) + 1):
                acc = acc + snn(xb)
                if t in hits:
                    hits[t] += int((acc.argmax(1) == yb).sum())
    version = _sj_version()
    return {"label": f"SpikingJelly {version} ann2snn 99.9%",
            "curve": {T: {"accuracy": hits[T] / len(test.x)} for T in steps},
            "seconds": {"convert": t_conv, "simulate": time.perf_counter() - t0 - t_conv}, "version": version}


class _XOnly:
    """A loader of ``(x,)`` batches seen as ``(x, label)`` (SpikingJelly unpacks two)."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def __iter__(self):
        for (x,) in self.loader:
            yield x, torch.zeros(len(x), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.loader)


def _sj_version() -> Optional[str]:
    try:
        from importlib.metadata import version
        return version("spikingjelly")
    except Exception:       # noqa: BLE001
        return None


class PeerFailed(Exception):
    """The peer subprocess failed or timed out (the message says how)."""


def peer_rows(recipe, width: float, weights: Path, x_cal: np.ndarray, test: Split, steps: list[int],
              venv: Path, timeout: float, recipes: Optional[list[str]] = None) -> dict:
    """SpikingJelly 2.0's recipes on the same checkpoint and images: ``benchmarks/peer_spikingjelly.py``
    run by the peer virtualenv's Python (``venv``) in a subprocess, given the architecture's file
    (``recipe.build``'s), ``width``, ``weights`` and an ``.npz`` of ``x_cal`` and the test images. Returns
    its JSON, each row labelled ``spikingjelly <version> <recipe>`` and marked ``peer`` (``recipes``: the
    peer's ``--recipes``, by default its own choice); raises
    :class:`PeerFailed` on a non-zero exit or after ``timeout`` seconds (the subprocess is killed)."""
    with tempfile.TemporaryDirectory(prefix="neurosim-peer-") as tmp:
        data, answer = Path(tmp) / "images.npz", Path(tmp) / "peer.json"
        np.savez(data, x_cal=np.asarray(x_cal, np.float32), x_test=np.asarray(test.x, np.float32),
                 y_test=np.asarray(test.y, np.int64))
        cmd = [str(venv / "bin" / "python"), str(PEER_SCRIPT), "--arch", inspect.getsourcefile(recipe.build),
               "--width", str(width), "--weights", str(weights), "--data", str(data),
               "--steps", ",".join(map(str, steps)), "--threads", str(torch.get_num_threads()), "--out", str(answer),
               *(["--recipes", ",".join(recipes)] if recipes else [])]
        try:
            proc = subprocess.run(cmd, timeout=timeout, stderr=subprocess.PIPE, text=True)
        except subprocess.TimeoutExpired:
            raise PeerFailed(f"no answer within {timeout:.0f} s (--peer-timeout)") from None
        if proc.returncode != 0:
            last = [line for line in proc.stderr.splitlines() if line.strip()][-3:]
            raise PeerFailed(f"exit code {proc.returncode}: " + " | ".join(last))
        out = json.loads(answer.read_text())
    version = out["versions"]["spikingjelly"]
    for row in out["rows"]:
        row.update(label=f"spikingjelly {version} {row['label']}", peer=True, version=version)
    return out


def _peer_venv(arg: Optional[str]) -> Optional[Path]:
    """``--peer-venv``: the given folder (it must hold ``bin/python``), ``none``, or by default
    ``.venv-peer`` where it exists."""
    if arg is None:
        return PEER_VENV if (PEER_VENV / "bin" / "python").is_file() else None
    if arg == "none":
        return None
    venv = Path(arg)
    if not (venv / "bin" / "python").is_file():
        sys.exit(f"error: --peer-venv {arg}: no bin/python there (make it with scripts/setup_peer.sh)")
    return venv


# ----------------------------------------------------------------------------- speed

#: The setting timed by ``--speed``: the conversion SpikingJelly 2.0's ``rate-channel-half-99.9``
#: recipe makes (per-channel 99.9th percentile, θ/2, soft reset, the image as the first layer's current).
SPEED_SETTING = Setting("soft", "channel-percentile", True, percentile=99.9, input_coding="analog")
SPEED_PEER_RECIPE = "rate-channel-half-99.9"
DEFAULT_EXECUTOR = "neurosim fixed"
#: the default executor with ``until_readout`` (each layer runs the steps that reach the readout)
UNTIL_READOUT_EXECUTOR = "neurosim fixed, until readout"


def speed(runs: Path, name: str = "mnist_cnn", batch: int = 500, steps: int = 64, repeats: int = 5,
          papers_t: bool = False, peer_venv: Optional[Path] = None, timeout: float = PEER_TIMEOUT,
          progress: bool = True) -> dict:
    """Samples/s on the checkpoint ``<runs>/<name>``, batch ``batch`` (the first test images), the
    machine's threads (torch and numba both use them): neurosim's simulator on
    :data:`SPEED_SETTING` (fixed and float; for a net with pools also with its pools as layers,
    SpikingJelly's structure; fixed point also ``until_readout``: each layer only for the steps
    whose spikes reach the readout) against SpikingJelly. ``steps`` is T; with ``papers_t`` neurosim
    runs T + D steps (every layer integrates T: D is the readout's depth) where SpikingJelly
    runs T. SpikingJelly 2.0 is timed in its virtualenv (``peer_venv``: one
    :func:`peer_rows` call per round, recipe :data:`SPEED_PEER_RECIPE`, its simulation seconds;
    its conversion is not timed), else the SpikingJelly installed here, if any. The executors take
    turns, ``repeats`` rounds of one timed run each, so a change of the machine's speed hits all
    of them alike; reported: the best and the median of each, and per round the ratio of
    SpikingJelly's time to neurosim's fixed-point runs, without and with ``until_readout`` (their
    median, min and max)."""
    model, result, recipe = load_model(runs / name)
    tr, te = load_dataset(recipe.DATASET)
    x_cal = tr.x[np.sort(np.random.default_rng(0).permutation(len(tr.x))[:CALIB_SAMPLES])]
    test = Split(te.name, te.x[:batch], te.y[:batch])
    shape = tuple(te.x.shape[1:])
    runners, sim_steps = {}, {}
    layers_folded = None
    for fold in (True, False):                 # pools folded (the default) / pools as layers (SJ's structure)
        net = convert_setting(model, replace(SPEED_SETTING, fold_pool=fold), x_cal, shape)
        if not fold and len(net.layers) == layers_folded:
            break                              # no pools: the same net
        layers_folded = len(net.layers)
        n = steps + (papers_depth(net) if papers_t else 0)
        for mode in ("fixed", "float"):
            sim = Simulator(net, mode)
            sim.run(test.x[:16], n)                              # compile and warm up
            key = f"neurosim {mode}" + ("" if fold else ", pools as layers")
            sim_steps[key] = n
            runners[key] = lambda sim=sim, n=n: _timed(lambda: sim.run(test.x, n, per_neuron=False))
            if fold and mode == "fixed":       # the same run, each layer only for the steps that reach the readout
                sim_steps[UNTIL_READOUT_EXECUTOR] = n
                runners[UNTIL_READOUT_EXECUTOR] = lambda sim=sim, n=n: _timed(
                    lambda: sim.run(test.x, n, per_neuron=False, until_readout=True))
    peer_version: dict = {}
    if peer_venv is not None:
        def peer() -> float:
            out = peer_rows(recipe, result["width"], runs / name / "weights.pt", x_cal, test, [steps], peer_venv,
                            timeout, recipes=[SPEED_PEER_RECIPE])
            peer_version["spikingjelly"] = out["versions"]["spikingjelly"]
            return out["rows"][0]["seconds"]["simulate"]
        runners["spikingjelly"] = peer
    else:
        sj = _spikingjelly_runner(model, x_cal, test.x, steps)
        if sj is not None:
            runners["spikingjelly"], peer_version["spikingjelly"] = sj, _sj_version()
    if "spikingjelly" in runners:
        sim_steps["spikingjelly"] = steps
    times = {k: [] for k in runners}
    for _ in tqdm(range(repeats), desc="speed rounds", leave=False, disable=not progress):
        for k, fn in runners.items():
            times[k].append(fn())
    out = {"model": name, "batch": batch, "steps": steps, "papers_t": papers_t, "setting": SPEED_SETTING.label,
           "steps_run": sim_steps, "threads": torch.get_num_threads(), "repeats": repeats,
           "spikingjelly": peer_version.get("spikingjelly"), "load_average": os.getloadavg(),
           "samples_per_s": {k: batch / min(v) for k, v in times.items()},
           "median_samples_per_s": {k: batch / float(np.median(v)) for k, v in times.items()},
           "seconds": times}
    if "spikingjelly" in runners:
        for field, key in (("default_over_spikingjelly", DEFAULT_EXECUTOR),
                           ("until_readout_over_spikingjelly", UNTIL_READOUT_EXECUTOR)):
            ratio = np.array(times["spikingjelly"]) / np.array(times[key])
            out[field] = {"median": float(np.median(ratio)), "min": float(ratio.min()), "max": float(ratio.max())}
    return out


def _spikingjelly_runner(model, x_cal: np.ndarray, x: np.ndarray, steps: int) -> Optional[Callable[[], float]]:
    """A timed run of the SpikingJelly installed in this venv (``ann2snn.Converter``, 99.9 % mode) on
    ``x`` for ``steps`` steps, or None where it is not installed."""
    try:
        from spikingjelly.activation_based import ann2snn, functional
    except ImportError:
        return None
    import copy
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(x_cal)), batch_size=250)
    snn = ann2snn.Converter(mode="99.9%", dataloader=_XOnly(loader))(copy.deepcopy(model).eval()).eval()
    xt = torch.as_tensor(x)

    @torch.no_grad()
    def run() -> None:
        functional.reset_net(snn)
        acc = 0
        for _ in range(steps):
            acc = acc + snn(xt)
    run()
    return lambda: _timed(run)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- report

def _pct(a: Optional[float]) -> str:
    return "–" if a is None else f"{100 * a:.2f}"


def tables(results: dict) -> str:
    lines = []
    for name, m in results["models"].items():
        steps = [int(t) for t in results["steps"]]
        ann = m["ann_accuracy"]
        lines += [f"### {name} — ANN {_pct(ann)} % ({m['test_images']} test images, {m['recipe']}, "
                  f"{m['epochs']} epochs{', QCFS L=' + str(m['qcfs_levels']) if m.get('qcfs_levels') else ''})", "",
                  *(["T is the papers' (every layer integrates T steps; SpikingJelly's T); neurosim's Lava "
                     "run lasts T + D steps, D given per row.", ""] if results.get("papers_t") else []),
                  "| setting | " + " | ".join(f"T={t}" for t in steps)
                  + " | T ≤ ANN−1 | T ≤ ANN−0.1 | best (T) | T cheaper than ANN, ≤ 1 pt |",
                  "|---|" + "---|" * (len(steps) + 4)]
        for row in m["rows"]:
            c = {int(t): v for t, v in row["curve"].items()}
            s = row.get("summary", {})
            label = row["label"] + (f" (Lava T + {row['readout_depth']})" if row.get("papers_t") else "")
            lines.append(f"| {label} | " + " | ".join(_pct(c[t]["accuracy"]) for t in steps)
                         + (f" | {s.get('t_within_1') or '–'} | {s.get('t_within_0.1') or '–'} | "
                            f"{_pct(s.get('best'))} ({s.get('t_best')}) | {s.get('t_cheaper_within_1') or '–'} |"
                            if s else " | | | | |"))
        if m.get("peer"):
            pe = m["peer"]
            v = pe["versions"]
            calib = ("thresholds: the checkpoint's trained λ" if m.get("qcfs_levels") else
                     f"calibration {pe['calib_images']:,} images, batch {pe['calib_batch']} (local threshold "
                     f"balancing: {pe['ltb_passes']} passes); its ANN {_pct(pe['ann_accuracy'])} %")
            lines += ["", f"Peer: SpikingJelly {v['spikingjelly']} in its own venv (Python {v['python']}, torch "
                      f"{v['torch']}, {pe['threads']} threads), single-step mode, batch {pe['batch']}; {calib}; "
                      f"load average {pe['load_average_start'][0]:.1f} → {pe['load_average_end'][0]:.1f}. "
                      f"Samples/s over the whole run (T = {max(steps)}): "
                      + ", ".join(f"{r['label']} {r['samples_per_s']:.1f}" for r in m["rows"] if r.get("peer"))]
        ref = next((r for r in m["rows"] if r["label"].startswith(("soft percentile θ/2" if m.get("qcfs_levels")
                                                                   else "soft percentile"))), None)
        if ref is not None and "synops" in next(iter(ref["curve"].values())):
            c = {int(t): v for t, v in ref["curve"].items()}
            lines += ["", f"SynOps and energy per sample, setting *{ref['label']}* "
                      f"(ANN: {m['ann_macs']:,} MACs = {c[steps[0]]['ann_j_45nm'] * 1e6:.3f} µJ at 45 nm):", "",
                      "| T | " + " | ".join(str(t) for t in steps) + " |", "|---|" + "---|" * len(steps),
                      "| spikes | " + " | ".join(f"{c[t]['spikes']:,.0f}" for t in steps) + " |",
                      "| SynOps | " + " | ".join(f"{c[t]['synops']:,.0f}" for t in steps) + " |",
                      "| SNN / ANN energy (45 nm) | " + " | ".join(
                          f"{c[t]['snn_j_45nm'] / c[t]['ann_j_45nm']:.2f}" for t in steps) + " |",
                      "| Loihi energy (µJ) | " + " | ".join(f"{c[t]['snn_j_loihi'] * 1e6:.2f}" for t in steps) + " |"]
        lines.append("")
    if results.get("speed"):
        sp = results["speed"]
        med = sp.get("median_samples_per_s", {})
        run = sp.get("steps_run", {})
        lines += [f"### Speed: {sp.get('model', 'mnist_cnn')}, batch {sp['batch']}, T = {sp['steps']}"
                  f"{' (papers’ T)' if sp.get('papers_t') else ''}, {sp['threads']} threads, "
                  f"{sp.get('repeats', 1)} interleaved rounds"
                  + (f", setting {sp['setting']}" if sp.get("setting") else ""), "",
                  "| executor | steps run | samples/s (best) | samples/s (median) |", "|---|---|---|---|"]
        lines += [f"| {k}{' ' + sp['spikingjelly'] if k == 'spikingjelly' and sp.get('spikingjelly') else ''} | "
                  f"{run.get(k, sp['steps'])} | {'–' if v is None else f'{v:.1f}'} | "
                  f"{f'{med[k]:.1f}' if med.get(k) is not None else '–'} |" for k, v in sp["samples_per_s"].items()]
        for field, what in (("default_over_spikingjelly", "neurosim's (fixed point)"),
                            ("until_readout_over_spikingjelly", "neurosim's until the readout")):
            if sp.get(field):
                r = sp[field]
                lines += ["", f"SpikingJelly's time over {what}, per round: "
                          f"{r['median']:.2f}× (min {r['min']:.2f}×, max {r['max']:.2f}×)"]
    return "\n".join(lines) + "\n"


def plot(name: str, m: dict, steps: list[int], path: Path, papers_t: bool = False) -> None:
    """Accuracy against T for every row: the whole range (left) and near the ANN (right); with
    ``papers_t`` a top axis gives the Lava latency T + D of the first row's readout depth D."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ann = 100 * m["ann_accuracy"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, lo in zip(axes, (0.0, max(0.0, ann - 25))):
        for row in m["rows"]:
            c = {int(t): v for t, v in row["curve"].items()}
            style = ":" if row.get("peer") else ("--" if "hard" in row["label"]
                                                 else ("k:" if "SpikingJelly" in row["label"] else "-"))
            ts = [t for t in steps if t in c]
            ax.plot(ts, [100 * c[t]["accuracy"] for t in ts], style, marker=".", label=row["label"], lw=1.2)
        ax.axhline(ann, color="grey", lw=0.8)
        ax.axhline(ann - 1, color="grey", lw=0.5, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("time steps T (papers' T: every layer integrates T steps)" if papers_t
                      else "time steps T (Lava semantics: one step of delay per layer)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(lo, ann + 2 if lo > 0 else 100)
        depth = m["rows"][0].get("readout_depth") if m["rows"] else None
        if papers_t and depth is not None:
            top = ax.secondary_xaxis("top", functions=(lambda t, d=depth: t + d, lambda l, d=depth: l - d))
            top.set_xticks([t + depth for t in steps], [str(t + depth) for t in steps], fontsize=7)
            top.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            top.set_xlabel(f"Lava latency T + D (steps; D = {depth}, {m['rows'][0]['label']})", fontsize=8)
    axes[0].set_title(f"{name}: ANN {ann:.2f} % (grey), ANN − 1 (dotted)")
    axes[1].set_title("near the ANN")
    axes[1].legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    write_png(path, fig)


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench",
                   help="folder of trained recipe runs (one sub-folder per model)")
    p.add_argument("--models", default=None, help="comma-separated sub-folders of --runs (default: all)")
    p.add_argument("--test-limit", type=int, default=1000, help="first N test images (default 1000)")
    p.add_argument("--steps", default=",".join(map(str, STEPS)), help="T values (one run of the largest)")
    p.add_argument("--grid", choices=GRIDS, default="core", help="settings (see grid(); default core)")
    p.add_argument("--correction-passes", type=int, default=1,
                   help="--grid corrected: measure and correct each layer this many times (convert's "
                        "bias_correction_passes; default 1)")
    p.add_argument("--papers-t", action="store_true",
                   help="--steps are the papers' (and SpikingJelly's) T, the steps every layer integrates: neurosim "
                        "reads its readout after T + D Lava steps (D: the readout's depth, recorded per row)")
    p.add_argument("--no-spikingjelly", action="store_true", help="skip the SpikingJelly peer rows")
    p.add_argument("--peer-venv", default=None, metavar="PATH",
                   help="virtualenv of the SpikingJelly 2.0 peer (benchmarks/peer_spikingjelly.py; make it with "
                        "scripts/setup_peer.sh); default .venv-peer where it exists; 'none': the fallback row of a "
                        "SpikingJelly installed in this venv")
    p.add_argument("--peer-timeout", type=float, default=PEER_TIMEOUT,
                   help=f"seconds the peer may take per model (default {PEER_TIMEOUT}; ~0.3 s per test image "
                        "and recipe at T = 64 for the ResNet-20 on 2 cores)")
    p.add_argument("--speed", action="store_true", help="measure samples/s (<runs>/<--speed-model>) at the end, "
                   "neurosim against SpikingJelly in interleaved rounds; alone (without --models) only that")
    p.add_argument("--speed-model", default="mnist_cnn", help="checkpoint folder under --runs timed by --speed "
                   "(default mnist_cnn)")
    p.add_argument("--speed-batch", type=int, default=500, help="test images per timed run (default 500)")
    p.add_argument("--speed-steps", type=int, default=64,
                   help="T of the timed runs (default 64; with --papers-t neurosim runs T + D steps)")
    p.add_argument("--speed-rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default benchmarks/results/conversion-<time>); "
                   "settings already in its results.json (same --steps and --test-limit) are kept, not rerun")
    p.add_argument("--device", type=device_arg, default="cpu",
                   help="where calibration and the float-precision settings' synaptic maps compute (fixed point "
                        "is CPU code): cpu, cuda, cuda:N or auto")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        resolve_device(args.device)             # no GPU for --device cuda: one line, before any work
    except NeurosimError as exc:
        p.error(str(exc))
    if args.correction_passes < 1 or (args.correction_passes != 1 and args.grid != "corrected"):
        p.error(f"--correction-passes {args.correction_passes}: a number >= 1, for --grid corrected only")
    progress = not args.no_progress
    peer_venv = None if args.no_spikingjelly else _peer_venv(args.peer_venv)
    steps = sorted({int(s) for s in args.steps.split(",")})
    out = args.out or HERE / "results" / f"conversion-{_dt.datetime.now():%Y-%m-%d_%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    if args.models:
        names = args.models.split(",")
    elif args.speed or not args.runs.is_dir():          # --speed alone: only the speed table
        names = []
    else:
        names = sorted(d.name for d in args.runs.iterdir() if (d / "weights.pt").is_file())
    if not names and not args.speed:
        sys.exit(f"error: no trained models under {args.runs} (train with python -m models.<recipe> --out ...)")
    results = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "steps": steps,
               "papers_t": args.papers_t,
               "grid": args.grid, "test_limit": args.test_limit, "calib_samples": CALIB_SAMPLES,
               "percentile": DEFAULT_PERCENTILE, "snn_rule_steps": SNN_RULE_STEPS,
               "machine": {"python": platform.python_version(), "torch": torch.__version__,
                           "cpus": os.cpu_count(), "threads": torch.get_num_threads()},
               "started": _dt.datetime.now().isoformat(timespec="seconds"), "models": {}}
    previous = {}
    if (out / "results.json").is_file():                  # resume: keep the settings already measured
        old = json.loads((out / "results.json").read_text())
        if (old.get("steps") == steps and old.get("test_limit") == args.test_limit
                and old.get("papers_t", False) == args.papers_t):
            previous = old.get("models", {})
    save = lambda: write_json(out / "results.json", results)  # noqa: E731
    data_cache: dict = {}
    try:
        for name in names:
            model, result, recipe = load_model(args.runs / name)
            if recipe.DATASET not in data_cache:
                data_cache[recipe.DATASET] = load_dataset(recipe.DATASET)
            tr, te = data_cache[recipe.DATASET]
            test = Split(te.name, te.x[:args.test_limit], te.y[:args.test_limit])
            x_cal = tr.x[np.sort(np.random.default_rng(0).permutation(len(tr.x))[:CALIB_SAMPLES])]
            ann = accuracy(model, test.x, test.y)
            qcfs = bool(result.get("qcfs_levels"))
            m = results["models"][name] = {"recipe": result["recipe"], "epochs": result["epochs_done"],
                                           "qcfs_levels": result.get("qcfs_levels"), "width": result["width"],
                                           "ann_accuracy": ann, "ann_accuracy_full_test": result["test_acc"],
                                           "test_images": len(test.y), "rows": []}
            print(f"{name}: ANN {100 * ann:.2f} % on {len(test.y)} test images", flush=True)
            done = {r["label"]: r for r in previous.get(name, {}).get("rows", [])}
            for setting in grid(args.grid, qcfs, max(steps), args.correction_passes):
                if setting.label in done:
                    m["rows"].append(done[setting.label])
                    m["ann_macs"] = done[setting.label]["ann_macs"]
                    continue
                row = neurosim_row(model, setting, x_cal, test, steps, progress, args.papers_t, args.device)
                row["summary"] = summary({int(t): v for t, v in row["curve"].items()}, ann)
                m["ann_macs"] = row["ann_macs"]
                m["rows"].append(row)
                c = row["curve"]
                print(f"  {setting.label:34s} " + " ".join(f"{100 * c[t]['accuracy']:6.2f}" for t in steps)
                      + f"   ({row['seconds']['simulate']:.0f} s)", flush=True)
                save()
            peer_done = [r for r in previous.get(name, {}).get("rows", []) if r.get("peer")]
            sj_done = next((r for r in previous.get(name, {}).get("rows", [])
                            if "SpikingJelly" in r["label"] and not r.get("peer")), None)
            if peer_venv is not None and peer_done:
                m["rows"] += peer_done
                m["peer"] = previous[name].get("peer")
            elif peer_venv is not None:
                try:
                    pe = peer_rows(recipe, result["width"], args.runs / name / "weights.pt", x_cal, test, steps,
                                   peer_venv, args.peer_timeout)
                except PeerFailed as exc:
                    m["peer_error"] = str(exc)
                    print(f"  SpikingJelly peer ({peer_venv}) failed: {exc}", flush=True)
                else:
                    for row in pe["rows"]:
                        row["summary"] = summary({int(t): {**v, "snn_j_45nm": math.inf, "ann_j_45nm": 0.0}
                                                  for t, v in row["curve"].items()}, ann)
                    m["rows"] += pe.pop("rows")
                    m["peer"] = pe
                    if not qcfs and pe["ann_accuracy"] != ann:
                        print(f"  note: the peer's ANN gives {_pct(pe['ann_accuracy'])} % on the same images "
                              f"(torch {pe['versions']['torch']})", flush=True)
                    save()
            elif sj_done is not None and not args.no_spikingjelly:
                m["rows"].append(sj_done)
            elif not args.no_spikingjelly and not qcfs:
                try:
                    row = spikingjelly_row(model, x_cal, test, steps, progress=progress)
                except ImportError:
                    print("  SpikingJelly not installed (pip install -e .[bench]): peer row skipped")
                else:
                    row["summary"] = summary({int(t): {**v, "snn_j_45nm": math.inf, "ann_j_45nm": 0.0}
                                              for t, v in row["curve"].items()}, ann)
                    m["rows"].append(row)
                    print(f"  {row['label']:34s} " + " ".join(f"{100 * row['curve'][t]['accuracy']:6.2f}"
                                                            for t in steps), flush=True)
                    save()
            plot(name, m, steps, out / f"{name}.png", args.papers_t)
        if args.speed:
            results["speed"] = speed(args.runs, args.speed_model, args.speed_batch, args.speed_steps,
                                     args.speed_rounds, args.papers_t, peer_venv, args.peer_timeout, progress)
            print(json.dumps(results["speed"], indent=1))
    finally:
        results["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
        save()
        write_text(out / "report.md", f"# Conversion benchmark\n\nCommand: `{results['command']}`\n\n" + tables(results))
    print(tables(results))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
