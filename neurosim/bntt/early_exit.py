"""Early exit from the learnt BNTT gammas (Kim & Panda 2021, "temporal early exit").

The paper observes that the learnt ``gamma_t`` of the BNTT layers shrink toward zero at late
time steps (a small ``gamma_t`` scales the layer's input at step ``t`` down: the layer hardly
spikes), and exits inference at the first step from which every layer's gammas are small.
The rule as implemented here, from the trained parameters alone (no data)::

    gbar[l, t] = mean over channels of |gamma[l, t]|                 (layer l, step t)
    t_exit     = min { t : gbar[l, t'] < alpha  for every layer l and every t' >= t }

and inference runs ``t_exit`` steps instead of ``T`` (``t_exit = T`` when no such ``t``).
``alpha`` is the rule's one parameter (default :data:`DEFAULT_ALPHA`); :func:`sweep` reports the
accuracy and latency for several values. In Lava the exit step is ``t_exit`` plus the net's
latency (one step per layer). The statistic (per-layer mean over channels) and ``alpha = 0.1``
are those of the public reproduction of the paper (docs/bntt.md says what is and is not from
the paper itself).

Beside it, and **not the paper's rule**, :func:`calibrated_exit_step` picks the exit step from
data: the smallest step whose accuracy on calibration samples (training images, never the
test set) is within ``tolerance`` of their accuracy after all ``T`` steps::

    t_cal = min { t : acc_cal(t) >= acc_cal(T) - tolerance }
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from neurosim.bntt.network import BNTTNet

DEFAULT_ALPHA = 0.1
#: Accuracy the calibrated exit may give up on the calibration samples (0.5 point).
DEFAULT_TOLERANCE = 0.005


def gamma_profile(net: BNTTNet) -> np.ndarray:
    """``gbar`` (L, T): the mean |gamma| of every BNTT layer at every trained step."""
    rows = [n.weight.detach().abs().mean(1).numpy() for n in net.norms if n.mode == "bntt"]
    if not rows:
        raise ValueError("the net has no BNTT layer (norm 'bntt'): no early exit")
    return np.stack(rows)


def exit_step(net: BNTTNet, alpha: float = DEFAULT_ALPHA) -> int:
    """``t_exit`` of the rule above (1..T)."""
    g = gamma_profile(net)
    small = np.all(g < alpha, axis=0)                       # (T,) every layer small at t
    t_exit = g.shape[1]
    for t in range(g.shape[1] - 1, -1, -1):                 # longest all-small suffix
        if not small[t]:
            break
        t_exit = t
    return max(1, t_exit)


def sweep(net: BNTTNet, accuracy_at: dict, alphas: Sequence[float]) -> list[dict]:
    """For each ``alpha``: its exit step, the accuracy there (``accuracy_at[t]``, from one run
    read after every step) and the latency saved against the full ``T``."""
    T = net.steps
    out = []
    for a in alphas:
        t = exit_step(net, a)
        out.append({"alpha": float(a), "exit_step": t, "accuracy": accuracy_at[t],
                    "full_accuracy": accuracy_at[T], "latency_saved": 1.0 - t / T})
    return out


def calibrated_exit_step(accuracy_at: Mapping[int, float], tolerance: float = DEFAULT_TOLERANCE) -> int:
    """``t_cal`` (module docstring) from ``accuracy_at`` = {step: accuracy on the calibration
    samples}, read after every step 1..T of one run."""
    steps = sorted(accuracy_at)
    if not steps:
        raise ValueError("no accuracy per step to calibrate the exit on")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must lie in [0, 1), got {tolerance}")
    target = accuracy_at[steps[-1]] - tolerance
    return next(t for t in steps if accuracy_at[t] >= target)
