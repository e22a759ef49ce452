"""BNTT architectures (layer specs for :class:`neurosim.bntt.network.BNTTNet`).

- ``vgg9``: the paper's VGG9 (official ``SNN_VGG9_BNTT``): conv 64, 64, pool, 128, 128, pool,
  256, 256, 256, pool, dense 1024, output; every count times ``width`` (0.25 fits 2 CPU cores
  far better than the paper's 1.0).
- ``cnn``: a small CNN for 28x28 / 34x34 inputs: conv 16, pool, conv 32, pool, dense 128.
- ``mlp``: one hidden layer of 128 neurons (tests, 8x8 digits).

Train one with ``neurosim train-bntt --arch vgg9 --width 0.25 ...`` (:mod:`neurosim.bntt.train`).
"""
from __future__ import annotations

ARCHS = ("vgg9", "cnn", "mlp")

_SPECS = {
    "vgg9": [("conv", 64), ("conv", 64), ("pool", 2), ("conv", 128), ("conv", 128), ("pool", 2),
             ("conv", 256), ("conv", 256), ("conv", 256), ("pool", 2), ("dense", 1024)],
    "cnn": [("conv", 16), ("pool", 2), ("conv", 32), ("pool", 2), ("dense", 128)],
    "mlp": [("dense", 128)],
}


def architecture(name: str, width: float = 1.0) -> list[tuple]:
    """Layer specs of ``name`` with every conv/dense size times ``width`` (at least 1)."""
    if name not in _SPECS:
        raise ValueError(f"unknown BNTT architecture '{name}' (known: {', '.join(ARCHS)})")
    return [(k, n if k == "pool" else max(1, int(round(n * width)))) for k, n in _SPECS[name]]
