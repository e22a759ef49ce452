"""Bias correction of a converted net: SNN calibration layer by layer (Li et al., ICML 2021,
"A free lunch from ANN: towards efficient, accurate spiking neural networks calibration").

After conversion a neuron of population ``P`` should fire at the rate of the ANN activation
``a`` it stands for::

    r = clip(a / lambda_P, 0, 1)                       (spikes per step)

Over the ``T`` steps it integrates (the papers' T: Lava steps ``d_P + 1 .. d_P + T``, ``d_P``
its depth, :meth:`neurosim.netlist.schema.Netlist.depths`) the simulated net fires at ``r_hat``
instead: the 8-bit rounding, the errors of the layers before it and the first steps' transient
all shift it, and the shifts add up along a deep net. A constant current ``delta`` (in units of
the threshold) added to the bias moves the rate of an unsaturated integrate-and-fire neuron
with soft reset by ``delta`` per step, so every channel ``c`` gets::

    delta_c = mean over samples and positions of (r - r_hat)       bias_c <- bias_c + delta_c

Populations are corrected one at a time in the netlist's order, each measured with the ones
before it already corrected (Li et al.'s sequential calibration); the readout (it integrates,
no spikes) and the input layer keep their biases. A silent neuron (negative net input) or a
saturated one does not move with ``delta``, so one correction moves a channel's mean rate by
only part of ``delta``; with ``passes = k`` each population is measured and corrected ``k``
times before the next one (a fixed-point iteration of the same rule: on the CIFAR-10 ResNet-20
at T = 32 the first pass removes 16-85 % of a layer's mean absolute rate error, the second
corrects what that leaves; docs/conversion.md). The correction is made for one ``T``: at
other ``T`` the transient weighs differently, so a net corrected at small ``T`` may lose
accuracy at large ``T`` (docs/conversion.md measures the curves).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim.netlist.schema import Netlist
from neurosim.progress import shown

#: Calibration images the simulated rates are measured on (the first ones of the calibration set).
DEFAULT_SAMPLES = 256


def ann_rates(forward: Callable[[torch.Tensor], dict[int, torch.Tensor]], x: np.ndarray,
              lam: dict[int, np.ndarray], stages: Sequence[int], batch_size: int = 256) -> dict[int, np.ndarray]:
    """Per channel, the mean over samples and positions of ``clip(a / lambda, 0, 1)`` of each
    stage's ANN activation ``a`` (``forward`` gives them by stage) on the images ``x``."""
    sums = {i: np.zeros(len(lam[i])) for i in stages}
    cells = dict.fromkeys(stages, 0)
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            outs = forward(torch.as_tensor(x[s:s + batch_size]))
            for i in stages:
                a = outs[i].double()
                scale = torch.as_tensor(lam[i], dtype=torch.float64).reshape(1, -1, *([1] * (a.ndim - 2)))
                r = (a / scale).clamp(0.0, 1.0).transpose(0, 1).reshape(len(lam[i]), -1)
                sums[i] += r.sum(1).numpy()
                cells[i] += r.shape[1]
    return {i: sums[i] / cells[i] for i in stages}


def snn_rates(net: Netlist, layer: int, x: np.ndarray, steps: int, mode: str) -> np.ndarray:
    """Per channel, the mean rate of ``layer``'s neurons over the ``steps`` steps it integrates
    (Lava steps ``d + 1 .. d + steps``, ``d`` its depth), simulated on the images ``x``."""
    from neurosim.sim.simulator import Simulator

    end = int(net.depths()[layer]) + steps
    res = Simulator(net, mode).run(x, end, readout_steps=[end], per_neuron=False)
    counts = res.neuron_counts_trace[layer][0].astype(np.float64)
    channels = int(net.layers[layer].shape[0])
    per_channel = counts.reshape(channels, -1)
    return per_channel.sum(1) / (len(x) * per_channel.shape[1] * steps)


def correct_biases(build: Callable[[dict[int, np.ndarray]], Netlist], targets: Sequence[tuple[int, int]],
                   expected: dict[int, np.ndarray], x: np.ndarray, steps: int, mode: str,
                   progress: bool = True, passes: int = 1) -> tuple[dict[int, np.ndarray], list[dict]]:
    """The bias offsets (per stage, per channel, in threshold units) that bring each target's
    simulated rate to ``expected`` over ``steps`` steps, found in the order of ``targets``
    (``(stage, layer)`` pairs: ``build(offsets)`` makes the netlist, the stage's population is
    its ``layer``), each target corrected ``passes`` times in a row, and per target and pass the
    rate error measured before that pass's correction (its mean and its mean absolute value
    over the channels)."""
    offsets: dict[int, np.ndarray] = {}
    log: list[dict] = []
    with tqdm(total=len(targets) * passes, desc=f"bias correction (T={steps})", unit="layer", leave=False,
              disable=not shown(progress)) as bar:
        for stage, layer in targets:
            for k in range(passes):
                rate = snn_rates(build(offsets), layer, x, steps, mode)
                error = expected[stage] - rate
                offsets[stage] = offsets.get(stage, 0.0) + error
                log.append({"layer": int(layer), "pass": k + 1, "mean_abs_rate_error": float(np.mean(np.abs(error))),
                            "mean_rate_error": float(np.mean(error))})
                bar.update()
    return offsets, log
