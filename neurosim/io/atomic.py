"""Atomic file writes: a temp file in the target's folder, then ``os.replace``.

An interrupted write leaves the previous file (or nothing) in place, never half a file.
The temp file is ``.<name>.<pid>.<random>.tmp``; one left behind by a killed writer (its
process gone, the file older than :data:`STALE_AFTER_S`) is removed by the next write of
the same target.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, os.PathLike]

#: A temp file this old whose writer process is gone is a leftover (a kill during a write).
STALE_AFTER_S = 600.0


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists here; when in doubt (not a valid pid), yes: keep the file."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):   # another user's process, or no such pid number
        return True
    return pid > 0


def remove_stale_temps(path: PathLike) -> list[Path]:
    """Remove leftover temp files of ``path`` (dead writer, older than :data:`STALE_AFTER_S`)."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp")
    removed = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for f in siblings:
        m = pattern.fullmatch(f.name)
        if m is None or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        try:
            if now - f.lstat().st_mtime > STALE_AFTER_S:
                f.unlink()
                removed.append(f)
        except OSError:
            pass              # gone already, or not ours to remove
    return removed


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)     # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_png(path: PathLike, fig, dpi: int = 110) -> None:
    """Save the matplotlib figure ``fig`` to ``path`` as PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def write_json(path: PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
