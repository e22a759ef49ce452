"""The main job (train an ANN on digits, convert it to RMP, export the netlist, measure it), and
the same for a user's own trained model (:func:`convert_and_measure`)."""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from neurosim.ann.train import TrainConfig, accuracy, load_checkpoint, recipe, train
from neurosim.architectures import digits_cnn
from neurosim.convert.rmp import convert
from neurosim.convert import DEFAULT_PERCENTILE, DEFAULT_RULE
from neurosim.data.dataset import CLASSES, IMAGE_SHAPES, Split, load_dataset
from neurosim.dynamics import MODES
from neurosim.errors import NeurosimError
from neurosim.evaluate import LAVA_ALL, evaluate, write_report
from neurosim.convert.graph import connections, trace
from neurosim.metrics.workload import AnnLayer, ann_layers_to_meta
from neurosim.netlist import hdf5
from neurosim.user_model import check_takes, load_user_model

NETLIST_NAME = "network.net"
CHECKPOINT_NAME = "ann.pt"
#: The main job's training recipe for :mod:`neurosim.architectures.digits_cnn`, and its time steps.
#: The activity penalty (:class:`~neurosim.ann.train.ActivityL1`) makes the converted SNN cheaper
#: than its ANN at the operating point (docs/energy.md, "The main job").
DIGITS_RECIPE = TrainConfig(epochs=60, batch_size=64, lr=2e-3, weight_decay=1e-4, seed=0, activity_l1=3e-4)
DIGITS_STEPS = 64


def export_and_measure(out_dir: Path, steps: Optional[int] = None, epochs: Optional[int] = None,
                       activity_l1: Optional[float] = None, seed: Optional[int] = None,
                       rule: str = DEFAULT_RULE, percentile: float = DEFAULT_PERCENTILE,
                       lava_samples: Union[int, str] = LAVA_ALL,
                       lava_timeout: Optional[float] = None, retrain: bool = False,
                       progress: bool = True, *, reset: str = "soft", v_init_half: Optional[bool] = None,
                       alpha: float = 1.0, fold_pool: bool = True, align_bias: bool = True,
                       align_joins: bool = True, readout_reset: Optional[str] = None, input_coding: str = "spikes",
                       bias_correction: Optional[int] = None, bias_correction_passes: int = 1,
                       calib_samples: Optional[int] = None,
                       limit: Optional[int] = None,
                       sweep: Optional[Sequence[int]] = None) -> dict:
    """Run the whole path on the embedded digits data set; return the report (also written).

    The conversion options are :func:`neurosim.convert.rmp.convert`'s; ``calib_samples``
    (default: all 1,437 training images) picks the calibration images as ``convert`` does,
    ``limit`` measures on the first test images only; ``v_init_half=None``: on (θ/2, the main job's
    setting; docs/energy.md, "The main job"). ``epochs``, ``activity_l1`` and ``seed`` replace the
    recipe's (:data:`DIGITS_RECIPE`); a checkpoint trained with another recipe is refused
    (``retrain`` replaces it)."""
    t0 = time.time()
    steps = steps or DIGITS_STEPS
    cfg = DIGITS_RECIPE if epochs is None else replace(DIGITS_RECIPE, epochs=epochs)
    if activity_l1 is not None:
        cfg = replace(cfg, activity_l1=activity_l1)
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    if cfg.epochs < 1:
        raise NeurosimError(f"--epochs must be at least 1, got {cfg.epochs}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_split, test_split = load_dataset("digits")

    ckpt = out_dir / CHECKPOINT_NAME
    if retrain and ckpt.exists():
        ckpt.unlink()
    torch.manual_seed(cfg.seed)          # the initial weights depend on the seed alone
    model = digits_cnn.build()
    stored = load_checkpoint(ckpt) if ckpt.exists() else None
    if stored is not None:
        adopt_checkpoint(ckpt, stored, cfg, model)
    if stored is not None and int(stored["epoch"]) >= cfg.epochs:
        print(f"ANN: loaded trained checkpoint {ckpt}")
    else:
        train(model, train_split.x, train_split.y, cfg, checkpoint=ckpt, progress=progress)
    model.eval()
    if limit:
        test_split = Split(test_split.name, test_split.x[:limit], test_split.y[:limit])
    ann_acc = accuracy(model, test_split.x, test_split.y)
    t_train = time.time() - t0

    calib = calibration_images(train_split.x, calib_samples)
    net = convert(model, calib, digits_cnn.INPUT_SHAPE, rule=rule, percentile=percentile, reset=reset,
                  v_init_half=True if v_init_half is None else v_init_half, alpha=alpha, fold_pool=fold_pool, align_bias=align_bias,
                  align_joins=align_joins, readout_reset=readout_reset, snn_steps=steps, progress=progress,
                  input_coding=input_coding, bias_correction=bias_correction,
                  bias_correction_passes=bias_correction_passes)
    net.meta.update({"dataset": "digits", "timesteps": steps, "ann_accuracy": ann_acc,
                     "ann_test_samples": len(test_split), "calibration_samples": len(calib),
                     "ann_layers": ann_layers_meta(model, digits_cnn.INPUT_SHAPE)})
    netlist_path = hdf5.save(net, out_dir / NETLIST_NAME)

    report = evaluate(hdf5.load(netlist_path), test_split, steps, ann_accuracy=ann_acc, sweep=sweep,
                      lava_samples=lava_samples, lava_timeout=lava_timeout, progress=progress,
                      at_operating_point=True)
    report["netlist"] = str(netlist_path)
    report["checkpoint"] = str(ckpt)
    report["seconds"].update({"train_ann": t_train, "total": time.time() - t0})
    json_path, png_path = write_report(report, out_dir)
    report["report_paths"] = [str(json_path), str(png_path)]
    return report


def adopt_checkpoint(path: Path, ckpt: dict, cfg: TrainConfig, model: torch.nn.Module) -> None:
    """Load the weights of the checkpoint ``ckpt`` (read from ``path``) into the main job's CNN
    ``model``; refuse it unless they fit and were trained with ``cfg``'s recipe
    (:func:`~neurosim.ann.train.recipe`: every field but the epochs and the device). An
    unfinished checkpoint's training then resumes from it (:func:`~neurosim.ann.train.train`)."""
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise NeurosimError(f"{path}: does not fit this model ({str(exc).splitlines()[0][:200]}); "
                            "--retrain trains afresh (replacing it), or --out another folder") from None
    have, want = ckpt.get("recipe"), recipe(cfg)
    if have == want:
        return
    if not isinstance(have, dict):
        why = "it records no recipe (written before checkpoints did)"
    else:
        why = "its recipe differs in " + ", ".join(f"{k} ({have.get(k)!r}, now {want[k]!r})"
                                                   for k in want if have.get(k) != want[k])
    raise NeurosimError(f"{path}: not trained with the main job's recipe: {why}; "
                        "--retrain trains afresh (replacing it), or --out another folder")


def ann_layers_meta(model: torch.nn.Module, input_shape: tuple[int, ...]) -> dict:
    """The ANN's stages as the energy model's rows (netlist metadata ``ann_layers``): each conv,
    pool and dense stage's connections (its MACs, as the converter's ``ann_macs`` counts them)
    and every stage's activations (input, conv, pool, dense, residual add); its stored weights."""
    g = trace(model, input_shape, check=False)
    rows, weights = [], 0
    for k, st in enumerate(g.stages):
        if st.kind == "flatten":
            continue
        macs = connections(st, g.stages[st.inputs[0]].shape) if st.kind in ("conv", "pool", "dense") else 0
        rows.append(AnnLayer(f"{k}:{st.kind}", float(macs), int(np.prod(st.shape))))
        weights += 0 if st.weight is None or st.kind == "pool" else int(st.weight.size)
    return ann_layers_to_meta(rows, weights)


def calibration_images(x: np.ndarray, n: Optional[int]) -> np.ndarray:
    """``n`` training images for threshold balancing, drawn without replacement with a fixed
    seed and kept in their order (all of them when ``n`` is None or at least ``len(x)``)."""
    if n is None or n >= len(x):
        return x
    if n < 1:
        raise NeurosimError(f"--calib-samples must be at least 1, got {n}")
    return x[np.sort(np.random.default_rng(0).permutation(len(x))[:n])]


def convert_and_measure(model_spec: str, weights: Optional[Path], dataset: str, out_dir: Path, *,
                        data_dir: Optional[str] = None, steps: int = 64, reset: str = "soft",
                        rule: str = DEFAULT_RULE, percentile: float = DEFAULT_PERCENTILE,
                        v_init_half: Optional[bool] = None, alpha: float = 1.0, fold_pool: bool = True,
                        align_bias: bool = True, align_joins: bool = True, readout_reset: Optional[str] = None,
                        input_coding: str = "spikes", bias_correction: Optional[int] = None,
                        bias_correction_passes: int = 1, calib_samples: int = 2000,
                        limit: Optional[int] = None,
                        lava_samples: int = 5, lava_timeout: Optional[float] = None, progress: bool = True,
                        model_args: Optional[dict] = None, sweep: Optional[Sequence[int]] = None,
                        device: str = "cpu", lava_workers: int = 1,
                        lava_modes: Sequence[str] = MODES) -> dict:
    """Convert a user's trained model (``--model`` as in :mod:`neurosim.user_model`, with its
    state_dict) on a named data set and measure it as the main job does; writes
    ``network.net``, ``report.json``, ``report.png``."""
    t0 = time.time()
    model = load_user_model(model_spec, weights, model_args)
    if dataset in IMAGE_SHAPES:             # before the (for CIFAR-10, ~20 s) load of the files
        check_takes(model, np.zeros((2, *IMAGE_SHAPES[dataset]), np.float32), np.arange(CLASSES[dataset]),
                    model_spec, dataset)
    train_split, test_split = load_dataset(dataset, data_dir)
    check_takes(model, test_split.x, test_split.y, model_spec, dataset)
    if weights is None:
        print("neurosim: warning: no weights given: converting the model's untrained initial weights",
              file=sys.stderr)
    if limit:
        test_split = Split(test_split.name, test_split.x[:limit], test_split.y[:limit])
    ann_acc = accuracy(model, test_split.x, test_split.y)
    calib = calibration_images(train_split.x, calib_samples)
    net = convert(model, calib, tuple(test_split.x.shape[1:]), rule=rule, percentile=percentile, reset=reset,
                  v_init_half=v_init_half, alpha=alpha, fold_pool=fold_pool, align_bias=align_bias,
                  align_joins=align_joins, readout_reset=readout_reset, snn_steps=steps, progress=progress,
                  device=device, input_coding=input_coding, bias_correction=bias_correction,
                  bias_correction_passes=bias_correction_passes)
    net.meta.update({"dataset": dataset, "timesteps": steps, "ann_accuracy": ann_acc,
                     "ann_test_samples": len(test_split), "calibration_samples": len(calib), "model": model_spec,
                     "ann_layers": ann_layers_meta(model, tuple(test_split.x.shape[1:]))})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    netlist_path = hdf5.save(net, out_dir / NETLIST_NAME)
    report = evaluate(hdf5.load(netlist_path), test_split, steps, ann_accuracy=ann_acc, sweep=sweep,
                      lava_samples=lava_samples, lava_timeout=lava_timeout, progress=progress,
                      lava_workers=lava_workers, lava_modes=lava_modes)
    report["netlist"] = str(netlist_path)
    report["seconds"]["total"] = time.time() - t0
    json_path, png_path = write_report(report, out_dir)
    report["report_paths"] = [str(json_path), str(png_path)]
    return report
