"""Reader for CIFAR-10 as a zip of an image folder (``train|test/<class>/<name>.jpg``), validated.

Images become (N, 3, 32, 32) float32 in [0, 1] (RGB, channels first) and labels (N,) int64,
the index of the class folder in the sorted list of class names found in the zip (for
CIFAR-10: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck, the
standard order). The zip is read in place, never extracted; only JPEG and PNG decoders are
used, each member's declared size is checked before it is read and its image size before
it is decoded. Every problem raises :class:`NeurosimError` naming the zip (and the member).
Nothing is ever downloaded.
"""
from __future__ import annotations

import io
import lzma
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Optional, Union

import numpy as np

from neurosim.data.dataset import Split
from neurosim.errors import NeurosimError

IMAGE_SIZE = (32, 32)                  # (width, height)
SPLITS = ("train", "test")
MAX_MEMBERS = 1 << 20                  # entries in the zip (CIFAR-10: 60,022)
MAX_MEMBER_BYTES = 1 << 20             # one image file (a 32x32 JPEG is ~1 KB)
MAX_CLASSES = 1000
IMAGE_FORMATS = ("JPEG", "PNG")
_MEMBER = re.compile(r"(train|test)/([^/]+)/([^/]+)\.(?:jpe?g|png)", re.IGNORECASE)
#: What zipfile and its decompressors raise for damaged archives.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError,
               RuntimeError, OSError, ValueError, struct.error, OverflowError)

PathLike = Union[str, Path]


def _open(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise NeurosimError(f"{path}: no such file")
    if not path.is_file():
        raise NeurosimError(f"{path}: not a file (expected a zip of train|test/<class>/*.jpg)")
    try:
        return zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise NeurosimError(f"{path}: not a readable zip ({exc.__class__.__name__}: "
                            f"{str(exc)[:200]})") from None


def _members(path: Path, zf: zipfile.ZipFile) -> tuple[list[str], dict[str, list[tuple[str, zipfile.ZipInfo]]]]:
    """Class names (sorted) and, per split, ``(class, member)`` in round-robin order of the names."""
    try:
        infos = zf.infolist()
    except _ZIP_ERRORS as exc:
        raise NeurosimError(f"{path}: unreadable zip directory ({exc})") from None
    if len(infos) > MAX_MEMBERS:
        raise NeurosimError(f"{path}: {len(infos)} entries exceed the limit of {MAX_MEMBERS}")
    per_split: dict[str, list[tuple[tuple, str, zipfile.ZipInfo]]] = {s: [] for s in SPLITS}
    for info in infos:
        m = _MEMBER.fullmatch(info.filename)
        if m is None or info.is_dir():
            continue
        split, cls, stem = m.group(1).lower(), m.group(2), m.group(3)
        per_split[split].append(((len(stem), stem, cls), cls, info))
    classes = sorted({cls for items in per_split.values() for _, cls, _ in items})
    if not classes:
        raise NeurosimError(f"{path}: no images (expected entries train|test/<class>/<name>.jpg)")
    if len(classes) > MAX_CLASSES:
        raise NeurosimError(f"{path}: {len(classes)} class folders exceed the limit of {MAX_CLASSES}")
    ordered = {s: [(cls, info) for _, cls, info in sorted(items, key=lambda it: it[0])]
               for s, items in per_split.items()}
    return classes, ordered


def _read_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    where = f"{path}: member '{info.filename}'"
    if info.file_size > MAX_MEMBER_BYTES:
        raise NeurosimError(f"{where}: {info.file_size} bytes exceed the limit of {MAX_MEMBER_BYTES}")
    try:
        with zf.open(info) as fh:
            data = fh.read(MAX_MEMBER_BYTES + 1)
    except _ZIP_ERRORS as exc:
        raise NeurosimError(f"{where}: unreadable ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    if len(data) > MAX_MEMBER_BYTES:
        raise NeurosimError(f"{where}: larger than the limit of {MAX_MEMBER_BYTES} bytes")
    return data


def decode_image(data: bytes, where: str = "<image>") -> np.ndarray:
    """A 32x32 JPEG or PNG as (3, 32, 32) float32 in [0, 1]; ``where`` names it in errors."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
            if img.size != IMAGE_SIZE:
                raise NeurosimError(f"{where}: image of {img.size[0]}x{img.size[1]} pixels, "
                                    f"expected {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}")
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except NeurosimError:
        raise
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...) for bad data
        raise NeurosimError(f"{where}: not a readable JPEG/PNG image ({exc.__class__.__name__}: "
                            f"{str(exc)[:200]})") from None
    if rgb.shape != (IMAGE_SIZE[1], IMAGE_SIZE[0], 3):
        raise NeurosimError(f"{where}: decoded to shape {rgb.shape}, expected (32, 32, 3)")
    return rgb.transpose(2, 0, 1).astype(np.float32) / 255.0


def load_cifar_zip(path: PathLike, split: str = "train", limit: Optional[int] = None) -> Split:
    """One split of the zip: images (N, 3, 32, 32) float32 in [0, 1], labels (N,) int64.

    ``limit`` keeps the first N images in round-robin class order (image 0 of every class,
    then image 1, ...), so a small limit still covers every class.
    """
    path = Path(path)
    if split not in SPLITS:
        raise NeurosimError(f"unknown CIFAR-10 split '{split}' (known: {', '.join(SPLITS)})")
    if limit is not None and limit < 1:
        raise NeurosimError(f"limit must be at least 1, got {limit}")
    with _open(path) as zf:
        classes, members = _members(path, zf)
        chosen = members[split][:limit]
        if not chosen:
            raise NeurosimError(f"{path}: no images under '{split}/<class>/'")
        index = {c: k for k, c in enumerate(classes)}
        x = np.empty((len(chosen), 3, IMAGE_SIZE[1], IMAGE_SIZE[0]), dtype=np.float32)
        y = np.empty(len(chosen), dtype=np.int64)
        for k, (cls, info) in enumerate(chosen):
            x[k] = decode_image(_read_member(path, zf, info), f"{path}: member '{info.filename}'")
            y[k] = index[cls]
    return Split(f"cifar10/{split}", x, y)


def class_names(path: PathLike) -> list[str]:
    """The sorted class folder names of the zip; label ``k`` is ``class_names(path)[k]``."""
    path = Path(path)
    with _open(path) as zf:
        return _members(path, zf)[0]


def load_cifar_zip_split(path: PathLike, limit: Optional[int] = None) -> tuple[Split, Split]:
    """(train, test) of the zip, each optionally limited to its first ``limit`` images."""
    return load_cifar_zip(path, "train", limit), load_cifar_zip(path, "test", limit)
