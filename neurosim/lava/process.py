"""The ``RMPNeuron`` Lava Process: (leaky) integrate-and-fire neurons with soft reset.

Lava's ``LIF`` resets the voltage to zero after a spike; the RMP neuron of the netlist
(:class:`neurosim.netlist.schema.RMP`) subtracts the threshold instead and has no current
state (``u = a``, i.e. ``du = 4096``)::

    v[t] = (1 - v_decay/4096) * v[t-1] + a_in[t] + bias
    s[t] = v[t] > vth ;  v[t] = v[t] - vth where s[t]

Its ProcessModels (``floating_pt`` and ``fixed_pt``) are in :mod:`neurosim.lava.models`;
both call the shared step functions of :mod:`neurosim.dynamics.lif`.
"""
from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, LogConfig
from lava.magma.core.process.variable import Var


class RMPNeuron(AbstractProcess):
    """Residual-membrane-potential neurons (soft-reset IF/LIF).

    Parameters
    ----------
    shape : tuple(int)
        Shape of the population (Lava order, e.g. (W, H, C) or (N,)).
    vth : float or int
        Threshold mantissa. ``fixed_pt`` compares against ``vth << 6``.
    v_decay : float or int
        Voltage decay in units of 1/4096 (``0`` = IF, no leak), in both numeric modes.
    bias_mant : float, int or array
        Bias mantissa per neuron (or scalar).
    bias_exp : int or array
        ``fixed_pt``: the bias in state units is ``bias_mant << bias_exp`` (netx uses 6).
        Ignored by ``floating_pt`` (as by Lava's floating-point ``LIF``).
    v : float, int or array
        Initial voltage (state units in ``fixed_pt``).
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], vth: ty.Union[int, float],
                 v_decay: ty.Union[int, float] = 0,
                 bias_mant: ty.Union[int, float, np.ndarray] = 0,
                 bias_exp: ty.Union[int, np.ndarray] = 0,
                 v: ty.Union[int, float, np.ndarray] = 0,
                 name: ty.Optional[str] = None,
                 log_config: ty.Optional[LogConfig] = None) -> None:
        super().__init__(shape=shape, vth=vth, v_decay=v_decay, bias_mant=bias_mant,
                         bias_exp=bias_exp, v=v, name=name, log_config=log_config)
        shape = tuple(int(s) for s in shape)
        self.shape = shape
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=v)
        self.bias_mant = Var(shape=shape, init=bias_mant)
        self.bias_exp = Var(shape=shape, init=bias_exp)
        self.vth = Var(shape=(1,), init=vth)
        self.v_decay = Var(shape=(1,), init=v_decay)


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
