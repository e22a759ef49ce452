"""ProcessModels of :class:`~neurosim.lava.process.RMPNeuron` (CPU, Loihi protocol).

Both models call the one definition of the neuron step, :func:`neurosim.dynamics.lif.lif_float`
and :func:`neurosim.dynamics.lif.lif_fixed`, with ``i_decay = 4096`` (no current memory,
``u = a``), ``u = 0`` and ``soft_reset=True``.

``fixed_pt`` mirrors Lava's ``PyLifModelBitAcc`` conventions: state ``v`` is a 24-bit value in
an int32 array, the synaptic input is shifted left by 6 bits (inside ``lif_fixed``), the bias in
state units is ``bias_mant << bias_exp`` (right shift for a negative exponent, as Lava's
``scale_bias``), the threshold is ``vth << 6``. ``floating_pt`` mirrors ``PyLifModelFloat``:
``bias_mant`` is used as it is and ``bias_exp`` is ignored.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurosim.dynamics.lif import lif_fixed, lif_float, to_state
from neurosim.lava.process import RMPNeuron, SpikeRecorder
from neurosim.netlist.schema import DECAY_UNITY


@implements(proc=RMPNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRMPModelFloat(PyLoihiProcessModel):
    """Floating-point RMP neuron (mantissa units)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, float)
    vth: float = LavaPyType(float, float)
    v_decay: float = LavaPyType(float, float)

    def run_spk(self) -> None:
        a = self.a_in.recv()
        u0 = np.zeros(self.v.shape, dtype=np.float64)
        _, v, s = lif_float(u0, self.v.astype(np.float64), a.astype(np.float64),
                            self.bias_mant, _scalar(self.vth), DECAY_UNITY,
                            _scalar(self.v_decay), soft_reset=True)
        self.v[:] = v
        self.s_out.send(s)


@implements(proc=RMPNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyRMPModelFixed(PyLoihiProcessModel):
    """Fixed-point RMP neuron, bit-exact with the conventions of Lava's ``PyLifModelBitAcc``."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int16, precision=16)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=3)
    vth: int = LavaPyType(int, np.int32, precision=17)
    v_decay: int = LavaPyType(int, np.int32, precision=13)

    def run_spk(self) -> None:
        a = self.a_in.recv().astype(np.int64)
        bias_mant = self.bias_mant.astype(np.int64)
        bias_exp = self.bias_exp.astype(np.int64)
        # Lava's scale_bias: left shift for a non-negative exponent, right shift otherwise.
        bias_eff = np.where(bias_exp >= 0, np.left_shift(bias_mant, np.maximum(bias_exp, 0)),
                            np.right_shift(bias_mant, np.maximum(-bias_exp, 0)))
        vth_eff = to_state(np.int64(_scalar(self.vth)))
        u0 = np.zeros(self.v.shape, dtype=np.int64)
        _, v, s = lif_fixed(u0, self.v.astype(np.int64), a, bias_eff, vth_eff, DECAY_UNITY,
                            int(_scalar(self.v_decay)), soft_reset=True)
        self.v[:] = v
        self.s_out.send(s)


class _PyRecorderModel(PyLoihiProcessModel):
    """Writes each step's spikes into the recorder's memory-mapped file (opened on first use)."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._rows = None

    def run_spk(self) -> None:
        s = self.a_in.recv()
        if self._rows is None:
            self._rows = np.load(self.proc_params["path"], mmap_mode="r+")
        self._rows[(self.time_step - 1) % self._rows.shape[0]] = s != 0


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeRecorderFloat(_PyRecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeRecorderFixed(_PyRecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)


def _scalar(x):
    """A (1,)-shaped Var value or a Python scalar as a scalar."""
    return np.asarray(x).reshape(-1)[0].item()
