"""Lava backend: run a netlist on Lava's CPU simulator (``fixed_pt`` / ``floating_pt``).

* :func:`neurosim.lava.runner.run_lava` — the guarded entry point (child process + watchdog);
* :func:`neurosim.lava.builder.build_graph` — the Lava process graph of a netlist;
* :class:`neurosim.lava.process.NetlistNeuron` (the netlist's neuron where Lava's ``LIF`` does not
  fit: RMP, soft reset, per-step schedules), ``IdentitySynapse``, and their models in
  :mod:`neurosim.lava.models`.

Importing this package does not import Lava; the names below are loaded on first use.
"""
from __future__ import annotations

__all__ = ["run_lava", "LavaResult", "estimate_timeout", "build_graph", "LavaGraph", "NetlistNeuron"]

_WHERE = {"run_lava": "runner", "LavaResult": "runner", "estimate_timeout": "timelimit",
          "build_graph": "builder", "LavaGraph": "builder", "NetlistNeuron": "process"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
