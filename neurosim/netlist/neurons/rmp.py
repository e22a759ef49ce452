"""The residual-membrane-potential neuron of RMP-SNN (Han, Srinivasan & Roy, CVPR 2020)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from neurosim.netlist.neurons.base import NeuronKind, Param
from neurosim.netlist.schema import DECAY_UNITY, V_INIT_MAX, VTH_MAX


@dataclass(frozen=True)
class RMP(NeuronKind):
    """Residual-membrane-potential neuron: (leaky) integrate-and-fire, no current state::

        v[t] = (1 - vDecay/4096) v[t-1] + a[t] + b
        s[t] = v[t] > vThMant;   v[t] = v[t] - vThMant (reset 'soft': the residual is kept)  or  0 ('hard')

    ``vDecay = 0`` is the RMP-SNN IF neuron. It is the CUBA step with ``iDecay = 4096``
    (``u[t] = a[t]``). ``vInit``: the voltage at the start of every sample (mantissa; e.g.
    ``vThMant / 2``, the θ/2 initialisation).
    """
    vThMant: float
    vDecay: int = 0
    reset: str = "soft"
    vInit: float = 0

    type_name: ClassVar[str] = "RMP"
    default_reset: ClassVar[str] = "soft"
    params: ClassVar[tuple[Param, ...]] = (
        Param("vThMant", 0, VTH_MAX + 1, voltage=True),
        Param("vDecay", 0, DECAY_UNITY, integer=True, default=0),
        Param("vInit", -V_INIT_MAX, V_INIT_MAX, voltage=True, default=0, written="nondefault"),
    )

    @property
    def i_decay(self) -> int:
        return DECAY_UNITY

    def step_constants(self) -> dict[str, Any]:
        return {"i_decay": DECAY_UNITY, "v_decay": int(self.vDecay), "soft_reset": self.soft}
