"""Synaptic arithmetic of one projection, per numeric mode, on batched PyTorch tensors.

The map itself is the simulator's for the synapse kind (:mod:`neurosim.sim.synapse_maps`);
this module prepares its weights and applies what the ``fixed`` mode adds: the kind's
fixed-point weights (:meth:`~neurosim.netlist.synapses.base.SynapseKind.fixed_weight`, e.g.
Loihi's 8-bit dense mantissas with an exponent), the shift by that exponent, and the kind's
wrap of the sum (signed 24 bits for Lava's Conv).
Spikes are 0/1, so a float64 sum of integer weights is exact (below 2**53), and so is a
float32 sum while every row of ``|w|`` sums to less than 2**24, in any order, since every
partial sum of an output is a sum of some of its row's terms: then float32 is used, and a
sparse input takes an event-driven path where there is one: that of
:func:`neurosim.sim.kernels.dense_events` for a kind with ``events``, the map's
(:meth:`~neurosim.sim.synapse_maps.SynapseMap.event_linear`, e.g. a stride-1 conv) otherwise.

A kind whose map is a sum pool followed by a smaller map (a conv with a folded average pool:
:meth:`~neurosim.sim.synapse_maps.SynapseMap.pool_split`) is computed that way: the same
integers with fewer multiplications.

On a GPU (``device``, float mode only: the fixed-point arithmetic stays CPU code), the weights
live on the device and every window's spikes go there through the map's dense torch operation
(no event-driven path: those are CPU kernels); the currents come back to the CPU, where the
neurons' kernels run.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from neurosim.netlist.schema import Shape
from neurosim.netlist.synapses.base import SynapseKind
from neurosim.netlist.synapses.dense import loihi_dense  # noqa: F401  (re-exported)
from neurosim.sim import kernels
from neurosim.sim.synapse_maps import synapse_map

#: The event-driven dense path is taken below this input spike density (spikes per input
#: and row) and from this many outputs on; measured on 2 cores against MKL's float32 GEMM:
#: 784 -> 512 at density 0.126 1.5x faster, 200 -> 256 at 0.005 5x; 512 -> 10 at 0.23 6x slower.
EVENT_MAX_DENSITY = 0.2
EVENT_MIN_OUTPUTS = 32


def signed_wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap of integers to ``bits`` bits."""
    base = 1 << bits
    return torch.remainder(x + base // 2, base) - base // 2


class Synapse:
    """The prepared weights of one projection and the map from its input spikes to its current."""

    def __init__(self, kind: SynapseKind, in_shape: Shape, fixed: bool,
                 device: Optional[torch.device] = None) -> None:
        self.kind, self.in_shape, self.fixed = kind, tuple(in_shape), fixed
        #: the device the map computes on through its dense torch operation (module docstring),
        #: or None: the CPU, with the event-driven paths
        self.device = device
        if self.device is not None and fixed:
            raise ValueError("the fixed-point synapse computes on the CPU")
        self.map = synapse_map(kind)
        self.out_shape = tuple(kind.out_shape(self.in_shape))
        w, self.weight_exp = kind.fixed_weight() if fixed else (np.asarray(kind.weight, dtype=np.float64), 0)
        w_eff = w * 2.0 ** self.weight_exp
        if self.weight_exp and np.array_equal(w_eff, np.round(w_eff)):
            # (w @ s) shifted by the exponent is exactly w_eff @ s (a right shift drops
            # nothing: every term is a multiple of 2**-exp); no shift on the hot path
            w, self.weight_exp = w_eff, 0
        w = np.array(self.map.torch_weight(np.asarray(w, dtype=np.float64), self.in_shape), order="C")
        rows = np.abs(w).reshape(len(w), -1).sum(1) if w.ndim else np.abs(w).reshape(1)
        # 0/1 spikes times integer weights: float32 sums are exact while every partial sum
        # stays below 2**24; otherwise (and for real-valued weights) compute in float64.
        exact32 = np.array_equal(w, np.round(w)) and rows.max() < 2 ** 24
        self.dtype = torch.float32 if exact32 else torch.float64
        self.weight = torch.as_tensor(w, dtype=self.dtype)
        on_cpu = self.device is None
        #: Largest possible |current| of one step (0/1 spikes): the sum of |w| of a row.
        self.bound = float(rows.max()) * 2.0 ** self.weight_exp
        bits = kind.wrap_bits if fixed else None
        self.wraps = bits is not None and self.bound >= 2 ** (bits - 1)
        self.wrap_bits = bits
        #: (in, out) weights for the event-driven path: exact float32 only, because it sums in
        #: another order than the GEMM
        self.weight_t = (np.ascontiguousarray(self.weight.numpy().T) if on_cpu and kind.events
                         and self.dtype == torch.float32 and len(w) >= EVENT_MIN_OUTPUTS else None)
        #: the map's weights for its event-driven path (exact float32 only, as above), or None
        self.event_weight = (self.map.event_weight(np.asarray(w, dtype=np.float32), self.in_shape)
                             if on_cpu and self.dtype == torch.float32 and not kind.events else None)
        #: whether ``__call__`` may write into an ``out`` buffer (an event-driven path; torch's
        #: conv cannot)
        self.fills_out = on_cpu and (kind.events or self.event_weight is not None)
        #: a folded average pool computed as pool then conv (module docstring), or None
        split = self.map.pool_split(w, self.in_shape)
        self.pool = split[0] if split else None
        self.pooled_weight = torch.as_tensor(split[1], dtype=self.dtype, device=device) if split else None
        if not on_cpu:
            self.weight = self.weight.to(self.device)

    def __call__(self, s: torch.Tensor, spikes: Optional[int] = None,
                 out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Synaptic input for a batch ``s`` of shape (M, *in_shape); returns (M, *out_shape).

        ``spikes``, the number of nonzero entries of ``s`` when the caller knows it, lets a
        sparse input take the event-driven path. ``out``, a contiguous tensor of
        ``self.dtype`` and M x prod(out_shape) elements, is written instead of a new tensor
        where the path allows (``fills_out``): a reused buffer stays mapped, while a new large
        one costs a page fault per 4 KiB.

        The values are exact; the dtype is the cheapest that holds them: the float sums
        themselves unless the fixed-point synapse must shift or wrap them (then int64).
        """
        if self.device is None:
            a = self._linear(s.to(self.dtype), spikes, out)
        else:                   # no event-driven path there (weight_t, event_weight are None)
            a = self._linear(s.to(self.device, self.dtype, non_blocking=True)).cpu()
        if not self.fixed:
            return a
        if self.weight_exp:
            a = a.to(torch.int64)   # exact: the sums are integers (see the module docstring)
            a = a << self.weight_exp if self.weight_exp > 0 else a >> -self.weight_exp
        return signed_wrap(a.to(torch.int64), self.wrap_bits) if self.wraps else a

    def _linear(self, s: torch.Tensor, spikes: Optional[int] = None,
                out: Optional[torch.Tensor] = None) -> torch.Tensor:
        weight = self.weight
        if self.kind.events:
            s = s.reshape(s.shape[0], weight.shape[1])
            if out is not None:
                out = out.view(s.shape[0], weight.shape[0])
            if (spikes is not None and spikes <= EVENT_MAX_DENSITY * s.numel() and self.weight_t is not None
                    and s.is_contiguous()):
                if out is None:
                    out = torch.empty((s.shape[0], weight.shape[0]), dtype=torch.float32)
                kernels.parallel(kernels.dense_events, (s.numpy(), self.weight_t, out.numpy()), len(s), out.numel())
                return out
            return torch.matmul(s, weight.T, out=out) if out is not None else s @ weight.T
        if (self.event_weight is not None and spikes is not None and s.is_contiguous()
                and self.map.events_pay(tuple(s.shape), spikes)):
            return self.map.event_linear(s, self.event_weight, out)
        if self.pool:
            return self.map.pooled_linear(s, self.pooled_weight, self.pool)
        return self.map.linear(s, weight)

    def fanout(self) -> np.ndarray:
        """Number of synapses leaving each input neuron (borders included), shape ``in_shape``
        (the kind's :meth:`~neurosim.netlist.synapses.base.SynapseKind.fanout`)."""
        return self.kind.fanout(self.in_shape)
