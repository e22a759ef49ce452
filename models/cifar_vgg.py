"""A VGG-style CIFAR-10 network with a width multiplier, sized for training on 2 CPU cores.

The recipe: the network is :mod:`neurosim.architectures.cifar_vgg`; SGD with momentum, cosine
schedule, random crop + flip.

    python -m models.cifar_vgg --epochs 1 --limit 5000 --out runs/cifar_vgg
"""
from __future__ import annotations

from neurosim.ann.train import TrainConfig
from neurosim.architectures.cifar_vgg import DEFAULT_WIDTH, INPUT_SHAPE, NUM_CLASSES, build  # noqa: F401

DATASET = "cifar10"
DATA_DIR = None              # the loader's default (../shared/datasets/cifar10-jpg.zip)
DEFAULT_STEPS = 128
#: Sized from a measurement on this 2-core machine under load (1 epoch on 5,000 images:
#: 60.7 s, i.e. ~10 min per full epoch): 5 epochs ~ 50 min. More epochs give more accuracy.
RECIPE = TrainConfig(epochs=5, batch_size=128, lr=0.05, weight_decay=5e-4, seed=0,
                     optimizer="sgd", momentum=0.9, schedule="cosine", warmup_epochs=0.5,
                     augment="crop-flip", crop_padding=4)


def main(argv=None) -> dict:
    from models.recipe import run
    import sys
    return run(sys.modules[__name__], argv)


if __name__ == "__main__":
    main()
