"""Batched executor of a netlist: the reference semantics of ``docs/netlist.md``.

A feed-forward net (a DAG in topological order) is run layer by layer over a window of ``W``
steps at a time: the synaptic input of a layer for every step of the window is the sum of
its projections, each one batched linear map (PyTorch) of its source's spikes shifted by the
projection's delay (one step, or more); the layer's per-step schedule, if any, scales it; then a compiled
kernel (:mod:`neurosim.sim.kernels`) scans the neurons over the window with the step
functions of :mod:`neurosim.dynamics.lif`. This is exact, because no layer feeds back: every
source's spikes of the window (and of the step before it) are known when a layer runs. The
batch is cut into chunks and time into windows so that the spike buffers of all layers stay
within ``workspace_bytes`` (a layer's synaptic input and a conv's output add about as much
again): memory is bounded for any batch size and ``T``, and the buffers, kept by the
:class:`Simulator` between runs, stay mapped and warm in cache.

In ``fixed`` mode, and in ``float`` mode for integer weights, the results do not depend on
how the run is cut (all sums are exact). For real-valued weights in ``float`` mode a GEMM's
summation order, which follows the chunk size, can change the last bits of ``v``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.device import DEFAULT_DEVICE, resolve_device
from neurosim.dynamics import MODES
from neurosim.dynamics.lif import scale_fixed, scale_float, to_state
from neurosim.errors import NeurosimError
from neurosim.netlist.schema import DECAY_UNITY, INPUT, Flatten, Input, Netlist, Population
from neurosim.netlist.validate import validate
from neurosim.progress import shown
from neurosim.metrics.synops import event_synops, fanouts, input_fanout
from neurosim.sim.neurons import NEURONS
from neurosim.sim.synapse import Synapse
from neurosim.sim.synapse_maps import MAPS

#: Default bound on the spike buffers of a chunk and window (all layers together).
WORKSPACE_BYTES = 1 << 25
#: A window whose schedule rows change at most this often is scanned run by run with one
#: row each (no (w, n) bias array); more often, in one scan with a row per step.
MAX_SEGMENTS = 4
#: Every integer up to this one is exact in float32.
_F32_EXACT = 1 << 24


@dataclass
class SimResult:
    """What a run produced, per layer index (``None`` for ``Flatten`` layers).

    ``counts[i]``: (N, n) spikes per neuron summed over time; ``v[i]``: (N, n) final voltage
    in state units (both kept for the output layer only unless ``per_neuron``);
    ``layer_spikes[i]``: (N,) spikes of the layer per sample; ``synops[i]``: (N,) synaptic
    events its spikes caused (each spike times its real fan-out, :mod:`neurosim.metrics.synops`);
    ``step_counts[i]``: (T,) spikes per step summed over batch and neurons;
    ``input_spikes`` / ``input_synops``: (N,) spikes of a spike-input net's input and the
    synaptic events they caused (zeros for nets with an ``Input`` layer, whose neurons are
    layer 0);
    ``spikes[i]``: (N, T, n) bool, only when recorded; ``readout`` (N, n_out): the output
    layer's ``count * vth + v`` at the end; ``readout_trace`` (N, len(readout_steps), n_out):
    the same after each of ``readout_steps``. Neurons are flattened in (C, H, W) order.

    What was counted up to each of ``readout_steps`` (K of them; ``None`` without readout
    steps), i.e. what a run of that many steps would have counted (a shorter run is a prefix):
    ``layer_spikes_trace[i]`` / ``synops_trace[i]``: (N, K) int64, the layer's spikes and the
    synaptic events they caused in steps 1..readout_steps[k] (``None`` for ``Flatten``);
    ``input_spikes_trace`` / ``input_synops_trace``: (N, K), the same for a spike input;
    ``neuron_counts_trace[i]``: (K, n) int64, each neuron's spikes in steps 1..readout_steps[k]
    summed over the samples (what NeuroBench's per-neuron metrics need; kept whatever
    ``per_neuron``);
    ``membrane_updates_trace[i]``: (K,) int64, only with ``membrane_updates``: NeuroBench's
    membrane updates of the layer in steps 1..readout_steps[k], summed over the samples: every
    neuron at step 1, then each neuron-step whose voltage (after the step, reset included)
    differs from the step before.

    ``until_readout``: the run computed each layer only for the steps that can reach the
    readout (:meth:`Simulator.run`); its counts and voltages are those of these steps.
    """
    steps: int
    counts: list[Optional[np.ndarray]]
    v: list[Optional[np.ndarray]]
    step_counts: list[Optional[np.ndarray]]
    layer_spikes: list[Optional[np.ndarray]]
    synops: list[Optional[np.ndarray]]
    spikes: Optional[list[Optional[np.ndarray]]] = None
    readout: np.ndarray = field(default_factory=lambda: np.zeros(0))
    readout_steps: tuple[int, ...] = ()
    readout_trace: Optional[np.ndarray] = None
    input_spikes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    input_synops: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    layer_spikes_trace: Optional[list[Optional[np.ndarray]]] = None
    synops_trace: Optional[list[Optional[np.ndarray]]] = None
    input_spikes_trace: Optional[np.ndarray] = None
    input_synops_trace: Optional[np.ndarray] = None
    neuron_counts_trace: Optional[list[Optional[np.ndarray]]] = None
    membrane_updates_trace: Optional[list[Optional[np.ndarray]]] = None
    until_readout: bool = False

    def accuracy_at(self, labels: np.ndarray) -> dict[int, float]:
        """Accuracy had the run stopped after each of ``readout_steps`` (a shorter run is a
        prefix of this one), as ``{T: accuracy}``."""
        if self.readout_trace is None:
            raise NeurosimError("run with readout_steps=[...] to get the accuracy at earlier steps")
        hits = np.argmax(self.readout_trace, axis=2) == np.asarray(labels)[:, None]
        return {t: float(a) for t, a in zip(self.readout_steps, hits.mean(0))}

    @property
    def synops_per_sample(self) -> np.ndarray:
        """(N,) synaptic events per sample, all layers and the spike input."""
        return np.sum([s for s in self.synops if s is not None], axis=0) + self.input_synops

    @property
    def synops_per_sample_trace(self) -> np.ndarray:
        """(N, K) synaptic events per sample up to each of ``readout_steps``, all layers and the
        spike input (column ``k`` equals ``synops_per_sample`` of a run of ``readout_steps[k]``)."""
        if self.synops_trace is None:
            raise NeurosimError("run with readout_steps=[...] to get the counts at earlier steps")
        return np.sum([s for s in self.synops_trace if s is not None], axis=0) + self.input_synops_trace

    @property
    def predictions(self) -> np.ndarray:
        return np.argmax(self.readout, axis=1)


def _step_columns(fanout: np.ndarray) -> tuple[torch.Tensor, list[int]]:
    """For per-step totals of a layer's spikes by float32 matrix-vector products, exact: the
    (c, n) rows ``[1, d_0, d_1, ...]``, with the fan-outs' digits ``d_j`` in base ``2**b``, and
    the digits' shifts ``[0, b, 2b, ...]``. ``b`` is chosen so that no row sums past 2**24 over
    the n neurons: every partial sum of 0/1 spikes times a row is then an exact float32
    integer, in any summation order. Spikes (the row of a step and sample) times row 0 count
    them; times the digit rows, shifted, add up to their synaptic events."""
    n = len(fanout)
    b = max(1, (_F32_EXACT // max(n, 1) + 1).bit_length() - 1)
    digits = max(1, -(-int(fanout.max(initial=0)).bit_length() // b))
    rows = [np.ones(n, np.int64)] + [(fanout >> (b * j)) & ((1 << b) - 1) for j in range(digits)]
    return torch.from_numpy(np.stack(rows).astype(np.float32)), [b * j for j in range(digits)]


def _count_updates(changed: np.ndarray, t0: int, picks: dict[int, int], so_far: int, into: np.ndarray) -> int:
    """NeuroBench's membrane updates of one layer over a window starting at step ``t0``: every
    neuron at the first step of the run, then each neuron-step that changed its voltage
    (``changed`` (w, m), the scan's ``v_changed``). Adds the running count at each readout step
    of the window (``picks``: position after the step -> column of ``into``); returns the count
    after the window."""
    per_step = np.count_nonzero(changed, axis=1).astype(np.int64)
    if t0 == 0:
        per_step[0] = changed.shape[1]
    total = so_far + np.cumsum(per_step)
    for pos, col in picks.items():
        into[col] += total[pos - 1]
    return int(total[-1])


def _cut(w: int, ends) -> list[tuple[int, int]]:
    """Steps ``0..w`` of a window as runs ``(lo, hi)`` that end at every position in ``ends``."""
    cuts = [0] + sorted(e for e in ends if 0 < e < w) + [w]
    return list(zip(cuts[:-1], cuts[1:]))


class _Population:
    """Per-layer neuron constants in the units of the mode (NumPy, as the kernels take them),
    and the layer's per-step schedule (:class:`neurosim.netlist.schema.Schedule`)."""

    def __init__(self, layer: Union[Input, Population], fixed: bool, input_bound: float = 0.0) -> None:
        neuron = layer.neuron
        n = int(np.prod(layer.shape))
        self.fixed = fixed
        self.neuron = neuron
        self.scan_kind = NEURONS.of(neuron)
        self.constants = neuron.step_constants()
        self.dtype = np.int64 if fixed else np.float64
        self.per_channel = n // int(layer.shape[0])          # neurons per channel
        pop = layer if isinstance(layer, Population) else None
        bias = None if pop is None else pop.bias
        b = np.zeros(n) if bias is None else np.repeat(np.asarray(bias, dtype=np.float64), self.per_channel)
        self.schedule = None if pop is None else pop.schedule
        if fixed:
            self.bias = to_state(np.round(b).astype(np.int64))
            self.vth = int(to_state(int(neuron.vThMant)))
            self.v_init = int(to_state(int(neuron.vInit)))
        else:
            self.bias, self.vth, self.v_init = b, float(neuron.vThMant), float(neuron.vInit)
        sch = self.schedule
        if sch is not None and sch.scale is not None:      # the largest scaled current
            input_bound = input_bound * float(np.abs(sch.scale).max()) * 2.0 ** -sch.scale_exp + 1
        # a memoryless current is a << 6: it cannot wrap when the synapses' bound keeps it in 24 bits
        self.may_wrap = not (self.constants.get("i_decay") == DECAY_UNITY and input_bound * (1 << 6) < 2 ** 23)

    def segments(self, t0: int, w: int) -> list[tuple[int, int]]:
        """Runs ``(lo, hi)`` of window positions over which the schedule's rows do not change,
        so each run scans with one row (a bias-onset schedule: two runs at most), or the whole
        window as one run when the rows change more than :data:`MAX_SEGMENTS` times (e.g. a
        BNTT schedule: a new row every step) or there is no schedule."""
        sch = self.schedule
        if sch is None:
            return [(0, w)]
        rows = np.concatenate([r.reshape(w, -1) for r in (sch.rows(t0, w, "scale"), sch.rows(t0, w, "bias"))
                               if r is not None], axis=1)
        cuts = [0] + [int(k) + 1 for k in np.flatnonzero(np.any(rows[1:] != rows[:-1], axis=1))] + [w]
        if len(cuts) - 1 > MAX_SEGMENTS:
            return [(0, w)]
        return list(zip(cuts[:-1], cuts[1:]))

    def scheduled(self, a: np.ndarray, bias: np.ndarray, t0: int, nb: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """The synaptic input ``a`` (w, or 1 for the same at every step, nb * n) and the bias (1
        or w, nb * n) of steps ``t0 .. t0 + w - 1`` after the schedule: ``a * scale[t, c]``
        (the mode's rounding rule, :func:`neurosim.dynamics.lif.scale_fixed`) and
        ``bias + bias[t, c]``. Over a run of equal rows (:meth:`segments`) the bias stays one
        row for all steps, and so does a one-row ``a``."""
        sch = self.schedule
        if sch is None:
            return a, bias.reshape(1, -1)
        same = (w == 1 or all(r is None or not np.any(r[1:] != r[:1])
                              for r in (sch.rows(t0, w, "scale"), sch.rows(t0, w, "bias"))))
        k = 1 if same else w                           # rows of the schedule needed
        if sch.scale is not None:
            scale = sch.rows(t0, k, "scale")[:, None, :, None]
            a = np.asarray(a, dtype=self.dtype).reshape(len(a), nb, -1, self.per_channel)
            a = (scale_fixed(a, scale.astype(np.int64), int(sch.scale_exp)) if self.fixed
                 else scale_float(a, scale, int(sch.scale_exp)))
            a = a.reshape(len(a), -1)                  # 1 or w rows
        if sch.bias is not None:
            extra = sch.rows(t0, k, "bias")[:, None, :, None]
            extra = to_state(np.round(extra).astype(np.int64)) if self.fixed else extra
            bias = (bias.reshape(1, nb, -1, self.per_channel) + extra).reshape(k, -1)
        else:
            bias = bias.reshape(1, -1)
        return a, bias

    def scan(self, a: np.ndarray, bias: np.ndarray, state: dict[str, np.ndarray], s_out: np.ndarray,
             counts: np.ndarray, v_trace: np.ndarray, v_changed: np.ndarray) -> None:
        """Advance every neuron over the window, its ``state`` arrays in place (the kind's scan,
        :data:`neurosim.sim.neurons.NEURONS`)."""
        self.scan_kind(self.fixed, self.constants, a, bias, self.vth, self.may_wrap, state, s_out, counts, v_trace,
                       v_changed)


class _SpikeBuffer:
    """Spikes of one layer over a window, plus the ``history`` steps before it (the delays of
    the projections that read it: the largest one).

    ``rows`` (H + W, m) float32 0/1: rows 0..H-1 are the last ``H`` steps before the window
    (zeros before step 0), rows H..H+W-1 the window's own; ``per_row`` (H + W,) their totals.
    A projection of delay ``d`` reads rows H-d..H-d+W-1 (:meth:`delayed`). The storage is
    allocated once for the largest chunk; a chunk of ``m`` columns uses a prefix of it.
    """

    def __init__(self, window: int, m_max: int, history: int = 1) -> None:
        self.history = h = int(history)
        self._flat = np.zeros((h + window) * m_max, np.float32)
        self.window = window
        self.per_row = np.zeros(h + window, np.int64)
        self.rows = self._flat.reshape(h + window, m_max)

    def start(self, m: int) -> None:
        """A new chunk of ``m`` columns: nothing has spiked before its step 0."""
        h = self.history
        self.rows = self._flat[:(h + self.window) * m].reshape(h + self.window, m)
        self.rows[:h] = 0
        self.per_row[:h] = 0

    def fill(self, w: int) -> np.ndarray:
        """Rows to write the ``w`` steps of the window into."""
        return self.rows[self.history:self.history + w]

    def count(self, w: int, totals: Optional[np.ndarray] = None) -> np.ndarray:
        """Total the ``w`` new rows (exact: float32 sums of fewer than 2**24 ones), or take
        ``totals`` (w,) when the caller has them; returns them."""
        h = self.history
        self.per_row[h:h + w] = self.rows[h:h + w].sum(axis=1) if totals is None else totals
        return self.per_row[h:h + w]

    def delayed(self, w: int, delay: int = 1) -> tuple[np.ndarray, int]:
        """What a projection of ``delay`` steps receives in the window's ``w`` steps, and how
        many spikes that is."""
        lo = self.history - delay
        return self.rows[lo:lo + w], int(self.per_row[lo:lo + w].sum())

    def silent(self, w: int, delay: int = 1) -> int:
        """How many of the ``w`` rows a projection of ``delay`` steps receives (:meth:`delayed`)
        come before the first spike (``w``: all of them are silent)."""
        lo = self.history - delay
        active = np.flatnonzero(self.per_row[lo:lo + w])
        return int(active[0]) if len(active) else w

    def carry(self, w: int) -> None:
        """End of window: its last ``H`` steps become the history of the next window (NumPy
        copies overlapping rows correctly when ``w < H``)."""
        h = self.history
        self.rows[:h] = self.rows[w:w + h]
        self.per_row[:h] = self.per_row[w:w + h]


class _LayerState:
    """Buffers of one layer for chunks of up to ``nb_max`` samples, carried from window to window.

    Allocated once per :class:`Simulator` and plan, and reused by every chunk and run: fresh
    large buffers would cost a page fault per 4 KiB each time.
    """

    def __init__(self, pop: _Population, syns: list[Synapse], nb_max: int, n: int, window: int,
                 history: int = 1) -> None:
        m = nb_max * n
        self.n = n
        #: the kind's state variables (``u``, ``v`` for the LIF step), in the mode's units
        self._state = {name: np.zeros(m, pop.dtype) for name in pop.neuron.state}
        self._counts = np.zeros(m, np.int64)
        self._bias = np.tile(pop.bias, nb_max)
        self.v_init = pop.v_init
        #: the synaptic input of a window, for a single synapse that writes into a given buffer
        one = syns[0] if len(syns) == 1 else None
        self.a = torch.empty(window * m, dtype=one.dtype) if one is not None and one.fills_out else None
        self.out = _SpikeBuffer(window, m, history)
        self.start(nb_max)

    def start(self, nb: int) -> None:
        """A new chunk of ``nb`` samples: the state and the counts zero, but v at the neurons' ``vInit``."""
        m = nb * self.n
        self.state = {name: a[:m] for name, a in self._state.items()}
        self.counts, self.bias = self._counts[:m], self._bias[:m]
        for name, a in self.state.items():
            a[:] = self.v_init if name == "v" else 0
        self.counts[:] = 0
        self.out.start(m)


@dataclass
class _Plan:
    """How a run is cut: ``chunk`` samples at a time, ``window`` steps at a time."""
    chunk: int
    window: int


@dataclass
class _Workspace:
    """Every buffer of a run cut by ``plan``: per layer, the input spikes (no input layer), and
    ``silence``: the synaptic input of a silent step, zeros for the largest layer of a chunk."""
    plan: _Plan
    states: list[Optional[_LayerState]]
    source: Optional[_SpikeBuffer]
    silence: np.ndarray


class Simulator:
    """Run a :class:`Netlist` on batches in ``fixed`` (Lava ``fixed_pt``) or ``float`` mode.

    A simulator reuses its buffers from run to run: run one at a time per instance (use one
    instance per thread). ``device`` (cpu, cuda, cuda:N, auto; :mod:`neurosim.device`): where
    the synaptic maps of ``float`` mode compute (:mod:`neurosim.sim.synapse`); the neurons, and
    everything of ``fixed`` mode, are CPU kernels.
    """

    def __init__(self, net: Netlist, mode: str = "fixed", workspace_bytes: int = WORKSPACE_BYTES,
                 device: Union[str, torch.device] = DEFAULT_DEVICE) -> None:
        if mode not in MODES:
            raise NeurosimError(f"mode must be one of {MODES}, got '{mode}'")
        self.net, self.mode, self.fixed = net, mode, mode == "fixed"
        self.device = resolve_device(device)
        if self.fixed and self.device.type != "cpu":
            raise NeurosimError(f"--device {device}: the fixed-point simulator runs on the CPU (its kernels are "
                                "CPU code); use --mode float for a GPU, or --device cpu")
        validate(net, "fixed" if self.fixed else "schema")      # 'fixed' needs 'schema' too
        self.workspace_bytes = workspace_bytes
        self._ws: Optional[_Workspace] = None
        #: the kernels' ``v_trace`` argument with no rows (no voltage trace is kept)
        self._no_trace = {dt: np.empty((0, 0), dt) for dt in (np.int64, np.float64)}
        #: the kernels' ``v_changed`` argument with no rows (membrane updates are not counted)
        self._no_changes = np.empty((0, 0), np.uint8)
        #: per layer, made when first needed: :func:`_step_columns` of its fan-outs
        self._columns: dict[int, tuple[torch.Tensor, list[int]]] = {}
        self.fanouts = fanouts(net)
        self.input_fanout = input_fanout(net)
        #: per layer, the fewest steps its spikes take to the output layer (``until_readout``)
        self.distances = net.distances()
        #: per layer: one Synapse per projection, the neuron layer (or INPUT) each reads, its delay
        self.synapses: list[list[Synapse]] = []
        self.sources: list[list[int]] = []
        self.delays: list[list[int]] = []
        #: neuron layer (or INPUT) -> the steps of its spikes kept before a window (largest delay)
        self.history: dict[int, int] = {}
        self.pops: list[Optional[_Population]] = []
        #: per layer: the dtype its projections' currents are summed in (:meth:`_current`)
        self.join_dtypes: list[torch.dtype] = []
        for i, layer in enumerate(net.layers):
            syns, srcs, delays = [], [], []
            if isinstance(layer, Population):
                for p, ((src, kind), proj) in enumerate(zip(net.inputs(i), layer.projections)):
                    if (why := MAPS.refusal(kind)):
                        raise NeurosimError(f"layer {i}" + (f" projection {p}" if p else "") + f": {why}")
                    syns.append(Synapse(kind, net.in_shape(i, p), self.fixed,
                                        None if self.device.type == "cpu" else self.device))
                    srcs.append(net.resolve(src))
                    delays.append(int(proj.delay))
                    self.history[srcs[-1]] = max(self.history.get(srcs[-1], 1), delays[-1])
            if not isinstance(layer, Flatten) and (why := NEURONS.refusal(layer.neuron)):
                raise NeurosimError(f"layer {i}: {why}")
            self.synapses.append(syns)
            self.sources.append(srcs)
            # float32 currents (integers) add exactly while the sum of the bounds stays below 2**24
            narrow = (all(s.dtype == torch.float32 and not s.weight_exp and not s.wraps for s in syns)
                      and sum(s.bound for s in syns) < _F32_EXACT)
            self.join_dtypes.append(torch.float32 if narrow else torch.int64 if self.fixed else torch.float64)
            self.delays.append(delays)
            self.pops.append(None if isinstance(layer, Flatten) else
                             _Population(layer, self.fixed, sum(syn.bound for syn in syns)))

    def plan(self, n_samples: int, steps: int) -> _Plan:
        """Chunk and window such that the spike buffers of all layers (4 bytes per neuron-step)
        stay within ``workspace_bytes`` (dense layers' synaptic input adds at most as much
        again): whole ``T`` first, then as many samples as fit, in chunks of equal size."""
        neurons = sum(int(np.prod(l.shape)) for l in self.net.layers if not isinstance(l, Flatten))
        if not self.net.has_input_layer:
            neurons += int(np.prod(self.net.input_shape))
        cells = max(1, self.workspace_bytes // (4 * neurons))       # (samples x steps) per chunk
        n = max(1, n_samples)
        most = int(min(n, max(1, cells // steps)))
        chunk = -(-n // -(-n // most))                              # balanced: the last chunk is not a runt
        window = int(min(steps, max(1, cells // chunk)))
        return _Plan(chunk, window)

    def run(self, x: np.ndarray, steps: int, record_spikes: bool = False, progress: bool = False,
            raw_current: bool = False, readout_steps: Sequence[int] = (), per_neuron: bool = True,
            membrane_updates: bool = False, until_readout: bool = False) -> SimResult:
        """Run ``steps`` steps per sample.

        Nets with an ``input`` layer take ``x`` (N, *input_shape), presented as the constant
        current ``weight * x + bias`` (or, with ``raw_current``, ``x`` is that current in
        mantissas). Nets without one take spikes ``x`` (N, steps, *input_shape), which reach
        the first synapse like any layer's spikes (one step of delay). ``readout_steps`` (values
        in 1..steps) keeps the output layer's readout, and every layer's spikes and SynOps
        counted so far, after those steps: accuracy, spikes and SynOps vs T from one run
        (``range(1, steps + 1)`` for every step; :class:`SimResult`'s traces). It costs a
        matrix-vector product per layer over the spikes of each window holding such a step
        (which replaces the window's spike count), no per-step work.
        ``per_neuron=False`` keeps per-neuron counts and voltages of the output layer only, so
        memory does not grow with the net's size times the batch.
        ``membrane_updates`` (needs ``readout_steps``) counts NeuroBench's membrane updates up
        to each readout step (``membrane_updates_trace``): the kernels mark each neuron-step
        that changed its voltage (1 byte per neuron-step of a window, one layer at a time).
        ``until_readout`` runs each layer only for the steps whose spikes can still reach the
        output layer by step ``steps`` (the first ``steps - d`` of a layer at distance ``d``,
        :meth:`~neurosim.netlist.schema.Netlist.distances`; a layer without a path to the
        output not at all): the readout, at ``steps`` and at every readout step, is the same
        as without it (bit for bit where the sums are exact: ``fixed`` mode, or integer
        weights; see the module docstring), but a layer's spikes, SynOps and final voltage are
        those of the steps it ran (its later steps count no spikes; the spike input's counts
        still cover every step), and a trace column counts the steps run up to its readout
        step, not what a shorter ``until_readout`` run would. In a run of the papers' ``T + D``
        steps a layer computes at most ``T`` steps of synaptic input instead of ``T + D``
        (exactly ``T`` when all its paths from the input to the output are equally long, as
        aligned joins make them). Not with ``membrane_updates``.

        Whatever the option, a step in which none of a layer's projections receives a spike
        (before the first spikes of its sources) computes no synaptic map: its input is 0.
        """
        x = np.asarray(x)
        self.net.check_samples(x, steps, raw_current)
        readout_steps = tuple(sorted({int(t) for t in readout_steps}))
        if readout_steps and not 1 <= readout_steps[0] <= readout_steps[-1] <= steps:
            raise NeurosimError(f"readout_steps must lie in 1..{steps}, got {readout_steps[0]}..{readout_steps[-1]}")
        if membrane_updates and not readout_steps:
            raise NeurosimError("membrane_updates are counted up to readout_steps: name at least one")
        if membrane_updates and until_readout:
            raise NeurosimError("membrane_updates count every step of every layer: not with until_readout")
        horizon = [0 if d is None else steps - d for d in self.distances] if until_readout else None
        res = self._allocate(len(x), steps, record_spikes, readout_steps, per_neuron)
        res.until_readout = bool(until_readout)
        if membrane_updates:
            res.membrane_updates_trace = [None if c is None else np.zeros(len(readout_steps), np.int64)
                                          for c in res.layer_spikes]
        plan = self.plan(len(x), steps)
        ws = self._workspace(plan)
        with tqdm(total=len(x), desc=f"simulate ({self.mode}, T={steps})", disable=not shown(progress),
                  unit="sample", leave=False) as bar, torch.no_grad():
            for start in range(0, len(x), plan.chunk):
                xs = x[start:start + plan.chunk]
                self._run_chunk(xs, steps, ws, res, slice(start, start + len(xs)), raw_current, horizon)
                bar.update(len(xs))
        out = self.net.output_layer
        res.readout = self.pops[out].neuron.readout(res.counts[out], res.v[out], self.pops[out].vth)
        return res

    def _allocate(self, n_samples: int, steps: int, record: bool, readout_steps: tuple[int, ...],
                  per_neuron: bool) -> SimResult:
        """Empty result arrays for the whole batch."""
        net, out = self.net, self.net.output_layer
        counts, vs, step_counts, spikes, layer_spikes, synops = [], [], [], [], [], []
        for i, layer in enumerate(net.layers):
            if isinstance(layer, Flatten):
                for lst in (counts, vs, step_counts, spikes, layer_spikes, synops):
                    lst.append(None)
                continue
            n = int(np.prod(layer.shape))
            keep = per_neuron or i == out
            counts.append(np.zeros((n_samples, n), np.int64) if keep else None)
            vs.append(np.zeros((n_samples, n), self.pops[i].dtype) if keep else None)
            step_counts.append(np.zeros(steps, np.int64))
            spikes.append(np.zeros((n_samples, steps, n), bool) if record else None)
            layer_spikes.append(np.zeros(n_samples, np.int64))
            synops.append(np.zeros(n_samples, np.int64))
        n_out, k = int(np.prod(net.layers[out].shape)), len(readout_steps)
        trace = np.zeros((n_samples, k, n_out), self.pops[out].dtype) if readout_steps else None

        def per_step() -> Optional[list[Optional[np.ndarray]]]:
            return [None if c is None else np.zeros((n_samples, k), np.int64) for c in layer_spikes] if k else None
        return SimResult(steps, counts, vs, step_counts, layer_spikes, synops, spikes if record else None,
                         readout_steps=readout_steps, readout_trace=trace,
                         input_spikes=np.zeros(n_samples, np.int64), input_synops=np.zeros(n_samples, np.int64),
                         layer_spikes_trace=per_step(), synops_trace=per_step(),
                         input_spikes_trace=np.zeros((n_samples, k), np.int64) if k else None,
                         neuron_counts_trace=[None if isinstance(layer, Flatten) else
                                              np.zeros((k, int(np.prod(layer.shape))), np.int64)
                                              for layer in net.layers] if k else None,
                         input_synops_trace=np.zeros((n_samples, k), np.int64) if k else None)

    def _workspace(self, plan: _Plan) -> _Workspace:
        """The buffers for ``plan``, kept from the previous run when the plan is the same."""
        if self._ws is None or self._ws.plan != plan:
            self._ws = None                            # free the old buffers before allocating
            states = [None if pop is None else _LayerState(pop, syn, plan.chunk, int(np.prod(layer.shape)), plan.window,
                                                           self.history.get(i, 1))
                      for i, (pop, syn, layer) in enumerate(zip(self.pops, self.synapses, self.net.layers))]
            source = None if self.net.has_input_layer else _SpikeBuffer(
                plan.window, plan.chunk * int(np.prod(self.net.input_shape)), self.history.get(INPUT, 1))
            silence = np.zeros(plan.chunk * max(st.n for st in states if st is not None), np.float32)
            self._ws = _Workspace(plan, states, source, silence)
        return self._ws

    def _run_chunk(self, x: np.ndarray, steps: int, ws: _Workspace, res: SimResult, rows: slice,
                   raw_current: bool, horizon: Optional[list[int]] = None) -> None:
        """One chunk of samples, window after window; results go into ``res[rows]``.
        ``horizon``: per layer, the steps it runs (``until_readout``), or None: all."""
        net, nb, states, source, window = self.net, len(x), ws.states, ws.source, ws.plan.window
        for st in states:
            if st is not None:
                st.start(nb)
        biases = [None if st is None else st.bias for st in states]
        if net.has_input_layer:                        # the sample's current is the input layer's bias
            current = (x if raw_current else net.layers[0].current(x, self.fixed)).reshape(-1)
            biases[0] = biases[0] + (to_state(np.round(current).astype(np.int64)) if self.fixed else current)
        else:                                          # the input spikes of a net without input layer
            source.start(nb * int(np.prod(net.input_shape)))
            in_spikes = np.zeros(nb, np.float64)
            uniform = self.input_fanout.min() == self.input_fanout.max()           # e.g. a dense layer
            in_counts = None if uniform else np.zeros(nb * int(np.prod(net.input_shape)), np.float32)
        buffers = [st.out for st in states if st is not None] + ([source] if source is not None else [])
        updates = [0] * len(states) if res.membrane_updates_trace is not None else None   # so far, per layer
        for t0 in range(0, steps, window):
            w = min(window, steps - t0)
            # readout steps that end in this window: {position in the window after the step: column}
            picks = {t - t0: k for k, t in enumerate(res.readout_steps) if t0 < t <= t0 + w}
            if source is not None:      # (nb, w, *in) -> rows (w, nb * n_in), cast on the way
                rows_in = source.fill(w)
                rows_in.reshape(w, nb, -1)[:] = x[:, t0:t0 + w].reshape(nb, w, -1).transpose(1, 0, 2)
                per_sample = rows_in.reshape(w, nb, -1).sum(2)                     # (w, nb)
                source.count(w, per_sample.sum(1))
                for lo, hi in _cut(w, picks):
                    in_spikes += per_sample[lo:hi].sum(0)
                    if in_counts is not None:       # input SynOps need per-input counts
                        in_counts += rows_in[lo:hi].sum(0)
                    if hi in picks:
                        res.input_spikes_trace[rows, picks[hi]] = in_spikes
                        res.input_synops_trace[rows, picks[hi]] = self._input_synops(in_spikes, in_counts, nb)
            for i, layer in enumerate(net.layers):
                st, pop = states[i], self.pops[i]
                if st is None:
                    continue
                m = st.counts.shape[0]
                live = w if horizon is None else max(0, min(w, horizon[i] - t0))    # the steps run
                if isinstance(layer, Input):
                    current = (live, None)                                # driven by its bias alone
                else:
                    current = self._current(i, states, source, st, live, nb, m) if live else (0, None)
                s_out = st.out.fill(w)
                s_out[live:] = 0
                changed = self._no_changes if updates is None else np.empty((w, m), np.uint8)
                if not picks:
                    self._scan_window(pop, current, biases[i], st, s_out[:live], t0, nb, self._no_trace[pop.dtype],
                                      changed)
                    res.step_counts[i][t0:t0 + w] += st.out.count(w)
                else:
                    res.step_counts[i][t0:t0 + w] += self._scan_and_read(i, current, biases[i], st, s_out, live, res,
                                                                         rows, t0, nb, picks, changed)
                if updates is not None:
                    updates[i] = _count_updates(changed, t0, picks, updates[i], res.membrane_updates_trace[i])
                if res.spikes is not None:
                    res.spikes[i][rows, t0:t0 + w] = s_out.reshape(w, nb, m // nb).transpose(1, 0, 2) > 0
            for buf in buffers:
                buf.carry(w)
        if source is not None:
            res.input_spikes[rows] = in_spikes
            res.input_synops[rows] = self._input_synops(in_spikes, in_counts, nb)
        read_at_end = bool(res.readout_steps) and res.readout_steps[-1] == steps     # the totals are read already
        for i, st in enumerate(states):
            if st is None:
                continue
            c = st.counts.reshape(nb, -1)
            if read_at_end:
                res.layer_spikes[i][rows] = res.layer_spikes_trace[i][rows, -1]
                res.synops[i][rows] = res.synops_trace[i][rows, -1]
            else:
                res.layer_spikes[i][rows] = c.sum(1)
                res.synops[i][rows] = event_synops(c, self.fanouts[i])
            if res.counts[i] is not None:
                res.counts[i][rows] = c
                res.v[i][rows] = st.state["v"].reshape(nb, -1)

    def _scan_window(self, pop: _Population, current: tuple[int, Optional[np.ndarray]], bias0: np.ndarray,
                     st: _LayerState, s_out: np.ndarray, t0: int, nb: int, v_trace: np.ndarray,
                     changed: np.ndarray) -> None:
        """Scan one layer over the window's steps ``s_out`` (its spikes written there), run by run
        of its schedule: ``current`` is :meth:`_current`'s ``(lead, a)``; the ``lead`` silent
        steps get a zero input row (their neurons integrate only the bias), the others ``a``.
        ``v_trace`` (w, m) gets the voltage after every step, ``changed`` (w, m) whether the
        step changed it; either may have no rows."""
        lead, a = current
        pieces = ((0, lead, self._ws.silence[:s_out.shape[1]].reshape(1, -1)), (lead, len(s_out), a))
        for start, end, a_part in pieces:
            for lo, hi in ([] if end <= start else pop.segments(t0 + start, end - start)):
                rows = a_part if len(a_part) == 1 else a_part[lo:hi]
                lo, hi = lo + start, hi + start
                a_run, bias = pop.scheduled(rows, bias0, t0 + lo, nb, hi - lo)
                pop.scan(a_run, bias, st.state, s_out[lo:hi], st.counts,
                         v_trace[lo:hi] if len(v_trace) else v_trace, changed[lo:hi] if len(changed) else changed)

    def _scan_and_read(self, i: int, current: tuple[int, Optional[np.ndarray]], bias0: np.ndarray,
                       st: _LayerState, s_out: np.ndarray, live: int, res: SimResult, rows: slice, t0: int, nb: int,
                       picks: dict[int, int], changed: np.ndarray) -> np.ndarray:
        """Scan layer ``i`` over a window in which readout steps end (``picks``: position in
        the window after the step -> trace column), then fill those trace columns from
        per-step totals: per step and sample, the spikes and synaptic events (float32
        matrix-vector products with :func:`_step_columns`' rows, exact; they replace the
        window's count), added to the counts before the window. The output layer's readout
        comes from its voltage after every step. ``current``, ``changed``: as :meth:`_scan_window`;
        only the first ``live`` steps are scanned (the rest of ``s_out`` is 0). Returns the
        window's spikes per step."""
        pop, out = self.pops[i], i == self.net.output_layer
        m = st.counts.shape[0]
        n = m // nb
        c = st.counts.reshape(nb, n)
        if t0 == 0:                                                          # before the window
            spikes0 = synops0 = 0
        else:
            spikes0, synops0 = c.sum(1), event_synops(c, self.fanouts[i])
        w = len(s_out)
        before = st.counts.copy() if out else None
        neurons_before = c.sum(0)                                            # over the samples
        v_trace = np.empty((w, m), pop.dtype) if out else self._no_trace[pop.dtype]
        self._scan_window(pop, current, bias0, st, s_out[:live], t0, nb, v_trace, changed)
        if i not in self._columns:
            self._columns[i] = _step_columns(self.fanouts[i])
        matrix, shifts = self._columns[i]       # torch's products: its thread pool, not a second (BLAS) one
        per = torch.from_numpy(s_out).reshape(w * nb, n)                     # a row per step and sample
        spikes = per.mv(matrix[0]).numpy().astype(np.int64).reshape(w, nb)
        synops = np.zeros(w * nb, np.int64)
        for digit, shift in zip(matrix[1:], shifts):
            synops += per.mv(digit).numpy().astype(np.int64) << shift
        at = np.array(sorted(picks)) - 1                                     # the steps read, in the window
        into = slice(picks[at[0] + 1], picks[at[-1] + 1] + 1)                # their trace columns
        res.layer_spikes_trace[i][rows, into] = (spikes0 + np.cumsum(spikes, axis=0)[at]).T
        res.synops_trace[i][rows, into] = (synops0 + np.cumsum(synops.reshape(w, nb), axis=0)[at]).T
        # each neuron's spikes in the stretches of the window that end at the readout steps: one
        # pass of float32 sums (exact: at most w ones each), then running totals of K rows
        stretch = np.add.reduceat(s_out[:at[-1] + 1], np.concatenate(([0], at[:-1] + 1)), axis=0)   # (K, m)
        per_neuron = stretch.reshape(len(at), nb, n).sum(1, dtype=np.int64)                 # over the samples
        res.neuron_counts_trace[i][into] += neurons_before + np.cumsum(per_neuron, axis=0)
        if out:
            total = before + np.cumsum(stretch.astype(np.int64), axis=0)     # spikes so far per neuron
            readout = pop.neuron.readout(total, v_trace[at], pop.vth).reshape(len(at), nb, n)
            res.readout_trace[rows, into] = readout.transpose(1, 0, 2)
        return st.out.count(w, spikes.sum(1))

    def _input_synops(self, in_spikes: np.ndarray, in_counts: Optional[np.ndarray], nb: int) -> np.ndarray:
        """(nb,) synaptic events of the input spikes counted so far (``in_counts``: per input,
        ``None`` when every input has the same fan-out)."""
        if in_counts is None:
            return in_spikes.astype(np.int64) * self.input_fanout[0]
        return event_synops(in_counts.reshape(nb, -1), self.input_fanout)

    def _current(self, i: int, states: list, source: Optional[_SpikeBuffer], st: _LayerState, w: int,
                 nb: int, m: int) -> tuple[int, Optional[np.ndarray]]:
        """Synaptic input of population ``i`` over the window's first ``w`` steps, the sum of its
        projections, each reading its source's spikes ``delay`` steps late: ``(lead, a)``, the
        number of leading steps in which no projection receives a spike (their input is 0:
        no map is computed for them) and ``a`` (w - lead, m) for the steps after them (``None``
        when all ``w`` are silent)."""
        syns = self.synapses[i]
        reads = [(source if src == INPUT else states[src].out, delay)
                 for src, delay in zip(self.sources[i], self.delays[i])]
        lead = min(buf.silent(w, delay) for buf, delay in reads)
        if lead == w:
            return w, None
        total = None
        for syn, (buf, delay) in zip(syns, reads):
            spikes, count = buf.delayed(w, delay)
            syn_in = torch.from_numpy(spikes[lead:]).reshape((w - lead) * nb, *syn.in_shape)
            part = syn(syn_in, count, None if st.a is None else st.a[:(w - lead) * m])
            if len(syns) == 1:
                return lead, part.reshape(w - lead, m).numpy()
            part = part.to(self.join_dtypes[i])      # a fresh tensor (no ``out`` with several projections)
            total = part if total is None else total.add_(part)
        return lead, total.reshape(w - lead, m).numpy()
