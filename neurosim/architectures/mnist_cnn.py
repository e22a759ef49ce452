"""A conversion-friendly CNN for MNIST (28x28 grey), also the Fashion-MNIST recipe's network.

conv-BN-ReLU blocks with biases (BN folds into the conv weight and bias at conversion),
average pooling (no max pooling), one hidden dense layer, dropout (dropped at conversion).
Inputs are the raw pixels in [0, 1] (no normalisation layer: the first conv is driven by
the image directly). torch.fx-traceable: a plain ``nn.Sequential``. Recipes:
``models/mnist_cnn.py``, ``models/fashion_cnn.py``.
"""
from __future__ import annotations

import torch.nn as nn

INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
DEFAULT_WIDTH = 1.0


def _c(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def build(width: float = DEFAULT_WIDTH, num_classes: int = NUM_CLASSES, in_channels: int = 1) -> nn.Sequential:
    """1x28x28 -> [conv3x3(32)-BN-ReLU] -> avgpool2 -> [conv3x3(64)-BN-ReLU] x2 -> avgpool2
    -> flatten -> dense(128)-ReLU -> dropout -> dense(10); channel counts times ``width``."""
    c1, c2, h = _c(32, width), _c(64, width), _c(128, width)
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),
        nn.AvgPool2d(2),                                                   # 14x14
        nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(),
        nn.Conv2d(c2, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(),
        nn.AvgPool2d(2),                                                   # 7x7
        nn.Flatten(),
        nn.Linear(c2 * 7 * 7, h), nn.BatchNorm1d(h), nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(h, num_classes),
    )
