"""A narrow ResNet-20 for CIFAR-10 (He et al. 2016, the CIFAR variant), conversion-friendly.

conv3x3(16w)-BN-ReLU, then 3 stages x 3 basic blocks with 16w, 32w, 64w channels (stride 2
at the first block of stages 2 and 3), AdaptiveAvgPool2d(1), dense(10); ``w = width``
(1.0, the default, is the original 0.27 M-parameter ResNet-20). A basic block is
``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``: the ReLU comes *after* the add, the
shortcut is the identity, or a 1x1 conv (stride 2, with bias) + BN where the shape changes
(option B of the paper). Every ReLU is its own ``nn.ReLU`` module (so
:func:`neurosim.ann.qcfs.replace_relu` gives each its own threshold). No max pooling; convs keep
their biases (BN folds into them). torch.fx-traceable: the only branch in ``forward`` is on
the block's structure (is there a projection), fixed at trace time. Recipe:
``models/cifar_resnet20.py``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

INPUT_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
DEFAULT_WIDTH = 1.0


class BasicBlock(nn.Module):
    """Two conv3x3-BN, identity or 1x1-conv-BN shortcut, ReLU after the add."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: Optional[nn.Sequential] = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride), nn.BatchNorm2d(c_out))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.relu2(out + skip)


class ResNet20(nn.Module):
    """The stem conv, three stages of ``blocks`` basic blocks, average pooling, the classifier."""

    def __init__(self, width: float = DEFAULT_WIDTH, num_classes: int = NUM_CLASSES, blocks: int = 3):
        super().__init__()
        c1, c2, c3 = (max(1, int(round(c * width))) for c in (16, 32, 64))
        self.conv1 = nn.Conv2d(INPUT_SHAPE[0], c1, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c1)
        self.relu1 = nn.ReLU()
        self.layer1 = nn.Sequential(*[BasicBlock(c1, c1) for _ in range(blocks)])
        self.layer2 = nn.Sequential(BasicBlock(c1, c2, 2), *[BasicBlock(c2, c2) for _ in range(blocks - 1)])
        self.layer3 = nn.Sequential(BasicBlock(c2, c3, 2), *[BasicBlock(c3, c3) for _ in range(blocks - 1)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.pool(x)))


def build(width: float = DEFAULT_WIDTH, num_classes: int = NUM_CLASSES) -> ResNet20:
    """ResNet-20 (3 stages x 3 basic blocks) with ``width`` times 16/32/64 channels."""
    return ResNet20(width, num_classes)
