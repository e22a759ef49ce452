"""The one Loihi quantiser (issue 18): its formats, rounding rules and the per-layer scale rule
(:mod:`neurosim.netlist.quantize`), which the converter, BNTT's export and quantize-loihi2 share."""
from __future__ import annotations

import numpy as np
import pytest

from neurosim.netlist.quantize import (
    BIAS_MANT_MAX, LOIHI_WEIGHT_MAX, SCALE_MANT_MAX, WEIGHT_MANT_MAX, WEIGHT_MANT_MIN, bias_mantissas,
    even_mantissas, input_scale, integer_scale, mantissa8, scale_mantissas, threshold_mantissa, weight_gain,
)
from neurosim.netlist.schema import SCALE_EXP_MAX, VTH_MAX
from neurosim.netlist.synapses.dense import loihi_dense


def test_formats_are_defined_once():
    from neurosim.loihi2 import limits
    assert (WEIGHT_MANT_MIN, WEIGHT_MANT_MAX, BIAS_MANT_MAX, LOIHI_WEIGHT_MAX) == (-256, 254, 4095, 255 * 128)
    assert limits.WEIGHT_MANT_MAX is WEIGHT_MANT_MAX and limits.BIAS_MANT_MAX is BIAS_MANT_MAX


def test_even_mantissas_round_half_to_even_clip_and_survive_lavas_weight_path():
    got = even_mantissas(np.array([1, 3, -3, 253, 255, 300, -300, 5.2]))
    assert got.dtype == np.float64
    assert got.tolist() == [0, 4, -4, 252, 254, 254, -256, 6]
    w = even_mantissas(np.random.default_rng(0).normal(0, 150, (7, 9)))
    w_int, exp = loihi_dense(w)                      # netx + Lava's bit-accurate dense path
    assert np.array_equal(np.ldexp(w_int.astype(np.float64), exp), w)


def test_mantissa8_is_an_8_bit_mantissa_times_a_power_of_two():
    assert [mantissa8(w) for w in (3.4, -254.6, 300.0, 301.0, 511.9)] == [3, -255, 300, 300, 512]
    assert mantissa8(LOIHI_WEIGHT_MAX) == LOIHI_WEIGHT_MAX


def test_bias_and_threshold_round_half_to_even():
    assert bias_mantissas(np.array([0.5, 1.5, -2.5, 4094.6])).tolist() == [0, 2, -2, 4095]
    assert bias_mantissas(np.array([1.5], dtype=np.float32)).dtype == np.float32
    assert (threshold_mantissa(2.5), threshold_mantissa(3.5), threshold_mantissa(7.49)) == (2, 4, 7)


def test_integer_scale_is_the_floor_of_the_tightest_limit_clipped():
    """sigma = clip(floor(min(254 / max|W|, 32640 / max|w_id|, 4095 / max|b|)), 1, cap)."""
    assert weight_gain(0.5) == 508
    assert integer_scale(0.5) == 508                                  # weights alone
    assert integer_scale(0.5, bias_max=10.0) == 409                   # 4095 / 10
    assert integer_scale(0.001, identity_max=100.0) == 326            # 32640 / 100
    assert integer_scale(0.0, identity_max=2.0) == 127                # identity weights take the 254 term
    assert integer_scale(0.0) == VTH_MAX and integer_scale(1e-9) == VTH_MAX
    assert integer_scale(0.0, bias_max=0.5, cap=4096) == 4096 and integer_scale(0.0, bias_max=2.0, cap=4096) == 2047
    assert integer_scale(1000.0) == 1                                 # never below 1


def test_integer_scale_keeps_every_number_in_its_format():
    rng = np.random.default_rng(1)
    for _ in range(200):
        w = rng.normal(0, 10 ** rng.uniform(-4, 1), 30)
        b = rng.normal(0, 10 ** rng.uniform(-4, 0), 5)
        ident = abs(rng.normal(0, 10 ** rng.uniform(-3, 1)))
        s = integer_scale(float(np.abs(w).max()), ident, float(np.abs(b).max()))
        assert 1 <= s <= VTH_MAX and isinstance(s, int)
        assert np.abs(w * s).max() <= WEIGHT_MANT_MAX and np.abs(bias_mantissas(b * s)).max() <= BIAS_MANT_MAX
        assert abs(mantissa8(ident * s)) <= LOIHI_WEIGHT_MAX
        assert np.array_equal(even_mantissas(w * s), 2 * np.round(w * s / 2))     # the clip never binds


@pytest.mark.parametrize("in_max", [1.0, 37.0, 0.003, 4095.0])
def test_input_scale_is_the_largest_power_of_two_within_the_bias(in_max):
    s = input_scale(in_max)
    assert np.log2(s) == int(np.log2(s)) and s * in_max <= BIAS_MANT_MAX < 2 * s * in_max


def test_scale_mantissas_use_15_bits_with_one_exponent():
    m, e = scale_mantissas(np.array([[0.5, -1.25]]))
    assert e == 14 and m.tolist() == [[8192, -20480]]
    assert SCALE_MANT_MAX / 2 < np.abs(m).max() <= SCALE_MANT_MAX
    assert scale_mantissas(np.zeros((2, 3)))[1] == 0
    assert scale_mantissas(np.array([[1e5]]))[1] == 0 and scale_mantissas(np.array([[1e-9]]))[1] == SCALE_EXP_MAX
