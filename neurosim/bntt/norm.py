"""Batch Normalization Through Time and the two baselines it is compared with.

BNTT (Kim & Panda 2021, eq. 6): for layer input ``x`` (N, C, [H, W,] T), one BatchNorm per
time step ``t`` with its own running mean ``mu_t`` and variance ``sigma2_t`` and a learnable
``gamma_t`` per channel, and no ``beta``::

    BNTT_t(x[t]) = gamma_t * (x[t] - mu_t) / sqrt(sigma2_t + eps)        eps = 1e-4, momentum 0.1

In training ``mu_t``, ``sigma2_t`` are the batch statistics of step ``t`` (over N, H, W; the
biased variance normalises, the unbiased one updates the running variance, as
``torch.nn.BatchNorm``); in evaluation the running ones. The baselines: ``shared`` is one such
normalisation for all steps (statistics over N, H, W and T, one ``gamma``), ``none`` is the
identity. ``steps`` beyond the trained ones use the last step's parameters (as the exported
netlist's schedule holds its last row).
"""
from __future__ import annotations

import torch
import torch.nn as nn

EPS = 1e-4
MOMENTUM = 0.1
MODES = ("bntt", "shared", "none")


class TimeNorm(nn.Module):
    """BNTT (``mode='bntt'``), one BN shared over time (``'shared'``) or none (``'none'``)."""

    def __init__(self, channels: int, steps: int, mode: str = "bntt", eps: float = EPS,
                 momentum: float = MOMENTUM) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"norm mode must be one of {MODES}, got {mode!r}")
        self.mode, self.eps, self.momentum = mode, float(eps), float(momentum)
        rows = steps if mode == "bntt" else 1
        if mode != "none":
            self.weight = nn.Parameter(torch.ones(rows, channels))                # gamma (T, C)
            self.register_buffer("running_mean", torch.zeros(rows, channels))
            self.register_buffer("running_var", torch.ones(rows, channels))

    @property
    def steps(self) -> int:
        return 0 if self.mode == "none" else self.weight.shape[0]

    def _rows(self, a: torch.Tensor, T: int) -> torch.Tensor:
        """(T, C) rows for ``T`` steps: per step (last row held) or the one shared row."""
        idx = torch.clamp(torch.arange(T, device=a.device), max=a.shape[0] - 1)
        return a[idx]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return x
        T, C = x.shape[-1], x.shape[1]
        dims = [0] + list(range(2, x.ndim - 1))             # N and the spatial axes
        view = (1, C) + (1,) * (x.ndim - 3) + (T,)           # (T, C) rows -> broadcast over x
        if self.training:
            if self.mode == "bntt":
                if T > self.steps:
                    raise ValueError(f"BNTT has {self.steps} steps, the input {T}")
                mean = x.mean(dim=dims)                      # (C, T)
                var = x.var(dim=dims, unbiased=False)
                n = x.numel() // (C * T)
                with torch.no_grad():
                    m = self.momentum
                    self.running_mean[:T] = (1 - m) * self.running_mean[:T] + m * mean.T
                    self.running_var[:T] = (1 - m) * self.running_var[:T] + m * var.T * n / max(n - 1, 1)
                mean_v, var_v = mean.reshape(view), var.reshape(view)
                gamma = self.weight[:T].T.reshape(view)
            else:
                mean = x.mean(dim=dims + [x.ndim - 1])       # (C,)
                var = x.var(dim=dims + [x.ndim - 1], unbiased=False)
                n = x.numel() // C
                with torch.no_grad():
                    m = self.momentum
                    self.running_mean[0] = (1 - m) * self.running_mean[0] + m * mean
                    self.running_var[0] = (1 - m) * self.running_var[0] + m * var * n / max(n - 1, 1)
                shape = (1, C) + (1,) * (x.ndim - 2)
                mean_v, var_v = mean.reshape(shape), var.reshape(shape)
                gamma = self.weight[0].reshape(shape)
            return gamma * (x - mean_v) / torch.sqrt(var_v + self.eps)
        scale, bias = self.scale_bias(T)
        return x * scale.T.reshape(view) + bias.T.reshape(view)

    def scale_bias(self, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Evaluation-mode affine form per step, (T, C) each (the BNTT folding)::

            s_t = gamma_t / sqrt(sigma2_t + eps)        b_t = -gamma_t * mu_t / sqrt(sigma2_t + eps)
        """
        if self.mode == "none":
            raise ValueError("no normalisation: nothing to fold")
        g, mu, var = (self._rows(a, T) for a in (self.weight, self.running_mean, self.running_var))
        s = g / torch.sqrt(var + self.eps)
        return s, -mu * s
