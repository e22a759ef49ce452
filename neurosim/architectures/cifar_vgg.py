"""A VGG-style CIFAR-10 network with a width multiplier, sized for training on 2 CPU cores.

Layout (VGG-11-like, channel counts times ``width``):
``[64] A [128] A [256 256] A [512 512] A [512 512] -> AdaptiveAvgPool(1) -> dense(10)``,
where ``[c]`` is conv3x3(c, bias)-BN-ReLU and ``A`` is AvgPool2d(2) (no max pooling).
Inputs are raw RGB in [0, 1]. Conversion-friendly: BN folds into the convs (biases kept),
every pooling is an average, Dropout before the classifier is dropped at conversion.
torch.fx-traceable: a plain ``nn.Sequential``. Recipe: ``models/cifar_vgg.py``.
"""
from __future__ import annotations

import torch.nn as nn

INPUT_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
DEFAULT_WIDTH = 0.25
#: VGG-11 on 32x32: numbers are conv widths, "A" a 2x2 average pool.
LAYERS = (64, "A", 128, "A", 256, 256, "A", 512, 512, "A", 512, 512)


def build(width: float = DEFAULT_WIDTH, num_classes: int = NUM_CLASSES, layers=LAYERS,
          dropout: float = 0.1) -> nn.Sequential:
    """VGG-style net; ``width`` multiplies every conv's channel count (0.25: 0.58 M weights)."""
    mods: list[nn.Module] = []
    c_in = INPUT_SHAPE[0]
    for item in layers:
        if item == "A":
            mods.append(nn.AvgPool2d(2))
            continue
        c = max(1, int(round(item * width)))
        mods += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
        c_in = c
    mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*mods)
