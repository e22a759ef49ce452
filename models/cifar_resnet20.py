"""A narrow ResNet-20 for CIFAR-10 (He et al. 2016, the CIFAR variant), conversion-friendly.

The recipe: the network is :mod:`neurosim.architectures.cifar_resnet20`.

    python -m models.cifar_resnet20 --out runs/cifar_resnet20             # the recipe (~1 h on 2 cores)
    python -m models.cifar_resnet20 --qcfs 4 --out runs/cifar_resnet20_qcfs4  # its QCFS twin
    python -m models.cifar_resnet20 --device cuda --out runs/cifar_resnet20_gpu  # on a GPU (bf16 autocast)

The recipe is sized for 2 CPU cores: channels-last memory and bfloat16 autocast where the CPU
computes bfloat16 natively (``autocast="auto"``). Batch 128, forward + backward + SGD step, 2
threads: on a 2-core AMD EPYC with AVX512-BF16, fp32 500 img/s, channels-last 669, bf16 801,
both 973; on a 2-core Intel Xeon with AVX-512 but no BF16 (emulated bfloat16), fp32 313,
channels-last 427, bf16 210, both 242 -- there ``auto`` trains in float32. SGD with Nesterov
momentum, a one-cycle schedule (2 warm-up epochs, linear decay to 0), label smoothing 0.1,
random crop + flip.
"""
from __future__ import annotations

from neurosim.ann.train import TrainConfig
from neurosim.architectures.cifar_resnet20 import DEFAULT_WIDTH, INPUT_SHAPE, NUM_CLASSES, build  # noqa: F401

DATASET = "cifar10"
DATA_DIR = None
DEFAULT_STEPS = 128
#: 50 epochs of ~1 min each on 2 idle cores (docs/conversion.md gives the measured time).
RECIPE = TrainConfig(epochs=50, batch_size=128, lr=0.1, weight_decay=5e-4, seed=0,
                     optimizer="sgd", momentum=0.9, schedule="onecycle", warmup_epochs=2,
                     augment="crop-flip", crop_padding=4, label_smoothing=0.1,
                     channels_last=True, autocast="auto")


def main(argv=None) -> dict:
    from models.recipe import run
    import sys
    return run(sys.modules[__name__], argv)


if __name__ == "__main__":
    main()
