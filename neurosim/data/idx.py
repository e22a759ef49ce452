"""Reader for the idx format of MNIST and Fashion-MNIST (``*-idx3-ubyte[.gz]``), validated.

Sizes are checked before data is read: a file larger than the limit is refused from its
size on disk, a gzip stream is decompressed only up to the limit, and the header's
dimensions must account for exactly the bytes that follow. Every problem raises
:class:`NeurosimError` naming the file. Nothing is ever downloaded.
"""
from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from neurosim.data.dataset import Split
from neurosim.errors import NeurosimError
from neurosim.io.files import read_bounded

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_BYTES = 1 << 30
_MAX_HEADER = 4 + 4 * 255


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file (gzip or plain); raise :class:`NeurosimError` naming the file if malformed."""
    path = Path(path)
    raw = read_bounded(path, MAX_BYTES + _MAX_HEADER)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as g:
                raw = g.read(MAX_BYTES + _MAX_HEADER + 1)
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            raise NeurosimError(f"{path}: corrupt gzip ({exc.__class__.__name__}: {exc})") from None
    return decode_idx(raw, path)


def decode_idx(raw: bytes, source="<bytes>") -> np.ndarray:
    """Decode the (uncompressed) bytes of an idx file; ``source`` names it in errors."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES or raw[3] == 0:
        raise NeurosimError(f"{source}: not an idx file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise NeurosimError(f"{source}: truncated idx header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if 0 in dims:
        raise NeurosimError(f"{source}: header dimensions {dims} hold no data")
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if expected > MAX_BYTES:
        raise NeurosimError(f"{source}: header promises {dims} x {dtype.itemsize} bytes, more than the "
                            f"limit of {MAX_BYTES}")
    if len(raw) - header != expected:
        raise NeurosimError(f"{source}: header promises {dims} x {dtype.itemsize} bytes, "
                            f"file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).exists():
            return root / name
    raise NeurosimError(f"{root}: no '{stem}' or '{stem}.gz' (expected the original idx files)")


#: The first ten training labels of the published files: a folder of one data set read under
#: the other's name (``--data-dir .../fashion-mnist`` with ``--dataset mnist``) is refused.
KNOWN_LABEL_PREFIXES = {
    "mnist": (5, 0, 4, 1, 9, 2, 1, 3, 1, 4),
    "fashion-mnist": (9, 0, 0, 3, 0, 2, 7, 2, 5, 5),
}


def _check_identity(root: Path, name: str, train_labels: np.ndarray) -> None:
    prefix = tuple(int(v) for v in train_labels[:10])
    for other, known in KNOWN_LABEL_PREFIXES.items():
        if other != name and prefix == known:
            raise NeurosimError(f"{root}: these files are {other} (their labels match the published "
                                f"{other} training set), not {name}: pass --dataset {other}")


def load_idx_split(root: Path, name: str) -> tuple[Split, Split]:
    """MNIST-layout folder -> (train, test) with images (N, 1, H, W) in [0, 1] and labels (N,).

    The files of MNIST and Fashion-MNIST look alike; a folder holding the published files of
    the data set *other* than ``name`` is refused (:data:`KNOWN_LABEL_PREFIXES`)."""
    root = Path(root)
    if not root.is_dir():
        raise NeurosimError(f"{root}: data folder for '{name}' not found")
    splits = []
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x_path, y_path = _find(root, f"{prefix}-images-idx3-ubyte"), _find(root, f"{prefix}-labels-idx1-ubyte")
        x, y = read_idx(x_path), read_idx(y_path)
        if x.ndim != 3 or x.dtype != np.uint8:
            raise NeurosimError(f"{x_path}: expected (N, H, W) uint8 images, found {x.shape} {x.dtype}")
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise NeurosimError(f"{y_path}: expected (N,) integer labels, found {y.shape} {y.dtype}")
        if len(x) != len(y) or len(x) == 0 or min(x.shape) == 0:
            raise NeurosimError(f"{root}: {split} images {x.shape} and labels {y.shape} do not match "
                                "or are empty")
        if y.min() < 0:
            raise NeurosimError(f"{y_path}: negative labels")
        if split == "train":
            _check_identity(root, name, y)
        splits.append(Split(f"{name}/{split}", (x.astype(np.float32) / 255.0)[:, None], y.astype(np.int64)))
    return splits[0], splits[1]
