"""``neurosim convert``: a user's own model file and state_dict to a measured netlist, in one command."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import torch

from neurosim.ann.train import TrainConfig, accuracy, train
from neurosim.data.digits import load_digits_split
from neurosim.netlist import hdf5
from tests.conftest import ROOT

MODEL = textwrap.dedent("""
    import torch.nn as nn
    import torch.nn.functional as F


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding="same")
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(y)) + x)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.block = Block(8)
            self.pool = nn.AvgPool2d(2)
            self.drop = nn.Dropout(0.1)
            self.fc = nn.Linear(8 * 4 * 4, 10)

        def forward(self, x):
            x = self.pool(self.block(self.stem(x)))
            return self.fc(self.drop(x.reshape(x.size(0), -1)))


    class WithMaxPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            return self.pool(F.relu(self.conv(x))).flatten(1)
""")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "neurosim", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_convert_a_users_residual_model_in_one_command(tmp_path):
    (tmp_path / "mymodel.py").write_text(MODEL)
    sys.path.insert(0, str(tmp_path))
    try:
        from mymodel import Net
    finally:
        sys.path.remove(str(tmp_path))
    tr, te = load_digits_split()
    torch.manual_seed(0)
    model = Net()
    train(model, tr.x, tr.y, TrainConfig(epochs=8, batch_size=64, lr=3e-3, seed=0), progress=False)
    ann = accuracy(model, te.x, te.y)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    bn_before = model.block.bn1.running_mean.clone()

    done = _cli("convert", "--model", "mymodel.py:Net", "--weights", "weights.pt", "--dataset", "digits",
                "--out", "out", "--steps", "32", "--lava-samples", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert abs(report["ann_accuracy"] - ann) < 1e-9 and ann > 0.9
    assert report["snn_accuracy"] >= ann - 0.03, (ann, report["accuracy_vs_timesteps"])
    assert report["lava_spike_mismatches"] == {"fixed_pt": 0, "floating_pt": 0}
    assert report["lava_spikes_compared"]["fixed_pt"] > 0
    net = hdf5.load(tmp_path / "out" / "network.net")
    joins = [l for l in net.layers if len(getattr(l, "projections", [])) == 2]
    assert len(joins) == 1 and net.meta["model"] == "mymodel.py:Net"
    assert torch.equal(model.block.bn1.running_mean, bn_before)       # converting did not touch the model

    # the image as a current: the stem conv on the host, its MACs priced (Lava: tests/test_analog_input.py);
    # the hidden biases corrected at T = 32 (tests/test_bias_correction.py)
    done = _cli("convert", "--model", "mymodel.py:Net", "--weights", "weights.pt", "--dataset", "digits",
                "--out", "analog", "--steps", "32", "--lava-samples", "0", "--input-coding", "analog",
                "--bias-correction", "32", "--bias-correction-passes", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    analog = json.loads((tmp_path / "analog" / "report.json").read_text())
    assert analog["snn_accuracy"] >= ann - 0.03, (ann, analog["accuracy_vs_timesteps"])
    assert analog["energy"]["papers45nm"]["snn_terms"]["host_macs"] > 0
    saved = hdf5.load(tmp_path / "analog" / "network.net")
    first = saved.layers[0]
    assert first.synapse is not None and first.sample_shape == (1, 8, 8) and first.shape == (8, 8, 8)
    corrected = [e["layer"] for e in saved.meta["bias_correction"]["layers"]]
    assert saved.meta["bias_correction"]["steps"] == 32 and saved.meta["bias_correction"]["passes"] == 2
    assert corrected and 0 not in corrected and len(corrected) == 2 * len(set(corrected))


def test_convert_errors_are_one_line(tmp_path):
    (tmp_path / "mymodel.py").write_text(MODEL)
    cases = [
        (["--model", "missing.py:Net"], "no such file"),
        (["--model", "mymodel.py:Nope"], "defines no class or function 'Nope'"),
        (["--model", "mymodel.py:Net", "--weights", "none.pt"], "--weights: no such file none.pt"),
        (["--model", "mymodel.py:WithMaxPool"], "MaxPool2d"),
        (["--model", "mymodel.py:Net", "--bias-correction-passes", "2"], "--bias-correction-passes needs --bias-correction"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--model", "mymodel.py:Net", "--device", "cuda"], "--device cuda: no CUDA device"))
    for args, message in cases:
        done = _cli("convert", *args, "--dataset", "digits", "--out", "out", "--lava-samples", "0", cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr[-1500:])
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr[-1500:])
        errors = [l for l in done.stderr.strip().splitlines() if not l.startswith("neurosim: warning:")]
        assert len(errors) == 1, done.stderr
