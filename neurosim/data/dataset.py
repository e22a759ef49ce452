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

    def __len__(self) -> int:
        return len(self.y)


_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
DATASETS = ("digits", "mnist", "fashion-mnist", "nmnist", "cifar10")
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
