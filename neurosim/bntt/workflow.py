"""``neurosim train-bntt``: train a BNTT net, export it, and measure it as the main job does.

Writes into the output folder: ``bntt.pt`` (the resumable checkpoint), ``network.net`` (the
fixed-point netlist, :mod:`neurosim.bntt.fold`), ``report.json`` / ``report.png`` (the main
job's report, :func:`neurosim.evaluate.evaluate`, on the test images' seeded input spikes)
with a ``bntt`` section: the SLAYER model's own accuracy in eval mode, the float and fixed
netlists' accuracy on the same spikes (the accuracy lost to fixed point), training history,
the gamma profile and the early-exit sweep (simulator; Lava on the first samples).

``device`` is where the SLAYER model trains and where its own accuracy is measured
(:mod:`neurosim.device`); the export, the simulator's runs (float and fixed point) and Lava
stay on the CPU.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from neurosim.architectures.bntt import ARCHS
from neurosim.bntt.early_exit import (DEFAULT_ALPHA, DEFAULT_TOLERANCE, calibrated_exit_step, exit_step,
                                      gamma_profile, sweep)
from neurosim.bntt.encoding import (CALIBRATION_STREAM, META_KEY, TEST_STREAM, event_encoding, image_encoding,
                                    image_spikes, seeded_generator)
from neurosim.bntt.fold import export, netlist_input
from neurosim.bntt.train import NMNIST_DURATION_US, BNTTConfig, Data, load_data, process_device, train_bntt
from neurosim.data.dataset import Split
from neurosim.device import DEFAULT_DEVICE
from neurosim.dynamics import MODES
from neurosim.errors import NeurosimError
from neurosim.evaluate import LAVA_ALL, evaluate, write_report
from neurosim.netlist import hdf5
from neurosim.sim.simulator import Simulator

NETLIST_NAME = "network.net"
ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
#: Training images the calibrated exit (:func:`neurosim.bntt.early_exit.calibrated_exit_step`) is chosen on.
CALIBRATION_SAMPLES = 1000
#: Samples per forward pass when the SLAYER model's own accuracy is measured.
EVAL_BATCH = 256


def _seeded_spikes(data: Data, x: np.ndarray, steps: int, seed: int, stream: int) -> torch.Tensor:
    """Input spikes (N, C, H, W, T) of the rows ``x``: binned events as they are, images by
    :func:`neurosim.bntt.encoding.image_spikes` (what ``neurosim run`` rebuilds from the metadata)."""
    if data.events:
        return data.spikes(x, steps, seeded_generator(seed, stream))
    return image_spikes(x, data.mean, data.std, steps, seed, stream)


def test_spikes(data: Data, steps: int, seed: int, limit: Optional[int]) -> tuple[torch.Tensor, np.ndarray]:
    """Seeded input spikes (N, C, H, W, T) of the first ``limit`` test samples, and labels."""
    return _seeded_spikes(data, data.xt[:limit], steps, seed, TEST_STREAM), data.yt[:limit]


def calibration_spikes(data: Data, steps: int, seed: int, n: int = CALIBRATION_SAMPLES
                       ) -> tuple[torch.Tensor, np.ndarray]:
    """Seeded input spikes (N, C, H, W, T) of the last ``n`` training samples (seen in
    training; never test samples), and their labels: what the calibrated exit is chosen on."""
    return _seeded_spikes(data, data.x[-n:], steps, seed, CALIBRATION_STREAM), data.y[-n:]


@torch.no_grad()
def model_accuracy(model: torch.nn.Module, spikes: torch.Tensor, labels: np.ndarray, device: torch.device,
                   batch_size: int = EVAL_BATCH) -> float:
    """Accuracy of ``model`` (eval mode) on input spikes (N, C, H, W, T), :data:`EVAL_BATCH` samples
    at a time on ``device``; the model is left where it was."""
    home = next(model.parameters()).device
    model.eval().to(device)
    preds = torch.cat([model(spikes[s:s + batch_size].to(device)).argmax(1).cpu()
                       for s in range(0, len(spikes), batch_size)])
    model.to(home)
    return float((preds.numpy() == labels).mean())


def check_config(cfg: BNTTConfig) -> None:
    """Refuse an unknown architecture (:mod:`neurosim.architectures.bntt`) or a leak outside (0, 1]."""
    if cfg.arch not in ARCHS:
        raise NeurosimError(f"--arch must be one of {', '.join(ARCHS)}, got '{cfg.arch}'")
    if not 0 < cfg.leak <= 1:
        raise NeurosimError(f"--leak must be in (0, 1], got {cfg.leak}")


def launch_rank() -> int:
    """This process's rank in a ``torchrun`` launch (``RANK``), 0 outside one: only rank 0 measures."""
    return int(os.environ.get("RANK", "0"))


def train_and_deploy(cfg: BNTTConfig, out_dir: Path, *, report_limit: Optional[int] = 2000,
                     lava_samples: Union[int, str] = 3, lava_timeout: Optional[float] = None,
                     lava_workers: int = 1, lava_modes: Sequence[str] = MODES,
                     alphas: Sequence[float] = ALPHAS,
                     tolerance: float = DEFAULT_TOLERANCE, progress: bool = True, measure: bool = True,
                     device: Union[str, torch.device] = DEFAULT_DEVICE) -> dict:
    """Train (resuming ``out_dir/bntt.pt``) on ``device``, export and measure; ``measure=False``
    (the other processes of a ``torchrun`` launch) returns after training with ``{}``. Checks
    ``cfg`` and the device first (:func:`check_config`, :func:`neurosim.bntt.train.process_device`),
    before any data is loaded."""
    check_config(cfg)
    dev = process_device(device)
    t0 = time.time()
    out_dir = Path(out_dir)
    data = load_data(cfg)
    model, state = train_bntt(cfg, out_dir, progress=progress, data=data, device=dev,
                              on_epoch=lambda r: print(_epoch_line(r, cfg.epochs), flush=True))
    t_train = time.time() - t0
    if not measure:
        return {}
    spikes, labels = test_spikes(data, cfg.steps, cfg.seed, report_limit)
    model_acc = model_accuracy(model, spikes, labels, dev)
    net = export(model, "fixed")
    latency = int(net.meta["latency"])
    net.meta.update({"dataset": cfg.dataset, "input": "signed Poisson spikes as 2C channels"
                     if model.signed_input else "binned events",
                     META_KEY: event_encoding(NMNIST_DURATION_US, cfg.steps, latency) if data.events
                     else image_encoding(data.mean, data.std, cfg.seed, cfg.steps, latency)})
    path = hdf5.save(net, out_dir / NETLIST_NAME)
    x = netlist_input(spikes, model.signed_input, latency)
    run_steps = x.shape[1]
    test = Split(f"{cfg.dataset}/test spikes", x, labels)
    curve = [latency + t for t in range(1, cfg.steps + 1)]
    saved = hdf5.load(path)                            # the netlist as a user reads it back
    report = evaluate(saved, test, run_steps, sweep=curve, lava_samples=lava_samples,
                      lava_timeout=lava_timeout, progress=progress, lava_workers=lava_workers, lava_modes=lava_modes)
    n_lava = len(labels) if lava_samples == LAVA_ALL else min(int(lava_samples), len(labels))
    float_acc = float(np.mean(Simulator(export(model, "float"), "float").run(x, run_steps).predictions == labels))
    acc_at = {t - latency: a for t, a in ((int(k), v) for k, v in report["accuracy_vs_timesteps"].items())
              if t - latency >= 1}
    bntt = {"config": state["config"], "device": str(dev), "history": state["history"], "model_accuracy": model_acc,
            "float_netlist_accuracy": float_acc, "fixed_netlist_accuracy": report["snn_accuracy"],
            "fixed_point_loss": float_acc - report["snn_accuracy"], "latency_steps": latency,
            "accuracy_vs_trained_step": {str(k): v for k, v in sorted(acc_at.items())}}
    if model.norm_mode == "bntt":
        bntt["gamma_profile"] = gamma_profile(model).tolist()
        bntt["early_exit"] = sweep(model, acc_at, alphas)
        t_exit = exit_step(model, DEFAULT_ALPHA)
        bntt["early_exit_default"] = {"alpha": DEFAULT_ALPHA, "exit_step": t_exit, "lava_steps": t_exit + latency,
                                      "lava_latency_saved": 1 - (t_exit + latency) / (cfg.steps + latency)}
        if n_lava > 0:
            bntt["early_exit_default"].update(_lava_early_exit(report, t_exit + latency))
    # the calibrated exit (not the paper's rule): chosen on training samples, measured on the test ones
    cal_spikes, cal_labels = calibration_spikes(data, cfg.steps, cfg.seed)
    cal = Simulator(saved, "fixed").run(netlist_input(cal_spikes, model.signed_input, latency), run_steps,
                                                  readout_steps=curve, per_neuron=False)
    cal_at = {t - latency: a for t, a in cal.accuracy_at(cal_labels).items()}
    t_cal = calibrated_exit_step(cal_at, tolerance)
    bntt["calibrated_exit"] = {"tolerance": tolerance, "calibration_samples": len(cal_labels), "exit_step": t_cal,
                               "calibration_accuracy": cal_at[t_cal], "calibration_full_accuracy": cal_at[cfg.steps],
                               "accuracy": acc_at[t_cal], "full_accuracy": acc_at[cfg.steps],
                               "latency_saved": 1 - t_cal / cfg.steps, "lava_steps": t_cal + latency,
                               "lava_latency_saved": 1 - (t_cal + latency) / (cfg.steps + latency)}
    if n_lava > 0:
        bntt["calibrated_exit"].update(_lava_early_exit(report, t_cal + latency))
    report["bntt"] = bntt
    report["netlist"] = str(path)
    report["seconds"].update({"train": t_train, "total": time.time() - t0})
    json_path, png_path = write_report(report, out_dir)
    report["report_paths"] = [str(json_path), str(png_path)]
    return report


def _lava_early_exit(report: dict, steps: int) -> dict:
    """The Lava check had the run stopped after ``steps`` steps (``fixed_pt``, or the first mode
    checked): the report's Lava run read there (:func:`neurosim.evaluate.lava_check`, its
    ``lava_at_timesteps``; spikes compared in the first ``steps`` steps of every layer)."""
    at = report["lava_at_timesteps"][str(steps)]
    tag = "fixed_pt" if "fixed_pt" in at else next(iter(at))
    return {"lava_mode": tag, "lava_samples": report["lava_samples"],
            "lava_spike_samples": report["lava_spike_samples"],
            "lava_spike_mismatches": at[tag]["spike_mismatches"], "lava_accuracy": at[tag]["accuracy"],
            "simulator_accuracy": at[tag]["simulator_accuracy"],
            "lava_prediction_mismatches": at[tag]["prediction_mismatches"]}


def _epoch_line(rec: dict, epochs: int) -> str:
    return (f"epoch {rec['epoch']}/{epochs}: loss {rec['loss']:.4f} train {rec['train_acc']:.4f}"
            + (f" test {rec['test_acc']:.4f}" if "test_acc" in rec else "") + f" lr {rec['lr']:.3g} "
            f"{rec['seconds']:.1f} s")
