"""scikit-learn's bundled 8x8 digits (1,797 images, no files needed), as (N, 1, 8, 8) in [0, 1]."""
from __future__ import annotations

import numpy as np

from neurosim.data.dataset import Split


def load_digits_split(test_fraction: float = 0.2, seed: int = 0) -> tuple[Split, Split]:
    """A fixed, stratified train/test split of the digits (pixels scaled from 0..16 to 0..1)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Split("digits/train", x_tr, y_tr), Split("digits/test", x_te, y_te)
