"""``--device`` (issue 19): names, ``auto``, the one-line error without a GPU, the recipes' exit
code, calibration on a device. Every test runs on the CPU."""
from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest
import torch

from neurosim.device import device_arg, resolve_device, to_cpu
from neurosim.errors import NeurosimError
from tests.conftest import ROOT

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")


def test_names_are_checked_without_torch():
    assert [device_arg(t) for t in ("cpu", " CUDA ", "cuda:1", "auto")] == ["cpu", "cuda", "cuda:1", "auto"]
    for bad in ("gpu", "cuda:", "cuda:x", "mps", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="expected cpu, cuda, cuda:N or auto"):
            device_arg(bad)
    code = "import sys, neurosim.device, neurosim.cli; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_auto_is_the_gpu_if_there_is_one_else_the_cpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device() == resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(NeurosimError, match="--device: expected cpu, cuda, cuda:N or auto, got 'gpu'"):
        resolve_device("gpu")


@no_gpu
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_one_clear_error(name):
    with pytest.raises(NeurosimError) as exc:
        resolve_device(name)
    msg = str(exc.value)
    assert msg.startswith(f"--device {name}: no CUDA device (torch {torch.__version__.split('+')[0]}, ")
    assert msg.endswith("use --device cpu or auto") and "\n" not in msg
    assert ("CPU build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build") in msg


def test_to_cpu_keeps_cpu_tensors_and_the_structure():
    t = torch.ones(2)
    tree = {"a": t, "b": [t, (t, 3)], "c": "x"}
    out = to_cpu(tree)
    assert out["a"] is t and out["b"][1][0] is t and out["b"][1][1] == 3 and out["c"] == "x"
    assert isinstance(out["b"], list) and isinstance(out["b"][1], tuple)


@no_gpu
def test_recipe_device_cuda_without_a_gpu_exits_2_before_any_work(tmp_path, capsys):
    from models import mnist_cnn

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        mnist_cnn.main(["--device", "cuda", "--epochs", "1", "--limit", "64", "--out", str(out), "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m models.mnist_cnn: error: --device cuda: no CUDA device") and "\n" not in err
    assert not out.exists()                               # refused before the data or the folder
    with pytest.raises(SystemExit) as exc:
        mnist_cnn.main(["--device", "gpu", "--out", str(out)])
    assert exc.value.code == 2 and "expected cpu, cuda, cuda:N or auto" in capsys.readouterr().err


def test_calibration_on_the_cpu_device_is_the_default():
    from neurosim.convert.threshold_balancing import stream

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4, 3, 3)).astype(np.float32)

    def forward(xb: torch.Tensor) -> dict[int, torch.Tensor]:
        return {0: torch.relu(xb), 1: torch.relu(xb.flatten(1) @ torch.ones(36, 5, device=xb.device))}

    for rule in ("max", "percentile", "channel"):
        rules = {0: rule, 1: rule}
        default = stream(forward, x, rules, batch_size=64, progress=False)
        on_cpu = stream(forward, x, rules, batch_size=64, progress=False, device="cpu")
        for k in rules:
            np.testing.assert_array_equal(default[k], on_cpu[k])
    if not torch.cuda.is_available():
        with pytest.raises(NeurosimError, match="no CUDA device"):
            stream(forward, x, {0: "max"}, progress=False, device="cuda")


def test_simulator_float_maps_on_a_device_give_the_cpus_currents():
    """The simulator's float mode computes its synaptic maps on ``device`` (here the offload
    path run on the CPU: the dense torch operation, no event kernels) with the CPU's currents;
    fixed point stays CPU code."""
    from neurosim.netlist.synapses import Conv, Dense
    from neurosim.sim.simulator import Simulator
    from neurosim.sim.synapse import Synapse
    from tests.test_lava_batched import _samples, feature_net

    rng = np.random.default_rng(1)
    for kind, shape in ((Conv(rng.integers(-4, 5, (6, 3, 3, 3)).astype(float), padding=(1, 1)), (3, 8, 8)),
                        (Dense(rng.normal(size=(40, 50))), (50,))):
        s = torch.as_tensor(rng.random((7, *shape)) < 0.1, dtype=torch.float32)
        here, there = Synapse(kind, shape, False), Synapse(kind, shape, False, torch.device("cpu"))
        assert there.device is not None and not there.fills_out
        torch.testing.assert_close(there(s, spikes=int(s.sum())), here(s, spikes=int(s.sum())), rtol=1e-12, atol=0)
    net = feature_net()
    assert Simulator(net, "float", device="cpu").run(_samples(3), 6).readout.shape == (3, 5)
    with pytest.raises(NeurosimError, match=r"^--device cuda: "):
        Simulator(net, "fixed", device="cuda")


@no_gpu
def test_run_device_is_checked_before_the_netlist_is_read(tmp_path, capsys):
    from neurosim.cli import main

    missing = str(tmp_path / "none.net")
    for mode in ("fixed", "float"):
        assert main(["run", missing, "--mode", mode, "--device", "cuda"]) == 2
        assert "--device cuda: no CUDA device" in capsys.readouterr().err
    assert main(["run", missing, "--device", "auto"]) == 2          # auto is the CPU here: fine for fixed
    assert "none.net" in capsys.readouterr().err
