"""The activity penalty of ANN training (:class:`neurosim.ann.train.ActivityL1`) and the main
job's recipe, which uses it: the penalty lowers the ReLU outputs, counts training forwards
only, needs ``nn.ReLU`` modules; a main-job checkpoint of another recipe is refused in one
line until ``--retrain``."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.ann.train import ActivityL1, TrainConfig, load_checkpoint, recipe, train
from neurosim.architectures import digits_cnn
from neurosim.data.dataset import load_dataset
from neurosim.errors import NeurosimError
from neurosim.workflow import DIGITS_RECIPE
from tests.test_first_hour import cli, one_error_line


def _mean_relu_output(model: nn.Module, x: torch.Tensor) -> float:
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o.mean().item()))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return sum(outs) / len(outs)


def test_activity_penalty_lowers_the_relu_outputs():
    train_split, test_split = load_dataset("digits")
    cfg = TrainConfig(epochs=4, batch_size=64, lr=2e-3, weight_decay=1e-4, seed=0)
    means = {}
    for weight in (0.0, 1e-3):
        torch.manual_seed(0)
        model = train(digits_cnn.build(), train_split.x, train_split.y, replace(cfg, activity_l1=weight),
                      progress=False)
        assert not any(m._forward_hooks for m in model.modules())        # the penalty's hooks are gone
        means[weight] = _mean_relu_output(model, torch.as_tensor(test_split.x))
    assert means[1e-3] < 0.7 * means[0.0], means


def test_activity_penalty_counts_training_forwards_only_and_needs_relu_modules():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
    penalty = ActivityL1(model, 0.5)
    x = torch.ones(2, 4)
    model.eval()(x)
    assert penalty.take(2).item() == 0.0                 # an evaluation between epochs
    model.train()(x)
    assert penalty.take(2).item() == pytest.approx(0.5 * 2 * 3 * 4 / 2)      # 0.5 x sum |a| / batch
    penalty.remove()

    class Functional(nn.Module):
        def forward(self, x):
            return F.relu(x)
    with pytest.raises(NeurosimError, match="Functional has none"):
        ActivityL1(Functional(), 1e-3)
    with pytest.raises(NeurosimError, match="activity_l1 must be"):
        train(model, x.numpy(), torch.zeros(2, dtype=torch.long).numpy(), TrainConfig(epochs=1, activity_l1=-1.0),
              progress=False)


def test_main_job_refuses_a_checkpoint_of_another_recipe(tmp_path):
    out = tmp_path / "job"
    common = ["--out", str(out), "--epochs", "1", "--limit", "20", "--lava-samples", "0", "--quiet"]
    done = cli("export", *common, "--activity-l1", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(out / "ann.pt")["recipe"] == recipe(replace(DIGITS_RECIPE, activity_l1=0.0))
    line = one_error_line(cli("export", *common), str(out / "ann.pt"), "activity_l1 (0.0, now 0.0003)", "--retrain")
    assert "Traceback" not in line
    assert (out / "ann.pt").exists()                                   # nothing written is lost
    done = cli("export", *common, "--retrain")
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(out / "ann.pt")["recipe"] == recipe(DIGITS_RECIPE)
    assert json.loads((out / "report.json").read_text())["test_samples"] == 20
    one_error_line(cli("export", "--activity-l1", "-1"), "--activity-l1")
