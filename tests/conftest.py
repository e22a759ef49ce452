"""Shared fixtures: small hand-made netlists and the shared-data location."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"

from neurosim.netlist import CUBA, RMP, Flatten, Input, Netlist, conv, dense, pool  # noqa: E402
from neurosim.netlist.synapses import Conv  # noqa: E402


def small_conv_net(seed: int = 0, neuron=RMP) -> Netlist:
    """Input(1,6,6) -> conv 3x3 pad 1 (4) -> pool 2 -> flatten -> dense(5); integer mantissas."""
    rng = np.random.default_rng(seed)
    mk = (lambda v: RMP(v)) if neuron is RMP else (lambda v: CUBA(v, iDecay=1024, vDecay=512))
    return Netlist([
        Input((1, 6, 6), mk(100), weight=128.0),
        conv((4, 6, 6), 2 * rng.integers(-40, 60, (4, 1, 3, 3)).astype(float), mk(120), padding=(1, 1),
             bias=rng.integers(-5, 10, 4).astype(float)),
        pool((4, 3, 3), np.full((2, 2), 2.0), mk(5)),
        Flatten((36,)),
        dense((5,), 2 * rng.integers(-60, 60, (5, 36)).astype(float), mk(90), bias=rng.integers(-3, 3, 5).astype(float)),
    ])


def analog_net(seed: int = 0, per_channel: bool = True) -> Netlist:
    """Image (2, 6, 6) -> host conv 3x3 pad 1 (4) as the input layer -> flatten -> dense (5)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-60, 80, (4, 2, 3, 3)).astype(float)
    bias = rng.integers(-20, 30, 4).astype(float) if per_channel else 7.0
    return Netlist([
        Input((4, 6, 6), RMP(150), 1.0, bias, Conv(w, (1, 1), (1, 1)), (2, 6, 6)),
        Flatten((144,)),
        dense((5,), 2 * rng.integers(-30, 40, (5, 144)).astype(float), RMP(200)),
    ])


@pytest.fixture
def conv_net() -> Netlist:
    return small_conv_net()


def assert_same_layer(a, b, where: str = "layer") -> None:
    """Same class and every field equal, recursively (projections, synapses, schedules;
    arrays element for element)."""
    assert type(a) is type(b), (where, type(a), type(b))
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same_layer(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), (where, a, b)
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same_layer(x, y, f"{where}[{k}]")
    else:
        assert a == b, (where, a, b)


def needs_shared(*parts: str) -> Path:
    """Path below ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is only on the project's machines)")
    return path
