"""BNTT (issue 10): the layer against the official per-step BatchNorms, the neuron's gradient,
the folded netlist against the SLAYER model, Lava spike-exactness, resuming, early exit."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurosim.bntt.early_exit import calibrated_exit_step, exit_step, gamma_profile
from neurosim.bntt.encoding import poisson, to_raster
from neurosim.bntt.fold import export, netlist_input
from neurosim.bntt.network import BNTTNet
from neurosim.bntt.neuron import SURROGATE_SCALE, lif_scan
from neurosim.bntt.norm import TimeNorm
from neurosim.bntt.train import BNTTConfig, train_bntt
from neurosim.metrics.workload import ann_layers_from_meta
from neurosim.netlist import hdf5
from neurosim.sim.simulator import Simulator

T = 6
CNN = [("conv", 4), ("pool", 2), ("conv", 6), ("pool", 2), ("dense", 12)]


def test_bntt_is_one_batchnorm_per_step_without_beta():
    """The official model: nn.ModuleList of BatchNorm2d(eps=1e-4, momentum=0.1), bias None."""
    torch.manual_seed(0)
    ours = TimeNorm(3, T)
    ref = nn.ModuleList([nn.BatchNorm2d(3, eps=1e-4, momentum=0.1) for _ in range(T)])
    for bn in ref:
        bn.bias = None
    with torch.no_grad():
        g = torch.rand(T, 3) + 0.5
        ours.weight.copy_(g)
        for t, bn in enumerate(ref):
            bn.weight.copy_(g[t])
    for _ in range(3):
        x = torch.randn(5, 3, 4, 4, T) * 2 + 1
        got = ours(x)
        want = torch.stack([ref[t](x[..., t]) for t in range(T)], dim=-1)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for t, bn in enumerate(ref):
        torch.testing.assert_close(ours.running_mean[t], bn.running_mean)
        torch.testing.assert_close(ours.running_var[t], bn.running_var)
    ours.eval(), ref.eval()
    x = torch.randn(4, 3, 4, 4, T)
    torch.testing.assert_close(ours(x), torch.stack([ref[t](x[..., t]) for t in range(T)], -1), rtol=1e-5, atol=1e-5)
    s, b = ours.scale_bias(T + 2)                       # later steps hold the last row
    torch.testing.assert_close(s[-1], s[T - 1])
    torch.testing.assert_close(b[T - 1], -ours.running_mean[T - 1] * s[T - 1])


@pytest.mark.parametrize("soft", [True, False])
def test_lif_scan_gradient_is_the_official_surrogate_with_a_gradient_free_reset(soft):
    torch.manual_seed(1)
    current = (torch.randn(3, 5, 9, dtype=torch.float64) * 0.9).requires_grad_()

    class Heaviside(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * SURROGATE_SCALE * torch.clamp(1 - x.abs(), min=0)

    v, outs = torch.zeros(3, 5, dtype=torch.float64), []
    for t in range(9):                                     # the official loop, leak 1 - 205/4096
        v = v * (1 - 205 / 4096) + current[..., t]
        s = Heaviside.apply(v - 1.0)
        outs.append(s)
        v = v - s.detach() if soft else v * (1 - s.detach())
    ref = torch.stack(outs, -1)
    w = torch.randn_like(ref)
    want, = torch.autograd.grad((ref * w).sum(), current)
    got_s = lif_scan(current, 205, 1.0, soft)
    got, = torch.autograd.grad((got_s * w).sum(), current)
    assert torch.equal(got_s, ref)
    torch.testing.assert_close(got, want)


def test_signed_poisson_rate_and_raster():
    x = torch.tensor([[[[1.0, -0.5], [0.0, 3.0]]]])
    s = poisson(x, 4000, torch.Generator().manual_seed(0))
    rate = s.mean(-1)[0, 0]
    np.testing.assert_allclose(rate.numpy(), [[0.5, -0.25], [0.0, 1.0]], atol=0.03)
    r = to_raster(s, signed=True)
    assert r.shape == (1, 4000, 2, 2, 2) and r.dtype == np.uint8
    assert np.array_equal(r[:, :, 0] - r[:, :, 1].astype(int), s[:, 0].permute(0, 3, 1, 2).numpy())


def _trained_stats(net: BNTTNet, shape, seed: int = 0) -> BNTTNet:
    g = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(poisson(torch.randn(16, *shape), net.steps, g))
        for n in net.norms:
            if n.mode != "none":
                n.weight.uniform_(0.5, 1.5)
    return net.eval()


@pytest.mark.parametrize("norm", ["bntt", "shared", "none"])
@pytest.mark.parametrize("layers", [CNN, [("dense", 16)]])
def test_float_netlist_equals_the_slayer_model(norm, layers):
    torch.manual_seed(2)
    net = _trained_stats(BNTTNet((1, 12, 12), layers, 5, T, norm=norm), (1, 12, 12))
    s = poisson(torch.randn(8, 1, 12, 12), T, torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits, rec = net(s, record=True)
    nl = export(net, "float")
    x = netlist_input(s, True, nl.meta["latency"])
    res = Simulator(nl, "float").run(x, x.shape[1], record_spikes=True)
    np.testing.assert_allclose(res.readout / T, logits.numpy(), rtol=1e-5, atol=1e-5)
    depth = nl.depths()
    for k, i in enumerate(nl.neuron_layers[:-1]):          # every hidden layer spikes alike, shifted by its depth
        window = res.spikes[i][:, depth[i]:depth[i] + T]
        np.testing.assert_array_equal(window.reshape(len(window), -1).sum(1), rec["spikes"][k].numpy())


def test_the_ann_the_energy_model_prices_is_the_trained_net():
    """Its rows are the trained layers on their pooled inputs (the export's ``ann_macs``), the
    image's 144 values read once (not the signed input's 288 channels) and the trained weights;
    the netlist's own connections (signed input, pools folded into larger kernels) are more."""
    torch.manual_seed(2)
    net = BNTTNet((1, 12, 12), CNN, 5, T)
    nl = export(net, "fixed")
    rows, weights = ann_layers_from_meta(nl.meta)
    assert [r.name for r in rows] == ["input", "1:conv", "2:conv", "3:dense", "4:dense"]
    assert rows[0].outputs == 144 and [r.outputs for r in rows[1:]] == [4 * 12 * 12, 6 * 6 * 6, 12, 5]
    assert sum(r.macs for r in rows) == nl.meta["ann_macs"]
    assert weights == sum(syn.weight.numel() for syn in net.synapses)
    netlist_connections = sum(float(p.synapse.fanout(nl.in_shape(i, k)).sum()) for i in nl.neuron_layers
                              for k, p in enumerate(nl.layers[i].projections))
    assert netlist_connections > 2 * nl.meta["ann_macs"]


def test_fixed_netlist_on_lava_equals_simulator_spike_for_spike():
    from neurosim.lava.runner import run_lava

    torch.manual_seed(4)
    net = _trained_stats(BNTTNet((1, 12, 12), CNN, 5, T), (1, 12, 12))
    nl = export(net, "fixed")
    assert any(l.schedule is not None and l.schedule.scale is not None for l in nl.layers if hasattr(l, "schedule"))
    s = poisson(torch.randn(2, 1, 12, 12), T, torch.Generator().manual_seed(5))
    x = netlist_input(s, True, nl.meta["latency"])
    steps = x.shape[1]
    ref = Simulator(nl, "fixed").run(x, steps, record_spikes=True)
    lava = run_lava(nl, x, steps, "fixed", progress=False)
    for i in nl.neuron_layers:
        np.testing.assert_array_equal(lava.spikes[i], ref.spikes[i], err_msg=f"layer {i}")
        np.testing.assert_array_equal(lava.v[i], ref.v[i], err_msg=f"layer {i}")


@pytest.mark.parametrize("augment", ["none", "crop-flip"])
def test_killed_run_resumes_to_the_identical_result(tmp_path, augment):
    cfg = BNTTConfig(dataset="digits", arch="mlp", steps=4, epochs=2, batch_size=64, lr=0.1, limit=400,
                     test_limit=100, augment=augment, crop_padding=1)
    whole, first = train_bntt(cfg, tmp_path / "a", progress=False)
    train_bntt(cfg, tmp_path / "b", progress=False, until=1)          # "killed" after epoch 1
    resumed, state = train_bntt(cfg, tmp_path / "b", progress=False, device="cpu")   # --device cpu: the default
    assert state["epoch"] == 2 and len(state["history"]) == 2
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert [(r["loss"], r["test_acc"], r["device"]) for r in first["history"]] == \
        [(r["loss"], r["test_acc"], r["device"]) for r in state["history"]]
    saved = torch.load(tmp_path / "b" / "bntt.pt", weights_only=False)       # loads without map_location
    tensors = [*saved["model"].values(), *(t for s in saved["optimizer"]["state"].values() for t in s.values())]
    assert tensors and all(t.device.type == "cpu" for t in tensors)


def test_crop_flip_changes_the_training_images_and_an_older_checkpoint_resumes(tmp_path):
    from neurosim.bntt.train import load_data
    from neurosim.errors import NeurosimError

    cfg = BNTTConfig(dataset="digits", arch="mlp", steps=4, epochs=2, batch_size=64, limit=256, test_limit=64,
                     augment="crop-flip", crop_padding=1)
    data = load_data(cfg)
    x = data.x[:64]
    plain = data.spikes(x, 50, torch.Generator().manual_seed(0))
    moved = data.spikes(x, 50, torch.Generator().manual_seed(0), "crop-flip", 1)
    assert plain.shape == moved.shape and not torch.equal(plain, moved)
    # the same rates up to a shift or a mirror: every image keeps its number of nonzero pixels or loses an edge
    assert (moved.abs().sum() - plain.abs().sum()).abs() / plain.abs().sum() < 0.2
    # a checkpoint written before the option existed resumes as --augment none
    plain_cfg = BNTTConfig(**{**cfg.__dict__, "augment": "none", "crop_padding": 4})      # the defaults then
    train_bntt(plain_cfg, tmp_path / "old", progress=False, until=1)
    ckpt = tmp_path / "old" / "bntt.pt"
    state = torch.load(ckpt, weights_only=False)
    for key in ("augment", "crop_padding"):
        del state["config"][key]
    torch.save(state, ckpt)
    _, resumed = train_bntt(plain_cfg, tmp_path / "old", progress=False)
    assert resumed["epoch"] == 2
    with pytest.raises(NeurosimError, match="was trained with other settings"):
        train_bntt(cfg, tmp_path / "old", progress=False)
    with pytest.raises(NeurosimError, match="augmentation 'crop-flip' is for images"):
        load_data(BNTTConfig(dataset="nmnist", augment="crop-flip"))
    with pytest.raises(NeurosimError, match="unknown augmentation 'mixup'"):
        load_data(BNTTConfig(dataset="digits", augment="mixup"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_train_bntt_cli_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    from neurosim.cli import main

    out = tmp_path / "gpu"
    assert main(["train-bntt", "--device", "cuda", "--dataset", "digits", "--arch", "mlp", "--epochs", "1",
                 "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neurosim: error: --device cuda: no CUDA device (torch ") and "\n" not in err
    assert not out.exists()                                 # refused before any data is loaded
    with pytest.raises(SystemExit) as exc:
        main(["train-bntt", "--device", "gpu", "--out", str(out)])
    assert exc.value.code == 2 and "expected cpu, cuda, cuda:N or auto" in capsys.readouterr().err


def test_early_exit_is_the_longest_suffix_of_small_gammas():
    net = BNTTNet((1, 8, 8), [("dense", 4), ("dense", 3)], 2, 6)
    with torch.no_grad():
        net.norms[0].weight.copy_(torch.tensor([1.0, 0.9, 0.05, 0.3, 0.04, 0.01])[:, None].expand(6, 4))
        net.norms[1].weight.copy_(torch.tensor([1.0, 0.02, 0.01, 0.01, 0.03, 0.01])[:, None].expand(6, 3))
    assert gamma_profile(net).shape == (2, 6)
    assert exit_step(net, 0.1) == 4          # step 3 (0-based) has 0.3 in layer 0
    assert exit_step(net, 0.5) == 2
    assert exit_step(net, 0.005) == 6


def test_calibrated_exit_is_the_first_step_within_tolerance_of_the_last():
    acc = {1: 0.40, 2: 0.80, 3: 0.897, 4: 0.91, 5: 0.89, 6: 0.90}
    assert calibrated_exit_step(acc, 0.005) == 3          # 0.897 >= 0.90 - 0.005
    assert calibrated_exit_step(acc, 0.0) == 4            # the first step at or above the last
    assert calibrated_exit_step(acc, 0.2) == 2
    assert calibrated_exit_step({1: 0.5}, 0.01) == 1
    with pytest.raises(ValueError, match="tolerance"):
        calibrated_exit_step(acc, 1.5)


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(".venv/bin/torchrun").exists(),
                    reason="torchrun not installed")
def test_two_processes_train_with_torchrun(tmp_path):
    import os
    import subprocess
    import sys

    torchrun = str(Path(sys.executable).with_name("torchrun"))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "neurosim", "train-bntt", "--dataset", "digits",
           "--arch", "mlp", "--steps", "4", "--epochs", "1", "--batch-size", "64", "--limit", "256",
           "--test-limit", "60", "--lava-samples", "0", "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = torch.load(out / "bntt.pt", weights_only=False)
    assert state["history"][0]["processes"] == 2
    assert (out / "network.net").is_file() and (out / "report.json").is_file()


def test_train_bntt_command_writes_netlist_and_report(tmp_path, capsys):
    import json

    from neurosim.cli import main

    out = tmp_path / "cli"
    args = ["train-bntt", "--dataset", "digits", "--arch", "mlp", "--steps", "5", "--epochs", "1", "--limit", "300",
            "--test-limit", "50", "--lava-samples", "all", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    b = report["bntt"]
    assert b["latency_steps"] == 2 and len(b["gamma_profile"][0]) == 5
    assert report["lava_spike_mismatches"] == {"fixed_pt": 0, "floating_pt": 0}
    assert b["early_exit_default"]["lava_spike_mismatches"] == 0
    ce = b["calibrated_exit"]
    assert ce["calibration_samples"] == 300 and 1 <= ce["exit_step"] <= 5
    assert ce["lava_spike_mismatches"] == 0 and ce["lava_steps"] == ce["exit_step"] + 2
    assert report["lava_samples"] == ce["lava_samples"] == b["early_exit_default"]["lava_samples"] == 50
    assert ce["lava_accuracy"] == ce["simulator_accuracy"] and ce["lava_prediction_mismatches"] == 0
    assert (out / "network.net").is_file() and (out / "report.png").is_file()
    # the ANN the energy model prices is the folded model's (64 analog inputs, not the signed
    # input's 128 channels): its rows' MACs are the export's ann_macs
    rows, _ = ann_layers_from_meta(hdf5.load(out / "network.net").meta)
    assert sum(r.macs for r in rows) == report["ann_macs_per_sample"] == 64 * 128 + 128 * 10
    printed = capsys.readouterr().out
    assert "fixed netlist" in printed and "calibrated exit" in printed
    assert "SNN accuracy (T=5+2)" in printed and "5 steps of input spikes, then 2" in printed
    assert main(["resnet" if a == "mlp" else a for a in args]) == 2
    assert "--arch must be one of" in capsys.readouterr().err
    # `neurosim run` rebuilds the same seeded spikes from the netlist's metadata: the same accuracy
    assert main(["run", str(out / "network.net"), "--limit", "50", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    again = json.loads((tmp_path / "run" / "network-report.json").read_text())
    assert again["snn_accuracy"] == report["snn_accuracy"] and again["timesteps"] == 5 + 2
    assert again["test_samples"] == 50 and "5 steps presented + 2" in capsys.readouterr().out
