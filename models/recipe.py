"""Command line shared by the recipes in ``models/``: train one with its ``RECIPE``, resumably.

A recipe module defines ``RECIPE`` (a :class:`TrainConfig`), ``DATASET`` (a name for
:func:`neurosim.data.dataset.load_dataset`), ``DATA_DIR`` (None: the loader's default) and
``DEFAULT_STEPS``, and takes ``build(width=...)``, ``INPUT_SHAPE`` and ``DEFAULT_WIDTH`` from
its architecture in :mod:`neurosim.architectures`.
``python -m models.<recipe> [--epochs N] [--limit N] [--out DIR] ...`` trains it with the
checkpoint ``DIR/ann.pt`` (re-running resumes; a finished run is only re-evaluated), then
writes ``DIR/weights.pt`` (the plain ``state_dict``, for ``neurosim convert --weights``) and
``DIR/result.json`` (recipe, per-epoch history, test accuracy, seconds), and prints the
test accuracy. ``--device cuda`` trains on a GPU (:mod:`neurosim.device`); the final test
accuracy, ``weights.pt`` and the checkpoint are computed and written on the CPU. Errors the user
can fix (no data, no GPU, a checkpoint of another model) are one line and exit code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import NoReturn, Optional

import neurosim  # noqa: F401  (before torch: idle OpenMP threads sleep, neurosim.threads)
import torch

from neurosim.ann.train import AUTOCASTS, accuracy, load_checkpoint, train
from neurosim.data.dataset import load_dataset
from neurosim.device import HELP as DEVICE_HELP
from neurosim.device import device_arg, resolve_device
from neurosim.errors import NeurosimError
from neurosim.io.atomic import atomic_path


def _name(recipe: ModuleType) -> str:
    """``models.x`` also when run as ``python -m models.x`` (where ``__name__`` is ``__main__``)."""
    spec = getattr(recipe, "__spec__", None)
    return spec.name if spec is not None else recipe.__name__


def parser(recipe: ModuleType) -> argparse.ArgumentParser:
    cfg = recipe.RECIPE
    p = argparse.ArgumentParser(prog=f"python -m {_name(recipe)}",
                                description=(recipe.__doc__ or "").strip().splitlines()[0])
    p.add_argument("--epochs", type=int, default=cfg.epochs, help=f"total epochs (recipe: {cfg.epochs})")
    p.add_argument("--until", type=int, default=None,
                   help="stop after this many epochs (resume later; the LR schedule spans --epochs)")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test images")
    p.add_argument("--out", default=f"runs/{_name(recipe).split('.')[-1]}",
                   help="folder for ann.pt (checkpoint), weights.pt, result.json")
    p.add_argument("--width", type=float, default=recipe.DEFAULT_WIDTH, help="channel width multiplier")
    p.add_argument("--qcfs", type=int, default=None, metavar="L",
                   help="train with the QCFS activation with L levels instead of ReLU (neurosim.ann.qcfs)")
    p.add_argument("--qcfs-init", choices=("batch", "fixed", "data"), default="batch",
                   help="initial QCFS thresholds: the 75th percentile of each layer's positive input on the first "
                        "training batch (default), the reference code's 8, or the 99.9th percentile of each layer's "
                        "input on 1,024 training images (docs/conversion.md, QCFS, compares them)")
    p.add_argument("--init-from", default=None, metavar="WEIGHTS",
                   help="start from this trained state_dict (a weights.pt) with a fresh schedule of --epochs "
                        "(a warm restart: a second one-cycle); ignored when DIR/ann.pt exists (resume)")
    p.add_argument("--cutout", type=int, default=cfg.cutout, metavar="N",
                   help=f"Cutout: zero an N x N square of every training image, 0 for none (recipe: {cfg.cutout})")
    p.add_argument("--lr", type=float, default=cfg.lr)
    p.add_argument("--batch-size", type=int, default=cfg.batch_size)
    p.add_argument("--seed", type=int, default=cfg.seed)
    p.add_argument("--data-dir", default=getattr(recipe, "DATA_DIR", None))
    p.add_argument("--no-eval", action="store_true", help="no test accuracy after every epoch")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--device", type=device_arg, default="cpu",
                   help="where the model trains and is evaluated after every epoch (the final test accuracy, "
                        f"weights.pt and ann.pt are computed and written on the CPU): {DEVICE_HELP}")
    p.add_argument("--autocast", choices=AUTOCASTS, default=cfg.autocast,
                   help=f"bfloat16 autocast on the CPU or the GPU, none, or auto: bf16 where the GPU or the CPU "
                        f"computes it natively (AVX512-BF16 or AMX), else none (recipe: {cfg.autocast}; emulated "
                        "bfloat16 is slower than float32; a GPU without bfloat16, compute capability below 8.0, "
                        "needs none). A run resumed on another CPU may change precision under auto")
    return p


def _fail(recipe: ModuleType, exc: NeurosimError) -> NoReturn:
    """The error as one line, exit code 2 (as every neurosim entry point)."""
    print(f"python -m {_name(recipe)}: error: {exc}", file=sys.stderr)
    raise SystemExit(2)


def build_model(recipe: ModuleType, width: float, qcfs_levels: Optional[int] = None,
                qcfs_threshold: Optional[float] = None) -> torch.nn.Module:
    """``recipe.build(width)``, seeded, with every ReLU swapped for QCFS if ``qcfs_levels``."""
    torch.manual_seed(recipe.RECIPE.seed)
    model = recipe.build(width=width)
    if qcfs_levels:
        from neurosim.ann.qcfs import replace_relu
        model = replace_relu(model, levels=qcfs_levels, threshold=qcfs_threshold)
    return model


def _load_init(recipe: ModuleType, model: torch.nn.Module, path: Path) -> dict:
    """Load ``path`` (a ``state_dict``) into ``model``; its name and SHA-256 for result.json."""
    import hashlib
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except FileNotFoundError:
        _fail(recipe, NeurosimError(f"--init-from {path}: no such file"))
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _fail(recipe, NeurosimError(f"--init-from {path}: not weights of this model ({first})"))
    return {"path": path.as_posix(), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def run(recipe: ModuleType, argv=None) -> dict:
    args = parser(recipe).parse_args(argv)
    try:
        device = resolve_device(args.device)
    except NeurosimError as exc:
        _fail(recipe, exc)
    cfg = dataclasses.replace(recipe.RECIPE, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                              seed=args.seed, device=str(device), autocast=args.autocast,
                              cutout=args.cutout)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        tr, te = load_dataset(recipe.DATASET, args.data_dir)
    except NeurosimError as exc:
        _fail(recipe, exc)
    x, y = (tr.x, tr.y) if args.limit is None else (tr.x[:args.limit], tr.y[:args.limit])
    xt, yt = (te.x, te.y) if args.test_limit is None else (te.x[:args.test_limit], te.y[:args.test_limit])
    load_s = time.perf_counter() - t0
    torch.manual_seed(cfg.seed)
    from neurosim.ann.qcfs import DEFAULT_THRESHOLD
    model = build_model(recipe, args.width, args.qcfs, DEFAULT_THRESHOLD if args.qcfs_init == "fixed" else None)
    ckpt = out / "ann.pt"
    init_record = out / "init_from.json"  # survives resumes: result.json names the start weights
    if args.init_from and not ckpt.exists():
        with atomic_path(init_record) as tmp:
            Path(tmp).write_text(json.dumps(_load_init(recipe, model, Path(args.init_from))))
    init_from = json.loads(init_record.read_text()) if init_record.exists() else None
    if args.qcfs and args.qcfs_init == "data" and not ckpt.exists():
        from neurosim.ann.qcfs import calibrate_thresholds
        calibrate_thresholds(model, torch.as_tensor(x[:1024]))
    cpu0, wall0 = time.process_time(), time.perf_counter()

    def log(rec: dict) -> None:
        line = (f"epoch {rec['epoch']}/{cfg.epochs}: loss {rec['loss']:.4f} train {rec['train_acc']:.4f}"
                + (f" test {rec['test_acc']:.4f}" if "test_acc" in rec else "")
                + f" lr {rec['lr']:.3g} {rec['seconds']:.1f} s")
        print(line, file=sys.stderr, flush=True)

    try:
        train(model, x, y, cfg, checkpoint=ckpt, progress=not args.no_progress,
              eval_data=None if args.no_eval else (xt, yt), until=args.until, on_epoch=log)
    except NeurosimError as exc:
        _fail(recipe, exc)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    state = load_checkpoint(ckpt)
    done = int(state["epoch"])
    acc = accuracy(model, xt, yt)
    with atomic_path(out / "weights.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    history = state.get("history", [])
    result = {
        "recipe": _name(recipe), "dataset": recipe.DATASET, "width": args.width, "qcfs_levels": args.qcfs,
        "qcfs_init": args.qcfs_init if args.qcfs else None,
        "init_from": init_from,
        "config": dataclasses.asdict(cfg), "train_images": len(y), "test_images": len(yt),
        "epochs_done": done, "test_acc": acc,
        "parameters": sum(p.numel() for p in model.parameters()),
        "history": history,
        "seconds_per_epoch": (sum(h["seconds"] for h in history) / len(history)) if history else None,
        "this_call": {"wall_s": wall, "cpu_s": cpu, "data_load_s": load_s,
                      "threads": torch.get_num_threads()},
    }
    if args.qcfs:
        from neurosim.ann.qcfs import thresholds
        result["qcfs_thresholds"] = thresholds(model)
    with atomic_path(out / "result.json") as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    print(f"{_name(recipe)}: {done}/{cfg.epochs} epochs on {len(y)} images, "
          f"test accuracy {acc:.4f} on {len(yt)} images ({out / 'weights.pt'})")
    return result
