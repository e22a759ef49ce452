"""A BNTT spiking network on lava-dl SLAYER synapses (time-last tensors N, C, [H, W,] T).

Every hidden layer is ``synapse -> norm -> LIF``: a SLAYER ``synapse.Conv`` (3x3, 'same'
padding) or ``synapse.Dense`` without bias, a :class:`neurosim.bntt.norm.TimeNorm` (BNTT or a
baseline) and the LIF neurons of :mod:`neurosim.bntt.neuron`. ``("pool", k)`` averages spikes
over k x k windows (a graded value that only the next synapse sees; it is folded into that
synapse at export). The output layer is a Dense synapse whose current is integrated without
leak or threshold; the logits are its mean over the T steps (the official code's
``mem_fc2 / num_steps``). Weights start as in the official code (Xavier uniform, gain 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.bntt.neuron import THETA, integrate, leak_to_decay, lif_scan
from neurosim.bntt.norm import TimeNorm

Spec = tuple                      # ("conv", channels) | ("pool", k) | ("dense", neurons)
DEFAULT_LEAK = 0.95               # the paper's VGG9 / CIFAR-10 command (``--leak_mem 0.95``)


@dataclass(frozen=True)
class Layer:
    """One stage of the net (for export and reports)."""
    kind: str                     # conv, pool, dense, output
    index: int                    # position in ``BNTTNet.synapses`` / ``norms`` (conv, dense, output)
    size: int                     # channels / neurons / pool kernel


class BNTTNet(nn.Module):
    """``input_shape`` (C, H, W) -> ``layers`` (specs) -> ``num_classes`` readout, over ``steps``."""

    def __init__(self, input_shape: Sequence[int], layers: Sequence[Spec], num_classes: int, steps: int,
                 norm: str = "bntt", leak: float = DEFAULT_LEAK, reset: str = "soft", signed_input: bool = True,
                 kernel: int = 3) -> None:
        super().__init__()
        from lava.lib.dl import slayer

        self.input_shape, self.specs = tuple(int(s) for s in input_shape), [tuple(s) for s in layers]
        self.num_classes, self.steps, self.norm_mode = int(num_classes), int(steps), norm
        self.v_decay, self.reset, self.signed_input, self.kernel = leak_to_decay(leak), reset, signed_input, kernel
        self.synapses, self.norms = nn.ModuleList(), nn.ModuleList()
        self.plan: list[Layer] = []
        c, h, w = self.input_shape
        flat = None
        for spec in self.specs:
            kind, size = spec[0], int(spec[1])
            if kind == "pool":
                h, w = h // size, w // size
                self.plan.append(Layer("pool", -1, size))
                continue
            if kind == "conv":
                if flat is not None:
                    raise ValueError("a conv layer cannot follow a dense layer")
                syn = slayer.synapse.Conv(c, size, kernel, padding=kernel // 2, weight_scale=1, weight_norm=False)
            elif kind == "dense":
                flat = flat or c * h * w
                syn = slayer.synapse.Dense(flat, size, weight_scale=1, weight_norm=False)
                flat = size
            else:
                raise ValueError(f"unknown layer kind {kind!r} (conv, pool, dense)")
            self.plan.append(Layer(kind, len(self.synapses), size))
            self.synapses.append(syn)
            self.norms.append(TimeNorm(size, steps, norm))
            c = size
        self.plan.append(Layer("output", len(self.synapses), self.num_classes))
        self.synapses.append(slayer.synapse.Dense(flat or c * h * w, self.num_classes, weight_scale=1,
                                                  weight_norm=False))
        for syn in self.synapses:
            nn.init.xavier_uniform_(syn.weight, gain=2)

    @property
    def leak(self) -> float:
        return 1.0 - self.v_decay / 4096

    def forward(self, spikes: torch.Tensor, record: bool = False
                ) -> Union[torch.Tensor, tuple[torch.Tensor, dict]]:
        """Logits (N, classes) of input spikes (N, C, H, W, T); with ``record``, also
        ``{"output": (N, classes, T) integrated output, "spikes": [(N,) spikes per layer]}``."""
        x = spikes
        counts = []
        for layer in self.plan:
            if layer.kind == "pool":
                x = F.avg_pool3d(x, (layer.size, layer.size, 1))
                continue
            if layer.kind in ("dense", "output") and x.ndim == 5:
                x = x.flatten(1, 3)
            a = self.synapses[layer.index](x)
            if layer.kind == "output":
                u = integrate(a)
                logits = u[..., -1] / a.shape[-1]
                return (logits, {"output": u, "spikes": counts}) if record else logits
            x = lif_scan(self.norms[layer.index](a), self.v_decay, THETA, self.reset == "soft")
            if record:
                counts.append(x.detach().flatten(1).sum(1))
        raise AssertionError("no output layer")        # pragma: no cover

    def config(self) -> dict:
        """Everything needed to rebuild the net (stored with checkpoints and netlists)."""
        return {"input_shape": list(self.input_shape), "layers": [list(s) for s in self.specs],
                "num_classes": self.num_classes, "steps": self.steps, "norm": self.norm_mode,
                "leak": self.leak, "reset": self.reset, "signed_input": self.signed_input, "kernel": self.kernel}

    @classmethod
    def from_config(cls, cfg: dict) -> "BNTTNet":
        return cls(cfg["input_shape"], [tuple(s) for s in cfg["layers"]], cfg["num_classes"], cfg["steps"],
                   cfg["norm"], cfg["leak"], cfg["reset"], cfg["signed_input"], cfg.get("kernel", 3))
