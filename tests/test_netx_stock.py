"""The simulator against stock lava-dl netx on small nets that lava-dl writes at test time.

Unlike ``test_netx_reference.py`` (larger trained nets from ``../shared``), these need
nothing next to the clone: each test builds a net from lava-dl's own SLAYER CUBA blocks
(seeded weights, scaled so that every layer spikes), writes it with the blocks'
``export_hdf5`` into ``/layer/<i>`` groups the way lava-dl's tutorials write
``network.net``, runs the file on stock ``lava.lib.dl.netx.hdf5.Network`` (Lava
``fixed_pt``, child process) and on :class:`~neurosim.sim.simulator.Simulator` (``fixed``),
and requires the same spikes in every layer at every step.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import pytest
import torch

from neurosim.netlist.hdf5 import load
from neurosim.sim.simulator import Simulator
from tests.test_netx_reference import _compare, _stock_netx

slayer = pytest.importorskip("lava.lib.dl.slayer")
cuba = slayer.block.cuba

# CUBA parameters as SLAYER takes them; exported as vThMant = threshold * 64,
# iDecay / vDecay = round(decay * 4096).
LEAKY = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03)     # vThMant 80, iDecay 1024, vDecay 123
FAST = dict(threshold=1.0, current_decay=1.0, voltage_decay=0.1)         # 64, 4096 (u = input), 410
SLOW = dict(threshold=0.75, current_decay=0.0, voltage_decay=0.0)        # 48, 0 (u integrates), 0


def _biased(params: dict) -> dict:
    """``params`` with SLAYER's mean-only batch norm, whose mean SLAYER exports as the bias."""
    return dict(params, norm=slayer.neuron.norm.MeanOnlyBatchNorm)


def _set_bias(block: torch.nn.Module, mantissas: np.ndarray) -> None:
    """Make ``block`` (built with :func:`_biased`) export ``bias = mantissas`` (even integers,
    SLAYER's 8-bit grid: the bias is ``-running_mean`` quantised like a weight)."""
    block.neuron.norm.running_mean = torch.tensor(-np.asarray(mantissas) / block.neuron.w_scale,
                                                  dtype=torch.float32)


def _forward(blocks: Sequence[torch.nn.Module], sample: torch.Tensor) -> None:
    """Run ``sample`` (N, *shape, T) through ``blocks`` once: SLAYER fixes the blocks' shapes
    on the first forward pass (a trained net has had many)."""
    with torch.no_grad():
        x = sample
        for block in blocks:
            x = block(x)


def _export(blocks: Sequence[torch.nn.Module], path: Path) -> Path:
    """Write ``blocks`` as lava-dl's tutorials write ``network.net``."""
    with h5py.File(path, "w") as h:
        for i, block in enumerate(blocks):
            block.export_hdf5(h.create_group(f"layer/{i}"))
    return path


def _assert_layers(path: Path, types: list[str], biased: list[int]) -> None:
    """The file holds layers of ``types``, and nonzero biases in the ``biased`` ones."""
    with h5py.File(path) as h:
        assert [h[f"layer/{i}/type"][0].decode() for i in range(len(h["layer"]))] == types
        for i in biased:
            assert np.any(h[f"layer/{i}/bias"][()]), i


def _spike_raster(rng: np.random.Generator, shape: tuple[int, ...], steps: int, rate: float) -> np.ndarray:
    """0/1 spikes (steps, *shape)."""
    return (rng.random((steps, *shape)) < rate).astype(np.int32)


def test_dense_chain_spike_input_equals_stock_netx(tmp_path):
    """40 -> 32 -> 24 -> 10 dense CUBA, spike input. Layer 1: small weights (netx weight
    exponent -4) on a small threshold, both leaks, a bias, negative states (Loihi's decay
    rounds toward zero); layer 2: large weights (exponent 0, some at SLAYER's clamp -256/254),
    memoryless current and no leak, so sums land exactly on the threshold (spike only above
    it); layer 3: a current that never decays (iDecay 0)."""
    torch.manual_seed(1)
    blocks = [cuba.Dense(_biased(dict(threshold=0.5, current_decay=0.25, voltage_decay=0.05)), 40, 32),
              cuba.Dense(dict(threshold=4.0, current_decay=1.0, voltage_decay=0.0), 32, 24, weight_scale=24),
              cuba.Dense(dict(threshold=6.0, current_decay=0.0, voltage_decay=0.2), 24, 10, weight_scale=5)]
    _forward(blocks, torch.zeros(1, 40, 4))
    _set_bias(blocks[0], np.arange(-32, 32, 2))
    path = _export(blocks, tmp_path / "network.net")
    _assert_layers(path, ["dense", "dense", "dense"], biased=[0])
    net = load(path)
    steps = 100
    raster = _spike_raster(np.random.default_rng(1), (40,), steps, 0.3)          # (T, 40)
    lava = _stock_netx(tmp_path, path, steps, "spikes", raster.T)                   # (40, T)
    res = Simulator(net, "fixed").run(raster[None], steps, record_spikes=True)
    _compare(net, lava, res.spikes)


def _conv_blocks() -> list[torch.nn.Module]:
    """2x8x8 -> conv 3x3 pad 1 (4x8x8, channel bias) -> conv 3x3 stride 2 (4x3x3) -> flatten (36)
    -> dense 10; forwarded once."""
    torch.manual_seed(2)
    blocks = [cuba.Conv(_biased(LEAKY), 2, 4, 3, padding=1, weight_scale=3),
              cuba.Conv(FAST, 4, 4, 3, stride=2, weight_scale=10),
              cuba.Flatten(),
              cuba.Dense(LEAKY, 36, 10, weight_scale=3)]
    _forward(blocks, torch.zeros(1, 2, 8, 8, 4))
    _set_bias(blocks[0], [6, -4, 0, 12])
    return blocks


def test_conv_chain_spike_input_equals_stock_netx(tmp_path):
    """conv -> conv (strided) -> flatten -> dense, spike input of shape 2x8x8, behind a SLAYER
    ``Input`` block without neurons: it exports only ``type`` and ``shape``, which netx (and
    neurosim) read as the shape of the spike input, not as a layer."""
    steps, shape = 64, (2, 8, 8)
    stem = cuba.Input(delay_shift=False)             # no neurons: exports only type and shape
    _forward([stem], torch.zeros(1, *shape, 4))
    path = _export([stem, *_conv_blocks()], tmp_path / "network.net")
    _assert_layers(path, ["input", "conv", "conv", "flatten", "dense"], biased=[1])
    net = load(path)
    assert net.input_shape == shape and not net.has_input_layer and len(net.layers) == 4
    raster = _spike_raster(np.random.default_rng(2), shape, steps, 0.25)           # (T, C, H, W)
    lava = _stock_netx(tmp_path, path, steps, "spikes", raster.transpose(3, 2, 1, 0))  # (W, H, C, T)
    res = Simulator(net, "fixed").run(raster[None], steps, record_spikes=True)
    _compare(net, lava, res.spikes)


def test_input_layer_bias_drive_equals_stock_netx(tmp_path):
    """SLAYER ``Input`` block with CUBA neurons (3x6x6) -> conv 3x3 (4x4x4) -> flatten ->
    dense 12 (bias) -> dense 5, driven like lava-dl's tinynet test: a per-neuron bias mantissa
    in the input neurons (netx: ``bias_mant``; neurosim: ``raw_current``), no input spikes."""
    torch.manual_seed(3)
    blocks = [cuba.Input(FAST),
              cuba.Conv(LEAKY, 3, 4, 3, weight_scale=3),
              cuba.Flatten(),
              cuba.Dense(_biased(SLOW), 64, 12, weight_scale=2),
              cuba.Dense(LEAKY, 12, 5, weight_scale=4)]
    _forward(blocks, torch.zeros(1, 3, 6, 6, 4))
    _set_bias(blocks[3], np.tile([2, -2, 0, 4], 3))
    path = _export(blocks, tmp_path / "network.net")
    _assert_layers(path, ["input", "conv", "flatten", "dense", "dense"], biased=[3])
    net = load(path)
    steps = 64
    bias = np.random.default_rng(3).integers(0, 48, (3, 6, 6))                      # (C, H, W) mantissas
    lava = _stock_netx(tmp_path, path, steps, "bias", bias.transpose(2, 1, 0))      # Lava: (W, H, C)
    res = Simulator(net, "fixed").run(bias[None], steps, raw_current=True, record_spikes=True)
    _compare(net, lava, res.spikes)
