"""Command line: help texts, a netlist run, and one-line errors with exit code 2."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from neurosim.convert.rmp import convert
from neurosim.data.digits import load_digits_split
from neurosim.netlist import hdf5
from tests.conftest import ROOT


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurosim", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_subcommands():
    out = cli("--help")
    assert out.returncode == 0
    for cmd in ("export", "run", "info"):
        assert cmd in out.stdout


def test_export_script_documents_its_options():
    out = subprocess.run([sys.executable, "deploy/export.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0
    for opt in ("--out", "--steps", "--epochs", "--rule", "--lava-samples", "--retrain"):
        assert opt in out.stdout


def test_missing_netlist_is_one_clear_line(tmp_path):
    out = cli("run", str(tmp_path / "none.net"))
    assert out.returncode == 2
    assert "neurosim: error:" in out.stderr and "no such file" in out.stderr
    assert "Traceback" not in out.stderr


def test_not_hdf5_is_one_clear_line(tmp_path):
    bad = tmp_path / "x.net"
    bad.write_bytes(b"\x00garbage" * 10)
    out = cli("info", str(bad))
    assert out.returncode == 2 and "not a readable HDF5 file" in out.stderr and "Traceback" not in out.stderr


def test_bad_argument_is_refused():
    out = cli("export", "--steps", "many")
    assert out.returncode == 2 and "expected a whole number" in out.stderr


def test_run_and_info_on_a_converted_netlist(tmp_path):
    tr, _ = load_digits_split()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    net = convert(model, tr.x, (1, 8, 8))
    net.meta["dataset"] = "digits"
    path = hdf5.save(net, tmp_path / "lin.net")
    out = cli("info", str(path))
    assert out.returncode == 0 and "dense" in out.stdout and "RMP" in out.stdout
    out = cli("run", str(path), "--steps", "16", "--limit", "40", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "SNN accuracy (T=16" in out.stdout
    report = tmp_path / "lin-report.json"
    assert report.exists() and (tmp_path / "lin-report.png").exists()
    import json
    data = json.loads(report.read_text())
    for key in ("ann_accuracy", "snn_accuracy", "timesteps", "lava_samples", "lava_spike_mismatches",
                "synops_per_sample", "ann_macs_per_sample", "energy"):
        assert key in data
    assert data["test_samples"] == 40 and np.isfinite(data["synops_per_sample"])


def test_run_with_lava_checks_every_layer(tmp_path):
    tr, _ = load_digits_split()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(64, 10))
    net = convert(model, tr.x, (1, 8, 8))
    net.meta["dataset"] = "digits"
    path = hdf5.save(net, tmp_path / "small.net")
    out = cli("run", str(path), "--steps", "12", "--limit", "30", "--lava", "--lava-samples", "2",
              "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    for tag in ("fixed_pt", "floating_pt"):
        line = next(l for l in out.stdout.splitlines() if l.startswith(f"Lava {tag} "))
        assert "0 spike and 0 voltage mismatches" in line and "on 2 samples" in line, line
    import json
    data = json.loads((tmp_path / "small-report.json").read_text())
    assert data["lava_samples"] == 2 and data["lava_spike_mismatches"] == {"fixed_pt": 0, "floating_pt": 0}
    assert data["lava_spikes_compared"]["fixed_pt"] > 0


def test_steps_out_of_range_are_refused():
    for bad in ("0", "65537"):
        out = cli("run", "whatever.net", "--steps", bad)
        assert out.returncode == 2 and "time steps must be between 1 and 65536" in out.stderr
