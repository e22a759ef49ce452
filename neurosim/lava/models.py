"""ProcessModels of neurosim's Lava Processes (CPU, Loihi protocol).

:class:`~neurosim.lava.process.NetlistNeuron`: both models call the one definition of the
neuron step, :func:`neurosim.dynamics.lif.lif_float` / :func:`~neurosim.dynamics.lif.lif_fixed`,
after the schedule's :func:`~neurosim.dynamics.lif.scale_float` / :func:`~neurosim.dynamics.lif.scale_fixed`.
``fixed_pt`` mirrors Lava's ``PyLifModelBitAcc`` conventions: state ``u``, ``v`` are 24-bit
values in int32 arrays, the synaptic input is shifted left by 6 bits (inside ``lif_fixed``),
the bias in state units is ``(bias_mant + bias_t) << bias_exp`` (right shift for a negative
exponent, as Lava's ``scale_bias``), the threshold is ``vth << 6``. ``floating_pt`` mirrors
``PyLifModelFloat``: the bias is used as it is and ``bias_exp`` is ignored.

:class:`~neurosim.lava.process.IdentitySynapse`: ``a_out`` sends last step's ``weight * s_in``
(as Lava's ``Dense`` models: send, then receive).

:class:`~neurosim.lava.process.DelayLine`: sends the row of ``buf`` received ``steps`` steps
ago, then stores this step's ``s_in`` in its place (row ``time_step mod steps``).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurosim.dynamics.lif import lif_fixed, lif_float, scale_fixed, scale_float, to_state
from neurosim.lava.process import DelayLine, IdentitySynapse, NetlistNeuron, SpikeRecorder


class _NeuronModel(PyLoihiProcessModel):
    """The schedule row of this step, shared by both modes."""

    def _row(self) -> int:
        t = int(self.t[0])
        self.t[0] = t + 1
        return min(t, self.scale.shape[0] - 1), min(t, self.bias_t.shape[0] - 1)


@implements(proc=NetlistNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyNetlistNeuronFloat(_NeuronModel):
    """Floating-point netlist neuron (mantissa units)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    t: np.ndarray = LavaPyType(np.ndarray, np.int64)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    i_decay: np.ndarray = LavaPyType(np.ndarray, np.int64)
    v_decay: np.ndarray = LavaPyType(np.ndarray, np.int64)
    soft_reset: np.ndarray = LavaPyType(np.ndarray, np.int64)
    scale: np.ndarray = LavaPyType(np.ndarray, float)
    bias_t: np.ndarray = LavaPyType(np.ndarray, float)
    scale_exp: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self) -> None:
        rs, rb = self._row()
        a = scale_float(self.a_in.recv().astype(np.float64), self.scale[rs], int(self.scale_exp[0]))
        bias = self.bias_mant + self.bias_t[rb]
        u, v, s = lif_float(self.u.astype(np.float64), self.v.astype(np.float64), a, bias,
                            float(self.vth[0]), int(self.i_decay[0]), int(self.v_decay[0]),
                            bool(self.soft_reset[0]))
        self.u[:] = u
        self.v[:] = v
        self.s_out.send(s)


@implements(proc=NetlistNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyNetlistNeuronFixed(_NeuronModel):
    """Fixed-point netlist neuron, bit-exact with the conventions of Lava's ``PyLifModelBitAcc``."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    t: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=3)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
    i_decay: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    v_decay: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    soft_reset: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    scale: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    bias_t: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    scale_exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=5)

    def run_spk(self) -> None:
        rs, rb = self._row()
        a = scale_fixed(self.a_in.recv().astype(np.int64), self.scale[rs].astype(np.int64),
                        int(self.scale_exp[0]))
        bias_mant = self.bias_mant.astype(np.int64) + self.bias_t[rb].astype(np.int64)
        bias_exp = int(self.bias_exp[0])
        # Lava's scale_bias: left shift for a non-negative exponent, right shift otherwise.
        bias_eff = np.left_shift(bias_mant, bias_exp) if bias_exp >= 0 else np.right_shift(bias_mant, -bias_exp)
        vth_eff = to_state(np.int64(self.vth[0]))
        u, v, s = lif_fixed(self.u.astype(np.int64), self.v.astype(np.int64), a, bias_eff, vth_eff,
                            int(self.i_decay[0]), int(self.v_decay[0]), bool(self.soft_reset[0]))
        self.u[:] = u
        self.v[:] = v
        self.s_out.send(s)


class _IdentityModel(PyLoihiProcessModel):
    def run_spk(self) -> None:
        self.a_out.send(self.a_buff)
        s = self.s_in.recv()
        self.a_buff[:] = self.weight[0] * (s != 0)


@implements(proc=IdentitySynapse, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyIdentitySynapseFloat(_IdentityModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    weight: np.ndarray = LavaPyType(np.ndarray, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=IdentitySynapse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIdentitySynapseFixed(_IdentityModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    weight: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)


class _DelayLineModel(PyLoihiProcessModel):
    def run_spk(self) -> None:
        row = self.time_step % self.buf.shape[0]
        self.s_out.send(self.buf[row])
        self.buf[row] = self.s_in.recv() != 0


@implements(proc=DelayLine, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyDelayLineFloat(_DelayLineModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    buf: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=DelayLine, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyDelayLineFixed(_DelayLineModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    buf: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)


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
