"""The current-based LIF neuron of netx (``CUBA``; Lava's ``LIF``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from neurosim.netlist.neurons.base import NeuronKind, Param
from neurosim.netlist.schema import DECAY_UNITY, REF_DELAY_MAX, V_INIT_MAX, VTH_MAX


@dataclass(frozen=True)
class CUBA(NeuronKind):
    """Current-based LIF (netx ``CUBA``; ``LOIHI`` is read as CUBA), hard reset by default::

        u[t] = (1 - iDecay/4096) u[t-1] + a[t]
        v[t] = (1 - vDecay/4096) v[t-1] + u[t] + b
        s[t] = v[t] > vThMant;   v[t] = 0 (reset 'hard', netx and Lava's LIF)  or  v[t] - vThMant ('soft')

    ``refDelay`` is stored for netx but not applied (Lava's LIF has no refractory period).
    ``vInit``: the voltage at the start of every sample (mantissa; netx: 0).
    """
    vThMant: float
    iDecay: int = DECAY_UNITY
    vDecay: int = 0
    refDelay: int = 1
    reset: str = "hard"
    vInit: float = 0

    type_name: ClassVar[str] = "CUBA"
    aliases: ClassVar[tuple[str, ...]] = ("LOIHI",)
    default_reset: ClassVar[str] = "hard"
    params: ClassVar[tuple[Param, ...]] = (
        Param("vThMant", 0, VTH_MAX + 1, voltage=True),
        Param("iDecay", 0, DECAY_UNITY, integer=True, default=DECAY_UNITY),
        Param("vDecay", 0, DECAY_UNITY, integer=True, default=0),
        Param("refDelay", 0, REF_DELAY_MAX, integer=True, default=1),
        Param("vInit", -V_INIT_MAX, V_INIT_MAX, voltage=True, default=0, written="nondefault"),
    )
    fixed_keys: ClassVar[dict[str, tuple[Any, str]]] = {"gradedSpike": (False, "graded spikes are not supported")}

    @property
    def i_decay(self) -> int:
        return int(self.iDecay)

    def step_constants(self) -> dict[str, Any]:
        return {"i_decay": int(self.iDecay), "v_decay": int(self.vDecay), "soft_reset": self.soft}


#: What netx builds for a ``dense`` layer stored without a ``neuron`` group: a non-leaky
#: current integrator (``iDecay = 0``, ``vDecay = 4096``: ``v = u``) with a threshold of 2**17
#: (netx writes ``1 << 18 - 1``), i.e. a readout that practically never spikes.
NETX_DENSE_WITHOUT_NEURON = CUBA(vThMant=1 << 17, iDecay=0, vDecay=DECAY_UNITY)
