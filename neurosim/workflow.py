"""The main job (train an ANN on digits, convert it to RMP, export the netlist, measure it), and
the same for a user's own trained model (:func:`convert_and_measure`)."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch

from neurosim.ann.train import accuracy, load_checkpoint, train
from neurosim.convert.rmp import convert
from neurosim.convert import DEFAULT_PERCENTILE, DEFAULT_RULE
from neurosim.data.dataset import load_dataset
from neurosim.errors import NeurosimError
from neurosim.evaluate import evaluate, write_report
from neurosim.netlist import hdf5

NETLIST_NAME = "network.net"
CHECKPOINT_NAME = "ann.pt"


def export_and_measure(out_dir: Path, steps: Optional[int] = None, epochs: Optional[int] = None,
                       rule: str = DEFAULT_RULE, percentile: float = DEFAULT_PERCENTILE, lava_samples: int = 10,
                       lava_timeout: Optional[float] = None, retrain: bool = False,
                       progress: bool = True) -> dict:
    """Run the whole path on the embedded digits data set; return the report (also written)."""
    from models import digits_cnn

    t0 = time.time()
    steps = steps or digits_cnn.DEFAULT_STEPS
    cfg = digits_cnn.RECIPE if epochs is None else replace(digits_cnn.RECIPE, epochs=epochs)
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
    if ckpt.exists() and int(load_checkpoint(ckpt)["epoch"]) >= cfg.epochs:
        model.load_state_dict(load_checkpoint(ckpt)["model"])
        print(f"ANN: loaded trained checkpoint {ckpt}")
    else:
        train(model, train_split.x, train_split.y, cfg, checkpoint=ckpt, progress=progress)
    model.eval()
    ann_acc = accuracy(model, test_split.x, test_split.y)
    t_train = time.time() - t0

    net = convert(model, train_split.x, digits_cnn.INPUT_SHAPE, rule=rule, percentile=percentile)
    net.meta.update({"dataset": "digits", "timesteps": steps, "ann_accuracy": ann_acc})
    netlist_path = hdf5.save(net, out_dir / NETLIST_NAME)

    report = evaluate(hdf5.load(netlist_path), test_split, steps, ann_accuracy=ann_acc,
                      lava_samples=lava_samples, lava_timeout=lava_timeout, progress=progress)
    report["netlist"] = str(netlist_path)
    report["checkpoint"] = str(ckpt)
    report["seconds"].update({"train_ann": t_train, "total": time.time() - t0})
    json_path, png_path = write_report(report, out_dir)
    report["report_paths"] = [str(json_path), str(png_path)]
    return report


def load_user_model(spec: str, weights: Optional[Path] = None) -> torch.nn.Module:
    """``FILE.py:CLASS`` built with no arguments, with ``weights`` (a state_dict, or a
    checkpoint holding one under ``"model"``) loaded strictly; every failure is one line."""
    import importlib.util

    path_text, _, name = spec.rpartition(":")
    path = Path(path_text)
    if not path_text or not name:
        raise NeurosimError(f"--model must be FILE.py:CLASS, got '{spec}'")
    if not path.is_file():
        raise NeurosimError(f"--model: no such file {path}")
    module_spec = importlib.util.spec_from_file_location(f"neurosim_user_model_{abs(hash(path.resolve()))}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:    # the user's file: report its error in one line
        raise NeurosimError(f"--model: {path} fails to import ({type(exc).__name__}: {exc})") from None
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise NeurosimError(f"--model: {path} defines no nn.Module class '{name}'")
    try:
        model = cls()
    except Exception as exc:
        raise NeurosimError(f"--model: {name}() cannot be built without arguments ({type(exc).__name__}: {exc})") from None
    if weights is not None:
        try:
            state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError, EOFError) as exc:
            raise NeurosimError(f"--weights: cannot read {weights} ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]                  # a neurosim checkpoint (ann.pt)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise NeurosimError(f"--weights: {weights} does not fit {name} "
                                f"({str(exc).splitlines()[0][:200]})") from None
    return model.eval()


def convert_and_measure(model_spec: str, weights: Optional[Path], dataset: str, out_dir: Path, *,
                        data_dir: Optional[str] = None, steps: int = 64, reset: str = "soft",
                        rule: str = DEFAULT_RULE, percentile: float = DEFAULT_PERCENTILE,
                        v_init_half: Optional[bool] = None, alpha: float = 1.0, fold_pool: bool = True,
                        calib_samples: int = 2000, limit: Optional[int] = None, lava_samples: int = 5,
                        lava_timeout: Optional[float] = None, progress: bool = True) -> dict:
    """Convert a user's trained model (``FILE.py:CLASS`` + state_dict) on a named data set and
    measure it as the main job does; writes ``network.net``, ``report.json``, ``report.png``."""
    import numpy as np

    from neurosim.data.dataset import Split

    t0 = time.time()
    model = load_user_model(model_spec, weights)
    train_split, test_split = load_dataset(dataset, data_dir)
    if limit:
        test_split = Split(test_split.name, test_split.x[:limit], test_split.y[:limit])
    ann_acc = accuracy(model, test_split.x, test_split.y)
    pick = np.random.default_rng(0).permutation(len(train_split.x))[:max(1, calib_samples)]
    net = convert(model, train_split.x[np.sort(pick)], tuple(test_split.x.shape[1:]), rule=rule,
                  percentile=percentile, reset=reset, v_init_half=v_init_half, alpha=alpha,
                  fold_pool=fold_pool, snn_steps=steps, progress=progress)
    net.meta.update({"dataset": dataset, "timesteps": steps, "ann_accuracy": ann_acc, "model": model_spec})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    netlist_path = hdf5.save(net, out_dir / NETLIST_NAME)
    curve = sorted({t for t in (4, 8, 16, 32, 64, 128, 256) if t <= max(steps, 128)} | {steps})
    report = evaluate(hdf5.load(netlist_path), test_split, steps, ann_accuracy=ann_acc, curve_steps=curve,
                      lava_samples=lava_samples, lava_timeout=lava_timeout, progress=progress)
    report["netlist"] = str(netlist_path)
    report["seconds"]["total"] = time.time() - t0
    json_path, png_path = write_report(report, out_dir)
    report["report_paths"] = [str(json_path), str(png_path)]
    return report
