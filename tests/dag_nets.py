"""Random netlist-v2 graphs for property tests: residual joins, schedules, both resets, initial
voltages, CUBA and RMP neurons, current (``Input`` layer) or spike input, integer mantissas
(exact in both modes)."""
from __future__ import annotations

import numpy as np

from neurosim.netlist import (
    CUBA, INPUT, RMP, Flatten, Input, Netlist, Projection, Schedule, conv, dense, identity, pool,
)
from neurosim.netlist.synapses import Conv, Dense, Identity


def _neuron(rng: np.random.Generator, vth: int):
    reset = str(rng.choice(["hard", "soft"]))
    v_init = int(rng.choice([0, 0, vth // 2, -vth // 3]))
    if rng.random() < 0.5:
        return RMP(vth, vDecay=int(rng.choice([0, 0, 128, 1024])), reset=reset, vInit=v_init)
    return CUBA(vth, iDecay=int(rng.choice([4096, 2048, 512])), vDecay=int(rng.choice([0, 256, 1024])),
                reset=reset, vInit=v_init)


def _schedule(rng: np.random.Generator, c: int) -> Schedule:
    steps = int(rng.integers(1, 7))
    exp = int(rng.integers(0, 5))
    scale = rng.integers(1, 3 << exp, (steps, c)).astype(float) if rng.random() < 0.8 else None
    bias = rng.integers(-3, 6, (steps, c)).astype(float) if scale is None or rng.random() < 0.6 else None
    return Schedule(scale=scale, bias=bias, scale_exp=exp)


def random_dag(seed: int, steps: int = 10, n_samples: int = 2) -> tuple[Netlist, np.ndarray]:
    """A random DAG netlist and input samples for it (``steps`` steps)."""
    rng = np.random.default_rng(seed)
    spatial = rng.random() < 0.7
    in_shape = (int(rng.integers(1, 3)), int(rng.integers(4, 7)), int(rng.integers(4, 7))) if spatial \
        else (int(rng.integers(6, 16)),)
    layers: list = []
    spike_input = rng.random() < 0.4
    if spike_input:
        x = (rng.random((n_samples, steps, *in_shape)) < 0.3).astype(float)
        shapes = {INPUT: in_shape}
    else:
        layers.append(Input(in_shape, _neuron(rng, int(rng.integers(8, 20))), weight=float(rng.integers(10, 40))))
        x = rng.random((n_samples, *in_shape))
        shapes = {0: in_shape}
    n_pop = int(rng.integers(3, 6))
    joins = schedules = 0
    for k in range(n_pop):
        i = len(layers)
        last = k == n_pop - 1
        prev = i - 1 if i > 0 else INPUT
        src_shape = shapes[prev]
        vth = int(rng.integers(6, 25))
        neuron = _neuron(rng, vth)
        if len(src_shape) == 3 and not last and rng.random() < 0.75:
            c_in = src_shape[0]
            if rng.random() < 0.3 and min(src_shape[1:]) >= 4:
                layer = pool((c_in, src_shape[1] // 2, src_shape[2] // 2), rng.integers(1, 4, (2, 2)).astype(float),
                             neuron)
            else:
                c_out = int(rng.integers(1, 4))
                layer = conv((c_out, *src_shape[1:]), rng.integers(-2, 6, (c_out, c_in, 3, 3)).astype(float), neuron,
                             padding=(1, 1), bias=rng.integers(-2, 3, c_out).astype(float))
        elif not last and rng.random() < 0.2:
            layer = identity(src_shape, neuron, weight=float(rng.integers(4, 12)))
        else:
            if len(src_shape) == 3 and rng.random() < 0.5:        # an explicit flatten layer
                layers.append(Flatten((int(np.prod(src_shape)),)))
                shapes[i] = layers[-1].shape
                i += 1
                src_shape = shapes[i - 1]
            n_out = int(rng.integers(3, 9))
            layer = dense((n_out,), rng.integers(-3, 8, (n_out, int(np.prod(src_shape)))).astype(float), neuron,
                          bias=rng.integers(-2, 3, n_out).astype(float))
        # residual joins: more projections from earlier layers (or the spike input)
        first = min(shapes)
        for src in [s for s in shapes if s < i - 1]:
            if rng.random() > 0.5 and not (last and joins == 0 and src == first):
                continue
            s_shape = shapes[src]
            if s_shape == tuple(layer.shape):
                syn = Identity(float(rng.integers(3, 10)))
            elif len(layer.shape) == 1:
                syn = Dense(rng.integers(-2, 6, (layer.shape[0], int(np.prod(s_shape)))).astype(float))
            elif len(s_shape) == 3 and s_shape[1:] == tuple(layer.shape[1:]):
                syn = Conv(rng.integers(-2, 6, (layer.shape[0], s_shape[0], 1, 1)).astype(float))
            else:
                continue
            layer.projections.append(Projection(syn, src))
            joins += 1
        if rng.random() < 0.5 or (last and schedules == 0):
            layer.schedule = _schedule(rng, layer.channels)
            schedules += 1
        layers.append(layer)
        shapes[len(layers) - 1] = tuple(layer.shape)
    net = Netlist(layers, input_shape=in_shape if spike_input else None)
    net.check()
    return net, x
