"""``--backend loihi2``: netlists on a Loihi 2 through Lava's ``Loihi2HwCfg``.

``Loihi2HwCfg`` compiles for the chip only with Intel's Loihi extension for Lava (the
``lava-loihi`` package, distributed by Intel to INRC members), which provides the neuro-core
compiler ``lava.magma.compiler.subcompilers.nc``; Lava's own check
(``lava.utils.system.Loihi2.is_loihi2_available``) imports the same module. Without it a run is
refused at once (:func:`require_loihi2`); the CPU simulator, bit-exact with Loihi's fixed
point, is the fallback. With it, the run is neurosim's guarded Lava run
(:func:`neurosim.lava.runner.run_lava`, ``fixed`` mode) with the graph's run configuration
swapped for ``Loihi2HwCfg`` (:func:`use_hw_cfg`, a graph hook).
"""
from __future__ import annotations

import importlib.util

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.netlist.schema import Netlist

#: The module Intel's Loihi extension adds to Lava (the neuro-core compiler).
LOIHI_COMPILER = "lava.magma.compiler.subcompilers.nc.ncproc_compiler"
REFUSAL = ("--backend loihi2 needs Intel's Loihi extension for Lava (lava-loihi, from Intel's INRC, which "
           f"provides {LOIHI_COMPILER}) and a Loihi 2 system; it is not installed here, so run without "
           "--backend loihi2: the CPU simulator (and --lava) compute the same fixed-point spikes")


def loihi2_available() -> bool:
    """Whether Intel's Loihi extension (the neuro-core compiler) is importable."""
    try:
        return importlib.util.find_spec(LOIHI_COMPILER) is not None
    except (ImportError, ValueError):          # a parent package missing
        return False


def require_loihi2() -> None:
    """Raise :class:`NeurosimError` (one sentence: what to install, the fallback) without it."""
    if not loihi2_available():
        raise NeurosimError(REFUSAL)


def use_hw_cfg(graph) -> None:
    """Graph hook (run in the Lava worker): compile for the chip with ``Loihi2HwCfg`` (the
    netlist's fixed-point models where no neuro-core model exists, e.g. neurosim's
    ``NetlistNeuron``: see ``neurosim loihi2-report``)."""
    from lava.magma.core.run_configs import Loihi2HwCfg

    overrides = dict(graph.model_overrides)

    def run_cfg(**kwargs):
        if overrides:
            kwargs.setdefault("exception_proc_model_map", overrides)
        return Loihi2HwCfg(select_tag=graph.tag, **kwargs)

    graph.run_cfg = run_cfg


def run_loihi2(net: Netlist, x: np.ndarray, steps: int, raw_current: bool = False, timeout=None):
    """Run ``x`` through ``net`` on Loihi 2 (as :func:`neurosim.lava.runner.run_lava`, ``fixed``)."""
    require_loihi2()
    from neurosim.lava.runner import run_lava
    from neurosim.loihi2 import quantize  # noqa: F401  (registers the 'loihi2' profile)
    from neurosim.netlist.validate import validate

    validate(net, "loihi2")                 # number formats Loihi 2 holds (neurosim quantize-loihi2)

    return run_lava(net, x, steps, "fixed", timeout=timeout, raw_current=raw_current, batch=None,
                    graph_hook=f"{__name__}:use_hw_cfg")
