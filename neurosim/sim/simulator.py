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
    CUBA, DECAY_UNITY, RMP, Flatten, Input, Netlist, Neuron,
)
from neurosim.sim.synapse import Synapse

MODES = ("fixed", "float")


@dataclass
class SimResult:
    """What a run produced, per layer index (``None`` for ``Flatten`` layers).

    ``counts[i]``: (N, n) spikes per neuron summed over time; ``v[i]``: (N, n) final voltage
    in state units; ``step_counts[i]``: (T,) spikes per step summed over batch and neurons;
    ``spikes[i]``: (N, T, n) bool, only when recorded. Neurons are flattened in (C, H, W) order.
    """
    steps: int
    counts: list[Optional[np.ndarray]]
    v: list[Optional[np.ndarray]]
    step_counts: list[Optional[np.ndarray]]
    spikes: Optional[list[Optional[np.ndarray]]] = None
    readout: np.ndarray = field(default_factory=lambda: np.zeros(0))
    readout_trace: Optional[np.ndarray] = None

    def accuracy_by_step(self, labels: np.ndarray) -> np.ndarray:
        """(T,) accuracy had the run stopped after step t+1 (a shorter run is a prefix of this one)."""
        if self.readout_trace is None:
            raise NeurosimError("run with trace_readout=True to get accuracy at every step")
        return (np.argmax(self.readout_trace, axis=2) == np.asarray(labels)[:, None]).mean(0)

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

    def __init__(self, neuron: Neuron, bias: Optional[np.ndarray], n: int, fixed: bool) -> None:
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
        self.current = current_fixed if fixed else current_float
        self.voltage = voltage_fixed if fixed else voltage_float

    def scan(self, a: torch.Tensor, bias: torch.Tensor,
             trace: bool = False) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Run all steps: ``a`` (N, T, n) synaptic input, ``bias`` (N, n).

        Returns (spikes (N, T, n), final v, and with ``trace`` the readout ``count*vth + v``
        after every step, (N, T, n)).

        When the current has no memory (``iDecay = 4096``, every RMP neuron) it is computed for
        all steps at once; only the voltage needs the loop over time.
        """
        n_batch, steps, n = a.shape
        u = torch.zeros((n_batch, n), dtype=a.dtype)
        v = torch.zeros_like(u)
        s_all = torch.empty((n_batch, steps, n), dtype=torch.bool)
        v_all = torch.empty((n_batch, steps, n), dtype=a.dtype) if trace else None
        memoryless = self.i_decay == DECAY_UNITY
        u_all = self.current(None, a, self.i_decay) if memoryless else None
        for t in range(steps):
            u = u_all[:, t] if memoryless else self.current(u, a[:, t], self.i_decay)
            v, s_all[:, t] = self.voltage(v, u, bias, self.vth, self.v_decay, self.soft)
            if trace:
                v_all[:, t] = v
        if trace:
            v_all += s_all.cumsum(1) * self.vth
        return s_all, v, v_all


class Simulator:
    """Run a :class:`Netlist` on batches in ``fixed`` (Lava ``fixed_pt``) or ``float`` mode."""

    def __init__(self, net: Netlist, mode: str = "fixed", max_chunk_bytes: int = 1 << 28) -> None:
        if mode not in MODES:
            raise NeurosimError(f"mode must be one of {MODES}, got '{mode}'")
        self.net, self.mode, self.fixed = net, mode, mode == "fixed"
        if self.fixed:
            check_fixed_point(net)
        self.max_chunk_bytes = max_chunk_bytes
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
                pop = _NeuronPop(layer.neuron, bias, n, self.fixed)
            self.pops.append(pop)

    def run(self, x: np.ndarray, steps: int, record_spikes: bool = False, progress: bool = False,
            raw_current: bool = False, trace_readout: bool = False) -> SimResult:
        """Run ``steps`` steps per sample.

        Nets with an ``input`` layer take ``x`` (N, *input_shape), presented as the constant
        current ``weight * x + bias`` (or, with ``raw_current``, ``x`` is that current in
        mantissas). Nets without one take spikes ``x`` (N, steps, *input_shape), which reach
        the first synapse like any layer's spikes (one step of delay). ``trace_readout`` keeps
        the output layer's readout after every step (for accuracy vs T from one run).
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
            parts.append(self._run_chunk(x[start:start + chunk], steps, record_spikes, raw_current, trace_readout))
        return _concat(parts, steps, record_spikes)

    @torch.no_grad()
    def _run_chunk(self, x: np.ndarray, steps: int, record: bool, raw_current: bool,
                   trace_readout: bool) -> SimResult:
        net = self.net
        n_batch = len(x)
        dtype = torch.int64 if self.fixed else torch.float64
        counts, vs, step_counts, spikes = [], [], [], []
        s_prev: Optional[torch.Tensor] = None if net.has_input_layer else torch.as_tensor(x)
        for i, layer in enumerate(net.layers):
            if isinstance(layer, Flatten):
                s_prev = s_prev.reshape(n_batch, steps, -1)
                counts.append(None), vs.append(None), step_counts.append(None), spikes.append(None)
                continue
            pop = self.pops[i]
            n = int(np.prod(layer.shape))
            a = torch.zeros((n_batch, steps, n), dtype=dtype)
            if isinstance(layer, Input):
                current = x if raw_current else layer.current(x, self.fixed)
                current = torch.as_tensor(np.round(current) if self.fixed else current, dtype=dtype)
                current = current.reshape(n_batch, n)
                bias = pop.bias + (to_state(current) if self.fixed else current)
            else:
                bias = pop.bias.expand(n_batch, n)
                if steps > 1:   # one step of synaptic delay: a[t] = W s[t-1]
                    prev = s_prev[:, :-1].reshape(n_batch * (steps - 1), *net.in_shape(i))
                    a[:, 1:] = self.synapses[i](prev).reshape(n_batch, steps - 1, n)
            s, v, trace = pop.scan(a, bias, trace=trace_readout and i == net.output_layer)
            counts.append(s.sum(1, dtype=torch.int64).numpy())
            vs.append(v.numpy())
            step_counts.append(s.sum((0, 2), dtype=torch.int64).numpy())
            spikes.append(s.numpy() if record else None)
            s_prev = s.reshape(n_batch, steps, *layer.shape)
        out = net.output_layer
        readout = counts[out] * self.pops[out].vth.item() + vs[out]
        return SimResult(steps, counts, vs, step_counts, spikes if record else None, readout,
                         trace.numpy() if trace_readout else None)


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
        spikes=cat([p.spikes for p in parts]) if record else None,
        readout=np.concatenate([p.readout for p in parts]),
        readout_trace=None if parts[0].readout_trace is None else np.concatenate([p.readout_trace for p in parts]),
    )
