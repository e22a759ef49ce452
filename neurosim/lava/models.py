"""ProcessModels of neurosim's Lava Processes (CPU, Loihi protocol).

:class:`~neurosim.lava.process.NetlistNeuron`: both models call the kind's step of
:data:`neurosim.lava.neurons.LAVA_NEURONS` (CUBA and RMP: the one definition of the LIF step,
:func:`neurosim.dynamics.lif.lif_float` / :func:`~neurosim.dynamics.lif.lif_fixed`) over the
kind's state Vars (:func:`neuron_models` gives the model classes for a set of state variables),
after the schedule's :func:`~neurosim.dynamics.lif.scale_float` / :func:`~neurosim.dynamics.lif.scale_fixed`.
``fixed_pt`` mirrors Lava's ``PyLifModelBitAcc`` conventions: the state (``u``, ``v``) is 24-bit
values in int32 arrays, the synaptic input is shifted left by 6 bits (inside ``lif_fixed``),
the bias in state units is ``(bias_mant + bias_t) << bias_exp`` (right shift for a negative
exponent, as Lava's ``scale_bias``), the threshold is ``vth << 6``. ``floating_pt`` mirrors
``PyLifModelFloat``: the bias is used as it is and ``bias_exp`` is ignored. At the first step
of every sample the neuron resets its state itself and drops that step's input
(:mod:`neurosim.lava.process`, "Samples back to back"); in a batched graph it also reads the
next samples' input current and writes its spikes and final voltages into files.

:class:`~neurosim.lava.process.SparseSynapse`: sends last step's sums, then adds the CSC column
of every input that spiked (compiled by Numba; the columns of silent inputs are never read):
one column per spike and sample (:func:`scatter_columns`, work proportional to the spikes
received times their fan-out) or, when many samples of the batch spike on the same inputs, each
spiking input's column for all samples at once (:func:`add_columns`, vectorised over the
batch); shifts and wraps the sums in ``fixed_pt`` (exact integers) as Lava's
``PyDenseModelBitAcc`` (``weight_exp``) and ``PyConvModelFixed`` (``signed_clamp`` to 24 bits) do.

:class:`~neurosim.lava.process.IdentitySynapse`: ``a_out`` sends last step's ``weight * s_in``
(as Lava's ``Dense`` models: send, then receive).

:class:`~neurosim.lava.process.DelayLine`: sends the row of ``buf`` received ``steps`` steps
ago, then stores this step's ``s_in`` in its place (row ``time_step mod steps``).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv.utils import signed_clamp
from numba import njit

from neurosim.dynamics.lif import scale_fixed, scale_float, to_state
from neurosim.lava.process import (
    DelayLine, IdentitySynapse, NetlistNeuron, SparseSynapse, SpikeFile, SpikeRecorder,
)


def _sample_step(model: PyLoihiProcessModel) -> int:
    """The step within the current sample, ``(time_step - 1) mod period`` (0 at its first)."""
    return (model.time_step - 1) % model.proc_params["period"]


class _NeuronModel(PyLoihiProcessModel):
    """What both modes share: the sample's step and schedule rows, the reset at its start
    (with the batched graph's input file), the kind's step over its state Vars, the recording
    into files. A model class per set of state variables: :func:`neuron_models`."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._files: Optional[dict] = None
        #: step within the sample -> row of ``v_file`` written after it (``v_steps``)
        self._v_rows = {t: k for k, t in enumerate(proc_params["v_steps"])}

    def _file(self, key: str) -> Optional[np.ndarray]:
        """The memory-mapped ``.npy`` of proc param ``key`` (opened on first use), or None."""
        if self._files is None:
            self._files = {k: np.load(self.proc_params[k], mmap_mode="r+") if self.proc_params[k] else None
                           for k in ("input_file", "spike_file", "v_file")}
        return self._files[key]

    def _inputs(self, t: int, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """``(a, bias, vth)`` of step ``t`` in the mode's units, the schedule applied."""
        raise NotImplementedError

    def run_spk(self) -> None:
        t = _sample_step(self)
        a = self.a_in.recv()
        names = self.proc_params["state"]
        if t == 0:          # a new sample: reset the state, drop the previous sample's last spikes
            for k in names:
                getattr(self, k)[:] = 0
            self.v[:] = self.proc_params["v"]
            current = self._file("input_file")
            if current is not None:
                self.bias_mant[:] = current
            a = np.zeros_like(a)
        a, bias, vth = self._inputs(t, a)
        state = {k: getattr(self, k).astype(self._state_dtype) for k in names}
        s = self.proc_params["step"](state, a, bias, vth, self.proc_params["constants"])
        for k in names:
            getattr(self, k)[:] = state[k]
        spikes, volts = self._file("spike_file"), self._file("v_file")
        if spikes is not None:
            spikes[t] = s
        row = self._v_rows.get(t) if volts is not None else None
        if row is not None:
            volts[row] = self.v
        self.s_out.send(s)

    def _rows(self, t: int) -> tuple[int, int]:
        return min(t, self.scale.shape[0] - 1), min(t, self.bias_t.shape[0] - 1)


@implements(proc=NetlistNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyNetlistNeuronFloat(_NeuronModel):
    """Floating-point netlist neuron (mantissa units); state Vars float64."""

    _state_dtype = np.float64
    _state_type = (float, None)         # (type, precision) of the state Vars: neuron_models
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    scale: np.ndarray = LavaPyType(np.ndarray, float)
    bias_t: np.ndarray = LavaPyType(np.ndarray, float)
    scale_exp: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def _inputs(self, t: int, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        rs, rb = self._rows(t)
        a = scale_float(a.astype(np.float64), self.scale[rs], int(self.scale_exp[0]))
        return a, self.bias_mant + self.bias_t[rb], float(self.vth[0])


@implements(proc=NetlistNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyNetlistNeuronFixed(_NeuronModel):
    """Fixed-point netlist neuron, bit-exact with the conventions of Lava's ``PyLifModelBitAcc``:
    state Vars 24-bit values in int32, handed to the step as int64."""

    _state_dtype = np.int64
    _state_type = (np.int32, 24)
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=3)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
    scale: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    bias_t: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    scale_exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=5)

    def _inputs(self, t: int, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.int64]:
        rs, rb = self._rows(t)
        a = scale_fixed(a.astype(np.int64), self.scale[rs].astype(np.int64), int(self.scale_exp[0]))
        bias_mant = self.bias_mant.astype(np.int64) + self.bias_t[rb].astype(np.int64)
        bias_exp = int(self.bias_exp[0])
        # Lava's scale_bias: left shift for a non-negative exponent, right shift otherwise.
        bias_eff = np.left_shift(bias_mant, bias_exp) if bias_exp >= 0 else np.right_shift(bias_mant, -bias_exp)
        return a, bias_eff, to_state(np.int64(self.vth[0]))


def _var_type(dtype: type, precision: Optional[int]) -> LavaPyType:
    return LavaPyType(np.ndarray, dtype) if precision is None else LavaPyType(np.ndarray, dtype, precision=precision)


@lru_cache(maxsize=None)
def neuron_models(state: tuple[str, ...]) -> dict[str, type]:
    """The ProcessModels of a :class:`~neurosim.lava.process.NetlistNeuron` whose kind has the
    state variables ``state``, by tag (``fixed_pt``, ``floating_pt``): the two models above with
    one Var type per state variable (Lava reads a model's Var types from its class)."""
    models = {}
    for lava_tag, base in (("fixed_pt", PyNetlistNeuronFixed), ("floating_pt", PyNetlistNeuronFloat)):
        name = base.__name__.replace("Neuron", f"Neuron_{'_'.join(state)}_")     # PyNetlistNeuron_u_v_Fixed
        models[lava_tag] = globals()[name] = type(name, (base,), {"__module__": __name__, "__qualname__": name,
                                                             **{k: _var_type(*base._state_type) for k in state}})
    return models


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


def _jit(fn):
    """``njit(nogil=True)``, cached on disk where Numba finds a writable cache folder, compiled
    afresh otherwise (the policy of :mod:`neurosim.sim.kernels`, which imports PyTorch)."""
    try:
        return njit(nogil=True, cache=True)(fn)
    except RuntimeError:            # "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)


@_jit
def scatter_columns(active: np.ndarray, n_in: int, n_out: int, indptr: np.ndarray, indices: np.ndarray,
                    data: np.ndarray, out: np.ndarray) -> None:
    """``out[b * n_out + i] += W[i, j]`` for every active input ``b * n_in + j`` (sample ``b``,
    input ``j``): the columns of the spiking inputs of ``W`` (CSC: ``indptr``, ``indices``,
    ``data``) added, in the order of ``active``, into the batch's flat sums ``out``."""
    for a in active:
        b = a // n_in
        j = a - b * n_in
        base = b * n_out
        for k in range(indptr[j], indptr[j + 1]):
            out[base + indices[k]] += data[k]


@_jit
def add_columns(s: np.ndarray, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                out: np.ndarray) -> None:
    """``out[i, :] += W[i, j] * s[:, j]`` for every input ``j`` that spiked in some sample of the
    batch ``s`` (B, n_in): the same columns added in the same order as :func:`scatter_columns`,
    each to all B samples at once (``out`` (n_out, B): one vectorised row per synapse)."""
    batch, n_in = s.shape
    col = np.empty(batch, dtype=out.dtype)
    for j in range(n_in):
        active = False
        for b in range(batch):
            col[b] = s[b, j]
            active |= s[b, j] != 0
        if active:
            for k in range(indptr[j], indptr[j + 1]):
                row = out[indices[k]]
                w = data[k]
                for b in range(batch):
                    row[b] += w * col[b]


#: Spikes per (spiking input, sample) pair above which the synapse adds whole columns for every
#: sample (:func:`add_columns`) instead of one column per spike (:func:`scatter_columns`):
#: measured on the digits net's 6x6 conv at B = 64 (2 cores), a synapse costs ~1.7 ns scattered
#: and ~0.13-0.2 ns per sample in a column of the batch, so columns pay above ~10 % of the
#: batch spiking per spiking input.
COLUMN_DENSITY = 0.1


class _SparseModel(PyLoihiProcessModel):
    """Send last step's sums, then sum this step's spikes through the connection: the
    columns of the spiking inputs, one per spike (sparse input) or each for the whole batch
    (dense input, :data:`COLUMN_DENSITY`); either adds every output's terms in the order of the
    inputs, so the sums (floats too) do not depend on the choice."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.a_buff: Optional[np.ndarray] = None

    def _sums(self, s: np.ndarray) -> np.ndarray:
        p = self.proc_params
        batch, n_out = self.a_out.shape
        data = p["data"]
        spikes = np.count_nonzero(s)
        if spikes > COLUMN_DENSITY * batch * np.count_nonzero(s.any(axis=0)):
            out = np.zeros((n_out, batch), dtype=data.dtype)
            add_columns(s, p["indptr"], p["indices"], data, out)
            return out.T
        out = np.zeros(batch * n_out, dtype=data.dtype)
        scatter_columns(np.flatnonzero(s), s.shape[1], n_out, p["indptr"], p["indices"], data, out)
        return out.reshape(batch, n_out)

    def run_spk(self) -> None:
        if self.a_buff is None:
            self.a_buff = np.zeros(self.a_out.shape)
        self.a_out.send(self.a_buff)
        self.a_buff = self._finish(self._sums(self.s_in.recv()))

    def _finish(self, a: np.ndarray) -> np.ndarray:
        return a


@implements(proc=SparseSynapse, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySparseSynapseFloat(_SparseModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=SparseSynapse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySparseSynapseFixed(_SparseModel):
    """Exact integer sums (int32 where no sum can leave it, else int64: see
    :class:`~neurosim.lava.process.SparseSynapse`), then Lava's weight exponent
    (``PyDenseModelBitAcc``) and 24-bit wrap (``PyConvModelFixed``)."""
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def _finish(self, a: np.ndarray) -> np.ndarray:
        shift, bits = self.proc_params["shift"], self.proc_params["wrap_bits"]
        a = a.astype(np.int64)
        a = np.left_shift(a, shift) if shift > 0 else np.right_shift(a, -shift)
        return a if bits is None else signed_clamp(a, bits=bits)


class _SpikeFileModel(PyLoihiProcessModel):
    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._rows: Optional[np.ndarray] = None

    def run_spk(self) -> None:
        if self._rows is None:
            self._rows = np.load(self.proc_params["path"], mmap_mode="r")
        self.s_out.send(np.asarray(self._rows[_sample_step(self)]))


@implements(proc=SpikeFile, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeFileFloat(_SpikeFileModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=SpikeFile, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeFileFixed(_SpikeFileModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)


class _DelayLineModel(PyLoihiProcessModel):
    def run_spk(self) -> None:
        if _sample_step(self) == 0:
            self.buf[:] = 0                   # a new sample: nothing in flight
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
