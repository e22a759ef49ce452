"""A new user's first hour (issue 17): threads, one-line errors, no silent wrong results, options
that do what they say, and the small things (``--version``, ``--quiet``, model specs, ``info``).

Each test failed on the code before the fix. Runs on the embedded digits (seconds each); the
MNIST / Fashion-MNIST check needs ``../shared`` and skips without it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from neurosim.cli import main
from neurosim.convert.rmp import convert
from neurosim.data.dataset import load_dataset
from neurosim.data.digits import load_digits_split
from neurosim.netlist import hdf5
from tests.conftest import ROOT, SHARED

VIEW_MODEL = textwrap.dedent("""
    import torch.nn as nn
    import torch.nn.functional as F
    from helpers import WIDTH          # a sibling module of this file


    class ViewNet(nn.Module):
        def __init__(self, hidden=WIDTH):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 8 * 8, hidden)
            self.out = nn.Linear(hidden, 10)

        def forward(self, x):
            x = F.relu(self.conv(x))
            return self.out(F.relu(self.fc(x.view(x.size(0), -1))))


    def make(hidden=16):
        return ViewNet(hidden)
""")


def cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "neurosim", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_error_line(out: subprocess.CompletedProcess, *fragments: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurosim: error:"), out.stderr[-2000:]
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


@pytest.fixture
def user_model(tmp_path) -> Path:
    """tmp_path/model.py (importing its sibling helpers.py) and tmp_path/weights.pt."""
    (tmp_path / "helpers.py").write_text("WIDTH = 16\n")
    (tmp_path / "model.py").write_text(VIEW_MODEL)
    sys.path.insert(0, str(tmp_path))
    try:
        import model as m
        torch.manual_seed(0)
        net = m.ViewNet()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("model", None)
        sys.modules.pop("helpers", None)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    return tmp_path


@pytest.fixture
def digits_net(tmp_path) -> Path:
    tr, _ = load_digits_split()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    net = convert(model, tr.x, (1, 8, 8))
    net.meta["dataset"] = "digits"
    (tmp_path / "ref").mkdir()
    return hdf5.save(net, tmp_path / "ref" / "lin.net")


# --- 1. threads ---------------------------------------------------------------------------

def test_import_makes_idle_openmp_threads_sleep():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import neurosim, os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "PASSIVE", out.stderr[-1000:]


def test_threads_option_sets_torch_and_kernel_threads(digits_net):
    from neurosim.sim.kernels import _threads
    before = torch.get_num_threads()
    try:
        assert main(["info", str(digits_net), "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1 and _threads() == 1
    finally:
        torch.set_num_threads(before)
    one_error_line(cli("info", str(digits_net), "--threads", "0"), "--threads")


def test_threads_before_torch_is_loaded(digits_net):
    code = ("import sys; from neurosim.cli import main; main(['info', sys.argv[1], '--threads', '1']); "
            "assert 'torch' not in sys.modules; import torch; print(torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code, str(digits_net)], cwd=ROOT, capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "1"           # info loads no torch; torch then takes the count


# --- 4. tracebacks where the README promises one line --------------------------------------

def test_weights_that_are_not_a_state_dict(user_model):
    sys.path.insert(0, str(user_model))
    try:
        import model as m
        torch.save(m.ViewNet(), user_model / "whole.pt")            # a pickled model, not a state_dict
    finally:
        sys.path.remove(str(user_model))
        sys.modules.pop("model", None)
        sys.modules.pop("helpers", None)
    (user_model / "junk.pt").write_bytes(b"this is not a torch file at all")
    base = ["convert", "--model", "model.py:ViewNet", "--dataset", "digits", "--out", "out", "--lava-samples", "0"]
    one_error_line(cli(*base, "--weights", "whole.pt", cwd=user_model), "pickled", "state_dict()")
    one_error_line(cli(*base, "--weights", "junk.pt", cwd=user_model), "junk.pt", "torch.save")
    state = torch.load(user_model / "weights.pt")
    state["fc.weight"] = state["fc.weight"][:, :10]
    del state["out.bias"]
    torch.save(state, user_model / "bad.pt")
    one_error_line(cli(*base, "--weights", "bad.pt", cwd=user_model), "missing keys out.bias",
                   "fc.weight (16, 10) in the file, (16, 256) in the model")


def test_model_that_does_not_take_the_data_set(user_model):
    out = cli("convert", "--model", "model.py:ViewNet", "--weights", "weights.pt", "--dataset", "cifar10",
              "--data-dir", str(SHARED / "datasets"), "--out", "out", cwd=user_model)
    if not (SHARED / "datasets" / "cifar10-jpg.zip").exists():
        pytest.skip("../shared/datasets/cifar10-jpg.zip absent")
    one_error_line(out, "does not take --dataset cifar10 images of shape (3, 32, 32)")


# --- 5 + 12. digits for view() models; sibling imports; module:callable with --model-args ----

def test_view_model_from_a_file_importing_its_sibling_converts_on_digits(user_model):
    tr, _ = load_dataset("digits")
    assert tr.x.strides == (256, 256, 32, 4)
    out = cli("convert", "--model", "model.py:make", "--model-args", '{"hidden": 16}', "--weights", "weights.pt",
              "--dataset", "digits", "--out", "out", "--steps", "8", "--limit", "20", "--lava-samples", "0",
              cwd=user_model)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((user_model / "out" / "report.json").read_text())
    assert report["test_samples"] == 20
    assert ("--rule channel --v-init-half" in out.stdout) == (report["operating_point"]["timesteps"] is None)
    assert "\r" not in out.stderr            # not a terminal: no progress-bar redraws in the log


def test_model_from_an_installed_module(tmp_path):
    out = cli("convert", "--model", "torch.nn:Linear", "--model-args", '{"in_features": 64, "out_features": 10}',
              "--dataset", "digits", "--out", str(tmp_path), "--lava-samples", "0", "--limit", "5")
    # digits are (1, 8, 8): a bare Linear(64) cannot take them, and says so in one line
    one_error_line(out, "does not take --dataset digits images of shape (1, 8, 8)")
    out = cli("convert", "--model", "torch.nn:Linear", "--model-args", '[64, 10]', "--dataset", "digits")
    one_error_line(out, "--model-args must be a JSON object")


# --- 6. silent wrong results ---------------------------------------------------------------

def test_convert_without_weights_warns(user_model):
    out = cli("convert", "--model", "model.py:ViewNet", "--dataset", "digits", "--out", "out", "--steps", "4",
              "--limit", "5", "--lava-samples", "0", cwd=user_model)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "neurosim: warning: no weights given" in out.stderr


def test_counts_of_zero_are_refused(user_model, digits_net):
    for args in (["--limit", "0"], ["--calib-samples", "0"]):
        one_error_line(cli("convert", "--model", "model.py:ViewNet", "--dataset", "digits", *args, cwd=user_model),
                       args[0])
    np.save(user_model / "empty.npy", np.zeros((0, 1, 8, 8), np.float32))
    one_error_line(cli("run", str(digits_net), "--input", str(user_model / "empty.npy"), "--steps", "4"),
                   "no samples")


def test_lava_samples_alone_turns_the_lava_check_on(digits_net, monkeypatch):
    import neurosim.evaluate as ev
    seen = {}
    real = ev.evaluate

    def spy(*args, **kw):
        seen["lava_samples"] = kw.get("lava_samples")
        return real(*args, **{**kw, "lava_samples": 0})
    monkeypatch.setattr(ev, "evaluate", spy)
    out = digits_net.parent.parent / "o"
    assert main(["run", str(digits_net), "--steps", "4", "--limit", "5", "--lava-samples", "3",
                 "--out", str(out), "--quiet"]) == 0
    assert seen["lava_samples"] == 3
    from neurosim import progress
    assert not progress.shown(True)          # --quiet: no bar, even on a terminal
    progress.set_enabled(None)
    assert main(["run", str(digits_net), "--steps", "4", "--limit", "5", "--out", str(out), "--quiet"]) == 0
    progress.set_enabled(None)
    assert seen["lava_samples"] == 0


@pytest.mark.skipif(not (SHARED / "datasets" / "fashion-mnist").is_dir(), reason="../shared/datasets absent")
def test_fashion_files_read_as_mnist_are_refused():
    from neurosim.errors import NeurosimError
    with pytest.raises(NeurosimError, match="pass --dataset fashion-mnist"):
        load_dataset("mnist", str(SHARED / "datasets" / "fashion-mnist"))
    with pytest.raises(NeurosimError, match="pass --dataset mnist"):
        load_dataset("fashion-mnist", str(SHARED / "datasets" / "mnist"))


# --- 10. export honours its options ----------------------------------------------------------

def test_export_passes_conversion_options(tmp_path):
    out = tmp_path / "job"
    assert main(["export", "--out", str(out), "--epochs", "1", "--steps", "8", "--reset", "hard", "--alpha", "2",
                 "--no-fold-pool", "--limit", "10", "--calib-samples", "5", "--no-bias-onset", "--lava-samples", "0",
                 "--quiet"]) == 0
    net = hdf5.load(out / "network.net")
    meta = net.meta
    assert meta["reset"] == "hard" and meta["alpha"] == 2 and meta["fold_pool"] is False
    assert meta["align_bias"] is False and meta["calibration_samples"] == 5
    assert json.loads((out / "report.json").read_text())["test_samples"] == 10
    assert any(l.type_name == "pool" for l in net.layers)
    one_error_line(cli("export", "--out", str(out), "--data-dir", "somewhere"), "--data-dir", "--model")


# --- 12. smaller things ----------------------------------------------------------------------

def test_version_and_short_argument_errors():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("neurosim ")
    one_error_line(cli("run"), "netlist", "neurosim run --help")
    one_error_line(cli("convert", "--reset", "sideways"), "--reset")


def test_info_shows_every_neuron_parameter_and_synapse_geometry(tmp_path, conv_net):
    path = hdf5.save(conv_net, tmp_path / "c.net")
    out = cli("info", str(path))
    assert out.returncode == 0
    assert "vDecay=" in out.stdout and "vInit=" in out.stdout and "padding=(1, 1)" in out.stdout
    assert "input current = 128 * x + 0" in out.stdout


def test_run_writes_its_report_under_runs_not_next_to_the_netlist(digits_net, tmp_path):
    out = cli("run", str(digits_net), "--steps", "4", "--limit", "5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "runs" / "ref" / "lin-report.json").is_file()
    assert not any(p.name.endswith("-report.json") for p in digits_net.parent.iterdir())


def test_python_convert_takes_a_dataloader():
    from torch.utils.data import DataLoader, TensorDataset
    tr, _ = load_digits_split()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    loader = DataLoader(TensorDataset(torch.as_tensor(tr.x), torch.as_tensor(tr.y)), batch_size=100)
    a, b = convert(model, loader, (1, 8, 8), progress=False), convert(model, tr.x, (1, 8, 8), progress=False)
    assert np.array_equal(a.layers[-1].projections[0].synapse.weight, b.layers[-1].projections[0].synapse.weight)
    assert a.meta["thresholds"] == b.meta["thresholds"]
