"""Batched PyTorch executor of a netlist: the reference semantics of ``docs/netlist.md``.

A feed-forward net is run layer by layer over all ``T`` steps at once: the synaptic input
of a layer for every step is one batched linear map of the previous layer's spikes (shifted
by the one-step synaptic delay), then the neurons are scanned over time with the step
function of :mod:`neurosim.dynamics.lif`. This is exact, because no layer feeds back.
Batches are cut into chunks so memory stays bounded for any batch size and ``T``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.dynamics.lif import (
    current_fixed, current_float, to_state, voltage_fixed, voltage_float,
)
from neurosim.errors import NeurosimError
from neurosim.netlist.schema import (
    DECAY_UNITY, RMP, Flatten, Input, Netlist, Neuron,
)
from neurosim.metrics.synops import event_synops, fanouts
from neurosim.sim.synapse import Synapse

MODES = ("fixed", "float")
#: Neurons stepped together: 16 Ki int64 = 128 KiB per temporary, below glibc's mmap threshold.
BLOCK = 1 << 14


@dataclass
class SimResult:
    """What a run produced, per layer index (``None`` for ``Flatten`` layers).

    ``counts[i]``: (N, n) spikes per neuron summed over time; ``v[i]``: (N, n) final voltage
    in state units (both kept for the output layer only unless ``per_neuron``);
    ``layer_spikes[i]``: (N,) spikes of the layer per sample; ``synops[i]``: (N,) synaptic
    events its spikes caused (each spike times its real fan-out, :mod:`neurosim.metrics.synops`);
    ``step_counts[i]``: (T,) spikes per step summed over batch and neurons;
    ``spikes[i]``: (N, T, n) bool, only when recorded. Neurons are flattened in (C, H, W) order.
    """
    steps: int
    counts: list[Optional[np.ndarray]]
    v: list[Optional[np.ndarray]]
    step_counts: list[Optional[np.ndarray]]
    layer_spikes: list[Optional[np.ndarray]]
    synops: list[Optional[np.ndarray]]
    spikes: Optional[list[Optional[np.ndarray]]] = None
    readout: np.ndarray = field(default_factory=lambda: np.zeros(0))
    readout_trace: Optional[np.ndarray] = None

    def accuracy_by_step(self, labels: np.ndarray) -> np.ndarray:
        """(T,) accuracy had the run stopped after step t+1 (a shorter run is a prefix of this one)."""
        if self.readout_trace is None:
            raise NeurosimError("run with trace_readout=True to get accuracy at every step")
        return (np.argmax(self.readout_trace, axis=2) == np.asarray(labels)[:, None]).mean(0)

    @property
    def synops_per_sample(self) -> np.ndarray:
        """(N,) synaptic events per sample, all layers."""
        return np.sum([s for s in self.synops if s is not None], axis=0)

    @property
    def predictions(self) -> np.ndarray:
        return np.argmax(self.readout, axis=1)


def check_fixed_point(net: Netlist) -> None:
    """Refuse a netlist that the ``fixed`` mode cannot run exactly (non-integer mantissas)."""
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            continue
        items = {"neuron/vThMant": layer.neuron.vThMant}
        if not isinstance(layer, Input):
            items["weight"] = layer.weight
        if getattr(layer, "bias", None) is not None and not isinstance(layer, Input):
            items["bias"] = layer.bias
        for key, value in items.items():
            arr = np.asarray(value, dtype=np.float64)
            if not np.array_equal(arr, np.round(arr)):
                raise NeurosimError(f"layer {i}: key '{key}': fixed-point mode needs integer "
                                    "mantissas; run this netlist with mode 'float'")


class _NeuronPop:
    """Per-layer neuron constants in the units of the mode, as tensors."""

    def __init__(self, neuron: Neuron, bias: Optional[np.ndarray], n: int, fixed: bool,
                 input_bound: float = 0.0) -> None:
        self.fixed = fixed
        self.soft = isinstance(neuron, RMP)
        self.i_decay = DECAY_UNITY if isinstance(neuron, RMP) else neuron.iDecay
        self.v_decay = neuron.vDecay
        dtype = torch.int64 if fixed else torch.float64
        b = torch.zeros(n, dtype=dtype) if bias is None else torch.as_tensor(
            np.round(bias) if fixed else bias, dtype=dtype).reshape(n)
        vth = torch.tensor(neuron.vThMant, dtype=dtype)
        self.bias = to_state(b) if fixed else b
        self.vth = to_state(vth) if fixed else vth
        # a memoryless current is a << 6: it cannot wrap when the synapse's bound keeps it in 24 bits
        self.may_wrap = not (self.i_decay == DECAY_UNITY and input_bound * (1 << 6) < 2 ** 23)
        self.current = current_fixed if fixed else current_float
        self.voltage = voltage_fixed if fixed else voltage_float

    def scan(self, a: torch.Tensor, bias: torch.Tensor,
             trace: bool = False) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Run all steps: ``a`` (T - 1, M) synaptic input of steps 1..T-1 (step 0 receives
        nothing: the synapses delay by one step) and ``bias`` (M,), M = batch x neurons.

        Returns (spikes (T, M) bool, final v (M,), and with ``trace`` the readout
        ``count*vth + v`` after every step, (T, M)). Neurons are independent, so they are
        stepped in blocks of :data:`BLOCK` elements: every temporary stays small and is reused
        by the allocator instead of being mapped afresh (page faults dominated otherwise).
        """
        steps, m = a.shape[0] + 1, a.shape[1]
        zero = torch.zeros(min(BLOCK, m), dtype=a.dtype)
        s_all = torch.empty((steps, m), dtype=torch.bool)
        v_all = torch.empty((steps, m), dtype=a.dtype) if trace else None
        v_final = torch.empty(m, dtype=a.dtype)
        for lo in range(0, m, BLOCK):
            hi = min(lo + BLOCK, m)
            u = torch.zeros(hi - lo, dtype=a.dtype)
            v = torch.zeros_like(u)
            b = bias[lo:hi]
            for t in range(steps):
                u = self.current(u, a[t - 1, lo:hi] if t else zero[:hi - lo], self.i_decay, self.may_wrap)
                v, s_all[t, lo:hi] = self.voltage(v, u, b, self.vth, self.v_decay, self.soft)
                if trace:
                    v_all[t, lo:hi] = v
            v_final[lo:hi] = v
        if trace:
            v_all += s_all.cumsum(0) * self.vth
        return s_all, v_final, v_all


class Simulator:
    """Run a :class:`Netlist` on batches in ``fixed`` (Lava ``fixed_pt``) or ``float`` mode."""

    def __init__(self, net: Netlist, mode: str = "fixed", max_chunk_bytes: int = 1 << 28) -> None:
        if mode not in MODES:
            raise NeurosimError(f"mode must be one of {MODES}, got '{mode}'")
        self.net, self.mode, self.fixed = net, mode, mode == "fixed"
        if self.fixed:
            check_fixed_point(net)
        self.max_chunk_bytes = max_chunk_bytes
        self.fanouts = fanouts(net)
        self.synapses: list[Optional[Synapse]] = []
        self.pops: list[Optional[_NeuronPop]] = []
        for layer in net.layers:
            syn = None if isinstance(layer, (Input, Flatten)) else Synapse(layer, self.fixed)
            self.synapses.append(syn)
            pop = None
            if not isinstance(layer, Flatten):
                n = int(np.prod(layer.shape))
                bias = getattr(layer, "bias", None)
                if isinstance(layer, Input):
                    bias = None
                elif bias is not None and len(layer.shape) == 3:   # per-channel conv bias
                    bias = np.repeat(np.asarray(bias), layer.shape[1] * layer.shape[2])
                pop = _NeuronPop(layer.neuron, bias, n, self.fixed, syn.bound if syn is not None else 0.0)
            self.pops.append(pop)

    def run(self, x: np.ndarray, steps: int, record_spikes: bool = False, progress: bool = False,
            raw_current: bool = False, trace_readout: bool = False, per_neuron: bool = True) -> SimResult:
        """Run ``steps`` steps per sample.

        Nets with an ``input`` layer take ``x`` (N, *input_shape), presented as the constant
        current ``weight * x + bias`` (or, with ``raw_current``, ``x`` is that current in
        mantissas). Nets without one take spikes ``x`` (N, steps, *input_shape), which reach
        the first synapse like any layer's spikes (one step of delay). ``trace_readout`` keeps
        the output layer's readout after every step (for accuracy vs T from one run).
        ``per_neuron=False`` keeps per-neuron counts and voltages of the output layer only, so
        memory does not grow with the net's size times the batch.
        """
        x = np.asarray(x, dtype=np.float64)
        if steps < 1:
            raise NeurosimError(f"steps must be at least 1, got {steps}")
        if self.net.has_input_layer:
            expect = tuple(self.net.layers[0].shape)
            got = x.shape[1:]
        else:
            expect = (steps, *self.net.input_shape)
            got = x.shape[1:]
        if got != expect:
            raise NeurosimError(f"input has shape {got} per sample, the netlist expects {expect}"
                                + ("" if self.net.has_input_layer else " (time steps first)"))
        widest = max(int(np.prod(l.shape)) for l in self.net.layers)
        chunk = max(1, self.max_chunk_bytes // (steps * widest * 8 * 3))
        parts = []
        for start in tqdm(range(0, len(x), chunk), desc=f"simulate ({self.mode}, T={steps})",
                          disable=not progress, unit="chunk", leave=False):
            parts.append(self._run_chunk(x[start:start + chunk], steps, record_spikes, raw_current, trace_readout,
                                         per_neuron))
        return _concat(parts, steps, record_spikes)

    @torch.no_grad()
    def _run_chunk(self, x: np.ndarray, steps: int, record: bool, raw_current: bool,
                   trace_readout: bool, per_neuron: bool) -> SimResult:
        """One chunk of samples, time-major inside: spikes of a layer are (T, N, *shape)."""
        net = self.net
        n_batch = len(x)
        dtype = torch.int64 if self.fixed else torch.float64
        counts, vs, step_counts, spikes, layer_spikes, synops = [], [], [], [], [], []
        trace = None
        s_prev: Optional[torch.Tensor] = None
        if not net.has_input_layer:
            s_prev = torch.as_tensor(x).transpose(0, 1).contiguous()       # (T, N, *in)
        for i, layer in enumerate(net.layers):
            if isinstance(layer, Flatten):
                s_prev = s_prev.reshape(steps, n_batch, -1)
                for lst in (counts, vs, step_counts, spikes, layer_spikes, synops):
                    lst.append(None)
                continue
            pop = self.pops[i]
            n = int(np.prod(layer.shape))
            if isinstance(layer, Input):
                a = torch.zeros((steps - 1, n_batch * n), dtype=dtype)   # no synapse
                current = x if raw_current else layer.current(x, self.fixed)
                current = torch.as_tensor(np.round(current) if self.fixed else current, dtype=dtype)
                current = current.reshape(n_batch, n)
                bias = pop.bias + (to_state(current) if self.fixed else current)
            else:
                bias = pop.bias.expand(n_batch, n)
                # one step of synaptic delay: a[t] = W s[t-1]; a holds steps 1..T-1
                prev = s_prev[:-1].reshape((steps - 1) * n_batch, *net.in_shape(i))
                a = self.synapses[i](prev)
            s, v, tr = pop.scan(a.reshape(steps - 1, n_batch * n), bias.reshape(-1),
                                trace=trace_readout and i == net.output_layer)
            s = s.reshape(steps, n_batch, n)
            if tr is not None:
                trace = tr.reshape(steps, n_batch, n).transpose(0, 1).numpy()
            c = torch.count_nonzero(s, dim=0)                                   # (N, n)
            layer_spikes.append(c.sum(1).numpy())
            synops.append(event_synops(c.numpy(), self.fanouts[i]))
            keep = per_neuron or i == net.output_layer
            counts.append(c.numpy() if keep else None)
            vs.append(v.reshape(n_batch, n).numpy() if keep else None)
            step_counts.append(torch.count_nonzero(s.reshape(steps, -1), dim=1).numpy())
            spikes.append(s.transpose(0, 1).numpy() if record else None)
            s_prev = s.reshape(steps, n_batch, *layer.shape)
        out = net.output_layer
        readout = counts[out] * self.pops[out].vth.item() + vs[out]
        return SimResult(steps, counts, vs, step_counts, layer_spikes, synops, spikes if record else None,
                         readout, trace)


def _concat(parts: list[SimResult], steps: int, record: bool) -> SimResult:
    def cat(lists: list[list], axis: int = 0) -> list:
        return [None if items[0] is None else np.concatenate(items, axis) for items in zip(*lists)]

    if len(parts) == 1:
        return parts[0]
    return SimResult(
        steps=steps,
        counts=cat([p.counts for p in parts]),
        v=cat([p.v for p in parts]),
        step_counts=[None if c[0] is None else np.sum(c, axis=0) for c in zip(*[p.step_counts for p in parts])],
        layer_spikes=cat([p.layer_spikes for p in parts]),
        synops=cat([p.synops for p in parts]),
        spikes=cat([p.spikes for p in parts]) if record else None,
        readout=np.concatenate([p.readout for p in parts]),
        readout_trace=None if parts[0].readout_trace is None else np.concatenate([p.readout_trace for p in parts]),
    )
