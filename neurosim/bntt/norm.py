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
import torch.nn.functional as F

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
        view = (1, C) + (1,) * (x.ndim - 3) + (T,)           # (T, C) rows -> broadcast over x
        if self.training:
            # torch's fused batch norm (same statistics and running-variance update, one
            # kernel forward and backward): BNTT as (T*C) channels, shared as C channels
            if self.mode == "bntt":
                if T > self.steps:
                    raise ValueError(f"BNTT has {self.steps} steps, the input {T}")
                xt = x.movedim(-1, 1)                                    # (N, T, C, ...)
                y = F.batch_norm(xt.reshape(x.shape[0], T * C, -1), self.running_mean[:T].view(-1),
                                 self.running_var[:T].view(-1), self.weight[:T].reshape(-1), None,
                                 True, self.momentum, self.eps)
                return y.view(xt.shape).movedim(1, -1)
            y = F.batch_norm(x.reshape(x.shape[0], C, -1), self.running_mean[0], self.running_var[0],
                             self.weight[0], None, True, self.momentum, self.eps)
            return y.view(x.shape)
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
