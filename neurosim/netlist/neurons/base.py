"""What a neuron kind is: data and its rules, the same for every executor.

A neuron kind (one module of this package each) is a small frozen dataclass whose fields are
its parameters and whose docstring states its equations. Every kind has a threshold
``vThMant``, a reset (``'hard'``: ``v <- 0``; ``'soft'``: ``v <- v - vThMant``) and an initial
voltage ``vInit``; the rest is the kind's. It tells, with NumPy only:

* the netlist: :attr:`type_name` (``/layer/<i>/neuron/type``) and :attr:`params`, one
  :class:`Param` per field (HDF5 key, range, integer or not, default when a file leaves it
  out, voltage units or not), from which the validator (:mod:`neurosim.netlist.validate`), the
  HDF5 reader and writer (:mod:`neurosim.netlist.hdf5`), the Lava worker's codec and the Loihi
  quantiser work without per-kind code;
* its state: :attr:`state`, the variables an executor keeps per neuron (zero at the start of
  every sample, but ``v = vInit``; every kind has ``v``, the voltage readouts read);
* its dynamics: :attr:`dynamics` names the module of :mod:`neurosim.dynamics` holding its step
  per numeric mode, and :meth:`step_constants` the constants that step takes;
* its readout: :meth:`readout`, the score of an output neuron after a sample.

How an executor runs a kind is the executor's, in a :class:`~neurosim.netlist.kinds.KindTable`
from kind class to implementation (or to the reason it refuses the kind):
:data:`neurosim.sim.neurons.NEURONS` (the simulator's scan kernels),
:data:`neurosim.lava.neurons.LAVA_NEURONS` (Lava processes),
:data:`neurosim.netlist.netx_compat.NETX_NEURONS` (what netx builds),
:data:`neurosim.loihi2.neurons.LOIHI2_NEURONS` (Loihi 2's neuron programs),
:data:`neurosim.interop.nir_io.NIR_NEURONS` (NIR nodes). ``tests/test_kind_tables.py``
checks that every kind is in every table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.netlist.schema import RESETS


@dataclass(frozen=True)
class Param:
    """One parameter of a neuron kind: the dataclass field and HDF5 key ``neuron/<name>``.

    ``lo <= value <= hi``; ``integer``: always an integer (a decay); ``voltage``: in the
    voltage's mantissa units (a threshold, an initial voltage): an integer in the ``fixed``
    mode, and multiplied by a layer's scale factor when the Loihi quantiser rescales it;
    ``default``: its value when a file leaves the key out (None: the key is required);
    ``written``: ``'always'``, or ``'nondefault'`` (left out of a file when at its default).
    """
    name: str
    lo: float
    hi: float
    integer: bool = False
    voltage: bool = False
    default: Optional[float] = None
    written: str = "always"


class NeuronKind:
    """Base of the neuron dataclasses (see the module docstring)."""

    #: ``/layer/<i>/neuron/type``.
    type_name: ClassVar[str] = ""
    noun: ClassVar[str] = "neuron"
    #: Other names a file may give the kind (read as this kind, written as :attr:`type_name`).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The reset when a file has no ``neuron/reset`` key (and the one not written).
    default_reset: ClassVar[str] = "hard"
    #: The parameters but ``reset`` (:class:`Param`), in the order they are written.
    params: ClassVar[tuple[Param, ...]] = ()
    #: Keys written with a fixed value (netx's), each with the reason a file may not set it otherwise.
    fixed_keys: ClassVar[dict[str, tuple[Any, str]]] = {}
    #: State variables per neuron, in the order of the dynamics' step.
    state: ClassVar[tuple[str, ...]] = ("u", "v")
    #: The module of :mod:`neurosim.dynamics` with the kind's step per numeric mode.
    dynamics: ClassVar[str] = "lif"

    vThMant: float
    reset: str
    vInit: float

    def __post_init__(self) -> None:
        if self.reset not in RESETS:
            raise NeurosimError(f"reset must be one of {RESETS}, got {self.reset!r}")

    @property
    def soft(self) -> bool:
        """Soft reset (``v <- v - vThMant``) rather than hard (``v <- 0``)."""
        return self.reset == "soft"

    def step_constants(self) -> dict[str, Any]:
        """The constants the kind's step (:attr:`dynamics`) takes, by name."""
        raise NotImplementedError

    @staticmethod
    def readout(counts: np.ndarray, v: np.ndarray, vth: float) -> np.ndarray:
        """An output neuron's score after a sample: ``counts * vth + v`` (spikes times the
        threshold plus the residual voltage, in the mode's state units): for a neuron without
        leak, the total input it integrated."""
        return counts * vth + v
