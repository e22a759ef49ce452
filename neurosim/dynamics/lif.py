"""One LIF step per numeric mode; CUBA (hard reset) and RMP (soft reset) are both this step.

Every function here is written with arithmetic operators and NumPy ufuncs only, so the same
text runs in two ways:

* on NumPy arrays, elementwise: neurosim's Lava ProcessModels (:mod:`neurosim.lava.models`);
* on scalars inside compiled loops: the batched simulator's kernels
  (:mod:`neurosim.sim.kernels`), through Numba's ``register_jitable``.

``RMP`` is the LIF step with ``i_decay = 4096`` (no current memory: ``u = a``) and
``soft_reset=True``; ``CUBA`` is the step with ``soft_reset=False``.

``float`` mode (mantissa units, Lava ``floating_pt`` LIF)::

    u = u * (1 - i_decay/4096) + a
    v = v * (1 - v_decay/4096) + u + bias
    s = v > vth
    v = 0 where s                 (hard)      v = v - vth * s      (soft)

``fixed`` mode (state in 2**-6 mantissa units, bit-exact with Lava's ``PyLifModelBitAcc``)::

    u = wrap24(trunc(u * (4096 - i_decay) / 4096) + (a << 6))
    v = clip(trunc(v * (4096 - v_decay) / 4096) + u + bias_eff, -(2**23 - 1), 2**23 - 1)
    s = v > vth_eff
    v = 0 where s                 (hard)      v = v - vth_eff * s  (soft)

where ``trunc`` rounds toward zero (sign * (|x| >> 12)), ``bias_eff = bias_mant << bias_exp``
(netx: ``bias_exp = 6``), ``vth_eff = vth << 6``, and ``wrap24`` is Lava's 24-bit wrap of u
(``u > 2**23 -> u - 2**24``; then ``<= -2**23 -> u + 2**24``, both applied to the unwrapped value).
Fixed-point arguments are int64 (scalars or arrays); float arguments are float64.

A population with a per-step schedule (:class:`neurosim.netlist.schema.Schedule`) scales its
synaptic input ``a`` before the step, with one rounding rule::

    fixed:  a' = (a * scale + 2**(e-1)) >> e       (round half up; e = 0: a * scale)
    float:  a' = a * (scale * 2**-e)
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numba.extending import register_jitable

from neurosim.netlist.schema import DECAY_BITS, DECAY_UNITY, STATE_BITS, STATE_SHIFT

Array = Any  # numpy.ndarray, or a scalar inside a Numba kernel

_HALF = 1 << (STATE_BITS - 1)


@register_jitable
def decay_fixed(x: Array, decay: int) -> Array:
    """``sign(p) * (|p| >> 12)`` with ``p = x (4096 - decay)``: Loihi's decay, rounding toward zero.

    ``decay = 0`` gives ``x`` and ``decay = 4096`` gives 0: returned without the product (the
    same values; a kernel compiled for these constants then needs no 64-bit multiply)."""
    if decay == 0:
        return x
    if decay == DECAY_UNITY:
        return x * 0
    p = x * (DECAY_UNITY - decay)
    return np.sign(p) * (np.abs(p) >> DECAY_BITS)


@register_jitable
def wrap_current(u: Array) -> Array:
    """Lava's 24-bit wrap of the current (including its order of the two comparisons)::

        w = u - 2**24 where u > 2**23 else u
        result = u + 2**24 where w <= -2**23 else w
    """
    w = u - (u > _HALF) * (2 * _HALF)
    return w + (w <= -_HALF) * (u + 2 * _HALF - w)


@register_jitable
def to_state(mantissa: Array) -> Array:
    """Mantissa to fixed-point state units (``<< 6``), e.g. a threshold or a netx bias."""
    return mantissa << STATE_SHIFT


@register_jitable
def scale_fixed(a: Array, scale: Array, exp: int) -> Array:
    """Scheduled synaptic input in fixed point: ``(a * scale + 2**(exp-1)) >> exp``, i.e. the
    product rounded half up (toward +inf at exact halves); ``exp = 0`` gives ``a * scale``."""
    return (a * scale + ((1 << exp) >> 1)) >> exp


@register_jitable
def scale_float(a: Array, scale: Array, exp: int) -> Array:
    """Scheduled synaptic input in floating point: ``a * (scale * 2**-exp)``."""
    return a * (scale * 2.0 ** -exp)


@register_jitable
def current_fixed(u: Array, a: Array, i_decay: int, may_wrap: bool = True) -> Array:
    """Fixed-point current: ``wrap24(trunc(u (4096 - i_decay) / 4096) + (a << 6))``.

    With ``i_decay = 4096`` the result does not depend on ``u``. ``may_wrap=False`` is the
    caller's guarantee that the sum stays inside 24 bits, so the wrap is the identity.
    """
    c = decay_fixed(u, i_decay) + to_state(a)
    return wrap_current(c) if may_wrap else c


@register_jitable
def voltage_fixed(v: Array, u: Array, bias_eff: Array, vth_eff: Array, v_decay: int,
                  soft_reset: bool) -> tuple[Array, Array]:
    """Fixed-point voltage, spike and reset given this step's current; returns ``(v, s)``."""
    v = np.minimum(np.maximum(decay_fixed(v, v_decay) + u + bias_eff, 1 - _HALF), _HALF - 1)
    s = v > vth_eff
    v = v - s * vth_eff if soft_reset else v * (1 - s)
    return v, s


@register_jitable
def lif_fixed(u: Array, v: Array, a: Array, bias_eff: Array, vth_eff: Array,
              i_decay: int, v_decay: int, soft_reset: bool) -> tuple[Array, Array, Array]:
    """One fixed-point step; returns ``(u, v, s)``."""
    u = current_fixed(u, a, i_decay)
    v, s = voltage_fixed(v, u, bias_eff, vth_eff, v_decay, soft_reset)
    return u, v, s


@register_jitable
def current_float(u: Array, a: Array, i_decay: int, may_wrap: bool = True) -> Array:
    """Floating-point current ``u (1 - i_decay/4096) + a`` (just ``a`` when ``i_decay = 4096``).

    ``may_wrap`` is accepted for symmetry with :func:`current_fixed`; floats never wrap."""
    return a if i_decay == DECAY_UNITY else u * (1 - i_decay / DECAY_UNITY) + a


@register_jitable
def integrate_float(v: Array, u: Array, bias: Array, v_decay: int) -> Array:
    """Floating-point membrane update before the threshold: ``v (1 - v_decay/4096) + u + bias``."""
    return (v if v_decay == 0 else v * (1 - v_decay / DECAY_UNITY)) + u + bias


@register_jitable
def reset_float(v: Array, s: Array, vth: Array, soft_reset: bool) -> Array:
    """Reset after spikes ``s`` (0/1): ``v - vth s`` (soft) or ``v (1 - s)`` (hard)."""
    return v - s * vth if soft_reset else v * (1 - s)


@register_jitable
def voltage_float(v: Array, u: Array, bias: Array, vth: Array, v_decay: int,
                  soft_reset: bool) -> tuple[Array, Array]:
    """Floating-point voltage, spike and reset given this step's current; returns ``(v, s)``.
    (Training with surrogate gradients uses the same two halves around a differentiable
    threshold: :mod:`neurosim.bntt.neuron`.)"""
    v = integrate_float(v, u, bias, v_decay)
    s = v > vth
    return reset_float(v, s, vth, soft_reset), s


@register_jitable
def lif_float(u: Array, v: Array, a: Array, bias: Array, vth: Array,
              i_decay: int, v_decay: int, soft_reset: bool) -> tuple[Array, Array, Array]:
    """One floating-point step in mantissa units; returns ``(u, v, s)``."""
    u = current_float(u, a, i_decay)
    v, s = voltage_float(v, u, bias, vth, v_decay, soft_reset)
    return u, v, s
