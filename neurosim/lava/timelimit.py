"""How long a Lava run may take: the cost model behind :func:`neurosim.lava.runner.run_lava`'s
default time limit. No Lava import here.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from neurosim.lava.synapses import lava_step_cost
from neurosim.netlist.schema import Flatten, Netlist, Population

#: Time-limit estimate (seconds): start-up (imports, compile, runtime start) + per-step costs.
STARTUP_S = 10.0
STEP_PER_PROCESS_S = 2e-3      # one Lava time step, per process of the graph
CONV2D_S = 1e-4                # one convolve2d call of Lava's Conv model (per channel pair)
NEURON_STEP_S = 1e-6           # one neuron (or synapse output) updated in one step
VALUE_IO_S = 1e-4              # one value set or read between samples (Lava sends values one by one)
SYNAPSE_EVENT_S = 5e-9         # batched graph: one synapse a spike reaches (measured <= 1.7 ns)
BATCHED_NEURON_STEP_S = 1e-7   # batched graph: one neuron of one sample in one step (measured ~25 ns)
SYNAPSE_BUILD_S = 1e-6         # batched graph: one synapse of a projection's matrix, built before the run
TIMEOUT_FACTOR = 5.0           # safety margin on the per-step estimate (loaded machines)
TIMEOUT_MARGIN_S = 60.0


def estimate_timeout(net: Netlist, n_samples: int, steps: int,
                     record: Optional[Sequence[int]] = None, batch: Optional[int] = None) -> float:
    """A generous wall-time limit (s) for :func:`~neurosim.lava.runner.run_lava` on ``n_samples`` samples.

    Per-sample graph (``batch=None``), per step: every process, every 2-D convolution Lava's
    Conv model makes (one ``scipy.signal.convolve2d`` per output/input channel pair) and the
    neuron arithmetic; per sample: every value set or read between samples (state resets,
    final voltages); recorded spikes come through files and cost no value transfers.
    Measured on the tests' nets (2 cores): ~0.25 ms per process-step, ~17 us per value.

    Batched graph (``batch`` samples per run), per step of a run: every process, the neurons
    of every sample, and every synapse of every sample as if all inputs spiked (the sparse
    synapse's work follows the spikes); before the runs, building every projection's matrix.
    Samples and results go through files.
    """
    pops = [i for i, l in enumerate(net.layers) if isinstance(l, Population)]
    projections = [(i, p, proj) for i in pops for p, proj in enumerate(net.layers[i].projections)]
    neurons = sum(int(np.prod(l.shape)) for l in net.layers if not isinstance(l, Flatten))
    if batch is not None:
        n_procs = (len(net.neuron_layers) + len(projections) + sum(proj.delay > 1 for _, _, proj in projections)
                   + (0 if net.has_input_layer else 1))
        synapses = sum(int(proj.synapse.fanout(net.in_shape(i, p)).sum()) for i, p, proj in projections)
        runs = -(-n_samples // batch)
        per_step = n_procs * STEP_PER_PROCESS_S + batch * (neurons * BATCHED_NEURON_STEP_S
                                                           + synapses * SYNAPSE_EVENT_S)
        return (STARTUP_S + TIMEOUT_MARGIN_S + synapses * SYNAPSE_BUILD_S
                + TIMEOUT_FACTOR * runs * steps * per_step)
    n_procs = 1 + 2 * len(net.neuron_layers) + len(projections)
    convs = sum(lava_step_cost(proj.synapse, net.in_shape(i, p)) for i, p, proj in projections)
    per_step = n_procs * STEP_PER_PROCESS_S + convs * CONV2D_S + neurons * NEURON_STEP_S
    read = sum(int(np.prod(net.layers[i].shape)) for i in net.neuron_layers if record is None or i in record)
    values = neurons * 5 + read + (0 if net.has_input_layer else int(np.prod(net.input_shape)) * steps)
    per_sample = steps * per_step + values * VALUE_IO_S
    return STARTUP_S + TIMEOUT_MARGIN_S + TIMEOUT_FACTOR * n_samples * per_sample
