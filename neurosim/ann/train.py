"""Deterministic, resumable ANN training with a progress bar and atomic checkpoints.

The checkpoint holds the model, the optimizer and the number of finished epochs; the
shuffling of epoch ``e`` comes from a generator seeded with ``(seed, e)``, so a run that is
killed and resumed gives the same weights as one that never stopped.

Optional, all off by default (the original behaviour: Adam, constant learning rate, no
augmentation): SGD with momentum, a per-step cosine or one-cycle schedule with linear warm-up,
random crop + horizontal flip (for CIFAR), label smoothing, an L1 penalty on the ReLU
activations (:class:`ActivityL1`: fewer spikes after conversion), channels-last memory and bfloat16
autocast (CPU speed: docs/conversion.md measures both), evaluation after every epoch, a
per-batch progress bar, and ``until=`` to stop after a given epoch (a long run done in
pieces). The learning rate is a pure function of the step, the augmentation draws come from
the epoch's seeded generator and the global torch RNG state (dropout) is stored in the
checkpoint, so resuming stays bit-identical with all of them on.

``device`` (:mod:`neurosim.device`; default ``cpu``) is where the model, the batches and the
loss live. The sample order and the augmentation are drawn on the CPU whatever the device, so a
GPU run sees the same batches; its kernels round differently (and cuDNN's are not
bit-deterministic), so it is not bit-identical to a CPU run. On CUDA, ``autocast="bf16"`` is
``torch.autocast("cuda", dtype=torch.bfloat16)``: bfloat16 keeps float32's exponent range, so no
loss scaling is needed (float16 would need a ``GradScaler``, whose skipped steps and state a
resumed run would have to repeat), and it is the CPU recipe's number format; a GPU without
bfloat16 (compute capability below 8.0) is refused with a pointer to ``autocast="none"``.
Checkpoints hold CPU tensors only: they load on any machine, and a run resumes on another
device (the optimizer state follows the parameters).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.data.augment import AUGMENTS, crop_flip, cutout
from neurosim.device import DEFAULT_DEVICE, cpu_has_bf16, resolve_device, to_cpu
from neurosim.errors import NeurosimError
from neurosim.io.atomic import atomic_path
from neurosim.progress import shown


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    # --- additive options; the defaults keep the original behaviour ---
    optimizer: str = "adam"         # "adam" (L2 weight decay) | "sgd" (momentum, nesterov, L2)
    momentum: float = 0.9           # SGD only
    schedule: str = "constant"      # "constant" | "cosine" (per step, from lr to 0 over `epochs`)
    warmup_epochs: float = 0.0      # linear warm-up from ~0 to lr, before the schedule
    augment: str = "none"           # "none" | "crop-flip" (pad + random crop, random h-flip)
    crop_padding: int = 4           # zero padding for "crop-flip"
    label_smoothing: float = 0.0
    cutout: int = 0                 # side of the square Cutout zeroes per image after the crop (0: off)
    activity_l1: float = 0.0        # weight of the L1 penalty on every nn.ReLU's output (ActivityL1; 0: off)
    channels_last: bool = False     # NHWC memory format for conv nets (oneDNN's fast path on CPU)
    autocast: str = "none"          # "none" | "bf16" | "auto" (bfloat16 autocast; fp32 master weights)
    device: str = DEFAULT_DEVICE    # "cpu" | "cuda" | "cuda:N" | "auto" (neurosim.device)


OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine", "onecycle")
#: ``auto``: bf16 where the device computes bfloat16 natively (:func:`resolve_autocast`), else none.
AUTOCASTS = ("none", "bf16", "auto")


#: TrainConfig fields that do not change what is trained (a checkpoint's recipe may differ in them).
NOT_RECIPE = ("epochs", "device")


def recipe(cfg: TrainConfig) -> dict:
    """What a checkpoint records of ``cfg`` (key ``"recipe"``): every field but :data:`NOT_RECIPE`."""
    return {k: v for k, v in asdict(cfg).items() if k not in NOT_RECIPE}


class ActivityL1:
    """The activity penalty ``weight x sum_units |a| / batch`` over the outputs ``a`` of every
    ``nn.ReLU`` module of ``model`` in the last forward pass.

    An ANN trained with it converts to an SNN with fewer spikes, hence fewer synaptic events,
    at the same accuracy (Sorbaro, Liu, Bortone & Sheik, "Optimizing the energy consumption of
    spiking neural networks for neuromorphic applications", Front. Neurosci. 14:662, 2020): a
    converted neuron's spike count is about its ANN activation over its threshold, times T.
    ReLUs written as functions (``F.relu``) are not seen; a model with no ``nn.ReLU`` is refused.
    """

    def __init__(self, model: torch.nn.Module, weight: float) -> None:
        relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
        if not relus:
            raise NeurosimError(f"activity_l1 penalises the outputs of nn.ReLU modules, and "
                                f"{type(model).__name__} has none (a ReLU written as F.relu is not seen)")
        self.weight = float(weight)
        self.outputs: list[torch.Tensor] = []
        self.hooks = [m.register_forward_hook(self._keep) for m in relus]

    def _keep(self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if module.training:             # not the evaluations between epochs
            self.outputs.append(output)

    def take(self, batch: int) -> torch.Tensor:
        """The penalty of the activations kept since the last call (then forgotten)."""
        total = sum((a.float().abs().sum() for a in self.outputs), torch.zeros(()))
        self.outputs.clear()
        return self.weight * total / batch

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate of optimisation step ``step`` (0-based, counted over the whole run)."""
    total = cfg.epochs * steps_per_epoch
    warm = cfg.warmup_epochs * steps_per_epoch
    if step < warm:
        return cfg.lr * (step + 1) / warm
    frac = min(1.0, (step - warm) / max(1.0, total - warm))
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * frac))
    if cfg.schedule == "onecycle":      # after the linear warm-up: linear decay to 0 (Smith & Topin 2019)
        return cfg.lr * (1.0 - frac)
    return cfg.lr


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names, over all parameters of ``model``."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
    raise NeurosimError(f"unknown optimizer '{cfg.optimizer}' (known: {', '.join(OPTIMIZERS)})")


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
                    extra: Optional[dict] = None) -> None:
    """Write a checkpoint atomically (temp file + rename), every tensor on the CPU; ``extra`` adds
    keys (tensors, numbers, strings, lists and dicts of them only, so that ``weights_only``
    loading still reads it)."""
    with atomic_path(path) as tmp:
        torch.save(to_cpu({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                           "epoch": torch.tensor(epoch), **(extra or {})}), tmp)


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint with ``weights_only=True`` (no code in the file is ever run)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NeurosimError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise NeurosimError(f"{path}: not a readable neurosim checkpoint "
                            f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or not {"model", "epoch"} <= set(ckpt):
        raise NeurosimError(f"{path}: not a neurosim checkpoint (needs 'model' and 'epoch')")
    return ckpt


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (the CPU if it has none)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on (x, y), on the model's device."""
    model.eval()
    device = model_device(model)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = model(torch.as_tensor(x[i:i + batch_size]).to(device))
            correct += int((out.argmax(1).cpu().numpy() == y[i:i + batch_size]).sum())
    return correct / len(x)


def resolve_autocast(device: torch.device, mode: str) -> str:
    """``mode`` with ``auto`` made concrete: ``bf16`` on a GPU with bfloat16 and on a CPU that
    computes it natively (:func:`neurosim.device.cpu_has_bf16`), else ``none`` (an emulated
    bfloat16 is slower than float32)."""
    if mode not in AUTOCASTS:
        raise NeurosimError(f"unknown autocast '{mode}' (known: {', '.join(AUTOCASTS)})")
    if mode != "auto":
        return mode
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_bf16()
    return "bf16" if native else "none"


def autocast(device: torch.device, mode: str) -> torch.autocast:
    """The autocast context of ``mode`` ("none" | "bf16" | "auto", :func:`resolve_autocast`) on
    ``device``: bfloat16 on the CPU and on CUDA alike (see the module docstring); a GPU without
    bfloat16 is refused."""
    mode = resolve_autocast(device, mode)
    if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        major, minor = torch.cuda.get_device_capability(device)
        raise NeurosimError(f"autocast bf16: {torch.cuda.get_device_name(device)} (compute capability "
                            f"{major}.{minor}) has no bfloat16; train with autocast 'none' (--autocast none)")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode == "bf16")


def train(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig,
          checkpoint: Optional[Path] = None, progress: bool = True, *,
          eval_data: Optional[tuple[np.ndarray, np.ndarray]] = None,
          until: Optional[int] = None,
          on_epoch: Optional[Callable[[dict], None]] = None) -> torch.nn.Module:
    """Train with cross-entropy; resume from ``checkpoint`` if it exists, save after each epoch.

    ``cfg`` picks optimizer, schedule and augmentation (defaults: Adam, constant lr, none).
    ``eval_data=(x, y)`` measures test accuracy after every epoch; ``until=k`` stops once
    ``k`` epochs are done (the schedule still spans ``cfg.epochs``), so a long run can be done
    in pieces. ``on_epoch`` gets each epoch's record ``{epoch, loss, train_acc, test_acc,
    lr, seconds, cpu_seconds, device, autocast}`` (times: training only, without the
    evaluation); the records also go into the checkpoint under ``"history"``.
    The model trains on ``cfg.device`` and comes back in eval mode on the CPU, in contiguous
    memory (what the converter and ``torch.save`` read).
    """
    if cfg.schedule not in SCHEDULES:
        raise NeurosimError(f"unknown schedule '{cfg.schedule}' (known: {', '.join(SCHEDULES)})")
    if cfg.augment not in AUGMENTS:
        raise NeurosimError(f"unknown augmentation '{cfg.augment}' (known: {', '.join(AUGMENTS)})")
    if not cfg.activity_l1 >= 0:
        raise NeurosimError(f"activity_l1 must be a number >= 0, got {cfg.activity_l1!r}")
    device = resolve_device(cfg.device)
    amp_mode = resolve_autocast(device, cfg.autocast)
    amp = autocast(device, amp_mode)
    torch.manual_seed(cfg.seed)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    start = 0
    history: list[dict] = []
    if checkpoint is not None and Path(checkpoint).exists():
        ckpt = load_checkpoint(Path(checkpoint))
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise NeurosimError(f"{checkpoint}: does not fit this model "
                                f"({str(exc).splitlines()[0][:200]}); remove it to train afresh") from None
        start = int(ckpt["epoch"])
        if isinstance(ckpt.get("rng"), torch.Tensor):
            torch.set_rng_state(ckpt["rng"])
        if device.type == "cuda" and isinstance(ckpt.get("cuda_rng"), torch.Tensor):
            torch.cuda.set_rng_state(ckpt["cuda_rng"], device)
        if isinstance(ckpt.get("history"), list):
            history = list(ckpt["history"])
    stop = cfg.epochs if until is None else min(cfg.epochs, until)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    steps_per_epoch = (len(xt) + cfg.batch_size - 1) // cfg.batch_size
    activity = ActivityL1(model, cfg.activity_l1) if cfg.activity_l1 > 0 else None
    bar = tqdm(range(start, stop), desc="train ANN", unit="epoch", disable=not shown(progress),
               initial=start, total=cfg.epochs)
    try:
        for epoch in bar:
            t0, c0 = time.perf_counter(), time.process_time()
            model.train()
            gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
            order = torch.randperm(len(xt), generator=gen)
            # summed on the device (no wait for the GPU per batch); float64 sums of float32 losses:
            # the same IEEE operations, so the same bits, as summing Python floats
            total = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            batches = tqdm(range(0, len(order), cfg.batch_size), desc=f"epoch {epoch + 1}", unit="batch",
                           leave=False, disable=not shown(progress) or steps_per_epoch < 50)
            for k, i in enumerate(batches):
                idx = order[i:i + cfg.batch_size]
                xb, yb = xt[idx], yt[idx]
                if cfg.augment == "crop-flip":
                    xb = crop_flip(xb, gen, cfg.crop_padding)
                if cfg.cutout > 0:
                    xb = cutout(xb, gen, cfg.cutout)
                xb, yb = xb.to(device), yb.to(device)
                if cfg.channels_last and xb.dim() == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                if cfg.schedule != "constant" or cfg.warmup_epochs > 0:
                    lr = lr_at(cfg, epoch * steps_per_epoch + k, steps_per_epoch)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                optimizer.zero_grad()
                with amp:
                    out = model(xb).float()
                loss = loss_fn(out, yb)
                if activity is not None:
                    loss = loss + activity.take(len(idx))
                loss.backward()
                optimizer.step()
                total += loss.detach().double() * len(idx)
                correct += (out.argmax(1) == yb).sum()
            record = {"epoch": epoch + 1, "loss": float(total) / len(order), "train_acc": int(correct) / len(order),
                      "lr": float(optimizer.param_groups[0]["lr"]), "seconds": time.perf_counter() - t0,
                      "cpu_seconds": time.process_time() - c0, "device": str(device),
                      "autocast": amp_mode}
            if eval_data is not None:
                record["test_acc"] = accuracy(model, eval_data[0], eval_data[1])
            history.append(record)
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in ("loss", "train_acc", "test_acc")})
            if checkpoint is not None:
                rng = {"rng": torch.get_rng_state(), **({"cuda_rng": torch.cuda.get_rng_state(device)}
                                                          if device.type == "cuda" else {})}
                save_checkpoint(Path(checkpoint), model, optimizer, epoch + 1,
                                extra={**rng, "history": history, "recipe": recipe(cfg)})
            if on_epoch is not None:
                on_epoch(record)
    finally:
        if activity is not None:
            activity.remove()
    model.eval()
    if cfg.channels_last:
        model.to(memory_format=torch.contiguous_format)     # the converter reads plain tensors
    return model.to("cpu")
