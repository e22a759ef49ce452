"""Build a Lava process graph from a :class:`~neurosim.netlist.schema.Netlist`.

Per population layer a neuron process, and per projection the synapse process its kind
makes (:func:`neurosim.lava.synapses.lava_process`, the backend's table of kinds:
``dense`` -> ``lava.proc.dense.process.Dense``, ``conv`` -> ``Conv``, ``pool`` -> ``Conv`` with
``groups = C``, ``identity`` -> neurosim's ``IdentitySynapse``), fed by the ``s_out`` of the
projection's source and feeding the neurons' ``a_in`` (Lava adds the currents of several
connections to one ``a_in``: a residual join). A projection of ``delay`` ``d > 1`` reads its
source through a :class:`~neurosim.lava.process.DelayLine` of ``d - 1`` steps. The ``Input``
layer has no synapse (the sample enters through ``bias_mant``); a net without one takes spikes from a
``lava.proc.io.source.RingBuffer``. ``Flatten`` layers have no process: a projection that needs
flat input from a (C, H, W) layer reads ``s_out.transpose([2, 1, 0]).flatten()`` as in netx.

Neurons: a CUBA population with hard reset and no schedule is Lava's own ``LIF``, as netx
builds it (``fixed``: ``LIF(vth=vThMant, du=iDecay-1, dv=vDecay, bias_mant=bias, bias_exp=6)``;
``float``: ``du=iDecay/4096, dv=vDecay/4096``); every other population (RMP, soft reset, a
schedule) is neurosim's :class:`~neurosim.lava.process.NetlistNeuron` with the same parameters.

Lava processes are shaped (W, H, C) (or (N,)); the netlist is (C, H, W) (see
:mod:`neurosim.lava.layout`). Every recorded neuron layer's ``s_out`` also feeds a
:class:`~neurosim.lava.process.SpikeRecorder` writing into ``<record_dir>/spikes_<i>.npy``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.source import RingBuffer as SpikeSource
from lava.proc.lif.process import LIF

from neurosim.dynamics.lif import to_state
from neurosim.errors import NeurosimError
from neurosim.lava.layout import (
    TAGS, check_int16, check_netlist, lava_shape, to_lava, to_lava_time,
)
from neurosim.lava.models import (
    PyDelayLineFixed, PyDelayLineFloat, PyIdentitySynapseFixed, PyIdentitySynapseFloat, PyNetlistNeuronFixed,
    PyNetlistNeuronFloat, PySpikeRecorderFixed, PySpikeRecorderFloat,
)
from neurosim.lava.process import DelayLine, IdentitySynapse, NetlistNeuron, SpikeRecorder
from neurosim.lava.synapses import lava_process
from neurosim.netlist.schema import (
    CUBA, DECAY_UNITY, INPUT, STATE_SHIFT, Flatten, Input, Netlist, Population,
)

__all__ = ["LavaGraph", "build_graph", "initial_v", "MODELS"]

#: ProcessModel per neurosim Process and tag. The builder selects them itself (Lava's
#: ``exception_proc_model_map``): Lava's discovery would otherwise execute every module of the
#: ``neurosim`` package once per such process (measured: compile 2.2 s instead of 0.8 s for
#: three RMP layers, growing with the package, with the modules' side effects).
MODELS = {
    NetlistNeuron: {"fixed_pt": PyNetlistNeuronFixed, "floating_pt": PyNetlistNeuronFloat},
    IdentitySynapse: {"fixed_pt": PyIdentitySynapseFixed, "floating_pt": PyIdentitySynapseFloat},
    SpikeRecorder: {"fixed_pt": PySpikeRecorderFixed, "floating_pt": PySpikeRecorderFloat},
    DelayLine: {"fixed_pt": PyDelayLineFixed, "floating_pt": PyDelayLineFloat},
}
PathLike = Union[str, os.PathLike]


# ----------------------------------------------------------------------------- the graph

class LavaGraph:
    """The processes of one netlist, indexed by layer (``None`` where a layer has none).

    Run it with ``graph.starter.run(condition, run_cfg=graph.run_cfg())``.
    (A plain class, not a dataclass: Lava's ProcessModel discovery may execute the modules of
    this package under bare names, where ``@dataclass`` fails.)
    """

    def __init__(self, net: Netlist, mode: str, steps: int) -> None:
        self.net, self.mode, self.steps = net, mode, int(steps)
        self.neurons: list[Optional[AbstractProcess]] = []
        #: per layer, one synapse process per projection (empty for input and flatten layers)
        self.synapses: list[list[AbstractProcess]] = []
        self.sinks: list[Optional[SpikeRecorder]] = []
        #: the delay lines of projections with ``delay > 1``
        self.delay_lines: list[DelayLine] = []
        #: Per layer, the ``.npy`` file its recorder writes (``None`` where not recorded).
        self.spike_files: list[Optional[Path]] = []
        #: Spike source of a net without an ``input`` layer (``lava.proc.io.source.RingBuffer``).
        self.source: Optional[SpikeSource] = None
        #: Extra processes -> ProcessModel class, bypassing model discovery (Lava's
        #: ``exception_proc_model_map``), e.g. for processes a graph hook attaches.
        self.model_overrides: dict[AbstractProcess, type] = {}

    @property
    def input(self) -> Optional[AbstractProcess]:
        """The input layer's neuron process (its ``bias_mant`` carries the sample), if any."""
        return self.neurons[0] if self.net.has_input_layer else None

    @property
    def starter(self) -> AbstractProcess:
        """A process to call ``run``/``stop`` on (Lava compiles everything connected to it)."""
        return self.source if self.source is not None else self.neurons[self.neuron_layers[0]]

    def set_sample(self, x: np.ndarray, raw_current: bool = False) -> None:
        """Load one sample into the compiled graph (``Var.set``; the runtime must be paused)."""
        if self.source is not None:
            self.source.data.set(to_lava_time(x, self.net.input_shape))
        else:
            self.input.bias_mant.set(self.input_bias(x, raw_current))

    def in_flight(self) -> list:
        """The Vars that hold a sample's spikes and currents between processes (synapse
        buffers, delay lines): zeroed before every sample."""
        bufs = [syn.a_buff if hasattr(syn, "a_buff") else syn.a_buf for syns in self.synapses for syn in syns]
        return bufs + [line.buf for line in self.delay_lines]

    @property
    def neuron_layers(self) -> list[int]:
        return [i for i, p in enumerate(self.neurons) if p is not None]

    @property
    def recorded_layers(self) -> list[int]:
        """Neuron layers with a spike sink."""
        return [i for i, p in enumerate(self.sinks) if p is not None]

    @property
    def tag(self) -> str:
        return TAGS[self.mode]

    def run_cfg(self, **kwargs) -> Loihi2SimCfg:
        """``Loihi2SimCfg`` selecting the mode's tag (``fixed_pt`` / ``floating_pt``)."""
        if self.model_overrides:
            kwargs.setdefault("exception_proc_model_map", dict(self.model_overrides))
        return Loihi2SimCfg(select_tag=self.tag, **kwargs)

    def input_bias(self, x: np.ndarray, raw_current: bool = False) -> np.ndarray:
        """The input neurons' ``bias_mant`` for one sample ``x`` (shape of the input layer),
        in Lava order: ``weight * x + bias`` (rounded in ``fixed`` mode), or ``x`` itself
        with ``raw_current`` (as ``Simulator.run(raw_current=True)``)."""
        layer = self.net.layers[0]
        fixed = self.mode == "fixed"
        if raw_current:
            current = np.asarray(x, dtype=np.float64)
            current = np.round(current) if fixed else current
        else:
            current = layer.current(np.asarray(x)[None], fixed)[0]
        if fixed:
            check_int16(current, "input current (weight * x + bias)", 0)
            current = current.astype(np.int64)
        return to_lava(current, layer.shape)


def _neuron(layer: Union[Input, Population], mode: str, bias: Union[np.ndarray, float]) -> AbstractProcess:
    """The neuron process of one layer with bias ``bias_mant`` (Lava order or scalar)."""
    shape = lava_shape(layer.shape)
    n = layer.neuron
    fixed = mode == "fixed"
    bias = np.asarray(np.round(bias)).astype(np.int64) if fixed else np.asarray(bias, dtype=np.float64)
    schedule = layer.schedule if isinstance(layer, Population) else None
    if isinstance(n, CUBA) and not n.soft and schedule is None and not n.vInit:   # netx's own neuron
        if fixed:
            return LIF(shape=shape, vth=int(n.vThMant), du=int(n.iDecay) - 1, dv=int(n.vDecay),
                       bias_mant=bias, bias_exp=STATE_SHIFT)
        return LIF(shape=shape, vth=float(n.vThMant), du=n.iDecay / DECAY_UNITY,
                   dv=n.vDecay / DECAY_UNITY, bias_mant=bias)
    scale = bias_t = None
    if schedule is not None:
        rows = {k: _per_neuron(getattr(schedule, k), layer.shape) for k in ("scale", "bias")
                if getattr(schedule, k) is not None}
        scale, bias_t = rows.get("scale"), rows.get("bias")
        if fixed:
            scale = None if scale is None else np.round(scale).astype(np.int64)
            bias_t = None if bias_t is None else np.round(bias_t).astype(np.int64)
    vth = int(n.vThMant) if fixed else float(n.vThMant)
    return NetlistNeuron(shape=shape, vth=vth, i_decay=n.i_decay, v_decay=int(n.vDecay), soft_reset=n.soft,
                         bias_mant=bias, bias_exp=STATE_SHIFT if fixed else 0, scale=scale, bias_t=bias_t,
                         scale_exp=int(schedule.scale_exp) if scale is not None else 0,
                         v=initial_v(n, mode))


def initial_v(neuron, mode: str) -> Union[int, float]:
    """The voltage every sample starts from, in the mode's state units (``vInit << 6`` fixed)."""
    return int(to_state(int(neuron.vInit))) if mode == "fixed" else float(neuron.vInit)


def _per_neuron(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Schedule rows (T_s, C) as (T_s, *Lava shape): every neuron of a channel its channel's value."""
    per = np.broadcast_to(rows.reshape(len(rows), -1, *([1] * (len(shape) - 1))), (len(rows), *shape))
    return np.stack([to_lava(r, shape) for r in per])


def _layer_bias(layer: Population) -> Union[np.ndarray, float]:
    """A layer's neuron bias in Lava order (per-channel bias broadcast to every neuron)."""
    if layer.bias is None:
        return 0.0
    return _per_neuron(np.asarray(layer.bias, dtype=np.float64)[None], layer.shape)[0]


def build_graph(net: Netlist, mode: str, steps: int, first_sample: Optional[np.ndarray] = None,
                check: bool = True, raw_current: bool = False,
                record: Optional[Sequence[int]] = None, record_dir: Optional[PathLike] = None) -> LavaGraph:
    """Create and connect the processes of ``net`` for ``mode`` ('fixed' or 'float').

    A net with an ``input`` layer takes the sample through the input neurons' ``bias_mant``
    (initially the current of ``first_sample``, zero if ``None``); a net without one takes
    0/1 spikes (T, *input_shape) from a ``lava.proc.io.source.RingBuffer`` (``graph.source``)
    whose spikes reach their projections like any layer's (one step of delay). Later samples
    are loaded with :meth:`LavaGraph.set_sample`. Sinks record ``steps`` time steps, on the
    neuron layers in ``record`` (default: all; ``graph.sinks[i]`` is ``None`` elsewhere), each
    into ``<record_dir>/spikes_<i>.npy`` (a temporary folder when ``record_dir`` is None).
    ``check=False`` skips :func:`~neurosim.lava.layout.check_netlist` (done by the caller; it
    imports PyTorch). neurosim's processes get their ProcessModel through
    ``graph.model_overrides``.
    """
    if check:
        check_netlist(net, mode)
    if steps < 1:
        raise NeurosimError(f"steps must be at least 1, got {steps}")
    g = LavaGraph(net=net, mode=mode, steps=int(steps))
    record_dir = record_dir if record_dir is not None else tempfile.mkdtemp(prefix="neurosim-spikes-")
    ports: dict[int, object] = {}       # neuron layer (or INPUT) -> its s_out
    if not net.has_input_layer:
        src_shape = tuple(net.input_shape)
        data = (np.zeros((steps, *src_shape)) if first_sample is None
                else np.asarray(first_sample, dtype=np.float64))
        g.source = SpikeSource(data=to_lava_time(data, src_shape))
        ports[INPUT] = g.source.s_out
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            g.neurons.append(None), g.synapses.append([]), g.sinks.append(None)
            g.spike_files.append(None)
            continue
        syns = []
        if isinstance(layer, Input):
            bias = g.input_bias(first_sample, raw_current) if first_sample is not None else 0
            neuron = _neuron(layer, mode, bias)
        else:
            neuron = _neuron(layer, mode, _layer_bias(layer))
            for p, (src, kind) in enumerate(net.inputs(i)):
                origin = net.resolve(src)
                in_shape = net.in_shape(i, p)
                try:
                    syn = lava_process(kind, in_shape, layer.shape, mode)
                except ValueError as exc:
                    raise NeurosimError(f"layer {i} projection {p}: {exc}") from None
                port = ports[origin]
                if len(net.shape_of(origin)) == 3 and (kind.flat_input or len(in_shape) == 1):
                    port = port.transpose([2, 1, 0]).flatten()      # (W,H,C) -> (C,H,W) -> flat
                delay = int(layer.projections[p].delay)
                if delay > 1:
                    line = DelayLine(shape=port.shape, steps=delay - 1)
                    port.connect(line.s_in)
                    port = line.s_out
                    g.delay_lines.append(line)
                    g.model_overrides[line] = MODELS[DelayLine][g.tag]
                port.connect(syn.s_in)
                syn.a_out.connect(neuron.a_in)
                if type(syn) in MODELS:
                    g.model_overrides[syn] = MODELS[type(syn)][g.tag]
                syns.append(syn)
        if type(neuron) in MODELS:
            g.model_overrides[neuron] = MODELS[type(neuron)][g.tag]
        sink, path = None, None
        if record is None or i in record:
            path = Path(record_dir) / f"spikes_{i}.npy"
            np.lib.format.open_memmap(path, mode="w+", dtype=bool, shape=(g.steps, *lava_shape(layer.shape))).flush()
            sink = SpikeRecorder(shape=lava_shape(layer.shape), path=str(path))
            neuron.s_out.connect(sink.a_in)
            g.model_overrides[sink] = MODELS[SpikeRecorder][g.tag]
        g.neurons.append(neuron), g.synapses.append(syns), g.sinks.append(sink), g.spike_files.append(path)
        ports[i] = neuron.s_out
    return g
