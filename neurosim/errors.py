"""Errors a user can cause and fix: every entry point prints them as one line, exit code 2."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union


class NeurosimError(Exception):
    """An expected failure (bad file, argument or environment) with a message for the user."""


class NetlistError(NeurosimError):
    """A netlist file that cannot be used, naming the file, the layer and the key."""

    def __init__(self, path: Union[str, Path, None], message: str,
                 layer: Optional[int] = None, key: Optional[str] = None) -> None:
        where = str(path) if path is not None else "<netlist>"
        if layer is not None:
            where += f": layer {layer}"
        if key is not None:
            where += f": key '{key}'"
        super().__init__(f"{where}: {message}")
        self.path, self.layer, self.key = path, layer, key


class LavaRunError(NeurosimError):
    """A Lava run that failed or timed out; the runtime and its processes were stopped."""
