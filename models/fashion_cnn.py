"""The MNIST CNN (:mod:`neurosim.architectures.mnist_cnn`) with its own recipe for Fashion-MNIST.

    python -m models.fashion_cnn --epochs 1 --limit 10000 --out runs/fashion_cnn
"""
from __future__ import annotations

from models.mnist_cnn import DEFAULT_STEPS  # noqa: F401
from neurosim.ann.train import TrainConfig
from neurosim.architectures.mnist_cnn import DEFAULT_WIDTH, INPUT_SHAPE, NUM_CLASSES, build  # noqa: F401

DATASET = "fashion-mnist"
DATA_DIR = None              # the loader's default (../shared/datasets/fashion-mnist)
RECIPE = TrainConfig(epochs=8, batch_size=128, lr=2e-3, weight_decay=1e-4, seed=0,
                     optimizer="adam", schedule="cosine", warmup_epochs=0.2)


def main(argv=None) -> dict:
    from models.recipe import run
    import sys
    return run(sys.modules[__name__], argv)


if __name__ == "__main__":
    main()
