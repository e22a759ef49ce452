"""The SNN-based layer-by-layer threshold rule (``rule='snn'``).

Sengupta, Ye, Wang, Liu & Roy, "Going Deeper in Spiking Neural Networks: VGG and Residual
Architectures", Front. Neurosci. 2019 ("Spike-Norm"), the rule RMP-SNN balances with: the
thresholds are set one layer at a time, in order; the threshold of layer ``P`` is the largest
input current that ``P`` receives, over every calibration sample and every step of the time
window, from the *already converted* layers before it, run as spiking neurons::

    lambda_P = max_{n, t}  I_P(n, t),     I_P(t) = sum_terms  W * (lambda_Q * s_Q(t))  +  b

where ``s_Q(t)`` are the spikes of the source population ``Q`` (threshold ``lambda_Q``, already
fixed) and ``W``, ``b`` the ANN's weights (BatchNorm folded, pooling included) of the terms
that feed ``P`` — so the current is in ANN activation units, like the ANN-based rules. The
earlier layers are integrate-and-fire neurons in normalised units: ``v += I / lambda``, a spike
when ``v >= 1``, then ``v -= 1`` (soft reset) or ``v = 0`` (hard reset), ``v`` starting at 0 or
1/2. The input layer is driven by the image as a constant current and gets the image's maximum.
Spikes pass to the next layer within the same step (the netlist's one-step delay per layer only
shifts the current in time, not its maximum).

Cost: the window is simulated once per layer, from the input up to that layer, on the
calibration batch (``samples`` x ``steps`` x the layers so far).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.errors import NeurosimError
from neurosim.progress import shown

#: ``current(P, values)``: the input current of population ``P`` given ``values[Q]`` (the
#: activation-unit output ``lambda_Q * spikes`` of every source ``Q``).
CurrentFn = Callable[[int, dict], torch.Tensor]

DEFAULT_SAMPLES = 256
DEFAULT_STEPS = 64


@torch.no_grad()
def layer_by_layer(order: Sequence[int], inp: int, current: CurrentFn, x: np.ndarray, steps: int,
                   reset: str = "soft", v_init_half: bool = False, fixed: Optional[dict] = None,
                   batch_size: int = 128, progress: bool = True) -> dict[int, float]:
    """Thresholds ``{population: lambda}`` for the populations ``order`` (topological, ``inp``
    first) by the SNN-based rule over ``x`` (N, ...) and ``steps``; ``fixed`` thresholds (e.g.
    trained QCFS ones) are taken as given."""
    if steps < 1:
        raise NeurosimError(f"the SNN-based rule needs at least one time step, got {steps}")
    if len(x) == 0:
        raise NeurosimError("threshold balancing needs at least one calibration sample")
    lam: dict[int, float] = dict(fixed or {})
    if inp not in lam:
        lam[inp] = float(np.abs(x).max()) or 1.0
    rest = [p for p in order if p != inp]
    todo = [p for p in rest if p not in lam]
    v0 = 0.5 if v_init_half else 0.0
    with tqdm(total=len(todo) * len(x), desc="SNN-based thresholds", unit="sample",
              disable=not shown(progress), leave=False) as bar:
        for k, target in enumerate(rest):
            if target in lam:
                continue
            before = rest[:k]
            peak = 0.0
            for s in range(0, len(x), batch_size):
                xb = torch.as_tensor(np.asarray(x[s:s + batch_size]), dtype=torch.float32)
                v = {p: torch.tensor(v0, dtype=xb.dtype) for p in [inp] + before}   # broadcast on first step
                for _ in range(steps):
                    values = {inp: _fire(v, inp, xb / lam[inp], lam[inp], reset)}
                    for p in before:
                        values[p] = _fire(v, p, current(p, values) / lam[p], lam[p], reset)
                    peak = max(peak, float(current(target, values).max()))
                bar.update(len(xb))
            lam[target] = peak if peak > 0 else 1.0
    return lam


def _fire(v: dict, p: int, drive: torch.Tensor, lam: float, reset: str) -> torch.Tensor:
    """One IF step of population ``p`` (normalised units); returns its output ``lambda * spikes``."""
    v[p] = v[p] + drive
    s = (v[p] >= 1.0).to(drive.dtype)
    v[p] = v[p] - s if reset == "soft" else v[p] * (1 - s)
    return s * lam

