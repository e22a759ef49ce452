"""Train a BNTT network from scratch (surrogate gradients), resumably, on one or many processes.

Recipe (the official ``train.py`` where the issue is silent): SGD with momentum 0.9 and weight
decay 1e-4, learning rate divided by 10 at 50 %, 70 % and 90 % of the epochs, cross-entropy
on the mean output over T. Images are normalised with the training set's per-channel mean and
standard deviation, then Poisson-coded every step (:mod:`neurosim.bntt.encoding`); N-MNIST
events are binned into T frames. ``augment='crop-flip'`` adds the official code's training
augmentation (random crop of the 4-pixel zero-padded image, horizontal flip); the default is none.

Determinism and resuming: the sample order of epoch ``e`` is a permutation drawn from a
generator seeded with ``(seed, e)`` and the Poisson spikes of batch ``b`` from ``(seed, e, b)``;
a checkpoint (model, optimiser, history, RNG-free) is written atomically after every epoch, so
a killed run resumed from its checkpoint continues to the identical result.

Several processes (``torchrun --nproc_per_node 2 -m neurosim train-bntt ...``, gloo on the CPU;
across machines ``torchrun --nnodes N --node_rank R --master_addr HOST ...``) split each batch
of the same global order: process ``r`` of ``W`` takes every ``W``-th sample of it, gradients
are averaged by ``DistributedDataParallel`` and the BNTT running statistics are rank 0's
(DDP broadcasts buffers); only rank 0 writes files.

``device`` (:mod:`neurosim.device`; default ``cpu``) is where the network, its input spikes
and the loss live; the spikes are drawn on the CPU from the same seeded generators whatever the
device, so a GPU run sees the same inputs (its kernels round differently: not bit-identical to
a CPU run). Under ``torchrun`` with ``cuda``, process ``LOCAL_RANK`` takes GPU ``LOCAL_RANK`` and
the processes talk through NCCL (gloo on the CPU). The checkpoint holds CPU tensors only, so it
loads anywhere and a run resumes on another device.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from neurosim.bntt.encoding import TEST_STREAM, channel_stats, normalise, poisson, seeded_generator
from neurosim.bntt.network import DEFAULT_LEAK, BNTTNet
from neurosim.data.augment import AUGMENTS, crop_flip
from neurosim.device import DEFAULT_DEVICE, resolve_device, to_cpu
from neurosim.errors import NeurosimError
from neurosim.io.atomic import atomic_path
from neurosim.progress import shown

CHECKPOINT = "bntt.pt"
DATASETS = ("mnist", "fashion-mnist", "cifar10", "nmnist", "digits")
#: N-MNIST recordings last about 300 ms: T bins of 300 ms / T.
NMNIST_DURATION_US = 300_000


@dataclass
class BNTTConfig:
    dataset: str = "fashion-mnist"
    arch: str = "cnn"
    steps: int = 25
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple = (0.5, 0.7, 0.9)
    norm: str = "bntt"
    leak: float = DEFAULT_LEAK
    reset: str = "soft"
    width: float = 1.0
    seed: int = 0
    limit: Optional[int] = None
    test_limit: Optional[int] = None
    data_dir: Optional[str] = None
    #: ``crop-flip``: a random 32 x 32 crop of the 4-pixel zero-padded image and a horizontal flip
    #: (the official code's torchvision transforms, applied before normalisation); images only.
    augment: str = "none"
    crop_padding: int = 4


@dataclass
class Data:
    """Training and test inputs: images (normalised on the fly) or pre-binned event frames."""
    x: np.ndarray
    y: np.ndarray
    xt: np.ndarray
    yt: np.ndarray
    events: bool
    mean: Optional[np.ndarray] = None
    std: Optional[np.ndarray] = None
    input_shape: tuple = field(default_factory=tuple)

    def spikes(self, x: np.ndarray, steps: int, generator: torch.Generator, augment: str = "none",
               padding: int = 4) -> torch.Tensor:
        """Network input (N, C, H, W, T) for the rows ``x``; ``augment='crop-flip'`` first crops
        and flips the images (:func:`neurosim.data.augment.crop_flip`, zero padding in [0, 1]
        pixel space, as torchvision pads before ``Normalize``), drawing from ``generator``."""
        if self.events:
            return torch.as_tensor(x[..., :steps], dtype=torch.float32)
        xb = torch.as_tensor(x, dtype=torch.float32)
        if augment == "crop-flip":
            xb = crop_flip(xb, generator, padding)
        return poisson(normalise(xb, self.mean, self.std), steps, generator)


def load_data(cfg: BNTTConfig) -> Data:
    """The data set of ``cfg`` (``limit`` / ``test_limit`` take the first images)."""
    from neurosim.data.dataset import load_dataset

    if cfg.dataset not in DATASETS:
        raise NeurosimError(f"unknown data set '{cfg.dataset}' for BNTT training (known: {', '.join(DATASETS)})")
    if cfg.augment not in AUGMENTS:
        raise NeurosimError(f"unknown augmentation '{cfg.augment}' (known: {', '.join(AUGMENTS)})")
    if cfg.augment != "none" and cfg.dataset == "nmnist":
        raise NeurosimError(f"augmentation '{cfg.augment}' is for images; N-MNIST events are binned as recorded "
                            "(use --augment none)")
    if cfg.dataset == "nmnist":
        from neurosim.data.dataset import DEFAULT_DIRS
        from neurosim.data.nmnist import bin_events, load_nmnist
        root = Path(cfg.data_dir) if cfg.data_dir else DEFAULT_DIRS["nmnist"]
        dt = NMNIST_DURATION_US / cfg.steps
        ev, y = load_nmnist(root, "train", cfg.limit)
        evt, yt = load_nmnist(root, "test", cfg.test_limit)
        x, xt = bin_events(ev, dt, cfg.steps), bin_events(evt, dt, cfg.steps)
        return Data(x, y, xt, yt, events=True, input_shape=tuple(x.shape[1:4]))
    tr, te = load_dataset(cfg.dataset, cfg.data_dir)
    x, y = tr.x[:cfg.limit], tr.y[:cfg.limit]
    xt, yt = te.x[:cfg.test_limit], te.y[:cfg.test_limit]
    mean, std = channel_stats(tr.x)
    return Data(x, y, xt, yt, events=False, mean=mean, std=std, input_shape=tuple(x.shape[1:]))


def lr_at(cfg: BNTTConfig, epoch: int) -> float:
    """``lr / 10**k`` with ``k`` the milestones (fractions of the epochs) already passed."""
    return cfg.lr * 0.1 ** sum(epoch >= math.ceil(m * cfg.epochs) for m in cfg.milestones)


def build(cfg: BNTTConfig, data: Data) -> BNTTNet:
    from neurosim.architectures.bntt import architecture
    torch.manual_seed(cfg.seed)
    layers = architecture(cfg.arch, cfg.width)
    return BNTTNet(data.input_shape, layers, 10, cfg.steps, cfg.norm, cfg.leak, cfg.reset,
                   signed_input=not data.events)


@torch.no_grad()
def evaluate_model(model: BNTTNet, data: Data, steps: int, seed: int, batch_size: int = 256,
                   limit: Optional[int] = None) -> float:
    """Test accuracy of ``model`` (eval mode, on its device) on seeded input spikes."""
    model.eval()
    device = next(model.parameters()).device
    xt, yt = data.xt[:limit], data.yt[:limit]
    hits = 0
    for b, s in enumerate(range(0, len(xt), batch_size)):
        spikes = data.spikes(xt[s:s + batch_size], steps, seeded_generator(seed, TEST_STREAM, b))
        hits += int((model(spikes.to(device)).argmax(1).cpu() == torch.as_tensor(yt[s:s + batch_size])).sum())
    return hits / max(1, len(xt))


def process_device(name: Union[str, torch.device] = DEFAULT_DEVICE) -> torch.device:
    """This process's device: ``name`` resolved (:func:`neurosim.device.resolve_device`); a plain
    ``cuda`` (or ``auto`` on a GPU machine) is the GPU of the process's ``LOCAL_RANK`` (0 outside
    ``torchrun``), made the current one."""
    device = resolve_device(name)
    if device.type == "cuda":
        if device.index is None:
            local, count = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
            if local >= count:
                raise NeurosimError(f"--device {name}: process {local} of this machine has no GPU of its own "
                                    f"(torch sees {count}); start at most {count} per machine (--nproc_per_node)")
            device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return device


def _dist(device: torch.device) -> tuple[int, int]:
    """(rank, world size) of a ``torchrun`` launch (initialising NCCL for a GPU, else gloo), else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def train_bntt(cfg: BNTTConfig, out_dir: Path, progress: bool = True, until: Optional[int] = None,
               on_epoch: Optional[Callable[[dict], None]] = None, data: Optional[Data] = None,
               device: Union[str, torch.device] = DEFAULT_DEVICE) -> tuple[BNTTNet, dict]:
    """Train (or resume) into ``out_dir/bntt.pt`` on ``device`` (:func:`process_device`); returns
    the model (eval mode, on the CPU, as :func:`neurosim.bntt.fold.export` reads it) and the
    checkpoint. The device is not part of ``cfg``: a run may resume on another one."""
    dev = process_device(device)
    rank, world = _dist(dev)
    if cfg.batch_size % world:
        raise NeurosimError(f"--batch-size {cfg.batch_size} must be a multiple of the {world} processes")
    out_dir = Path(out_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    data = data or load_data(cfg)
    model = build(cfg, data).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    ckpt_path = out_dir / CHECKPOINT
    state = {"epoch": 0, "history": []}
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        # a checkpoint written before a setting existed trained with that setting's default
        saved = {**_jsonable(BNTTConfig()), **state.get("config", {})}
        if state.get("config", {}) and {k: v for k, v in saved.items() if k != "epochs"} != \
                {k: v for k, v in _jsonable(cfg).items() if k != "epochs"}:
            raise NeurosimError(f"{ckpt_path} was trained with other settings ({state['config']}); "
                                "use another --out or delete it")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    runner = model
    if world > 1:
        runner = torch.nn.parallel.DistributedDataParallel(model,
                                                           device_ids=[dev.index] if dev.type == "cuda" else None)
    stop = cfg.epochs if until is None else min(cfg.epochs, until)
    n = len(data.x)
    per_rank = cfg.batch_size // world
    for epoch in range(int(state["epoch"]), stop):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, epoch)
        model.train()
        order = torch.randperm(n, generator=seeded_generator(cfg.seed, epoch)).numpy()
        batches = range(0, n - cfg.batch_size + 1 if n >= cfg.batch_size else 1, cfg.batch_size)
        # summed on the device (no wait for the GPU per batch; the bar's figures wait for it) in
        # float64: the same IEEE operations, so the same bits, as summing Python floats
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        seen = 0
        bar = tqdm(batches, desc=f"BNTT epoch {epoch + 1}/{cfg.epochs}", disable=not shown(progress) or rank != 0,
                   unit="batch", leave=False)
        for b, s in enumerate(bar):
            idx = np.sort(order[s:s + cfg.batch_size][rank::world][:per_rank])
            spikes = data.spikes(data.x[idx], cfg.steps, seeded_generator(cfg.seed, epoch, b, rank),
                                 cfg.augment, cfg.crop_padding).to(dev)
            y = torch.as_tensor(data.y[idx]).to(dev)
            logits = runner(spikes)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * len(idx)
            correct += (logits.argmax(1) == y).sum()
            seen += len(idx)
            if not bar.disable:
                bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}", acc=f"{int(correct) / seen:.3f}")
        bar.close()
        rec = {"epoch": epoch + 1, "loss": float(loss_sum) / max(1, seen), "train_acc": int(correct) / max(1, seen),
               "lr": lr_at(cfg, epoch), "seconds": time.perf_counter() - t0, "processes": world, "device": str(dev)}
        if rank == 0:
            rec["test_acc"] = evaluate_model(model, data, cfg.steps, cfg.seed, limit=cfg.test_limit)
        state = {"epoch": epoch + 1, "history": state["history"] + [rec], "model": to_cpu(model.state_dict()),
                 "optimizer": to_cpu(opt.state_dict()), "config": _jsonable(cfg), "net": model.config(),
                 "input_stats": None if data.events else {"mean": data.mean.tolist(), "std": data.std.tolist()}}
        if rank == 0:
            with atomic_path(ckpt_path) as tmp:
                torch.save(state, tmp)
            if on_epoch:
                on_epoch(rec)
    model.eval().cpu()
    state.setdefault("model", model.state_dict())
    return model, state


def _jsonable(cfg: BNTTConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))
