"""Reader for the idx format of MNIST and Fashion-MNIST (``*-idx3-ubyte[.gz]``), validated."""
from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np

from neurosim.data.dataset import Split
from neurosim.errors import NeurosimError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_BYTES = 1 << 30


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file (gzip or plain); raise :class:`NeurosimError` naming the file if malformed."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as g:
                raw = g.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise NeurosimError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise NeurosimError(f"{path}: unreadable or corrupt gzip ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES or raw[3] == 0:
        raise NeurosimError(f"{path}: not an idx file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise NeurosimError(f"{path}: truncated idx header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if expected > MAX_BYTES or len(raw) - header != expected:
        raise NeurosimError(f"{path}: header promises {dims} x {dtype.itemsize} bytes, "
                            f"file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).exists():
            return root / name
    raise NeurosimError(f"{root}: no '{stem}' or '{stem}.gz' (expected the original idx files)")


def load_idx_split(root: Path, name: str) -> tuple[Split, Split]:
    """MNIST-layout folder -> (train, test) with images (N, 1, 28, 28) in [0, 1]."""
    if not root.is_dir():
        raise NeurosimError(f"{root}: data folder for '{name}' not found")
    splits = []
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
        y = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise NeurosimError(f"{root}: {split} images {x.shape} and labels {y.shape} do not match")
        splits.append(Split(f"{name}/{split}", (x.astype(np.float32) / 255.0)[:, None], y.astype(np.int64)))
    return splits[0], splits[1]
