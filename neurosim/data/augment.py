"""Image augmentations of a training batch (N, C, H, W), drawn from a seeded generator.

Shared by the ANN recipes (:mod:`neurosim.ann.train`) and BNTT training
(:mod:`neurosim.bntt.train`). Every draw comes from the ``generator`` passed in, so a run
resumed at an epoch boundary sees the very same augmented images. torch is imported by the
functions, so the command line can name :data:`AUGMENTS` without loading it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: Augmentation names a training configuration may give.
AUGMENTS = ("none", "crop-flip")


def crop_flip(xb: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop of the zero-padded batch back to its size, and random horizontal flip.

    One offset and one flip per image, drawn from ``generator`` (vectorised gather).
    """
    import torch
    b, c, h, w = xb.shape
    padded = torch.nn.functional.pad(xb, (padding, padding, padding, padding))
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = oy[:, None] + torch.arange(h)
    cols = ox[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    return padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def cutout(xb: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017, arXiv 1708.04552): zero a ``size`` x ``size`` square per image.

    The square's centre is uniform over the image, so near an edge only part of it falls inside
    (the paper's rule); centres are drawn from ``generator``, one per image.
    """
    import torch
    b, _, h, w = xb.shape
    cy = torch.randint(0, h, (b,), generator=generator)
    cx = torch.randint(0, w, (b,), generator=generator)
    lo_y, lo_x = cy - size // 2, cx - size // 2
    rows = torch.arange(h)[None, :]
    cols = torch.arange(w)[None, :]
    in_y = (rows >= lo_y[:, None]) & (rows < lo_y[:, None] + size)          # (b, h)
    in_x = (cols >= lo_x[:, None]) & (cols < lo_x[:, None] + size)          # (b, w)
    hole = in_y[:, :, None] & in_x[:, None, :]                              # (b, h, w)
    return xb.masked_fill(hole[:, None], 0.0)
