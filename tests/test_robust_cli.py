"""Every user error at the command line: exit code 2 and one line ``neurosim: error: ...``.

Bad netlists (truncated, NaN, external links, bad metadata, a folder), bad data sets and
bad checkpoints given to ``neurosim info|run|export`` and ``deploy/export.py``; nothing
may print a traceback from h5py, torch or Lava, and nothing may hang.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neurosim.netlist import hdf5
from neurosim.netlist import Flatten, Input, Netlist, RMP, dense
from tests.conftest import ROOT


def neurosim(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurosim", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(out: subprocess.CompletedProcess, *fragments: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = [l for l in out.stderr.replace("\r", "\n").splitlines() if l.startswith("neurosim: error:")]
    assert len(lines) == 1, out.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def digits_net(path: Path) -> Path:
    """A tiny valid netlist for the 8x8 digits (input -> flatten -> dense)."""
    rng = np.random.default_rng(0)
    net = Netlist([Input((1, 8, 8), RMP(100), weight=128.0), Flatten((64,)),
                   dense((10,), 2 * rng.integers(-50, 50, (10, 64)).astype(float), RMP(200))],
                  meta={"dataset": "digits", "timesteps": 8})
    return hdf5.save(net, path)


def edited(path: Path, edit) -> Path:
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _replace(key, value):
    def edit(f):
        del f[key]
        f[key] = value
    return edit


def truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:3000])
    return path


BAD_NETLISTS = {
    "truncated": (truncated, "not a readable HDF5 file"),
    "nan-weight": (lambda p: edited(p, _replace("layer/2/weight", np.full((10, 64), np.nan))),
                   "layer 2: key 'weight': contains NaN"),
    "wrong-dtype": (lambda p: edited(p, _replace("layer/2/weight", np.full((10, 64), b"x"))),
                    "layer 2: key 'weight': expected numbers"),
    "huge-shape": (lambda p: edited(p, _replace("layer/0/shape", np.array([1 << 40, 1 << 40, 1]))),
                   "layer 0: key 'shape':"),
    "meta-timesteps-text": (lambda p: edited(p, _replace("neurosim/meta", b'{"timesteps": "abc"}')),
                            "key 'neurosim/meta': metadata 'timesteps'"),
    "external-link": (lambda p: edited(p, _replace("layer/2", h5py.ExternalLink("/dev/zero", "/x"))),
                      "layer 2: an external link"),
    "group-for-dataset": (lambda p: edited(p, lambda f: (f.__delitem__("layer/1/shape"),
                                                         f.create_group("layer/1/shape"))),
                          "layer 1: key 'shape': expected a dataset, found a group"),
}


@pytest.mark.parametrize("case", sorted(BAD_NETLISTS))
@pytest.mark.parametrize("command", ["info", "run"])
def test_bad_netlist_is_one_line_exit_2(tmp_path, case, command):
    make, message = BAD_NETLISTS[case]
    path = make(digits_net(tmp_path / f"{case}.net"))
    out = neurosim(command, str(path), *(["--limit", "5"] if command == "run" else []))
    assert_one_line_error(out, str(path), message)


def test_netlist_path_that_is_a_folder_or_fifo(tmp_path):
    assert_one_line_error(neurosim("info", str(tmp_path)), "not a file")
    fifo = tmp_path / "pipe.net"
    os.mkfifo(fifo)
    assert_one_line_error(neurosim("run", str(fifo), timeout=60), "not a file")


def test_netlist_for_another_input_shape(tmp_path):
    """A valid netlist run on a data set of another shape (a tiny CIFAR zip made here)."""
    from PIL import Image

    zpath = tmp_path / "cifar.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for split in ("train", "test"):
            buf = io.BytesIO()
            Image.new("RGB", (32, 32), (10, 20, 30)).save(buf, format="PNG")
            zf.writestr(f"{split}/cat/0000.png", buf.getvalue())
    net = digits_net(tmp_path / "d.net")
    assert_one_line_error(neurosim("run", str(net), "--dataset", "cifar10", "--data-dir", str(zpath)),
                          "expects (1, 8, 8)")
    (tmp_path / "broken.zip").write_bytes(zpath.read_bytes()[:100])
    assert_one_line_error(neurosim("run", str(net), "--dataset", "cifar10", "--data-dir",
                                   str(tmp_path / "broken.zip")), "broken.zip")
    assert_one_line_error(neurosim("run", str(net), "--dataset", "imagenet"), "unknown data set 'imagenet'")
    assert_one_line_error(neurosim("run", str(net), "--dataset", "mnist", "--data-dir", str(tmp_path / "no")),
                          "data folder for 'mnist' not found")


@pytest.mark.parametrize("content, message", [
    (b"not a checkpoint", "not a readable neurosim checkpoint"),
    (None, "not a readable neurosim checkpoint"),            # a pickle that would run code
])
def test_bad_checkpoint_in_export_folder(tmp_path, content, message):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    ckpt = out_dir / "ann.pt"
    marker = tmp_path / "pwned"
    if content is None:
        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))
        torch.save({"model": {}, "epoch": torch.tensor(1), "evil": Evil()}, ckpt)
    else:
        ckpt.write_bytes(content)
    out = subprocess.run([sys.executable, "deploy/export.py", "--out", str(out_dir), "--epochs", "1",
                          "--lava-samples", "0"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert_one_line_error(out, str(ckpt), message)
    assert not marker.exists()


def test_checkpoint_of_another_model(tmp_path):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    model = torch.nn.Linear(3, 2)
    from neurosim.ann.train import save_checkpoint
    save_checkpoint(out_dir / "ann.pt", model, torch.optim.Adam(model.parameters()), 1)
    out = neurosim("export", "--out", str(out_dir), "--epochs", "2", "--lava-samples", "0")
    assert_one_line_error(out, "does not fit this model")


def test_output_folder_that_is_a_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = neurosim("export", "--out", str(blocker), "--epochs", "1", "--lava-samples", "0")
    assert_one_line_error(out, str(blocker))
