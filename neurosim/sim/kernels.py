"""Compiled loops that advance a population of independent neurons over a window of steps.

The neuron arithmetic is not written here: each kernel calls the step functions of
:mod:`neurosim.dynamics.lif` (compiled by Numba through ``register_jitable``), so the
simulator, the Lava ProcessModels and the documentation share one definition.

A kernel walks the neurons in blocks of :data:`BLOCK` and, for each step, runs the current
update over the block, then the voltage update. Each inner loop stores to few arrays, so LLVM
vectorises it; the block's state stays in L1 over the whole window. Kernels release the GIL:
:func:`scan` cuts the columns among threads.
"""
from __future__ import annotations

import hashlib
import inspect
import os
from concurrent.futures import ThreadPoolExecutor, wait
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
from numba import njit

from neurosim.dynamics import lif
from neurosim.dynamics.lif import current_fixed, current_float, voltage_fixed, voltage_float
from neurosim.netlist import schema
from neurosim.netlist.schema import DECAY_UNITY

#: Neurons per inner loop (their u and v: 8 KiB in all).
BLOCK = 512
#: Below this many neuron-steps a window runs on the calling thread only.
MIN_PARALLEL_WORK = 1 << 16


#: Numba's on-disk cache keys a kernel on its own bytecode and closure, not on the functions
#: it calls or the constants they import; the hash of the dynamics' source and of the schema
#: (its constants: state bits, decay unity), a closure variable, makes an edit of either
#: recompile the kernels instead of reusing stale machine code.
_DYNAMICS_SOURCE = hashlib.sha256((inspect.getsource(lif) + inspect.getsource(schema)).encode()).hexdigest()


def _compile(fn: Callable) -> Callable:
    """``njit(nogil=True)``, cached on disk where Numba finds a writable cache folder
    (``__pycache__`` next to this file, else the user's cache); compiled afresh in every
    process otherwise (a read-only install with an unwritable home)."""
    try:
        return njit(nogil=True, cache=True)(fn)
    except RuntimeError:            # "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)


def _make_kernel(current: Callable, voltage: Callable, cast: Callable, state: type, memoryless: bool,
                 no_leak: bool, soft_reset: bool, may_wrap: bool,
                 dynamics_source: str = _DYNAMICS_SOURCE) -> Callable:
    """A scan kernel for one mode, specialised on the population's constant structure.

    ``memoryless`` (``i_decay = 4096``), ``no_leak`` (``v_decay = 0``), ``soft_reset`` and
    ``may_wrap`` are closure constants, so Numba compiles them into the code: the branches
    of the step functions on them vanish and the inner loops vectorise (about 4x faster than
    one kernel taking them as arguments, measured on the IF neurons of a converted net).
    """
    def kernel(a, bias, vth, i_decay, v_decay, u, v, s_out, counts, v_trace, v_changed, lo, hi):
        """Advance neurons ``lo:hi`` over ``W = s_out.shape[0]`` steps, in place.

        ``a``: (W, M) synaptic input of each step, or (1, M) when it is the same at every step
        (any numeric dtype holding the mode's values exactly); ``bias``: (W, M), or (1, M)
        when constant, and ``vth``: in the mode's state units; ``i_decay``, ``v_decay``: the
        decays (ignored where the kernel is specialised to 4096 / 0); ``u``, ``v`` (M,):
        state, updated; ``s_out`` (W, M): spikes written as 0/1; ``counts`` (M,): spikes
        added; ``v_trace``: (W, M) gets v after every step, ``v_changed`` (W, M) 1 where the
        step changed v (else 0); either has 0 rows to skip that.
        """
        if len(dynamics_source) == 0:           # never true: ties the cache entry to lif.py's text
            return
        i_dec = DECAY_UNITY if memoryless else i_decay
        v_dec = 0 if no_leak else v_decay
        steps = s_out.shape[0]
        const = a.shape[0] == 1
        const_bias = bias.shape[0] == 1
        trace = v_trace.shape[0] > 0
        track = v_changed.shape[0] > 0
        # the block's state lives in local buffers: loops over them vectorise, loops over
        # slices of the callers' arrays do not (LLVM cannot rule out aliasing)
        ub = np.empty(BLOCK, state)
        vb = np.empty(BLOCK, state)
        sb = np.empty(BLOCK, np.uint8)
        cb = np.empty(BLOCK, counts.dtype)
        bb = np.empty(BLOCK, bias.dtype)
        chb = np.empty(BLOCK, np.uint8)
        for b0 in range(lo, hi, BLOCK):
            n = min(BLOCK, hi - b0)
            ub[:n] = u[b0:b0 + n]
            vb[:n] = v[b0:b0 + n]
            cb[:n] = counts[b0:b0 + n]
            bb[:n] = bias[0, b0:b0 + n]
            for t in range(steps):
                ab = a[0, b0:b0 + n] if const else a[t, b0:b0 + n]
                if not const_bias:
                    bb[:n] = bias[t, b0:b0 + n]
                for k in range(n):
                    ub[k] = current(ub[k], cast(ab[k]), i_dec, may_wrap)
                if track:
                    for k in range(n):
                        vk, sk = voltage(vb[k], ub[k], bb[k], vth, v_dec, soft_reset)
                        chb[k] = vk != vb[k]
                        vb[k] = vk
                        sb[k] = sk
                    ct = v_changed[t, b0:b0 + n]
                    for k in range(n):
                        ct[k] = chb[k]
                else:
                    for k in range(n):
                        vk, sk = voltage(vb[k], ub[k], bb[k], vth, v_dec, soft_reset)
                        vb[k] = vk
                        sb[k] = sk
                st = s_out[t, b0:b0 + n]
                for k in range(n):
                    st[k] = sb[k]
                    cb[k] += sb[k]
                if trace:
                    vt = v_trace[t, b0:b0 + n]
                    for k in range(n):
                        vt[k] = vb[k]
            u[b0:b0 + n] = ub[:n]
            v[b0:b0 + n] = vb[:n]
            counts[b0:b0 + n] = cb[:n]
    return _compile(kernel)


@lru_cache(maxsize=None)
def scan_kernel(fixed: bool, memoryless: bool, no_leak: bool, soft_reset: bool, may_wrap: bool) -> Callable:
    """The compiled scan kernel of a mode (``fixed``: Lava ``fixed_pt`` arithmetic on int64
    state; else ``floating_pt`` on float64) for one neuron structure (:func:`_make_kernel`);
    compiled on first use, at most 16 per mode."""
    if fixed:
        return _make_kernel(current_fixed, voltage_fixed, np.int64, np.int64, memoryless, no_leak,
                            soft_reset, may_wrap)
    return _make_kernel(current_float, voltage_float, np.float64, np.float64, memoryless, no_leak,
                        soft_reset, may_wrap)


def _dense_events(s, wt, out, lo, hi):
    """Event-driven dense synapse on rows ``lo:hi``: ``out[r] = sum of wt[j] over j with s[r, j] != 0``.

    ``s`` (R, n_in) float32 spikes (0/1), ``wt`` (n_in, n_out) the transposed weights,
    ``out`` (R, n_out) written. Groups of 8 silent inputs are skipped with one test, so the
    cost is about (inputs / 8 + spikes x n_out) instead of inputs x n_out.
    """
    n_in, n_out = wt.shape
    groups = n_in // 8
    for r in range(lo, hi):
        o = out[r]
        o[:] = 0
        sr = s[r]
        words = sr[:groups * 8].view(np.uint64)          # 2 inputs per word, 4 words per group
        for q in range(groups):
            if words[4 * q] | words[4 * q + 1] | words[4 * q + 2] | words[4 * q + 3]:
                for j in range(8 * q, 8 * q + 8):
                    if sr[j] != 0:
                        w = wt[j]
                        for k in range(n_out):
                            o[k] += w[k]
        for j in range(groups * 8, n_in):
            if sr[j] != 0:
                w = wt[j]
                for k in range(n_out):
                    o[k] += w[k]


dense_events = _compile(_dense_events)


def _conv_events(s, wf, pad_y, pad_x, out, lo, hi):
    """Event-driven 2-D convolution with stride 1, dilation 1 and one group, on images ``lo:hi``.

    ``s`` (M, C, H, W) float32 spikes (0/1); ``wf`` (C, KH, KW * O) the kernel flipped in both
    axes with the output channel last, ``wf[c, i, j * O + o] = weight[o, c, KH-1-i, KW-1-j]``;
    ``out`` (M, O, OH, OW) written, ``OH = H + 2 pad_y - KH + 1`` (likewise OW), ``pad_y < KH``
    and ``pad_x < KW``. The output (oy, ox) of tap (i, j) of an input (y, x) lies at
    ``(y + i, x + j) - (KH-1-pad_y, KW-1-pad_x)``, so in an accumulator of
    (H + KH - 1, W + KW - 1, O), channels last, a spike adds each row ``wf[c, i]`` to one
    contiguous run of KW x O values, and the image's outputs are the (OH, OW) window at
    (KH-1-pad_y, KW-1-pad_x), copied into ``out`` channels first. The spikes of an image are
    listed first, without branches (a branch per input mispredicts at every spike), then added.
    The cost is about ``spikes x KH x KW x O`` additions plus a few passes over an image (list
    its spikes, clear and read the accumulator) instead of ``OH x OW x O x C x KH x KW``
    multiply-adds.
    """
    m, c_in, h, w = s.shape
    kh, span = wf.shape[1], wf.shape[2]
    o_all, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    wa = w + span // o_all - 1                  # accumulator columns
    r0, c0 = kh - 1 - pad_y, span // o_all - 1 - pad_x
    row_step = wa * o_all
    acc = np.empty((h + kh - 1) * row_step, np.float32)
    at = np.empty(c_in * h * w + 1, np.int64)   # per spike: its run's start in the accumulator
    chan = np.empty(c_in * h * w + 1, np.int64)     # and its channel
    for b in range(lo, hi):
        n = 0
        for c in range(c_in):
            for y in range(h):
                row = s[b, c, y]
                for x in range(w):
                    at[n] = (y * wa + x) * o_all
                    chan[n] = c
                    n += row[x] != 0
        acc[:] = 0
        for q in range(n):
            wc = wf[chan[q]]
            for i in range(kh):
                run = acc[at[q] + i * row_step:]
                wi = wc[i]
                for k in range(span):
                    run[k] += wi[k]
        ob = out[b]
        for oy in range(oh):
            a0 = ((oy + r0) * wa + c0) * o_all
            for o in range(o_all):
                dst = ob[o, oy]
                for ox in range(ow):
                    dst[ox] = acc[a0 + ox * o_all + o]


conv_events = _compile(_conv_events)

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _forget_pool() -> None:
    global _pool, _pool_size
    _pool, _pool_size = None, 0     # a forked child has none of its parent's threads


os.register_at_fork(after_in_child=_forget_pool)


#: The machine's CPUs: ``os.cpu_count()`` reads sysfs (7-30 us measured), too slow for every kernel call.
_CPUS = os.cpu_count() or 1


def _threads() -> int:
    return max(1, min(torch.get_num_threads(), _CPUS))


def parallel(kernel: Callable, args: tuple, m: int, work: int, align: int = 1) -> None:
    """Call ``kernel(*args, lo, hi)`` on contiguous parts of ``range(m)``, one per thread
    (``torch.get_num_threads()``), or on the calling thread alone when ``work`` is small."""
    global _pool, _pool_size
    n = _threads()
    if n == 1 or work < MIN_PARALLEL_WORK or m < 2 * align:
        kernel(*args, 0, m)
        return
    if _pool is None or _pool_size != n:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool, _pool_size = ThreadPoolExecutor(max_workers=n, thread_name_prefix="neurosim-kernel"), n
    per = -(-m // n // align) * align
    futures = [_pool.submit(kernel, *args, lo, min(lo + per, m)) for lo in range(0, m, per)]
    try:
        for f in futures:
            f.result()
    finally:                        # e.g. Ctrl-C: no thread may still write into the caller's buffers
        wait(futures)


def scan(fixed: bool, a: np.ndarray, bias: np.ndarray, vth, i_decay: int, v_decay: int,
         soft_reset: bool, may_wrap: bool, u: np.ndarray, v: np.ndarray, s_out: np.ndarray,
         counts: np.ndarray, v_trace: np.ndarray, v_changed: np.ndarray) -> None:
    """Run the mode's scan kernel (:func:`scan_kernel`) on all columns, cut among threads in
    whole blocks."""
    kernel = scan_kernel(bool(fixed), i_decay == DECAY_UNITY, v_decay == 0, bool(soft_reset), bool(may_wrap))
    args = (a, bias, vth, int(i_decay), int(v_decay), u, v, s_out, counts, v_trace, v_changed)
    parallel(kernel, args, u.shape[0], u.shape[0] * s_out.shape[0], BLOCK)
