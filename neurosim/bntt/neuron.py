"""The BNTT neuron: leaky integrate-and-fire with a surrogate gradient, time-last tensors.

Per step ``t`` (the official code's ``model.py``, and the netlist's float equations of
:mod:`neurosim.dynamics.lif` with ``i_decay = 4096``, ``vth = theta``)::

    U[t] = lambda * U[t-1] + I[t]                 lambda = 1 - v_decay / 4096
    o[t] = H(U[t] - theta)                        (spike when U > theta)
    U[t] = U[t] - theta * o[t]   (soft reset, the paper's)   or   U[t] * (1 - o[t])   (hard)

``H`` is the Heaviside step forward; backward it has the official code's surrogate
derivative ``0.3 * max(0, 1 - |x|)`` of ``x = U/theta - 1``, and the reset passes no
gradient (the official code builds it without autograd).
The leak is an integer ``v_decay`` out of 4096 so that the trained model and its netlist
(Lava's ``vDecay``) have exactly the same leak.
"""
from __future__ import annotations

import torch

from neurosim.dynamics.lif import integrate_float, reset_float
from neurosim.netlist.schema import DECAY_UNITY

#: The official code's surrogate slope and the paper's threshold.
SURROGATE_SCALE = 0.3
THETA = 1.0


def leak_to_decay(leak: float) -> int:
    """The integer ``v_decay`` (out of 4096) closest to the leak factor ``lambda``."""
    return int(round((1.0 - float(leak)) * DECAY_UNITY))


def surrogate(x: torch.Tensor) -> torch.Tensor:
    """The official surrogate derivative ``0.3 * max(0, 1 - |x|)`` at ``x = U/theta - 1``."""
    return SURROGATE_SCALE * torch.clamp(1.0 - x.abs(), min=0.0)


class _LIFScan(torch.autograd.Function):
    """The whole scan in one autograd node: forward with the float step of
    :mod:`neurosim.dynamics.lif`, backward through time by hand. As in the official code the
    reset carries no gradient (``rst`` is built from the spikes without autograd), so with
    ``x_t = U_t/theta - 1`` (before reset) and ``g`` the gradient w.r.t. ``U_t`` before reset::

        g_t = dL/do_t * surrogate(x_t) / theta + lambda * r_t * g_{t+1}
        dL/dI_t = g_t,        r_t = 1 (soft reset) or 1 - o_t (hard reset)
    """

    @staticmethod
    def forward(ctx, current: torch.Tensor, v_decay: int, theta: float, soft: bool, v0: float):  # noqa: D102
        cur = current.movedim(-1, 0).contiguous()          # time first: each step one contiguous block
        v = torch.full_like(cur[0], float(v0))
        pre = torch.empty_like(cur)
        out = torch.empty_like(cur)
        for t in range(cur.shape[0]):
            v = integrate_float(v, cur[t], 0.0, v_decay)
            pre[t] = v
            s = (v > theta).to(cur.dtype)
            out[t] = s
            v = reset_float(v, s, theta, soft)
        ctx.save_for_backward(pre, out)
        ctx.v_decay, ctx.theta, ctx.soft = v_decay, theta, soft
        return out.movedim(0, -1)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # noqa: D102
        pre, out = ctx.saved_tensors
        lam = 1.0 - ctx.v_decay / DECAY_UNITY
        # the terms without recurrence for all steps at once, then g_t = a_t + r_t g_{t+1}
        grad = grad_out.movedim(-1, 0).contiguous() * surrogate(pre / ctx.theta - 1.0) / ctx.theta
        carry = None if ctx.soft else lam * (1.0 - out)
        for t in range(pre.shape[0] - 2, -1, -1):
            grad[t] += (lam * grad[t + 1]) if carry is None else carry[t] * grad[t + 1]
        return grad.movedim(0, -1), None, None, None, None


def lif_scan(current: torch.Tensor, v_decay: int, theta: float = THETA, soft_reset: bool = True,
             v0: float = 0.0) -> torch.Tensor:
    """Spikes (same shape) of LIF neurons driven by ``current`` (..., T), time last."""
    return _LIFScan.apply(current, int(v_decay), float(theta), bool(soft_reset), float(v0))


def integrate(current: torch.Tensor) -> torch.Tensor:
    """The output layer: ``U[t] = U[t-1] + I[t]`` (no leak, no threshold), time last."""
    return torch.cumsum(current, dim=-1)
