"""Build a Lava process graph from a :class:`~neurosim.netlist.schema.Netlist`: the
per-sample graph (:func:`build_graph`, netx's processes, one sample at a time) or the batched
graph (:func:`build_batched_graph`, B samples per run).

**Per-sample graph.** Per population layer a neuron process, and per projection the synapse process its kind
makes (:func:`neurosim.lava.synapses.lava_process`, the backend's table of kinds:
``dense`` -> ``lava.proc.dense.process.Dense``, ``conv`` -> ``Conv``, ``pool`` -> ``Conv`` with
``groups = C``, ``identity`` -> neurosim's ``IdentitySynapse``), fed by the ``s_out`` of the
projection's source and feeding the neurons' ``a_in`` (Lava adds the currents of several
connections to one ``a_in``: a residual join). A projection of ``delay`` ``d > 1`` reads its
source through a :class:`~neurosim.lava.process.DelayLine` of ``d - 1`` steps. The ``Input``
layer has no synapse (the sample enters through ``bias_mant``); a net without one takes spikes from a
``lava.proc.io.source.RingBuffer``. ``Flatten`` layers have no process: a projection that needs
flat input from a (C, H, W) layer reads ``s_out.transpose([2, 1, 0]).flatten()`` as in netx.

Neurons: Lava's table of neuron kinds (:data:`neurosim.lava.neurons.LAVA_NEURONS`): a population
without a schedule that starts at ``v = 0`` is Lava's own process where the kind names one
(a CUBA population with hard reset is Lava's ``LIF``, as netx builds it); every other
population (RMP, soft reset, a schedule) is neurosim's
:class:`~neurosim.lava.process.NetlistNeuron` with the kind's state variables, its step
for the mode and its step constants.

Lava processes are shaped (W, H, C) (or (N,)); the netlist is (C, H, W) (see
:mod:`neurosim.lava.layout`). Every recorded neuron layer's ``s_out`` also feeds a
:class:`~neurosim.lava.process.SpikeRecorder` writing into ``<record_dir>/spikes_<i>.npy``.
This is the graph Loihi 2 compiles (:mod:`neurosim.loihi2.backend`).

**Batched graph.** The same layers, each process holding B samples: shape (B, n), neurons in
the netlist's (C, H, W) order (flatten layers vanish). Every population is a
:class:`~neurosim.lava.process.NetlistNeuron` (Lava's ``LIF`` is the CUBA, hard-reset case of
its arithmetic, but cannot reset itself between samples), every projection a
:class:`~neurosim.lava.process.SparseSynapse` of the projection's matrix
(:func:`neurosim.lava.synapses.connection`; a conv unrolled as Loihi maps it), delays
:class:`~neurosim.lava.process.DelayLine`\ s. Samples enter and results leave through files
(:class:`BatchedGraph`); state resets itself every ``steps`` steps, so batches follow each
other in one compiled run with no ``Var.set``.

Why not Lava's ``Sparse``: its ``fixed_pt`` model clips every weight to 8 bits and drops the
lowest bit of a mixed-sign matrix (``clip_weights``, ``truncate_weights``) and never wraps the
sum to 24 bits, so a conv's integers differ from ``Conv``'s (``tests/test_lava_batched.py``);
and its step selects the spiking columns of the CSR matrix, work proportional to all B copies'
synapses: on the digits net's 6x6 conv (773k synapses) at B = 64 with 15 % of the inputs
spiking, one step takes 174 ms as ``Sparse`` computes it against 10 ms (a CSC column per spike)
and 6 ms (each spiking input's column for the whole batch) in neurosim's model, 2 cores
(``benchmarks/lava_batched.py``, docs/benchmarks.md).
"""
from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.source import RingBuffer as SpikeSource
from lava.proc.lif.process import LIF

from neurosim.dynamics.lif import to_state
from neurosim.errors import NeurosimError
from neurosim.lava.layout import (
    TAGS, check_int16, check_netlist, check_readout_steps, from_lava, from_lava_steps, lava_shape, to_lava,
    to_lava_time,
)
from neurosim.lava.models import (
    PyDelayLineFixed, PyDelayLineFloat, PyIdentitySynapseFixed, PyIdentitySynapseFloat, PySparseSynapseFixed,
    PySparseSynapseFloat, PySpikeFileFixed, PySpikeFileFloat, PySpikeRecorderFixed, PySpikeRecorderFloat,
    add_columns, neuron_models, scatter_columns,
)
from neurosim.lava.neurons import LAVA_NEURONS
from neurosim.lava.process import DelayLine, IdentitySynapse, NetlistNeuron, SparseSynapse, SpikeFile, SpikeRecorder
from neurosim.lava.synapses import connection, lava_process
from neurosim.netlist.schema import INPUT, STATE_SHIFT, Flatten, Input, Netlist, Population

__all__ = ["LavaGraph", "BatchedGraph", "build_graph", "build_batched_graph", "initial_v", "MODELS"]

#: ProcessModel per neurosim Process and tag (a :class:`NetlistNeuron`'s depend on its kind's
#: state variables: :func:`neurosim.lava.models.neuron_models`). The builder selects them itself (Lava's
#: ``exception_proc_model_map``): Lava's discovery would otherwise execute every module of the
#: ``neurosim`` package once per such process (measured: compile 2.2 s instead of 0.8 s for
#: three RMP layers, growing with the package, with the modules' side effects).
MODELS = {
    IdentitySynapse: {"fixed_pt": PyIdentitySynapseFixed, "floating_pt": PyIdentitySynapseFloat},
    SpikeRecorder: {"fixed_pt": PySpikeRecorderFixed, "floating_pt": PySpikeRecorderFloat},
    DelayLine: {"fixed_pt": PyDelayLineFixed, "floating_pt": PyDelayLineFloat},
    SparseSynapse: {"fixed_pt": PySparseSynapseFixed, "floating_pt": PySparseSynapseFloat},
    SpikeFile: {"fixed_pt": PySpikeFileFixed, "floating_pt": PySpikeFileFloat},
}
PathLike = Union[str, os.PathLike]


# ----------------------------------------------------------------------------- the graphs

class _Graph:
    """What both graphs share: their processes per layer (``None`` where a layer has none), the
    run configuration, and the work of a run, cut into *units* of :attr:`samples` samples
    (:meth:`units`), each loaded (:meth:`load`), run for :attr:`steps` steps and read back
    (:meth:`read`) by :func:`neurosim.lava.worker.run_samples`.

    Run it with ``graph.starter.run(condition, run_cfg=graph.run_cfg())``.
    (Plain classes, not dataclasses: Lava's ProcessModel discovery may execute the modules of
    this package under bare names, where ``@dataclass`` fails.)
    """

    #: Samples per run of :attr:`steps` steps.
    samples = 1

    def __init__(self, net: Netlist, mode: str, steps: int) -> None:
        if steps < 1:
            raise NeurosimError(f"steps must be at least 1, got {steps}")
        self.net, self.mode, self.steps = net, mode, int(steps)
        #: The steps after which the output layer's voltage is read (the readout of a run of
        #: that many steps: a shorter run is a prefix); the per-sample graph reads the last only.
        self.readout_steps: tuple[int, ...] = (self.steps,)
        self.neurons: list[Optional[AbstractProcess]] = []
        #: per layer, one synapse process per projection (empty for input and flatten layers)
        self.synapses: list[list[AbstractProcess]] = []
        #: the delay lines of projections with ``delay > 1``
        self.delay_lines: list[DelayLine] = []
        #: Spike source of a net without an ``input`` layer.
        self.source: Optional[AbstractProcess] = None
        #: Processes -> ProcessModel class, bypassing model discovery (Lava's
        #: ``exception_proc_model_map``): neurosim's, and e.g. those a graph hook attaches.
        self.model_overrides: dict[AbstractProcess, type] = {}

    @property
    def starter(self) -> AbstractProcess:
        """A process to call ``run``/``stop`` on (Lava compiles everything connected to it)."""
        return self.source if self.source is not None else self.neurons[self.neuron_layers[0]]

    @property
    def neuron_layers(self) -> list[int]:
        return [i for i, p in enumerate(self.neurons) if p is not None]

    @property
    def recorded_layers(self) -> list[int]:
        """Neuron layers whose spikes and voltages are read back."""
        raise NotImplementedError

    @property
    def tag(self) -> str:
        return TAGS[self.mode]

    def run_cfg(self, **kwargs) -> Loihi2SimCfg:
        """``Loihi2SimCfg`` selecting the mode's tag (``fixed_pt`` / ``floating_pt``)."""
        if self.model_overrides:
            kwargs.setdefault("exception_proc_model_map", dict(self.model_overrides))
        return Loihi2SimCfg(select_tag=self.tag, **kwargs)

    def units(self, n: int) -> list[slice]:
        """The samples ``0 .. n-1`` in runs of at most :attr:`samples`."""
        return [slice(k, min(n, k + self.samples)) for k in range(0, n, self.samples)]

    def load(self, x: np.ndarray, first: bool, raw_current: bool = False) -> None:
        """Present the samples ``x`` of one unit (the runtime paused); ``first``: the first
        unit of the run, on the freshly built graph."""
        raise NotImplementedError

    def read(self, i: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(spikes (size, steps, n) bool, v (size, R, n))`` of neuron layer ``i`` after a unit
        of ``size`` samples, neurons in (C, H, W) order, v in state units (int64 ``fixed``):
        the voltage after each of :attr:`readout_steps` (R of them) for the output layer, after
        the last step (R = 1) for the others."""
        raise NotImplementedError

    def roles(self, i: int) -> list[tuple[str, AbstractProcess]]:
        """The processes of neuron layer ``i`` by role: ``neurons``, ``synapse <k>``."""
        return [("neurons", self.neurons[i]), *((f"synapse {k}", syn) for k, syn in enumerate(self.synapses[i]))]

    def _own(self, proc: AbstractProcess) -> AbstractProcess:
        """``proc``, its ProcessModel registered when it is neurosim's."""
        if isinstance(proc, NetlistNeuron):
            self.model_overrides[proc] = neuron_models(proc.proc_params["state"])[self.tag]
        elif type(proc) in MODELS:
            self.model_overrides[proc] = MODELS[type(proc)][self.tag]
        return proc

    def _delayed(self, port, delay: int):
        """``port`` itself (``delay = 1``), or through a delay line of ``delay - 1`` steps."""
        if delay <= 1:
            return port
        line = self._own(DelayLine(shape=port.shape, steps=delay - 1, period=self.steps))
        port.connect(line.s_in)
        self.delay_lines.append(line)
        return line.s_out

    def _state(self, values: np.ndarray) -> np.ndarray:
        """Voltages read back, in the result's dtype (int64 state units ``fixed``)."""
        return np.rint(values).astype(np.int64) if self.mode == "fixed" else np.asarray(values, dtype=np.float64)


class LavaGraph(_Graph):
    """The per-sample graph of :func:`build_graph`: one sample per run."""

    def __init__(self, net: Netlist, mode: str, steps: int) -> None:
        super().__init__(net, mode, steps)
        self.sinks: list[Optional[SpikeRecorder]] = []
        #: Per layer, the ``.npy`` file its recorder writes (``None`` where not recorded).
        self.spike_files: list[Optional[Path]] = []

    @property
    def input(self) -> Optional[AbstractProcess]:
        """The input layer's neuron process (its ``bias_mant`` carries the sample), if any."""
        return self.neurons[0] if self.net.has_input_layer else None

    @property
    def recorded_layers(self) -> list[int]:
        return [i for i, p in enumerate(self.sinks) if p is not None]

    def roles(self, i: int) -> list[tuple[str, AbstractProcess]]:
        """As :meth:`_Graph.roles`, and ``sink`` (its recorder) where layer ``i`` is recorded."""
        return super().roles(i) + ([("sink", self.sinks[i])] if self.sinks[i] is not None else [])

    def set_sample(self, x: np.ndarray, raw_current: bool = False) -> None:
        """Load one sample into the compiled graph (``Var.set``; the runtime must be paused)."""
        if self.net.has_input_layer:
            self.input.bias_mant.set(self.input_bias(x, raw_current))
        else:
            self.source.data.set(to_lava_time(x, self.net.input_shape))

    def in_flight(self) -> list:
        """The Vars of Lava's synapse processes that hold a sample's currents into the next
        step: zeroed before every sample (neurosim's processes reset themselves)."""
        return [syn.a_buff if hasattr(syn, "a_buff") else syn.a_buf for syns in self.synapses for syn in syns]

    def load(self, x: np.ndarray, first: bool, raw_current: bool = False) -> None:
        """Sample 0 is in the initial values; later ones through ``Var.set``, with the state of
        Lava's own processes (``LIF`` starts at 0; neurosim's reset themselves)."""
        if first:
            return
        self.set_sample(x[0], raw_current)
        for i in self.neuron_layers:
            proc = self.neurons[i]
            if isinstance(proc, LIF):
                proc.v.set(np.zeros(proc.v.shape))
                proc.u.set(np.zeros(proc.u.shape))
        for buf in self.in_flight():
            buf.set(np.zeros(buf.shape))

    def read(self, i: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        spikes = from_lava_steps(np.load(self.spike_files[i], mmap_mode="r"))[None]
        return spikes, self._state(from_lava(self.neurons[i].v.get()))[None, None]

    def input_bias(self, x: np.ndarray, raw_current: bool = False) -> np.ndarray:
        """The input neurons' ``bias_mant`` for one sample ``x`` (shape of the input layer),
        in Lava order (see :func:`input_current`)."""
        return to_lava(input_current(self.net, np.asarray(x)[None], self.mode, raw_current)[0],
                       self.net.layers[0].shape)


class BatchedGraph(_Graph):
    """The batched graph of :func:`build_batched_graph`: :attr:`samples` samples per run,
    through files in ``folder``: ``input.npy`` (the input layer's current (B, n), or spikes
    (steps, B, n_in)), and per recorded layer ``spikes_<i>.npy`` (steps, B, n) and
    ``v_<i>.npy`` (R, B, n), written by its neurons (R: the output layer's
    :attr:`readout_steps`, 1 for the others)."""

    def __init__(self, net: Netlist, mode: str, steps: int, batch: int, folder: Path,
                 readout_steps: Optional[Sequence[int]] = None) -> None:
        super().__init__(net, mode, steps)
        if batch < 1:
            raise NeurosimError(f"batch must be at least 1, got {batch}")
        if readout_steps is not None:
            self.readout_steps = check_readout_steps(readout_steps, self.steps)
        self.samples = int(batch)
        self.folder = Path(folder)
        self.input_file = self.folder / "input.npy"
        self.spike_files: dict[int, Path] = {}
        self.v_files: dict[int, Path] = {}

    @property
    def recorded_layers(self) -> list[int]:
        return sorted(self.spike_files)

    def load(self, x: np.ndarray, first: bool, raw_current: bool = False) -> None:
        """Write the unit's samples into ``input.npy`` (a short last unit padded with silent
        samples)."""
        rows = np.load(self.input_file, mmap_mode="r+")
        if self.net.has_input_layer:
            rows[:] = 0
            rows[:len(x)] = input_current(self.net, x, self.mode, raw_current).reshape(len(x), -1)
        else:
            rows[:] = False
            rows[:, :len(x)] = np.asarray(x).reshape(len(x), self.steps, -1).transpose(1, 0, 2) != 0
        rows.flush()

    def read(self, i: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        spikes = np.load(self.spike_files[i], mmap_mode="r")[:, :size].transpose(1, 0, 2)
        v = np.load(self.v_files[i], mmap_mode="r")[:, :size].transpose(1, 0, 2)
        return np.ascontiguousarray(spikes), self._state(v)


# ----------------------------------------------------------------------------- neurons

def input_current(net: Netlist, x: np.ndarray, mode: str, raw_current: bool = False) -> np.ndarray:
    """The input neurons' ``bias_mant`` for samples ``x`` (N, *input layer shape), as
    ``Simulator.run`` takes them: ``weight * x + bias`` (rounded in ``fixed`` mode, int64), or
    ``x`` itself with ``raw_current``."""
    fixed = mode == "fixed"
    if raw_current:
        current = np.asarray(x, dtype=np.float64)
        current = np.round(current) if fixed else current
    else:
        current = net.layers[0].current(np.asarray(x), fixed)
    if fixed:
        check_int16(current, "input current (weight * x + bias)", 0)
        current = current.astype(np.int64)
    return current


#: Spreads per-channel rows (T_s, C) over a graph's neurons.
PerNeuron = Callable[[np.ndarray], np.ndarray]


def _neuron_params(layer: Union[Input, Population], mode: str, per_neuron: PerNeuron) -> dict:
    """The :class:`NetlistNeuron` parameters of a layer but its shape and biases;
    ``per_neuron`` spreads rows (T_s, C) over the graph's neurons."""
    n = layer.neuron
    fixed = mode == "fixed"
    schedule = layer.schedule if isinstance(layer, Population) else None
    rows = {}
    if schedule is not None:
        rows = {k: per_neuron(np.asarray(getattr(schedule, k), dtype=np.float64)) for k in ("scale", "bias")
                if getattr(schedule, k) is not None}
        if fixed:
            rows = {k: np.round(r).astype(np.int64) for k, r in rows.items()}
    return dict(vth=int(n.vThMant) if fixed else float(n.vThMant), step=LAVA_NEURONS.of(n).steps[mode],
                state=tuple(n.state), constants=n.step_constants(), bias_exp=STATE_SHIFT if fixed else 0,
                scale=rows.get("scale"), bias_t=rows.get("bias"),
                scale_exp=int(schedule.scale_exp) if "scale" in rows else 0, v=initial_v(n, mode))


def _bias(bias: Union[np.ndarray, float], mode: str) -> np.ndarray:
    """A ``bias_mant`` in the mode's type (rounded to int64 in ``fixed`` mode)."""
    return np.round(bias).astype(np.int64) if mode == "fixed" else np.asarray(bias, dtype=np.float64)


def _layer_bias(layer: Population, per_neuron: PerNeuron) -> Union[np.ndarray, float]:
    """A layer's neuron bias per neuron of the graph (per-channel bias spread by ``per_neuron``)."""
    if layer.bias is None:
        return 0.0
    return per_neuron(np.asarray(layer.bias, dtype=np.float64)[None])[0]


def _neuron(layer: Union[Input, Population], mode: str, bias: Union[np.ndarray, float],
            steps: int) -> AbstractProcess:
    """The per-sample graph's neuron process of one layer with ``bias_mant`` ``bias`` (Lava
    order or scalar)."""
    n = layer.neuron
    bias = _bias(bias, mode)
    params = _neuron_params(layer, mode, partial(_per_neuron, shape=layer.shape))
    shape = lava_shape(layer.shape)
    native = LAVA_NEURONS.of(n).native
    if native is not None and params["scale"] is None and params["bias_t"] is None and not n.vInit:
        proc = native(n, shape, mode, bias)
        if proc is not None:
            return proc
    return NetlistNeuron(shape=shape, bias_mant=bias, period=steps, **params)


def initial_v(neuron, mode: str) -> Union[int, float]:
    """The voltage every sample starts from, in the mode's state units (``vInit << 6`` fixed)."""
    return int(to_state(int(neuron.vInit))) if mode == "fixed" else float(neuron.vInit)


def _per_neuron(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Per-channel rows (T_s, C) as (T_s, *Lava shape): every neuron of a channel its channel's value."""
    per = np.broadcast_to(rows.reshape(len(rows), -1, *([1] * (len(shape) - 1))), (len(rows), *shape))
    return np.stack([to_lava(r, shape) for r in per])


def _per_neuron_flat(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Per-channel rows (T_s, C) as (T_s, n), neurons in (C, H, W) order."""
    return np.repeat(rows, int(np.prod(shape)) // rows.shape[1], axis=1)


def _npy(path: Path, dtype: type, shape: tuple[int, ...]) -> Path:
    """Create the ``.npy`` file ``path`` (zeros) for a model to map."""
    np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()
    return path


# ----------------------------------------------------------------------------- builders

def build_graph(net: Netlist, mode: str, steps: int, first_sample: Optional[np.ndarray] = None,
                check: bool = True, raw_current: bool = False,
                record: Optional[Sequence[int]] = None, record_dir: Optional[PathLike] = None) -> LavaGraph:
    """Create and connect the processes of the per-sample graph of ``net`` for ``mode`` ('fixed'
    or 'float').

    A net with an ``input`` layer takes the sample through the input neurons' ``bias_mant``
    (initially the current of ``first_sample``, zero if ``None``); a net without one takes
    0/1 spikes (T, *input_shape) from a ``lava.proc.io.source.RingBuffer`` (``graph.source``)
    whose spikes reach their projections like any layer's (one step of delay). Later samples
    are loaded with :meth:`LavaGraph.set_sample`. Sinks record ``steps`` time steps, on the
    neuron layers in ``record`` (default: all; ``graph.sinks[i]`` is ``None`` elsewhere), each
    into ``<record_dir>/spikes_<i>.npy`` (a temporary folder when ``record_dir`` is None).
    ``check=False`` skips :func:`~neurosim.lava.layout.check_netlist` (done by the caller).
    neurosim's processes get their ProcessModel through ``graph.model_overrides``.
    """
    if check:
        check_netlist(net, mode)
    g = LavaGraph(net=net, mode=mode, steps=steps)
    record_dir = record_dir if record_dir is not None else tempfile.mkdtemp(prefix="neurosim-spikes-")
    ports: dict[int, object] = {}       # neuron layer (or INPUT) -> its s_out
    if not net.has_input_layer:
        src_shape = tuple(net.input_shape)
        data = (np.zeros((g.steps, *src_shape)) if first_sample is None
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
            neuron = _neuron(layer, mode, bias, g.steps)
        else:
            neuron = _neuron(layer, mode, _layer_bias(layer, partial(_per_neuron, shape=layer.shape)), g.steps)
            for p, (src, kind) in enumerate(net.inputs(i)):
                origin = net.resolve(src)
                in_shape = net.in_shape(i, p)
                try:
                    syn = g._own(lava_process(kind, in_shape, layer.shape, mode))
                except ValueError as exc:
                    raise NeurosimError(f"layer {i} projection {p}: {exc}") from None
                port = ports[origin]
                if len(net.shape_of(origin)) == 3 and (kind.flat_input or len(in_shape) == 1):
                    port = port.transpose([2, 1, 0]).flatten()      # (W,H,C) -> (C,H,W) -> flat
                g._delayed(port, int(layer.projections[p].delay)).connect(syn.s_in)
                syn.a_out.connect(neuron.a_in)
                syns.append(syn)
        g._own(neuron)
        sink, path = None, None
        if record is None or i in record:
            path = _npy(Path(record_dir) / f"spikes_{i}.npy", bool, (g.steps, *lava_shape(layer.shape)))
            sink = g._own(SpikeRecorder(shape=lava_shape(layer.shape), path=str(path)))
            neuron.s_out.connect(sink.a_in)
        g.neurons.append(neuron), g.synapses.append(syns), g.sinks.append(sink), g.spike_files.append(path)
        ports[i] = neuron.s_out
    return g


def build_batched_graph(net: Netlist, mode: str, steps: int, batch: int, check: bool = True,
                        record: Optional[Sequence[int]] = None,
                        record_dir: Optional[PathLike] = None,
                        readout_steps: Optional[Sequence[int]] = None) -> BatchedGraph:
    """Create and connect the processes of the batched graph of ``net`` for ``mode``: ``batch``
    samples per run of ``steps`` steps, every process shaped (batch, n) (see the module
    docstring). Samples are presented with :meth:`BatchedGraph.load` before each run; the
    neuron layers in ``record`` (default: all) write their spikes and final voltages into
    ``record_dir`` (a temporary folder when None), where ``input.npy`` lives too; the output
    layer also its voltages after each of ``readout_steps`` (default: ``steps`` only), so that
    one run of ``steps`` steps gives the readout of every shorter run of those step counts.
    ``check=False`` skips :func:`~neurosim.lava.layout.check_netlist` (done by the caller).
    """
    if check:
        check_netlist(net, mode)
    folder = Path(record_dir if record_dir is not None else tempfile.mkdtemp(prefix="neurosim-batch-"))
    g = BatchedGraph(net=net, mode=mode, steps=steps, batch=batch, folder=folder, readout_steps=readout_steps)
    fixed = mode == "fixed"
    ports: dict[int, object] = {}       # neuron layer (or INPUT) -> its s_out
    if not net.has_input_layer:
        n_in = int(np.prod(net.input_shape))
        _npy(g.input_file, bool, (g.steps, g.samples, n_in))
        g.source = g._own(SpikeFile(shape=(g.samples, n_in), path=str(g.input_file), period=g.steps))
        ports[INPUT] = g.source.s_out
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            g.neurons.append(None), g.synapses.append([])
            continue
        n = int(np.prod(layer.shape))
        files, v_steps = {}, None
        if record is None or i in record:
            files["spike_file"] = g.spike_files[i] = _npy(folder / f"spikes_{i}.npy", bool, (g.steps, g.samples, n))
            rows = g.readout_steps if i == net.output_layer else (g.steps,)
            files["v_file"] = g.v_files[i] = _npy(folder / f"v_{i}.npy", np.int32 if fixed else np.float64,
                                                   (len(rows), g.samples, n))
            v_steps = tuple(t - 1 for t in rows)
        per_neuron = partial(_per_neuron_flat, shape=layer.shape)
        if isinstance(layer, Input):
            files["input_file"] = _npy(g.input_file, np.int64 if fixed else np.float64, (g.samples, n))
            bias = 0.0
        else:
            bias = _layer_bias(layer, per_neuron)
        neuron = g._own(NetlistNeuron(shape=(g.samples, n), bias_mant=_bias(bias, mode), period=g.steps,
                                      v_steps=v_steps, **{k: str(v) for k, v in files.items()},
                                      **_neuron_params(layer, mode, per_neuron)))
        syns = []
        for p, (src, kind) in enumerate(net.inputs(i) if isinstance(layer, Population) else []):
            syn = g._own(SparseSynapse(batch=g.samples, connection=connection(kind, net.in_shape(i, p),
                                                                               layer.shape, mode)))
            g._delayed(ports[net.resolve(src)], int(layer.projections[p].delay)).connect(syn.s_in)
            syn.a_out.connect(neuron.a_in)
            syns.append(syn)
        g.neurons.append(neuron), g.synapses.append(syns)
        ports[i] = neuron.s_out
    _compile_kernels(g)
    return g


def _compile_kernels(graph: BatchedGraph) -> None:
    """Compile the sparse synapses' kernels for their data types here, once, before Lava forks
    the model processes (each would compile them again)."""
    spikes = np.zeros((1, 1), dtype=np.int32 if graph.mode == "fixed" else np.float64)
    for dtype in {syn.proc_params["data"].dtype for syns in graph.synapses for syn in syns}:
        z = np.zeros(2, dtype=np.int64)
        scatter_columns(z[:0], 1, 1, z, z[:0], np.zeros(0, dtype), np.zeros(1, dtype))
        add_columns(spikes, z, z[:0], np.zeros(0, dtype), np.zeros((1, 1), dtype))
