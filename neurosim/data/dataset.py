"""The in-memory form every loader returns, and the registry of named data sets."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from neurosim.errors import NeurosimError


@dataclass
class Split:
    """One split of a data set: images ``x`` (N, C, H, W) float32 in [0, 1], labels ``y`` (N,)."""
    name: str
    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        self.x = _row_major(self.x)
        self.y = _row_major(self.y)

    def __len__(self) -> int:
        return len(self.y)


def _row_major(a: np.ndarray) -> np.ndarray:
    """``a`` with the plain C strides of its shape. numpy calls ``images[:, None]`` contiguous
    although its size-1 channel axis has stride 4 (scikit-learn's digits: (256, 4, 32, 4));
    torch reads such strides as channels-last, and a user model's ``x.view(N, -1)`` then fails."""
    a = np.asarray(a)
    want, step = [], a.itemsize
    for dim in reversed(a.shape):
        want.insert(0, step)
        step *= dim
    return a if a.flags["C_CONTIGUOUS"] and list(a.strides) == want else np.array(a, order="C", copy=True)


_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
DATASETS = ("digits", "mnist", "fashion-mnist", "nmnist", "cifar10")
#: The image shape (C, H, W) and the number of classes of each data set, known before its files
#: are read (a model that cannot take them is refused before a long load).
IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28),
                "nmnist": (2, 34, 34), "cifar10": (3, 32, 32)}
CLASSES = {name: 10 for name in DATASETS}
DEFAULT_DIRS = {
    "mnist": _SHARED / "mnist",
    "fashion-mnist": _SHARED / "fashion-mnist",
    "nmnist": _SHARED / "nmnist-small",
    "cifar10": _SHARED / "cifar10-jpg.zip",
}


def load_dataset(name: str, data_dir: Optional[str] = None) -> tuple[Split, Split]:
    """(train, test) of a named data set; ``data_dir`` overrides where files are read from.

    ``nmnist`` gives event-count frames (N, 2, 34, 34) (see :mod:`neurosim.data.nmnist` for
    the events and time-binned spike tensors); ``cifar10`` reads the image-folder zip
    (``data_dir`` is the zip, or a folder holding ``cifar10-jpg.zip``).
    """
    if name == "digits":
        from neurosim.data.digits import load_digits_split
        return load_digits_split()
    root = Path(data_dir) if data_dir else DEFAULT_DIRS.get(name)
    if name in ("mnist", "fashion-mnist"):
        from neurosim.data.idx import load_idx_split
        return load_idx_split(root, name)
    if name == "nmnist":
        from neurosim.data.nmnist import load_nmnist_split
        return load_nmnist_split(root)
    if name == "cifar10":
        from neurosim.data.cifar_zip import load_cifar_zip_split
        if root.is_dir():
            root = root / DEFAULT_DIRS["cifar10"].name
        return load_cifar_zip_split(root)
    raise NeurosimError(f"unknown data set '{name}' (known: {', '.join(DATASETS)})")
