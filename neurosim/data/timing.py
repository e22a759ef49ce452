"""Which time a trained net meant: the netlist's own (Lava's) or SLAYER's.

In the netlist (and in Lava, netx, Loihi) every synapse delays by one step and every neuron
integrates its bias from step 0. In SLAYER a block's output is delayed as a whole
(``delay_shift``), so a layer at depth ``d`` (:meth:`neurosim.netlist.schema.Netlist.depths`)
runs ``d`` steps behind the spike input but integrates its bias only from its own step 0:
the bias of SLAYER's mean-only batch norm (exported as ``bias``) acts ``d`` steps earlier in
Lava than in training. ``slayer`` timing switches each layer's bias on at its depth
(:func:`neurosim.netlist.transforms.bias_onset`)::

    b'[t] = 0 for t < d,    b'[t] = b for t >= d

which is exactly what lava-dl's own recording protocol does by resetting layer ``i``'s
``u`` and ``v`` after its first ``i`` steps (tinynet: ``Reset(interval=17, offset=i-1)``).
"""
from __future__ import annotations

from neurosim.errors import NeurosimError
from neurosim.netlist.schema import Netlist
from neurosim.netlist.transforms import bias_onset

TIMINGS = ("auto", "lava", "slayer")


def infer_timing(net: Netlist) -> str:
    """``slayer`` for a lava-dl tutorial export (``meta['netx_simulation']``, trained with
    SLAYER), ``lava`` otherwise (neurosim's converter aligns its biases itself)."""
    return "slayer" if "netx_simulation" in net.meta else "lava"


def apply_timing(net: Netlist, timing: str) -> tuple[Netlist, str]:
    """``(net as run, timing used)``: ``auto`` resolved by :func:`infer_timing`."""
    if timing not in TIMINGS:
        raise NeurosimError(f"timing must be one of {TIMINGS}, got '{timing}'")
    if timing == "auto":
        timing = infer_timing(net)
    if timing == "lava":
        return net, timing
    return bias_onset(net), timing
