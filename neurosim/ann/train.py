"""Deterministic, resumable ANN training with a progress bar and atomic checkpoints.

The checkpoint holds the model, the optimizer and the number of finished epochs; the
shuffling of epoch ``e`` comes from a generator seeded with ``(seed, e)``, so a run that is
killed and resumed gives the same weights as one that never stopped.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.errors import NeurosimError
from neurosim.io.atomic import atomic_path


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """Write a checkpoint atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "epoch": torch.tensor(epoch)}, tmp)


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


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on (x, y)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = model(torch.as_tensor(x[i:i + batch_size]))
            correct += int((out.argmax(1).numpy() == y[i:i + batch_size]).sum())
    return correct / len(x)


def train(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig,
          checkpoint: Optional[Path] = None, progress: bool = True) -> torch.nn.Module:
    """Train with Adam and cross-entropy; resume from ``checkpoint`` if it exists, save after each epoch."""
    torch.manual_seed(cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    if checkpoint is not None and Path(checkpoint).exists():
        ckpt = load_checkpoint(Path(checkpoint))
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise NeurosimError(f"{checkpoint}: does not fit this model "
                                f"({str(exc).splitlines()[0][:200]}); remove it to train afresh") from None
        start = int(ckpt["epoch"])
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    bar = tqdm(range(start, cfg.epochs), desc="train ANN", unit="epoch", disable=not progress,
               initial=start, total=cfg.epochs)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(xt), generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch))
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
            total += float(loss) * len(idx)
        bar.set_postfix(loss=f"{total / len(order):.4f}")
        if checkpoint is not None:
            save_checkpoint(Path(checkpoint), model, optimizer, epoch + 1)
    model.eval()
    return model
