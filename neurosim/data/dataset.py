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


DATASETS = ("digits", "mnist", "fashion-mnist")
DEFAULT_DIRS = {
    "mnist": Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "mnist",
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
}


def load_dataset(name: str, data_dir: Optional[str] = None) -> tuple[Split, Split]:
    """(train, test) of a named data set; ``data_dir`` overrides where files are read from."""
    if name == "digits":
        from neurosim.data.digits import load_digits_split
        return load_digits_split()
    if name in ("mnist", "fashion-mnist"):
        from neurosim.data.idx import load_idx_split
        root = Path(data_dir) if data_dir else DEFAULT_DIRS[name]
        return load_idx_split(root, name)
    raise NeurosimError(f"unknown data set '{name}' (known: {', '.join(DATASETS)})")
