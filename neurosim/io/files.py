"""Reading user files with a bound and errors that name the file."""
from __future__ import annotations

from pathlib import Path
from typing import Union

from neurosim.errors import NeurosimError


def read_bounded(path: Union[str, Path], limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a regular file (one more than allowed shows it is too big)."""
    path = Path(path)
    if not path.exists():
        raise NeurosimError(f"{path}: no such file")
    if not path.is_file():
        raise NeurosimError(f"{path}: not a file")
    try:
        with open(path, "rb") as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise NeurosimError(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from None
