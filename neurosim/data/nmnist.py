"""Reader for N-MNIST (Orchard et al., 2015) in its original ``.bin`` event format, validated.

One file is one sample: a sequence of 5-byte events::

    byte 0    x (0..33)
    byte 1    y (0..33)
    byte 2    bit 7: polarity (1 = ON, 0 = OFF); bits 6..0: timestamp bits 22..16
    bytes 3-4 timestamp bits 15..0 (big-endian), in microseconds

A data set folder holds ``Train/<digit>/<index>.bin`` and ``Test/<digit>/<index>.bin``.
Every problem (missing folder, truncated file, event outside the 34x34 sensor, a request
for a tensor beyond the size limit) raises :class:`NeurosimError` naming the file. Nothing
is ever downloaded.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from neurosim.data.dataset import Split
from neurosim.errors import NeurosimError
from neurosim.io.files import read_bounded

SENSOR = (34, 34)                 # (height, width) = (y, x)
EVENT_BYTES = 5
POLARITIES = 2
MAX_FILE_BYTES = 1 << 24          # 3.3 M events per sample; real samples hold 1-7 k events
MAX_SAMPLES = 1 << 17             # samples per split (N-MNIST has 60,000 + 10,000)
MAX_DENSE_BYTES = 1 << 31         # largest spike tensor bin_events builds
EVENT_DTYPE = np.dtype([("x", np.uint8), ("y", np.uint8), ("p", np.uint8), ("t", np.int64)])
SPLITS = {"train": "Train", "test": "Test"}
_SAMPLE_NAME = re.compile(r"(\d{1,9})\.bin")

PathLike = Union[str, Path]


def read_events(path: PathLike) -> np.ndarray:
    """Events of one ``.bin`` file as a structured array with fields ``x, y, p, t`` (t in µs)."""
    path = Path(path)
    return decode_events(read_bounded(path, MAX_FILE_BYTES), path)


def decode_events(raw: bytes, source: PathLike = "<bytes>") -> np.ndarray:
    """Decode the bytes of one N-MNIST ``.bin`` sample (``source`` names it in errors)."""
    if len(raw) > MAX_FILE_BYTES:
        raise NeurosimError(f"{source}: larger than the limit of {MAX_FILE_BYTES} bytes "
                            "(not an N-MNIST sample)")
    if not raw:
        raise NeurosimError(f"{source}: empty file (no events)")
    if len(raw) % EVENT_BYTES:
        raise NeurosimError(f"{source}: {len(raw)} bytes is not a whole number of "
                            f"{EVENT_BYTES}-byte events (truncated or not N-MNIST)")
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, EVENT_BYTES)
    events = np.empty(len(b), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["p"] = b[:, 0], b[:, 1], b[:, 2] >> 7
    events["t"] = ((b[:, 2].astype(np.int64) & 0x7F) << 16) | (b[:, 3].astype(np.int64) << 8) | b[:, 4]
    outside = (events["x"] >= SENSOR[1]) | (events["y"] >= SENSOR[0])
    if outside.any():
        k = int(np.argmax(outside))
        raise NeurosimError(f"{source}: event {k} at x={events['x'][k]}, y={events['y'][k]} lies outside "
                            f"the {SENSOR[1]}x{SENSOR[0]} sensor (not N-MNIST)")
    return events


def list_samples(root: PathLike, split: str = "train") -> list[tuple[Path, int]]:
    """``(file, digit)`` of every sample of a split, in the data set's order (by index)."""
    root = Path(root)
    if split.lower() not in SPLITS:
        raise NeurosimError(f"unknown N-MNIST split '{split}' (known: {', '.join(SPLITS)})")
    folder = root / SPLITS[split.lower()]
    if not root.is_dir():
        raise NeurosimError(f"{root}: N-MNIST folder not found")
    if not folder.is_dir():
        raise NeurosimError(f"{folder}: not found (expected Train/<digit>/<index>.bin and "
                            "Test/<digit>/<index>.bin)")
    found = []
    try:
        for digit in range(10):
            sub = folder / str(digit)
            if not sub.is_dir():
                continue
            for entry in sub.iterdir():
                m = _SAMPLE_NAME.fullmatch(entry.name)
                if m:
                    found.append((int(m.group(1)), digit, entry))
                    if len(found) > MAX_SAMPLES:
                        raise NeurosimError(f"{folder}: more than {MAX_SAMPLES} samples")
    except OSError as exc:
        raise NeurosimError(f"{folder}: unreadable ({exc.__class__.__name__}: {exc})") from None
    if not found:
        raise NeurosimError(f"{folder}: no samples (expected <digit>/<index>.bin files)")
    found.sort()
    return [(path, digit) for _, digit, path in found]


def load_nmnist(root: PathLike, split: str = "train",
                limit: Optional[int] = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Events of every sample of a split (optionally the first ``limit``) and the labels (N,)."""
    if limit is not None and limit < 1:
        raise NeurosimError(f"limit must be at least 1, got {limit}")
    samples = list_samples(root, split)[:limit]
    events = [read_events(path) for path, _ in samples]
    return events, np.array([digit for _, digit in samples], dtype=np.int64)


def num_bins(samples: Sequence[np.ndarray], dt: float) -> int:
    """Bins of ``dt`` µs needed to hold every event of ``samples``."""
    dt = _check_dt(dt)
    t_max = max((int(e["t"].max()) for e in samples if len(e)), default=0)
    bins = math.floor(t_max / dt) + 1
    if bins > MAX_DENSE_BYTES:
        raise NeurosimError(f"a time bin of {dt} µs gives {bins} bins; use a larger bin")
    return bins


def bin_events(samples: Union[np.ndarray, Sequence[np.ndarray]], dt: float, steps: Optional[int] = None,
               binary: bool = True) -> np.ndarray:
    """Dense spike tensor (N, 2, 34, 34, T) uint8, indexed ``[n, polarity, y, x, t]``.

    ``t = floor(timestamp / dt)`` with ``dt`` in µs; ``T = steps`` (later events are dropped)
    or, if None, enough bins for the latest event. ``binary``: 1 where a bin holds at least
    one event; otherwise the event count, saturated at 255. One sample (a structured array)
    gives N = 1.
    """
    if isinstance(samples, np.ndarray):
        samples = [samples]
    for k, e in enumerate(samples):
        if not isinstance(e, np.ndarray) or e.dtype != EVENT_DTYPE:
            raise NeurosimError(f"sample {k}: expected events from read_events, got {type(e).__name__}")
    dt = _check_dt(dt)
    if steps is None:
        steps = num_bins(samples, dt)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise NeurosimError(f"steps must be a whole number >= 1, got {steps!r}")
    steps = int(steps)
    per_sample = POLARITIES * SENSOR[0] * SENSOR[1] * steps
    if len(samples) * per_sample > MAX_DENSE_BYTES:
        raise NeurosimError(f"a ({len(samples)}, 2, 34, 34, {steps}) spike tensor exceeds the limit of "
                            f"{MAX_DENSE_BYTES} bytes; use fewer samples or a larger time bin")
    out = np.zeros((len(samples), POLARITIES, SENSOR[0], SENSOR[1], steps), dtype=np.uint8)
    for n, e in enumerate(samples):
        bins = np.floor(e["t"] / dt)
        keep = bins < steps
        flat = (((e["p"][keep].astype(np.int64) * SENSOR[0] + e["y"][keep]) * SENSOR[1] + e["x"][keep])
                * steps + bins[keep].astype(np.int64))
        if binary:
            out[n].reshape(-1)[flat] = 1
        else:
            out[n] = np.minimum(np.bincount(flat, minlength=per_sample), 255).reshape(out.shape[1:])
    return out


def event_frames(samples: Sequence[np.ndarray]) -> np.ndarray:
    """Per-sample event counts per (polarity, y, x), scaled to [0, 1]: (N, 2, 34, 34) float32.

    The static image a rate-coded (converted) network takes as constant input current.
    """
    out = np.zeros((len(samples), POLARITIES, *SENSOR), dtype=np.float32)
    for n, e in enumerate(samples):
        np.add.at(out[n], (e["p"], e["y"], e["x"]), 1.0)
        peak = out[n].max()
        if peak > 0:
            out[n] /= peak
    return out


def load_nmnist_split(root: PathLike, limit: Optional[int] = None) -> tuple[Split, Split]:
    """(train, test) as event-count frames (N, 2, 34, 34) in [0, 1] (see :func:`event_frames`)."""
    splits = []
    for split in SPLITS:
        events, labels = load_nmnist(root, split, limit)
        splits.append(Split(f"nmnist/{split}", event_frames(events), labels))
    return splits[0], splits[1]


def _check_dt(dt: float) -> float:
    """The time bin as a float; refuse anything but a finite number > 0 (µs)."""
    value = None
    if not isinstance(dt, bool) and isinstance(dt, (int, float, np.integer, np.floating)):
        try:
            value = float(dt)
        except OverflowError:
            value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise NeurosimError(f"time bin must be a positive number of µs, got {dt!r:.40}")
    return value
