"""The main job's ANN: a small conversion-friendly CNN for the 8x8 digits.

Constrained for RMP conversion: ReLU activations, average pooling, biases (handled as
neuron bias currents), no batch norm, dropout or max pooling. Its training recipe is the main
job's (:data:`neurosim.workflow.DIGITS_RECIPE`).
"""
from __future__ import annotations

import torch.nn as nn

INPUT_SHAPE = (1, 8, 8)


def build() -> nn.Sequential:
    """1x8x8 -> conv3x3(32) -> avgpool2 -> conv3x3(64) -> avgpool2 -> dense(10)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 2 * 2, 10),
    )
