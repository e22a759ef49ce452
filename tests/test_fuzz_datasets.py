"""Property-based fuzzing of the data set readers (hypothesis): idx, N-MNIST ``.bin``, CIFAR zip.

Valid files are built in a temp folder (no shared data needed) and corrupted: truncated,
bytes flipped, headers rewritten, members replaced. Every case must either give arrays of
the promised shape and range, or raise :class:`NeurosimError` naming the file; nothing
else may escape. ``NEUROSIM_FUZZ_SCALE`` multiplies the number of cases.
"""
from __future__ import annotations

import collections
import gzip
import io
import json
import math
import os
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from neurosim.data import cifar_zip, idx, nmnist
from neurosim.data.dataset import load_dataset
from neurosim.errors import NeurosimError

SCALE = float(os.environ.get("NEUROSIM_FUZZ_SCALE", "1"))
OUTCOMES: collections.Counter = collections.Counter()


def fuzz_settings(n: int) -> settings:
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def refused(exc: NeurosimError, path: Path, tag: str) -> None:
    message = str(exc)
    assert str(path) in message, message
    assert "\n" not in message, message
    OUTCOMES[f"{tag}: refused"] += 1


def corrupt(raw: bytes, data) -> bytes:
    """Truncate, flip bytes, overwrite or zero a range, or append junk."""
    how = data.draw(st.sampled_from(["truncate", "flip", "flip", "overwrite", "zero", "append"]))
    buf = bytearray(raw)
    n = len(buf)
    if how == "truncate":
        return bytes(buf[:data.draw(st.integers(0, max(0, n - 1)))])
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 6))):
            buf[data.draw(st.integers(0, n - 1))] ^= data.draw(st.integers(1, 255))
    elif how in ("overwrite", "zero"):
        start = data.draw(st.integers(0, n - 1))
        end = min(n, start + data.draw(st.integers(1, 32)))
        buf[start:end] = bytes(end - start) if how == "zero" else \
            data.draw(st.binary(min_size=end - start, max_size=end - start))
    else:
        buf += data.draw(st.binary(min_size=1, max_size=16))
    return bytes(buf)


def report(name: str, t0: float) -> None:
    cases = sum(v for k, v in OUTCOMES.items() if "binning" not in k)
    summary = {"test": name, "cases": cases, "seconds": round(time.time() - t0, 1),
               "outcomes": dict(OUTCOMES)}
    print(json.dumps(summary))
    if os.environ.get("NEUROSIM_FUZZ_REPORT"):
        with open(os.environ["NEUROSIM_FUZZ_REPORT"], "a") as fh:
            fh.write(json.dumps(summary) + "\n")
    OUTCOMES.clear()


# ----------------------------------------------------------------------------- idx

def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


IDX_BASES = {
    "images": idx_bytes(np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)),
    "labels": idx_bytes(np.arange(5, dtype=np.uint8)),
    "float": idx_bytes(np.linspace(0, 1, 12).astype(">f4").reshape(3, 4), 0x0D),
}


def test_idx_corruption(tmp_path):
    path = tmp_path / "data-idx3-ubyte"
    t0 = time.time()

    @fuzz_settings(500)
    @given(base=st.sampled_from(sorted(IDX_BASES)), gz=st.booleans(), data=st.data(),
           header=st.one_of(st.none(), st.tuples(
               st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x07, 0xFF]),
               st.lists(st.sampled_from([0, 1, 3, 4, 5, 16, 1 << 16, 1 << 31, 2 ** 32 - 1]), max_size=6),
               st.one_of(st.none(), st.integers(0, 255)))))
    def idx_corruption(base, gz, data, header):
        raw = IDX_BASES[base]
        if header is not None:     # rewrite the header: type code, dims (possibly overflowing), ndim
            code, dims, ndim = header
            ndim = len(dims) if ndim is None else ndim
            body = data.draw(st.sampled_from([raw[4 + 4 * raw[3]:], b"", b"\x01"]))
            raw = bytes([0, 0, code, ndim]) + struct.pack(f">{len(dims)}I", *dims) + body
        raw = gzip.compress(raw, mtime=0) if gz else raw
        if header is None or data.draw(st.booleans()):
            raw = corrupt(raw, data)
        path.write_bytes(raw)
        try:
            arr = idx.read_idx(path)
        except NeurosimError as exc:
            return refused(exc, path, "idx")
        assert isinstance(arr, np.ndarray) and 1 <= arr.ndim <= 255
        assert arr.nbytes <= idx.MAX_BYTES
        OUTCOMES["idx: read"] += 1

    idx_corruption()
    report("idx_corruption", t0)


def test_idx_header_product_overflow_is_refused(tmp_path):
    """Dims whose product wraps to 0 in int64 once let an empty body pass, then crashed reshape."""
    path = tmp_path / "wrap-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + struct.pack(">4I", *(1 << 16,) * 4))
    with pytest.raises(NeurosimError, match="more than the limit"):
        idx.read_idx(path)


def test_idx_zero_dimension_is_refused(tmp_path):
    """Found by the fuzzer: dims (0, 3, 2**31, 2**31) and no body made numpy's reshape raise."""
    path = tmp_path / "zero-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + struct.pack(">4I", 0, 3, 1 << 31, 1 << 31))
    with pytest.raises(NeurosimError, match="hold no data"):
        idx.read_idx(path)


def test_idx_folder_with_a_corrupt_file(tmp_path):
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    labels = np.array([1, 2, 3], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    train, test = load_dataset("mnist", str(tmp_path))
    assert train.x.shape == (3, 1, 28, 28) and list(test.y) == [1, 2, 3]
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels.astype(">f4"), 0x0D))
    with pytest.raises(NeurosimError, match="t10k-labels-idx1-ubyte: expected \\(N,\\) integer labels"):
        load_dataset("mnist", str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels[:2]))
    with pytest.raises(NeurosimError, match="do not match"):
        load_dataset("mnist", str(tmp_path))


# ----------------------------------------------------------------------------- N-MNIST

def nmnist_bytes(x, y, p, t) -> bytes:
    x, y, p, t = (np.asarray(v, dtype=np.int64) for v in (x, y, p, t))
    b = np.stack([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], axis=1).astype(np.uint8)
    return b.tobytes()


def synthetic_sample(seed: int, n: int = 300) -> bytes:
    rng = np.random.default_rng(seed)
    return nmnist_bytes(rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n),
                        np.sort(rng.integers(0, 30_000, n)))


def test_nmnist_event_format_round_trip(tmp_path):
    path = tmp_path / "00001.bin"
    path.write_bytes(nmnist_bytes([0, 33, 5], [1, 2, 33], [1, 0, 1], [0, 70_000, (1 << 23) - 1]))
    ev = nmnist.read_events(path)
    assert ev["x"].tolist() == [0, 33, 5] and ev["y"].tolist() == [1, 2, 33]
    assert ev["p"].tolist() == [1, 0, 1] and ev["t"].tolist() == [0, 70_000, (1 << 23) - 1]
    dense = nmnist.bin_events(ev, dt=1000, steps=100)
    assert dense.shape == (1, 2, 34, 34, 100) and dense.dtype == np.uint8
    assert dense.sum() == 2 and dense[0, 1, 1, 0, 0] == 1 and dense[0, 0, 2, 33, 70] == 1
    assert nmnist.bin_events([ev], dt=1000).shape[-1] == (1 << 23) // 1000 + 1


@pytest.mark.parametrize("raw, message", [
    pytest.param(b"", "empty file", id="empty"),
    pytest.param(b"\x00" * 7, "not a whole number of 5-byte events", id="truncated"),
    pytest.param(nmnist_bytes([34], [0], [0], [0]), "outside the 34x34 sensor", id="x=34"),
    pytest.param(nmnist_bytes([3, 200], [0, 255], [0, 1], [0, 5]), "event 1 at x=200, y=255", id="y=255"),
])
def test_nmnist_bad_files_are_refused(tmp_path, raw, message):
    path = tmp_path / "00007.bin"
    path.write_bytes(raw)
    with pytest.raises(NeurosimError, match=message) as err:
        nmnist.read_events(path)
    assert str(path) in str(err.value)


def test_nmnist_corruption(tmp_path):
    path = tmp_path / "00001.bin"
    bases = [synthetic_sample(s) for s in range(3)]
    t0 = time.time()

    @fuzz_settings(500)
    @given(base=st.sampled_from(range(len(bases))), data=st.data(),
           dt=st.one_of(st.sampled_from([1, 1000, 1e-300, 1e300, 0, -1, float("nan"), float("inf"), True, "1",
                                         10 ** 400, 2.5]), st.floats(min_value=1, max_value=1e6)),
           steps=st.one_of(st.none(), st.integers(-2, 400), st.sampled_from([1 << 40, 1.5, "3"])),
           binary=st.booleans())
    def nmnist_corruption(base, data, dt, steps, binary):
        path.write_bytes(corrupt(bases[base], data))
        try:
            ev = nmnist.read_events(path)
        except NeurosimError as exc:
            return refused(exc, path, "nmnist file")
        assert ev.dtype == nmnist.EVENT_DTYPE and len(ev) >= 1
        assert ev["x"].max() < 34 and ev["y"].max() < 34 and set(np.unique(ev["p"])) <= {0, 1}
        assert ev["t"].min() >= 0 and ev["t"].max() < 1 << 23
        OUTCOMES["nmnist file: read"] += 1
        try:
            dense = nmnist.bin_events(ev, dt, steps, binary)
        except NeurosimError:
            OUTCOMES["nmnist binning: refused"] += 1
            return
        assert dense.shape[:4] == (1, 2, 34, 34) and dense.dtype == np.uint8
        if steps is None:
            assert int(dense.sum(dtype=np.int64)) == (len(ev) if not binary else
                                                      len({(p, y, x, math.floor(int(t) / float(dt))) for x, y, p, t in ev}))
        OUTCOMES["nmnist binning: ok"] += 1

    nmnist_corruption()
    report("nmnist_corruption", t0)


def test_nmnist_folder_problems(tmp_path):
    with pytest.raises(NeurosimError, match="N-MNIST folder not found"):
        nmnist.load_nmnist(tmp_path / "absent")
    with pytest.raises(NeurosimError, match="Train: not found"):
        nmnist.load_nmnist(tmp_path)
    (tmp_path / "Train" / "3").mkdir(parents=True)
    with pytest.raises(NeurosimError, match="no samples"):
        nmnist.load_nmnist(tmp_path)
    (tmp_path / "Train" / "3" / "00002.bin").write_bytes(synthetic_sample(0))
    (tmp_path / "Train" / "3" / "notes.txt").write_text("ignored")
    (tmp_path / "Train" / "1").mkdir()
    (tmp_path / "Train" / "1" / "00001.bin").write_bytes(synthetic_sample(1))
    events, labels = nmnist.load_nmnist(tmp_path)
    assert labels.tolist() == [1, 3] and len(events) == 2           # sorted by sample index
    os.mkfifo(tmp_path / "Train" / "1" / "00003.bin")               # reading it would block
    with pytest.raises(NeurosimError, match="00003.bin: not a file"):
        nmnist.load_nmnist(tmp_path)
    with pytest.raises(NeurosimError, match="spike tensor exceeds the limit"):
        nmnist.bin_events(events, dt=1000, steps=1 << 20)
    with pytest.raises(NeurosimError, match="unknown N-MNIST split"):
        nmnist.load_nmnist(tmp_path, "validation")


# ----------------------------------------------------------------------------- CIFAR zip

def image_bytes(size=(32, 32), fmt="JPEG", seed=0, mode="RGB") -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


CLASSES = ("cat", "dog", "ship")


def valid_members() -> dict[str, bytes]:
    members = {}
    for split, n in (("train", 3), ("test", 2)):
        for c, cls in enumerate(CLASSES):
            for k in range(n):
                fmt = "PNG" if (k + c) % 3 == 0 else "JPEG"
                members[f"{split}/{cls}/{k:04d}.{'png' if fmt == 'PNG' else 'jpg'}"] = image_bytes(fmt=fmt, seed=k + 10 * c)
    return members


def test_cifar_zip_valid(tmp_path):
    path = make_zip(tmp_path / "c.zip", valid_members())
    train, test = cifar_zip.load_cifar_zip_split(path)
    assert train.x.shape == (9, 3, 32, 32) and test.x.shape == (6, 3, 32, 32)
    assert train.x.dtype == np.float32 and 0 <= train.x.min() and train.x.max() <= 1
    assert train.y.tolist() == [0, 1, 2] * 3                       # round robin over classes
    assert cifar_zip.class_names(path) == list(CLASSES)
    assert cifar_zip.load_cifar_zip(path, "test", limit=4).y.tolist() == [0, 1, 2, 0]
    png = cifar_zip.load_cifar_zip(path, "train", limit=1).x[0]      # train/cat/0000.png: exact pixels
    from PIL import Image
    ref = np.asarray(Image.open(io.BytesIO(valid_members()["train/cat/0000.png"]))).transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(png, ref, atol=1e-7)


@pytest.mark.parametrize("member, data, message", [
    pytest.param("train/cat/0000.jpg", b"not an image", "not a readable JPEG/PNG image", id="text"),
    pytest.param("train/cat/0000.jpg", b"", "not a readable JPEG/PNG image", id="empty"),
    pytest.param("train/cat/0000.jpg", image_bytes((64, 32)), "image of 64x32 pixels", id="64x32"),
    pytest.param("train/cat/0000.jpg", image_bytes(fmt="GIF"), "not a readable JPEG/PNG image", id="gif"),
    pytest.param("train/cat/0000.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n",
                 "not a readable JPEG/PNG", id="eps-never-run-through-ghostscript"),
    pytest.param("train/cat/0000.jpg", image_bytes()[:200], "not a readable JPEG/PNG image", id="truncated-jpeg"),
    pytest.param("train/cat/0000.png", bytes(2 << 20), "exceed the limit", id="2MiB-member"),
])
def test_cifar_bad_members_are_refused(tmp_path, member, data, message):
    members = valid_members()
    members[member] = data
    path = make_zip(tmp_path / "c.zip", members)
    with pytest.raises(NeurosimError, match=message) as err:
        cifar_zip.load_cifar_zip(path, "train")
    assert str(path) in str(err.value) and member in str(err.value)


def test_cifar_zip_problems(tmp_path):
    with pytest.raises(NeurosimError, match="no such file"):
        cifar_zip.load_cifar_zip(tmp_path / "absent.zip")
    (tmp_path / "plain.zip").write_text("hello")
    with pytest.raises(NeurosimError, match="not a readable zip"):
        cifar_zip.load_cifar_zip(tmp_path / "plain.zip")
    path = make_zip(tmp_path / "empty.zip", {"readme.txt": b"x", "train/": b""})
    with pytest.raises(NeurosimError, match="no images"):
        cifar_zip.load_cifar_zip(path)
    path = make_zip(tmp_path / "onlytrain.zip", {"train/cat/0.jpg": image_bytes()})
    with pytest.raises(NeurosimError, match="no images under 'test/<class>/'"):
        cifar_zip.load_cifar_zip(path, "test")
    with pytest.raises(NeurosimError, match="unknown CIFAR-10 split"):
        cifar_zip.load_cifar_zip(path, "valid")


def test_cifar_zip_corruption(tmp_path):
    bases = {name: make_zip(tmp_path / f"{name}.zip", valid_members(), comp).read_bytes()
             for name, comp in (("deflate", zipfile.ZIP_DEFLATED), ("stored", zipfile.ZIP_STORED),
                                ("bzip2", zipfile.ZIP_BZIP2), ("lzma", zipfile.ZIP_LZMA))}
    path = tmp_path / "fuzz.zip"
    t0 = time.time()

    @fuzz_settings(400)
    @given(base=st.sampled_from(sorted(bases)), data=st.data(), split=st.sampled_from(["train", "test"]),
           limit=st.sampled_from([None, 1, 4]))
    def cifar_corruption(base, data, split, limit):
        path.write_bytes(corrupt(bases[base], data))
        try:
            s = cifar_zip.load_cifar_zip(path, split, limit)
        except NeurosimError as exc:
            return refused(exc, path, "cifar zip")
        assert s.x.ndim == 4 and s.x.shape[1:] == (3, 32, 32) and s.x.dtype == np.float32
        assert len(s.x) == len(s.y) >= 1 and (limit is None or len(s) <= limit)
        assert np.all((s.x >= 0) & (s.x <= 1)) and s.y.min() >= 0
        OUTCOMES["cifar zip: read"] += 1

    cifar_corruption()
    report("cifar_corruption", t0)
