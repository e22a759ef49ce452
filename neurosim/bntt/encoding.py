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
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

RESCALE = 2.0


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
