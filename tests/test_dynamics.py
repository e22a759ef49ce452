"""Soft vs hard reset and Lava's fixed-point arithmetic on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from neurosim.dynamics.lif import decay_fixed, lif_fixed, lif_float, wrap_current
from neurosim.sim import kernels


def _run(step, inputs, vth, soft, i_decay=4096, v_decay=0, dtype=np.float64):
    u = np.zeros(1, dtype)
    v = u * 0
    out = []
    for a in inputs:
        a = np.asarray([a], dtype)
        u, v, s = step(u, v, a, 0, vth, i_decay, v_decay, soft)
        out.append((int(s[0]), float(v[0])))
    return out


def test_soft_vs_hard_reset_by_hand():
    # constant input 0.6, threshold 1: v = .6, 1.2 -> spike
    inputs = [0.6] * 5
    soft = _run(lif_float, inputs, 1.0, True)
    hard = _run(lif_float, inputs, 1.0, False)
    # soft:  .6 | 1.2>1 spike -> .2 | .8 | 1.4 spike -> .4 | 1.0 (not > 1)
    np.testing.assert_allclose([v for _, v in soft], [0.6, 0.2, 0.8, 0.4, 1.0], atol=1e-12)
    assert [s for s, _ in soft] == [0, 1, 0, 1, 0]
    # hard: .6 | 1.2 spike -> 0 | .6 | 1.2 spike -> 0 | .6
    np.testing.assert_allclose([v for _, v in hard], [0.6, 0.0, 0.6, 0.0, 0.6], atol=1e-12)
    assert [s for s, _ in hard] == [0, 1, 0, 1, 0]


def test_soft_reset_keeps_rate_hard_reset_loses_it():
    # input 0.6 per step for 100 steps: soft reset fires floor(60/1) - the rate the ANN predicts
    soft = sum(s for s, _ in _run(lif_float, [0.6] * 100, 1.0, True))
    hard = sum(s for s, _ in _run(lif_float, [0.6] * 100, 1.0, False))
    assert soft == 59 or soft == 60
    assert hard == 50       # every second step: the residual 0.2 is thrown away


def test_fixed_point_step_by_hand():
    # vth mantissa 10 = 640 state units; input 7 -> 448 per step; soft: 448, 896>640 -> 256, 704 -> 64
    out = _run(lif_fixed, [7, 7, 7], 10 << 6, True, dtype=np.int64)
    assert out == [(0, 448.0), (1, 256.0), (1, 64.0)]
    out = _run(lif_fixed, [7, 7, 7], 10 << 6, False, dtype=np.int64)
    assert out == [(0, 448.0), (1, 0.0), (0, 448.0)]


def test_decay_rounds_toward_zero_like_loihi():
    x = np.array([1000, -1000, 4095, -4095])
    # (1000 * 3072) >> 12 = 750; negative symmetric
    np.testing.assert_array_equal(decay_fixed(x, 1024), [750, -750, 3071, -3071])


def test_current_wraps_at_24_bits():
    half = 1 << 23
    np.testing.assert_array_equal(wrap_current(np.array([half + 5, -half - 5, half, 3])),
                                  [-half + 5, half - 5, half, 3])


@pytest.mark.parametrize("per_step_bias", [False, True])
@pytest.mark.parametrize("fixed", [True, False])
@pytest.mark.parametrize("soft", [True, False])
def test_compiled_kernel_equals_the_numpy_step(fixed, soft, per_step_bias):
    """The simulator's kernel and the Lava models' NumPy calls run the same text: same numbers,
    including the 24-bit wrap of u and the clip of v (inputs large enough to reach both), with
    a constant bias or one per step (a schedule's bias)."""
    rng = np.random.default_rng(7 + fixed + 2 * soft)
    steps, m = 40, 3 * kernels.BLOCK + 17           # several blocks and a ragged one
    dtype = np.int64 if fixed else np.float64
    a = rng.integers(-2 ** 17, 2 ** 17, (steps, m)).astype(np.float64)
    a[:, :50] *= 40                                  # (a << 6) beyond 2**23: wraps
    if not fixed:
        a = a / 7.0                                  # real-valued input
    bias = (rng.integers(-3000, 3000, (steps if per_step_bias else 1, m)) * 64).astype(dtype)
    vth = 400 * 64 if fixed else 400.0
    for i_decay, v_decay in ((4096, 0), (1500, 300), (0, 4096), (17, 4000)):
        u = np.zeros(m, dtype); v = np.zeros(m, dtype)
        counts = np.zeros(m, np.int64)
        s_k = np.empty((steps, m), np.float32); trace = np.empty((steps, m), dtype)
        changed = np.empty((steps, m), np.uint8)
        kernels.scan(fixed, a, bias, vth, i_decay, v_decay,
                     soft, True, u, v, s_k, counts, trace, changed)
        step = lif_fixed if fixed else lif_float
        uu = np.zeros(m, dtype); vv = np.zeros(m, dtype)
        for t in range(steps):
            before = vv
            uu, vv, ss = step(uu, vv, a[t].astype(dtype), bias[t % len(bias)], vth, i_decay, v_decay, soft)
            np.testing.assert_array_equal(s_k[t], ss, err_msg=f"step {t}")
            np.testing.assert_array_equal(trace[t], vv, err_msg=f"step {t}")
            np.testing.assert_array_equal(changed[t], vv != before, err_msg=f"step {t}")
        np.testing.assert_array_equal(u, uu)
        np.testing.assert_array_equal(counts, s_k.sum(0))
        assert 0 < counts.sum() < steps * m
