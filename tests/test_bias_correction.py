"""Bias correction (SNN calibration, Li et al. 2021): a converted net's rates brought to the ANN's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurosim.ann.train import TrainConfig, train
from neurosim.convert.bias_correction import snn_rates
from neurosim.convert.rmp import convert
from neurosim.data.digits import load_digits_split
from neurosim.errors import NeurosimError
from neurosim.netlist.schema import Population

T = 4


@pytest.fixture(scope="module")
def deep():
    tr, te = load_digits_split()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 16, 10))
    train(model, tr.x, tr.y, TrainConfig(epochs=8, lr=5e-3), progress=False)
    return model.eval(), tr, te


def _ann_rates(model: nn.Module, x: np.ndarray, lams: list[float]) -> list[np.ndarray]:
    """Per channel, mean clip(a / lambda, 0, 1) after each ReLU of ``model``."""
    out, h = [], torch.as_tensor(x)
    with torch.no_grad():
        for m in model:
            h = m(h)
            if isinstance(m, nn.ReLU):
                r = (h.double() / lams[len(out)]).clamp(0, 1)
                out.append(r.transpose(0, 1).reshape(r.shape[1], -1).mean(1).numpy())
    return out


def _bias(layer) -> np.ndarray:
    """A population's bias, constant or, after the bias onset, its per-step schedule's."""
    return np.asarray(layer.bias if layer.schedule is None else layer.schedule.bias)


@pytest.mark.parametrize("precision", ["fixed", "float"])
def test_corrected_rates_match_the_ann_and_only_hidden_biases_move(deep, precision):
    model, tr, _ = deep
    x = tr.x[:256]
    kw = dict(rule="percentile", percentile=99.9, v_init_half=True, input_coding="analog", precision=precision,
              progress=False)
    plain = convert(model, tr.x, (1, 8, 8), **kw)
    fixed = convert(model, tr.x, (1, 8, 8), bias_correction=T, bias_correction_samples=256, **kw)
    mode = "float" if precision == "float" else "fixed"
    # layers: 0 the first conv on the host (analog input), 1 the second conv, 2 flatten, 3 the readout
    assert [type(l).__name__ for l in fixed.layers] == ["Input", "Population", "Flatten", "Population"]
    meta = fixed.meta["bias_correction"]
    assert meta["steps"] == T and meta["samples"] == 256 and [e["layer"] for e in meta["layers"]] == [1]
    np.testing.assert_array_equal(_bias(fixed.layers[3]), _bias(plain.layers[3]))    # the readout's bias stays
    np.testing.assert_array_equal(fixed.layers[0].bias, plain.layers[0].bias)        # so does the host's
    assert not np.array_equal(_bias(fixed.layers[1]), _bias(plain.layers[1]))
    lams = plain.meta["thresholds"][:2]                 # the percentile rule: one threshold per layer
    want = _ann_rates(model, x, lams)[1]
    before = np.abs(want - snn_rates(plain, 1, x, T, mode))
    after = np.abs(want - snn_rates(fixed, 1, x, T, mode))
    assert meta["layers"][0]["mean_abs_rate_error"] == pytest.approx(before.mean(), rel=1e-6, abs=1e-9)
    assert after.mean() < 0.5 * before.mean(), (before, after)


def test_bias_correction_steps_are_checked(deep):
    model, tr, _ = deep
    for bad in (0, -2, 2.5, "8", True):
        with pytest.raises(NeurosimError, match="bias_correction must be a number of steps >= 1"):
            convert(model, tr.x[:64], (1, 8, 8), bias_correction=bad, progress=False)


def test_every_hidden_population_of_a_spike_input_net_is_corrected_in_order(deep):
    model, tr, _ = deep
    net = convert(model, tr.x, (1, 8, 8), rule="percentile", percentile=99.9, v_init_half=True,
                  bias_correction=T, bias_correction_samples=64, progress=False)
    hidden = [k for k, l in enumerate(net.layers) if isinstance(l, Population) and k != net.output_layer]
    assert [e["layer"] for e in net.meta["bias_correction"]["layers"]] == hidden == [1, 2]


def test_a_second_pass_corrects_what_the_first_left(deep):
    model, tr, _ = deep
    x = tr.x[:256]
    kw = dict(rule="percentile", percentile=99.9, v_init_half=True, input_coding="analog", progress=False,
              bias_correction=T, bias_correction_samples=256)
    one = convert(model, tr.x, (1, 8, 8), **kw)
    two = convert(model, tr.x, (1, 8, 8), bias_correction_passes=2, **kw)
    log1, log2 = one.meta["bias_correction"]["layers"], two.meta["bias_correction"]["layers"]
    assert two.meta["bias_correction"]["passes"] == 2
    assert [(e["layer"], e["pass"]) for e in log2] == [(1, 1), (1, 2)]
    assert log2[0] == log1[0]                        # the first pass is the one-pass correction
    want = _ann_rates(model, x, one.meta["thresholds"][:2])[1]
    left = np.abs(want - snn_rates(one, 1, x, T, "fixed")).mean()
    assert log2[1]["mean_abs_rate_error"] == pytest.approx(left, rel=1e-6, abs=1e-9)   # measured on that net
    after = np.abs(want - snn_rates(two, 1, x, T, "fixed")).mean()
    assert after < 0.7 * left, (left, after)         # measured: 0.0021 -> 0.0009


def test_passes_are_checked(deep):
    model, tr, _ = deep
    for bad in (0, -1, 1.5, True):
        with pytest.raises(NeurosimError, match="bias_correction_passes must be an integer >= 1"):
            convert(model, tr.x[:64], (1, 8, 8), bias_correction=T, bias_correction_passes=bad, progress=False)
    with pytest.raises(NeurosimError, match="bias_correction_passes needs bias_correction"):
        convert(model, tr.x[:64], (1, 8, 8), bias_correction_passes=2, progress=False)
