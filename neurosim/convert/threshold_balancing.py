"""Threshold balancing rules for ANN -> SNN conversion, with statistics streamed in bounded memory.

Each rule maps the ANN activations of one layer (over calibration data) to that layer's
firing threshold ``lambda`` in activation units; an IF neuron with threshold ``lambda``
then fires at rate ``a / lambda`` for an ANN activation ``a`` in ``[0, lambda]``.

- ``max`` (Diehl et al., IJCNN 2015, data-based normalisation): the largest activation over
  the whole calibration set (exact: a running maximum).
- ``percentile`` (Rueckauer et al., Front. Neurosci. 2017): the p-th percentile of the
  positive activations, robust to rare outliers (saturates them). One default everywhere:
  :data:`DEFAULT_PERCENTILE` = 99.99. Streamed: a uniform reservoir of at most
  :data:`RESERVOIR` positive values per layer (exact while a layer has fewer positives).
- ``channel`` (channel-wise normalisation, e.g. Kim et al. 2020 "Spiking-YOLO"): the maximum of
  every output channel (every neuron of a 1-D layer) separately. The converter folds the
  per-channel thresholds into the weights and biases of the layer and of its consumers, so every
  layer still has one ``vThMant``.
- ``channel-percentile`` (SpikingJelly 2.0's ``RateCodingRecipe(channel_wise=True, mode="p%")``):
  per calibration batch, the p-th percentile of every channel's activations (all its values,
  zeros included, linear interpolation), averaged over the batches (SpikingJelly keeps a running
  average with momentum 0.1 instead, which weights the last batches most). Robust to the rare
  peaks that set a channel's maximum.

A global scale ``alpha`` (RMP-SNN's threshold scaling) multiplies every threshold; it is applied
by the converter (:func:`neurosim.convert.rmp.convert`).

The ANN passes of :func:`stream` run on a ``device`` (:mod:`neurosim.device`; default ``cpu``):
the activations are reduced there (maximum, per-channel maximum, positive values) and only
those reductions come to the CPU, where the statistics are kept, so the thresholds are the
same function of the activations on every device.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.convert import CHANNEL_RULES, DEFAULT_PERCENTILE, DEFAULT_RULE, RULES  # noqa: F401  (torch-free)
from neurosim.device import DEFAULT_DEVICE, resolve_device
from neurosim.errors import NeurosimError
from neurosim.progress import shown
#: Positive activations kept per layer for the ``percentile`` rule (4 bytes value + 4 bytes key each).
RESERVOIR = 1 << 20
#: A channel's threshold (``channel`` rule) is at least this fraction of its layer's maximum, so a
#: nearly silent channel does not blow up its weights (and every other channel's precision).
CHANNEL_FLOOR = 1e-2

Threshold = Union[float, np.ndarray]


def check_rule(rule: str, percentile: float = DEFAULT_PERCENTILE) -> None:
    if rule not in RULES:
        raise NeurosimError(f"unknown threshold rule '{rule}' (known: {', '.join(RULES)})")
    if not 0 < percentile <= 100:
        raise NeurosimError(f"percentile must be in (0, 100], got {percentile}")


class LayerStats:
    """Streaming statistics of one layer's activations for one rule (bounded memory)."""

    def __init__(self, rule: str, percentile: float = DEFAULT_PERCENTILE, capacity: int = RESERVOIR,
                 seed: int = 0) -> None:
        check_rule(rule, percentile)
        if rule == "snn":
            raise NeurosimError("the 'snn' rule is not an ANN statistic (neurosim.convert.snn_balancing)")
        self.rule, self.percentile, self.capacity = rule, float(percentile), int(capacity)
        self.max = 0.0
        self.channel_max: Optional[torch.Tensor] = None
        self.channel_sum: Optional[torch.Tensor] = None          # channel-percentile: sum over batches
        self.batches = 0
        self.values = torch.empty(0, dtype=torch.float32)
        self.keys = torch.empty(0, dtype=torch.float32)
        self.gen = torch.Generator().manual_seed(seed)
        self.seen = 0

    def update(self, a: torch.Tensor) -> None:
        """Add a batch of activations ``a`` (B, C, ...) or (B, N), on any device (reduced there)."""
        a = a.detach()
        if a.numel() == 0:
            return
        self.max = max(self.max, float(a.max()))
        if self.rule == "channel":
            m = a.transpose(0, 1).reshape(a.shape[1], -1).amax(1).clamp_min(0).double().cpu()
            self.channel_max = m if self.channel_max is None else torch.maximum(self.channel_max, m)
        elif self.rule == "channel-percentile":
            rows = a.clamp_min(0).transpose(0, 1).reshape(a.shape[1], -1).float()
            q = quantile_rows(rows, self.percentile / 100).double().cpu()
            self.channel_sum = q if self.channel_sum is None else self.channel_sum + q
            self.batches += 1
        elif self.rule == "percentile":
            pos = a[a > 0].float().cpu()
            self.seen += pos.numel()
            if not pos.numel():
                return
            if self.values.numel() + pos.numel() <= self.capacity and not self.keys.numel():
                self.values = torch.cat([self.values, pos])     # exact while everything fits
                return
            if not self.keys.numel():                           # switch to the reservoir
                self.keys = torch.rand(self.values.numel(), generator=self.gen)
            keys = torch.rand(pos.numel(), generator=self.gen)
            if self.keys.numel() >= self.capacity:              # only keys below the current worst enter
                keep = keys < self.keys.max()
                pos, keys = pos[keep], keys[keep]
            vals, ks = torch.cat([self.values, pos]), torch.cat([self.keys, keys])
            if ks.numel() > self.capacity:
                idx = torch.topk(ks, self.capacity, largest=False).indices
                vals, ks = vals[idx], ks[idx]
            self.values, self.keys = vals, ks

    def threshold(self) -> Threshold:
        """The layer's threshold (a float, or per channel an array for ``channel``)."""
        per_channel = self.channel_max if self.rule == "channel" else self.channel_sum
        if self.max <= 0:
            return 1.0 if self.rule not in CHANNEL_RULES or per_channel is None else np.ones(len(per_channel))
        if self.rule == "max":
            return float(self.max)
        if self.rule == "channel":
            return np.maximum(self.channel_max.numpy(), CHANNEL_FLOOR * self.max)
        if self.rule == "channel-percentile":
            return np.maximum(self.channel_sum.numpy() / self.batches, CHANNEL_FLOOR * self.max)
        return float(np.percentile(self.values.double().numpy(), self.percentile))


def max_activation(acts: np.ndarray, percentile: float = 100.0) -> float:
    """Diehl 2015: the maximum activation."""
    return float(balance([acts], "max")[0])


def percentile_activation(acts: np.ndarray, percentile: float = DEFAULT_PERCENTILE) -> float:
    """Rueckauer 2017: the ``percentile``-th percentile of the positive activations."""
    return float(balance([acts], "percentile", percentile)[0])


def balance(activations: list[np.ndarray], rule: str = DEFAULT_RULE,
            percentile: float = DEFAULT_PERCENTILE) -> list[Threshold]:
    """One threshold per layer from that layer's activations (arrays (N, ...); the ``channel``
    rule takes axis 1 as channels, a 1-D array as one channel per value)."""
    check_rule(rule, percentile)
    out = []
    for a in activations:
        st = LayerStats(rule, percentile)
        t = torch.as_tensor(np.asarray(a, dtype=np.float32))
        st.update(t.reshape(-1, 1) if t.ndim == 1 and rule in CHANNEL_RULES else t.reshape(1, -1) if t.ndim == 1 else t)
        out.append(st.threshold())
    return out


def stream(forward: Callable[[torch.Tensor], dict[int, torch.Tensor]], x: np.ndarray,
           rules: dict[int, str], percentile: float = DEFAULT_PERCENTILE, batch_size: int = 256,
           progress: bool = True, desc: str = "calibrate thresholds",
           device: Union[str, torch.device] = DEFAULT_DEVICE) -> dict[int, Threshold]:
    """Thresholds of the layers ``rules`` (layer key -> rule) from ``forward`` over ``x`` in batches.

    ``forward(batch)`` returns ``{layer key: activations}`` for at least the keys of ``rules``;
    only the per-layer statistics are kept between batches. The batches are float32 tensors on
    ``device`` (cpu, cuda, cuda:N, auto), where ``forward`` must compute.
    """
    for r in set(rules.values()):
        check_rule(r, percentile)
    dev = resolve_device(device)
    stats = {k: LayerStats(r, percentile, seed=int(k) if isinstance(k, int) else 0) for k, r in rules.items()}
    n = len(x)
    if n == 0:
        raise NeurosimError("threshold balancing needs at least one calibration sample")
    with tqdm(total=n, desc=desc, unit="sample", disable=not shown(progress), leave=False) as bar, torch.no_grad():
        for i in range(0, n, batch_size):
            xb = torch.as_tensor(np.asarray(x[i:i + batch_size]), dtype=torch.float32).to(dev)
            acts = forward(xb)
            for k, st in stats.items():
                st.update(acts[k])
            bar.update(len(xb))
    return {k: st.threshold() for k, st in stats.items()}


def layer_rules(keys: Iterable[int], rule: str, layerwise: Iterable[int] = ()) -> dict[int, str]:
    """``rule`` for every key, a per-channel rule replaced by ``max`` on ``layerwise`` keys."""
    fixed = set(layerwise)
    return {k: ("max" if rule in CHANNEL_RULES and k in fixed else rule) for k in keys}


#: Most values :func:`torch.quantile` takes in one call.
QUANTILE_MAX_VALUES = 1 << 24


def quantile_rows(rows: torch.Tensor, q: float) -> torch.Tensor:
    """``torch.quantile(rows, q, dim=1)`` (linear interpolation) in chunks of rows that fit one call."""
    per = max(1, QUANTILE_MAX_VALUES // max(1, rows.shape[1]))
    if rows.shape[1] > QUANTILE_MAX_VALUES:             # one channel alone is too large: sort it
        srt = torch.sort(rows, dim=1).values
        pos = q * (rows.shape[1] - 1)
        lo, frac = int(np.floor(pos)), pos - np.floor(pos)
        hi = min(lo + 1, rows.shape[1] - 1)
        return srt[:, lo] + frac * (srt[:, hi] - srt[:, lo])
    return torch.cat([torch.quantile(rows[i:i + per], q, dim=1) for i in range(0, rows.shape[0], per)])
