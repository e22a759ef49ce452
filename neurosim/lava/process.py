"""neurosim's Lava Processes: the netlist's neuron, the identity synapse, a sparse synapse for
batched graphs, an axonal delay line, a spike recorder and a spike source reading a file.

:class:`NetlistNeuron` is any population of the netlist that Lava's own ``LIF`` cannot be
(``LIF`` resets hard and has no schedule): a population of any neuron kind, with the kind's
state variables as its Vars and the kind's step (:data:`neurosim.lava.neurons.LAVA_NEURONS`)
as a process parameter, and the per-step schedule of :class:`neurosim.netlist.schema.Schedule`.
For the LIF kinds (CUBA, RMP; state ``u``, ``v``)::

    a'[t] = scale[min(t, T_s-1)] * a_in[t]                    (fixed: rounded half up, >> scale_exp)
    u[t]  = (1 - i_decay/4096) * u[t-1] + a'[t]
    v[t]  = (1 - v_decay/4096) * v[t-1] + u[t] + bias + bias_t[min(t, T_s-1)]
    s[t]  = v[t] > vth ;  v[t] = 0 (hard)  or  v[t] - vth (soft)  where s[t]

**Samples back to back.** A run presents one sample every ``period`` Lava steps; ``t`` is the
step within the sample, ``(time_step - 1) mod period``. At ``t = 0`` the processes that hold
a sample's state reset it themselves (no ``Var.set``, which Lava sends one value at a time):
the neuron sets its state to 0 but ``v = vInit`` and drops that step's ``a_in`` (the synapses' output
of the previous step, the previous sample's last spikes), the delay line forgets the spikes in
flight. Lava's own ``Dense``/``Conv``/``LIF`` cannot, so the per-sample graph resets those
through their Vars (:mod:`neurosim.lava.worker`).

**Batched graphs** (:func:`neurosim.lava.builder.build_batched_graph`) carry B samples at once:
every process is shaped (B, n), neurons in the netlist's (C, H, W) order, and each projection is
one :class:`SparseSynapse` (the B diagonal blocks of a block-diagonal matrix, stored once). The
sample enters through files the worker writes before each batch (the input layer's current,
read by its neurons at ``t = 0``; or the spikes of a :class:`SpikeFile`) and the neurons write
their spikes and final voltages into files (Lava's ``Var.get`` moves one value at a time).

Their ProcessModels (``floating_pt`` and ``fixed_pt``) are in :mod:`neurosim.lava.models`; the
neuron models call the kind's step (for CUBA and RMP the step functions of
:mod:`neurosim.dynamics.lif`).
"""
from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, LogConfig
from lava.magma.core.process.variable import Var

if ty.TYPE_CHECKING:
    from neurosim.lava.synapses import Connection


class NetlistNeuron(AbstractProcess):
    """A population of the netlist's neurons (see the module docstring).

    Parameters
    ----------
    shape : tuple(int)
        Shape of the population: Lava order, (W, H, C) or (N,), or (B, n) in a batched graph.
    vth : float or int
        Threshold mantissa. ``fixed_pt`` compares against ``vth << 6``.
    step : callable
        The kind's step in the run's numeric mode, ``step(state, a, bias, vth, constants) -> s``
        (:data:`neurosim.lava.neurons.Step`): advances ``state`` in place and returns the spikes.
    state : tuple(str)
        The kind's state variables (:attr:`~neurosim.netlist.neurons.base.NeuronKind.state`),
        one Var each of ``shape``; ``v`` is the membrane voltage.
    constants : dict
        The kind's :meth:`~neurosim.netlist.neurons.base.NeuronKind.step_constants` (the LIF
        kinds: ``i_decay``, ``v_decay`` in units of 1/4096, ``soft_reset``).
    bias_mant : float, int or array
        Bias mantissa per neuron (or scalar). ``fixed_pt``: ``<< bias_exp`` in state units.
    bias_exp : int
        ``fixed_pt`` only (netx uses 6); ``floating_pt`` ignores it, as Lava's ``LIF``.
    scale, bias_t : array (T_s, ...) or None
        Per-step scale mantissa and extra bias of the synaptic current (None: 1 and 0); step
        ``t`` of a sample uses row ``min(t, T_s - 1)``, which broadcasts against ``shape``
        (per neuron, or (T_s, n) for every sample of a batch).
    scale_exp : int
        ``scale`` holds mantissas of ``2**-scale_exp``.
    v : int or float
        Initial voltage (state units: ``vInit << 6`` in ``fixed_pt``), set again at the start
        of every sample (every other state variable starts at 0).
    period : int
        Steps per sample (see the module docstring).
    input_file : str or None
        A ``.npy`` of ``shape``: the ``bias_mant`` of the next sample(s), read at every ``t = 0``
        (the input layer of a batched graph).
    spike_file, v_file : str or None
        ``.npy`` files that exist before the run: the spikes of every step go into row ``t`` of
        ``spike_file`` (bool, (period, *shape)), the voltage after step ``v_steps[k]`` of the
        sample into row ``k`` of ``v_file`` ((len(v_steps), *shape); int32 state units
        ``fixed_pt``, float64 ``floating_pt``).
    v_steps : tuple(int) or None
        The steps within a sample (0-based, ascending) after which ``v_file`` is written;
        default ``(period - 1,)``, the sample's last step.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], vth: ty.Union[int, float],
                 step: ty.Callable[..., np.ndarray], state: ty.Tuple[str, ...] = ("u", "v"),
                 constants: ty.Optional[ty.Dict[str, ty.Any]] = None,
                 bias_mant: ty.Union[int, float, np.ndarray] = 0,
                 bias_exp: int = 0,
                 scale: ty.Optional[np.ndarray] = None, bias_t: ty.Optional[np.ndarray] = None,
                 scale_exp: int = 0, v: ty.Union[int, float] = 0, period: int,
                 input_file: ty.Optional[str] = None, spike_file: ty.Optional[str] = None,
                 v_file: ty.Optional[str] = None, v_steps: ty.Optional[ty.Sequence[int]] = None,
                 name: ty.Optional[str] = None,
                 log_config: ty.Optional[LogConfig] = None) -> None:
        shape = tuple(int(s) for s in shape)
        state = tuple(str(k) for k in state)
        if "v" not in state or len(set(state)) != len(state):
            raise ValueError(f"a neuron's state needs 'v' and distinct names, got {state}")
        clash = set(state) & _NEURON_MEMBERS
        if clash:
            raise ValueError(f"state variable names {sorted(clash)} are taken by the process")
        scale = np.ones((1,)) if scale is None else np.asarray(scale)
        bias_t = np.zeros((1,)) if bias_t is None else np.asarray(bias_t)
        period = _period(period)
        v_steps = (period - 1,) if v_steps is None else tuple(int(t) for t in v_steps)
        if not v_steps or list(v_steps) != sorted(set(v_steps)) or not 0 <= v_steps[0] <= v_steps[-1] < period:
            raise ValueError(f"v_steps must be ascending distinct steps in 0..{period - 1}, got {v_steps}")
        super().__init__(shape=shape, vth=vth, step=step, state=state, constants=dict(constants or {}),
                         bias_mant=bias_mant, bias_exp=bias_exp, scale_exp=scale_exp, v=v,
                         period=period, input_file=input_file, spike_file=spike_file,
                         v_file=v_file, v_steps=v_steps, name=name, log_config=log_config)
        self.shape = shape
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        for k in state:
            setattr(self, k, Var(shape=shape, init=v if k == "v" else 0))
        self.bias_mant = Var(shape=shape, init=bias_mant)
        self.bias_exp = Var(shape=(1,), init=bias_exp)
        self.vth = Var(shape=(1,), init=vth)
        self.scale = Var(shape=scale.shape, init=scale)
        self.bias_t = Var(shape=bias_t.shape, init=bias_t)
        self.scale_exp = Var(shape=(1,), init=scale_exp)


#: Members of :class:`NetlistNeuron` that a state variable may not be named.
_NEURON_MEMBERS = {"a_in", "s_out", "bias_mant", "bias_exp", "vth", "scale", "bias_t", "scale_exp", "shape",
                   "name", "proc_params", "vars", "in_ports", "out_ports", "procedure", "model"}


class IdentitySynapse(AbstractProcess):
    """One-to-one synapse ``a_out[t] = weight * s_in[t-1]`` (one step of delay, as ``Dense``);
    the ``identity`` synapse kind of the netlist."""

    def __init__(self, *, shape: ty.Tuple[int, ...], weight: ty.Union[int, float] = 1,
                 name: ty.Optional[str] = None, log_config: ty.Optional[LogConfig] = None) -> None:
        super().__init__(shape=shape, weight=weight, name=name, log_config=log_config)
        shape = tuple(int(s) for s in shape)
        self.s_in = InPort(shape=shape)
        self.a_out = OutPort(shape=shape)
        self.weight = Var(shape=(1,), init=weight)
        self.a_buff = Var(shape=shape, init=0)


class SparseSynapse(AbstractProcess):
    """``a_out[b] = wrap(shift(W @ s_in[b]))`` for each of the B samples of a batched graph,
    sent one step later (as Lava's ``Dense``): ``s_in`` (B, n_in), ``a_out`` (B, n_out).

    ``connection`` (:class:`neurosim.lava.synapses.Connection`): ``W`` (n_out, n_in) in CSC
    form, stored once for the B diagonal blocks, its ``shift`` and ``wrap_bits``. The model
    adds the columns of the spiking inputs (:mod:`neurosim.lava.models`), in int32 when no
    sum can leave it (every row's ``sum |W|`` below 2**31: half the memory traffic, twice
    the vector lanes), else int64 (``fixed_pt``), or float64 (``floating_pt``).
    """

    def __init__(self, *, batch: int, connection: "Connection", name: ty.Optional[str] = None,
                 log_config: ty.Optional[LogConfig] = None) -> None:
        m = connection.matrix
        data = m.data
        if data.dtype.kind == "i":
            bound = int(abs(m).sum(axis=1).max()) if m.nnz else 0
            data = data.astype(np.int32 if bound < 1 << 31 else np.int64)
        super().__init__(indptr=np.asarray(m.indptr, dtype=np.int64), indices=np.asarray(m.indices, dtype=np.int64),
                         data=data, shift=connection.shift, wrap_bits=connection.wrap_bits,
                         name=name, log_config=log_config)
        n_out, n_in = (int(v) for v in m.shape)
        self.s_in = InPort(shape=(int(batch), n_in))
        self.a_out = OutPort(shape=(int(batch), n_out))


class SpikeFile(AbstractProcess):
    """The spike input of a batched graph: sends row ``t`` of the ``.npy`` file ``path`` (bool,
    (period, *shape)), which the worker fills before each batch."""

    def __init__(self, *, shape: ty.Tuple[int, ...], path: str, period: int,
                 name: ty.Optional[str] = None, log_config: ty.Optional[LogConfig] = None) -> None:
        super().__init__(shape=shape, path=str(path), period=_period(period), name=name, log_config=log_config)
        self.s_out = OutPort(shape=tuple(int(s) for s in shape))


class DelayLine(AbstractProcess):
    """Axonal delay of ``steps`` steps: ``s_out[t] = s_in[t - steps]`` (0 before). Placed
    before a synapse, it makes a projection of delay ``d = steps + 1`` (the synapse adds its
    own step). ``buf`` holds the spikes in flight (``steps`` rows, ring-indexed by Lava's
    time step); it is zeroed at the start of every sample (every ``period`` steps)."""

    def __init__(self, *, shape: ty.Tuple[int, ...], steps: int, period: int,
                 name: ty.Optional[str] = None, log_config: ty.Optional[LogConfig] = None) -> None:
        super().__init__(shape=shape, steps=steps, period=_period(period), name=name, log_config=log_config)
        shape = tuple(int(s) for s in shape)
        if int(steps) < 1:
            raise ValueError(f"a delay line needs at least 1 step, got {steps}")
        self.s_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.buf = Var(shape=(int(steps), *shape), init=0)


class SpikeRecorder(AbstractProcess):
    """Records the spikes it receives into a ``.npy`` file, row ``(t - 1) mod steps``.

    Lava's ``RingBuffer`` sink is read back with ``Var.get``, which moves one value at a time
    (~17 µs each: seconds per sample for a few thousand neurons); this recorder writes every
    step straight into a memory-mapped file that the worker reads after each sample. The file
    (bool, shape (steps, *shape), Lava order) must exist before the run.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], path: str,
                 name: ty.Optional[str] = None, log_config: ty.Optional[LogConfig] = None) -> None:
        super().__init__(shape=shape, path=str(path), name=name, log_config=log_config)
        self.shape = tuple(int(s) for s in shape)
        self.a_in = InPort(shape=self.shape)


def _period(period: int) -> int:
    if int(period) < 1:
        raise ValueError(f"a sample lasts at least 1 step, got period {period}")
    return int(period)
