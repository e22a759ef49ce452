"""The data set readers on the real files in ../shared/datasets (skipped where they are absent)."""
from __future__ import annotations

import numpy as np

from neurosim.data import cifar_zip, idx, nmnist
from neurosim.data.dataset import load_dataset
from tests.conftest import needs_shared


def test_nmnist_small_reads_and_bins():
    root = needs_shared("datasets", "nmnist-small")
    events, labels = nmnist.load_nmnist(root, "test")
    assert len(events) == len(labels) == 100
    assert set(labels.tolist()) == set(range(10))
    for e in events:
        assert e["x"].max() < 34 and e["y"].max() < 34
        assert np.all(np.diff(e["t"]) >= 0)                    # timestamps are ordered
        assert 0.25e6 < e["t"].max() < 0.4e6                   # three saccades, ~300 ms
    dense = nmnist.bin_events(events[:8], dt=1000)
    assert dense.shape[:4] == (8, 2, 34, 34) and 250 < dense.shape[4] < 400
    counts = nmnist.bin_events(events[:8], dt=1000, binary=False)
    assert int(counts.sum(dtype=np.int64)) == sum(len(e) for e in events[:8])   # no event lost
    assert np.array_equal(dense, (counts > 0).astype(np.uint8))
    train, test = load_dataset("nmnist", str(root))
    assert train.x.shape == (1000, 2, 34, 34) and test.x.shape == (100, 2, 34, 34)
    assert train.x.dtype == np.float32 and train.x.max() == 1.0


def test_cifar10_zip_reads_with_a_limit():
    path = needs_shared("datasets", "cifar10-jpg.zip")
    assert cifar_zip.class_names(path) == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                           "horse", "ship", "truck"]
    test = cifar_zip.load_cifar_zip(path, "test", limit=500)
    assert test.x.shape == (500, 3, 32, 32) and test.x.dtype == np.float32
    assert np.bincount(test.y).tolist() == [50] * 10
    mean = test.x.mean(axis=(0, 2, 3))
    assert np.allclose(mean, [0.49, 0.48, 0.45], atol=0.03)    # CIFAR-10's published channel means


def test_mnist_idx_files():
    root = needs_shared("datasets", "mnist")
    labels = idx.read_idx(root / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10_000,) and np.bincount(labels).sum() == 10_000
    train, test = load_dataset("mnist", str(root))
    assert train.x.shape == (60_000, 1, 28, 28) and test.x.shape == (10_000, 1, 28, 28)
