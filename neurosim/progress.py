"""Whether progress bars are drawn: one switch for every bar in neurosim.

By default a bar is drawn when stderr is a terminal (a log file gets no carriage-return
redraws); :func:`set_enabled` forces it on or off (``--quiet`` / ``--no-progress``). Call
sites pass their own wish through :func:`shown`: ``tqdm(..., disable=not shown(progress))``.
"""
from __future__ import annotations

import sys
from typing import Optional

_enabled: Optional[bool] = None


def set_enabled(enabled: Optional[bool]) -> None:
    """``True``/``False`` forces bars on/off; ``None`` restores the default (on for a terminal)."""
    global _enabled
    _enabled = enabled


def shown(requested: bool = True) -> bool:
    """Whether a bar the caller ``requested`` is drawn."""
    if not requested:
        return False
    if _enabled is not None:
        return _enabled
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())
