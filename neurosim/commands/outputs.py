"""Where ``neurosim run`` and ``neurosim loihi2-report`` write by default: ``runs/<netlist
folder>/``, never next to the input netlist (which may sit in a shared, read-only reference
folder)."""
from __future__ import annotations

from pathlib import Path

RUNS = Path("runs")


def default_out(netlist: Path) -> Path:
    """Default output folder of ``run`` / ``loihi2-report``: ``runs/<netlist folder name>``."""
    return RUNS / (Path(netlist).resolve().parent.name or "netlist")
