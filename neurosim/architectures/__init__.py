"""Network architectures the library builds and the training recipes in ``models/`` train.

Each module holds one architecture: its ``build`` function (and classes), input shape, class
count and default width; the training recipes (epochs, optimiser, data set) are not here.

- :mod:`.digits_cnn`     the main job's small CNN for the 8x8 digits;
- :mod:`.mnist_cnn`      a conversion-friendly CNN for MNIST and Fashion-MNIST (28x28 grey);
- :mod:`.cifar_vgg`      a VGG-11-like CIFAR-10 net with a width multiplier;
- :mod:`.cifar_resnet20` ResNet-20 for CIFAR-10 with a width multiplier;
- :mod:`.bntt`           the BNTT nets' layer specs (:class:`neurosim.bntt.network.BNTTNet`).

The ANN modules' ``build`` is a ``--model`` for ``neurosim convert``, e.g.
``--model neurosim.architectures.mnist_cnn:build``.
"""
