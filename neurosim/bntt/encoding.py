"""Inputs of a BNTT network, time last: signed Poisson rate coding of images, binned events.

Images are first normalised per channel with the training set's mean and standard deviation
(the official code's ``transforms.Normalize``). Then, every step independently (the official
``PoissonGen`` with ``rescale_fac = 2``)::

    o[t] = sign(x) * [ r_t <= |x| / 2 ],     r_t ~ U(0, 1)

i.e. a spike of the sign of ``x`` with probability ``min(|x| / 2, 1)``, drawn from a seeded
generator. A netlist's spike input is 0/1, so signed spikes of ``C`` channels are presented
as ``2C`` channels (the positive spikes, then the negative ones) and the first layer's
weights become ``[W, -W]`` (:mod:`neurosim.bntt.fold`): ``W o = W o+ - W o-`` exactly.
Event data (N-MNIST) are binned into ``T`` frames by :func:`neurosim.data.nmnist.bin_events`.

Every draw comes from a generator seeded by a tuple (:func:`seeded_generator`): test images
``256 * b .. 256 * b + 255`` from ``(seed, TEST_STREAM, b)``. The exported netlist records
this recipe under ``meta['spike_encoding']`` (:func:`image_encoding`, :func:`event_encoding`),
so ``neurosim run NET --dataset ...`` rebuilds the very spikes ``train-bntt`` measured on
(:func:`netlist_input_for`): the raster, then ``latency`` silent steps while the last
spikes travel through the layers.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from neurosim.errors import NeurosimError

RESCALE = 2.0
#: Generator streams: test spikes, the calibrated exit's training spikes.
TEST_STREAM = 1 << 20
CALIBRATION_STREAM = 1 << 21
#: Images per seeded draw.
BATCH = 256
#: Netlist metadata key of the input recipe, and its two kinds.
META_KEY = "spike_encoding"
IMAGES, EVENTS = "signed-poisson", "binned-events"


def seeded_generator(*key: int) -> torch.Generator:
    """A generator seeded by a tuple of integers (stable across runs and processes)."""
    seed = 0
    for k in key:
        seed = (seed * 1_000_003 + int(k) + 1) % (1 << 62)
    return torch.Generator().manual_seed(seed)


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of images (N, C, H, W)."""
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3)) + 1e-12


def normalise(x: torch.Tensor, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """``(x - mean) / std`` per channel of (N, C, H, W)."""
    m = torch.as_tensor(mean, dtype=x.dtype).reshape(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype).reshape(1, -1, 1, 1)
    return (x - m) / s


def poisson(x: torch.Tensor, steps: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Signed Poisson spikes (N, C, H, W, T) in {-1, 0, 1} of normalised images ``x`` (N, C, H, W)."""
    r = torch.rand((*x.shape, steps), generator=generator, dtype=x.dtype)
    return (r * RESCALE <= x.abs().unsqueeze(-1)).to(x.dtype) * torch.sign(x).unsqueeze(-1)


def to_raster(spikes: torch.Tensor, signed: bool) -> np.ndarray:
    """Netlist spike input (N, T, C', H, W) uint8 of spikes (N, C, H, W, T): for ``signed``
    spikes ``C' = 2C``, the positive spikes in channels ``0..C-1`` and the negative ones in
    ``C..2C-1``; unsigned spikes (event data, 0/1) pass as they are (``C' = C``)."""
    s = spikes.detach()
    s = torch.cat([s > 0, s < 0], dim=1) if signed else s > 0
    return s.permute(0, s.ndim - 1, *range(1, s.ndim - 1)).to(torch.uint8).contiguous().numpy()


def image_spikes(images: np.ndarray, mean: np.ndarray, std: np.ndarray, steps: int, seed: int,
                 stream: int) -> torch.Tensor:
    """Signed Poisson spikes (N, C, H, W, T) of images (N, C, H, W) in [0, 1], :data:`BATCH` at a
    time, batch ``b`` drawn from ``seeded_generator(seed, stream, b)``."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    return torch.cat([poisson(normalise(x[s:s + BATCH], mean, std), steps, seeded_generator(seed, stream, b))
                      for b, s in enumerate(range(0, len(x), BATCH))])


def image_encoding(mean: np.ndarray, std: np.ndarray, seed: int, steps: int, latency: int) -> dict:
    """``meta['spike_encoding']`` of a net trained on signed Poisson spikes of images."""
    return {"name": IMAGES, "mean": [float(v) for v in mean], "std": [float(v) for v in std], "seed": int(seed),
            "stream": TEST_STREAM, "trained_steps": int(steps), "latency": int(latency)}


def event_encoding(duration_us: float, steps: int, latency: int) -> dict:
    """``meta['spike_encoding']`` of a net trained on events binned into ``steps`` frames."""
    return {"name": EVENTS, "duration_us": float(duration_us), "trained_steps": int(steps), "latency": int(latency)}


def pad_latency(raster: np.ndarray, latency: int) -> np.ndarray:
    """``raster`` (N, T, ...) followed by ``latency`` silent steps."""
    pad = np.zeros((raster.shape[0], latency, *raster.shape[2:]), dtype=raster.dtype)
    return np.concatenate([raster, pad], axis=1)


def netlist_input_for(encoding: dict, dataset: str, data_dir: Optional[str], steps: Optional[int] = None,
                      limit: Optional[int] = None) -> tuple[np.ndarray, np.ndarray, int]:
    """``(x, y, T)``: the test split of ``dataset`` made into the netlist input (N, T + latency,
    C', H, W) the recorded ``encoding`` describes, with ``steps`` presented steps (default: the
    trained ones)."""
    from neurosim.data.dataset import DEFAULT_DIRS, load_dataset

    name = encoding.get("name")
    try:
        t = int(steps or encoding["trained_steps"])
        latency = int(encoding["latency"])
    except (KeyError, TypeError, ValueError):
        raise NeurosimError(f"the netlist's '{META_KEY}' metadata lacks trained_steps or latency") from None
    if name == IMAGES:
        _, test = load_dataset(dataset, data_dir)
        x, y = test.x[:limit], test.y[:limit]
        mean, std = np.asarray(encoding["mean"]), np.asarray(encoding["std"])
        if x.shape[1] != len(mean):
            raise NeurosimError(f"--dataset {dataset} has {x.shape[1]} channel(s), the net was trained on "
                                f"{len(mean)}")
        spikes = image_spikes(x, mean, std, t, int(encoding.get("seed", 0)), int(encoding.get("stream", TEST_STREAM)))
        return pad_latency(to_raster(spikes, signed=True), latency), y, t
    if name == EVENTS:
        if dataset != "nmnist":
            raise NeurosimError(f"the net was trained on binned events (nmnist), not --dataset {dataset}")
        from pathlib import Path

        from neurosim.data.nmnist import bin_events, load_nmnist
        ev, y = load_nmnist(Path(data_dir) if data_dir else DEFAULT_DIRS["nmnist"], "test", limit)
        frames = torch.as_tensor(bin_events(ev, float(encoding["duration_us"]) / t, t), dtype=torch.float32)
        return pad_latency(to_raster(frames, signed=False), latency), y, t
    raise NeurosimError(f"the netlist's '{META_KEY}' metadata names '{name}'; known: {IMAGES}, {EVENTS}")
