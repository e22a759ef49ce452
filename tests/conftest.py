"""Shared fixtures: small hand-made netlists and the shared-data location."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"

from neurosim.netlist.schema import CUBA, RMP, Conv, Dense, Flatten, Input, Netlist, Pool  # noqa: E402


def small_conv_net(seed: int = 0, neuron=RMP) -> Netlist:
    """Input(1,6,6) -> conv 3x3 pad 1 (4) -> pool 2 -> flatten -> dense(5); integer mantissas."""
    rng = np.random.default_rng(seed)
    mk = (lambda v: RMP(v)) if neuron is RMP else (lambda v: CUBA(v, iDecay=1024, vDecay=512))
    return Netlist([
        Input((1, 6, 6), mk(100), weight=128.0),
        Conv((4, 6, 6), 2 * rng.integers(-40, 60, (4, 1, 3, 3)).astype(float), mk(120), padding=(1, 1),
             bias=rng.integers(-5, 10, 4).astype(float)),
        Pool((4, 3, 3), np.full((2, 2), 2.0), mk(5)),
        Flatten((36,)),
        Dense((5,), 2 * rng.integers(-60, 60, (5, 36)).astype(float), mk(90), bias=rng.integers(-3, 3, 5).astype(float)),
    ])


@pytest.fixture
def conv_net() -> Netlist:
    return small_conv_net()


def assert_same_layer(a, b) -> None:
    """Same layer type and every field equal (arrays element for element)."""
    assert type(a) is type(b)
    for key, va in vars(a).items():
        vb = getattr(b, key)
        if isinstance(va, np.ndarray):
            np.testing.assert_array_equal(va, vb, err_msg=key)
        else:
            assert va == vb, (key, va, vb)


def needs_shared(*parts: str) -> Path:
    """Path below ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is only on the project's machines)")
    return path
