"""Training resumes from its checkpoint with the same result as an uninterrupted run."""
from __future__ import annotations

import torch
import torch.nn as nn

from neurosim.ann.train import TrainConfig, load_checkpoint, train
from neurosim.data.digits import load_digits_split


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_resume_equals_uninterrupted(tmp_path):
    tr, _ = load_digits_split()
    cfg = TrainConfig(epochs=4, lr=1e-2)
    straight = train(_model(), tr.x, tr.y, cfg, progress=False)
    ckpt = tmp_path / "ann.pt"
    train(_model(), tr.x, tr.y, TrainConfig(epochs=2, lr=1e-2), checkpoint=ckpt, progress=False)
    assert int(load_checkpoint(ckpt)["epoch"]) == 2
    resumed = train(_model(), tr.x, tr.y, cfg, checkpoint=ckpt, progress=False)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
