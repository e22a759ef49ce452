"""QCFS conversion converges (issue 19): the SNN of a QCFS-trained net gains accuracy with T,
toward its ANN's, and converting a QCFS model whose SNN cannot converge to it warns.

The SNN of a QCFS model tends, as T grows, to the model with every QCFS replaced by
``clip(x, 0, lambda)`` (its limit for L -> infinity; :func:`neurosim.convert.rmp.qcfs_limit_agreement`).
Trained from the reference code's lambda = 8 with Adam, a net keeps lambda near 8 while its
BatchNorm outputs are O(1); it learns to rely on QCFS zeroing every input below lambda / 2L, which
the SNN stops doing as T grows, and its accuracy falls with T (docs/conversion.md, QCFS).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurosim.ann.qcfs import DEFAULT_THRESHOLD, INIT_PERCENTILE, QCFS, replace_relu, thresholds
from neurosim.ann.train import TrainConfig, accuracy, train
from neurosim.convert.rmp import QCFS_LIMIT_AGREEMENT, convert
from neurosim.data.digits import load_digits_split
from neurosim.evaluate import papers_depth
from neurosim.sim.simulator import Simulator

SHAPE = (1, 8, 8)
#: the papers' T (every layer integrates T steps: the run lasts T + D, D the readout's depth)
STEPS = (8, 16, 32, 64, 128)
#: two of the 360 test images
TOLERANCE = 2 / 360


def _cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10))


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


@pytest.fixture(scope="module")
def qcfs_cnn(digits) -> nn.Module:
    """The default QCFS training (thresholds set from data), Adam as the MNIST recipe: ~10 s."""
    tr, _ = digits
    torch.manual_seed(0)
    return train(replace_relu(_cnn(), levels=4), tr.x, tr.y, TrainConfig(epochs=5, lr=2e-3, batch_size=64),
                 progress=False)


def test_qcfs_snn_accuracy_rises_with_t_toward_the_ann(qcfs_cnn, digits):
    tr, te = digits
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="this QCFS model")   # a convergent model converts without it
        net = convert(qcfs_cnn, tr.x, SHAPE, progress=False)
    assert net.meta["qcfs_limit_agreement"] >= QCFS_LIMIT_AGREEMENT
    depth = papers_depth(net)
    acc = Simulator(net, "fixed").run(te.x, STEPS[-1] + depth, readout_steps=[t + depth for t in STEPS],
                                      per_neuron=False).accuracy_at(te.y)
    curve = [acc[t + depth] for t in STEPS]
    ann = accuracy(qcfs_cnn, te.x, te.y)
    assert ann > 0.95, ann
    falls = [(t, a, b) for t, a, b in zip(STEPS[1:], curve, curve[1:]) if b < a - TOLERANCE]
    assert not falls, f"accuracy falls with T (T, before, after): {falls}; curve {dict(zip(STEPS, curve))}"
    assert curve[-1] >= ann - TOLERANCE, (curve, ann)
    assert curve[0] >= ann - 0.02, (curve, ann)             # within 2 points of the ANN at T = 8


def test_qcfs_thresholds_start_from_the_first_training_batch():
    torch.manual_seed(0)
    act = QCFS(levels=4)
    x = torch.randn(4096)
    act.eval()(x)                                          # evaluation does not set lambda
    assert act.from_data and float(act.threshold) == DEFAULT_THRESHOLD
    act.train()(x)
    want = float(np.percentile(x[x > 0].numpy(), INIT_PERCENTILE))
    assert float(act.threshold) == pytest.approx(want) and not act.from_data
    act(3 * x)                                             # only the first batch
    assert float(act.threshold) == pytest.approx(want)
    assert not QCFS(levels=4, threshold=DEFAULT_THRESHOLD).from_data


def test_a_loaded_threshold_is_not_overwritten_by_the_first_batch():
    src = replace_relu(_cnn(), levels=4, threshold=1.5)
    model = replace_relu(_cnn(), levels=4)
    model.load_state_dict(src.state_dict())               # e.g. training resumed from a checkpoint
    model.train()(torch.rand(8, *SHAPE))
    assert set(thresholds(model).values()) == {1.5}


def _tiny(lam: float) -> nn.Sequential:
    """x -> QCFS(x) with lambda ``lam``, L = 4 -> (h, 0.05): class 0 iff QCFS passes x."""
    model = nn.Sequential(nn.Linear(1, 1), QCFS(4, lam), nn.Linear(1, 2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0], [0.0]]))
        model[2].bias.copy_(torch.tensor([0.0, 0.05]))
    return model


def test_converting_a_model_its_snn_cannot_converge_to_warns():
    x = np.linspace(0.2, 0.9, 64, dtype=np.float32)[:, None]
    # lambda = 8: QCFS zeroes every x < lambda / 2L = 1, its limit clip(x, 0, 8) does not
    with pytest.warns(UserWarning, match=r"put 0\.0 % of 64 calibration samples in the same class"):
        net = convert(_tiny(8.0), x, (1,), progress=False)
    assert net.meta["qcfs_limit_agreement"] == 0.0
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="this QCFS model")
        net = convert(_tiny(1.0), x, (1,), progress=False)          # lambda / 2L = 0.125 < 0.2
    assert net.meta["qcfs_limit_agreement"] == 1.0
    plain = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2))
    assert "qcfs_limit_agreement" not in convert(plain, x, (1,), progress=False).meta
