"""Whole test sets on Lava: the batched graph (B samples per Lava run) and its workers.

* Without Lava: each projection's unrolled matrix (:func:`neurosim.lava.synapses.connection`)
  is the simulator's synapse map, one synapse per (output, input) pair as SynOps count them;
  Lava's own ``Sparse`` would not give ``Conv``'s integers (why the batched graph has its own
  sparse synapse); the time limit of a batched run grows with its runs, not its samples.
* With Lava (guarded workers): batches (a short last one included), several workers and both
  modes side by side give every sample's spikes and voltages equal to the simulator's, on a
  net with every feature (schedules, vInit, soft and hard reset, CUBA and RMP, pool, grouped
  conv, an identity join with a delay); only the first ``spike_samples`` samples' spikes come
  back, the readout of all; ``neurosim run --lava-samples all`` reports Lava's accuracy beside
  the simulator's on the whole split; a killed command leaves no worker of any mode.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from neurosim import evaluate as ev
from neurosim.commands.summary import lava_lines
from neurosim.data.dataset import Split
from neurosim.errors import NeurosimError
from neurosim.lava.runner import run_lava, run_lava_modes
from neurosim.lava.supervisor import group_members, mapped_shm, proc_stat
from neurosim.lava.synapses import connection
from neurosim.lava.timelimit import estimate_timeout
from neurosim.netlist import CUBA, RMP, Flatten, Input, Netlist, conv, dense, identity, join, pool
from neurosim.netlist.schema import Projection, Schedule
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool
from neurosim.sim.simulator import Simulator
from tests.test_lava_lifetime import digits_conv_net
from neurosim.sim.synapse_maps import synapse_map
from tests.conftest import ROOT

T = 10

#: One instance per kind (and conv geometries: groups, stride, padding, dilation) with the
#: shape of its input spikes.
KINDS = {
    "dense": (Dense(np.arange(-12, 12, dtype=np.float64).reshape(4, 6) * 3 + 1), (6,)),
    "conv": (Conv(np.arange(2 * 3 * 3 * 3, dtype=np.float64).reshape(2, 3, 3, 3) * 2 - 41, (2, 1), (1, 0)), (3, 7, 6)),
    "conv grouped dilated": (Conv(np.arange(1, 6 * 2 * 2 * 3 + 1, dtype=np.float64).reshape(6, 2, 2, 3),
                                  stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=3), (6, 5, 8)),
    "pool": (Pool(np.array([[1., 2.], [3., 1.]]), (2, 1)), (3, 6, 4)),
    "identity": (Identity(4.0), (3, 5, 5)),
}


@pytest.mark.parametrize("name", KINDS)
def test_connection_is_the_synapse_map_unrolled(name):
    kind, in_shape = KINDS[name]
    out_shape = kind.out_shape(in_shape)
    m = synapse_map(kind)
    s = (np.random.default_rng(0).random((5, *in_shape)) < 0.5).astype(np.float64)
    for mode in ("float", "fixed"):
        c = connection(kind, in_shape, out_shape, mode)
        weight = kind.fixed_weight()[0] if mode == "fixed" else kind.weight
        w = torch.as_tensor(m.torch_weight(np.asarray(weight, dtype=np.float64), in_shape))
        ref = m.linear(torch.tensor(s), w).numpy().reshape(5, -1)
        np.testing.assert_array_equal((c.matrix @ s.reshape(5, -1).T).T, ref, err_msg=mode)
        assert c.matrix.dtype == (np.int64 if mode == "fixed" else np.float64)
        assert c.wrap_bits == (kind.wrap_bits if mode == "fixed" else None)
    assert c.matrix.nnz == kind.fanout(in_shape).sum()       # every synapse, none for the padding


def test_lava_sparse_would_not_give_the_conv_integers():
    """Lava's ``Sparse`` (``fixed_pt``) clips its weights to 8 bits and drops the lowest bit
    of a mixed-sign matrix, and never wraps its sums to 24 bits, where Lava's ``Conv`` (and
    the netlist's ``fixed`` mode) keep the integers and wrap."""
    from lava.proc.conv.utils import signed_clamp
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights

    kind = Conv(np.array([[[[301., -7.], [5., 3.]]]]))
    c = connection(kind, (1, 3, 3), kind.out_shape((1, 3, 3)), "fixed")
    w = c.matrix.toarray()
    sparse_w = truncate_weights(clip_weights(w, SignMode.MIXED, num_bits=8), SignMode.MIXED, 8)
    assert not np.array_equal(sparse_w, w)                    # 301 clipped, -7, 5, 3 lose their lowest bit
    wide = Conv(np.full((1, 64, 3, 3), 40000.0))               # 576 synapses of 40000: beyond 2**23
    cw = connection(wide, (64, 3, 3), wide.out_shape((64, 3, 3)), "fixed")
    total = int(cw.matrix.sum())
    assert cw.wrap_bits == 24 and signed_clamp(total, bits=24) != total


def test_batched_time_limit_grows_with_runs_not_samples():
    net = feature_net()
    per_sample = [estimate_timeout(net, n, 64) for n in (64, 128)]
    batched = [estimate_timeout(net, n, 64, batch=64) for n in (64, 128)]
    assert batched[1] - batched[0] < (per_sample[1] - per_sample[0]) / 4
    assert estimate_timeout(net, 130, 64, batch=64) > batched[1]          # a third run


# ----------------------------------------------------------------------------- Lava runs

def feature_net(seed: int = 7) -> Netlist:
    """Input (CUBA, vInit) -> grouped conv (RMP, leaky, schedule) -> pool (CUBA soft reset) ->
    identity join of the pool's spikes at once and 3 steps late -> flatten -> dense (RMP hard
    reset, vInit); integer mantissas."""
    rng = np.random.default_rng(seed)
    return Netlist([
        Input((2, 6, 6), CUBA(40, iDecay=4096, vDecay=0, vInit=7), weight=90.0, bias=3.0),
        conv((4, 6, 6), 2 * rng.integers(-5, 9, (4, 1, 3, 3)).astype(float), RMP(30, vDecay=100), padding=(1, 1),
             groups=2, bias=np.array([1., 0., -2., 3.]),
             schedule=Schedule(scale=rng.integers(2, 6, (4, 4)).astype(float),
                               bias=rng.integers(-2, 3, (3, 4)).astype(float), scale_exp=2)),
        pool((4, 3, 3), np.full((2, 2), 3.0), CUBA(20, iDecay=1000, vDecay=300, reset="soft")),
        join(identity((4, 3, 3), RMP(15), weight=6.0),
             Projection(Identity(5.0), source=2, delay=3)),
        Flatten((36,)),
        dense((5,), rng.integers(-6, 9, (5, 36)).astype(float), RMP(25, reset="hard", vInit=-4),
              bias=np.arange(5.0) - 1),
    ])


def _samples(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 2, 6, 6))


@pytest.mark.parametrize("workers", [1, 2])
def test_batches_workers_and_both_modes_equal_the_simulator(workers):
    """7 samples in runs of 3 (the last one short), both modes side by side, on 1 or 2
    workers per mode: every spike and final voltage of the first 5 samples, and the readout of
    all 7 after each of the readout steps (one run read at several T), equal the simulator's
    (float: integer weights, exact)."""
    net, x = feature_net(), _samples(7)
    early = [1, 4, 5, T - 1]
    runs = run_lava_modes(net, x, T, ("fixed", "float"), batch=3, workers=workers, spike_samples=5, progress=False,
                          readout_steps=early)
    for mode, res in runs.items():
        ref = Simulator(net, mode).run(x, T, record_spikes=True, readout_steps=early + [T])
        assert res.readout_steps == ref.readout_steps == (*early, T)
        np.testing.assert_array_equal(res.readout_trace, ref.readout_trace, err_msg=f"{mode} readout trace")
        assert len(set(np.argmax(res.readout_trace, 2).ravel())) > 1
        spikes = 0
        for i in net.neuron_layers:
            assert res.spikes[i].shape == (5, T, int(np.prod(net.layers[i].shape)))
            np.testing.assert_array_equal(res.spikes[i], ref.spikes[i][:5], err_msg=f"{mode} layer {i}")
            np.testing.assert_array_equal(res.v[i], ref.v[i][:5], err_msg=f"{mode} layer {i} v")
            spikes += int(ref.spikes[i][:5].sum())
        np.testing.assert_array_equal(res.readout, ref.readout)
        assert spikes > 100 and ref.spikes[3].any(), "test net too quiet"
        assert res.batch == 3 and res.timing["workers"] == workers and res.timing["samples_per_s"] > 0
        assert {m.split(" -> ")[1] for m in res.models.values()} == (
            {"PyNetlistNeuron_u_v_Fixed", "PySparseSynapseFixed"} if mode == "fixed"
            else {"PyNetlistNeuron_u_v_Float", "PySparseSynapseFloat"})


def test_one_sample_per_batch_equals_the_per_sample_graph():
    net, x = feature_net(seed=3), _samples(3, seed=2)
    one = run_lava(net, x, T, "fixed", batch=1, progress=False)
    per_sample = run_lava(net, x, T, "fixed", batch=None, progress=False)
    with pytest.raises(NeurosimError, match="readout_steps .* need the batched graph"):
        run_lava(net, x, T, "fixed", batch=None, readout_steps=[2], progress=False)
    for i in net.neuron_layers:
        np.testing.assert_array_equal(one.spikes[i], per_sample.spikes[i])
        np.testing.assert_array_equal(one.v[i], per_sample.v[i])


def test_lava_check_of_the_whole_split_reports_accuracy_beside_the_simulators():
    net = feature_net()
    rng = np.random.default_rng(4)
    test = Split("toy", _samples(9, seed=5), rng.integers(0, 5, 9))
    report = ev.evaluate(net, test, T, lava_samples=ev.LAVA_ALL, lava_workers=2, progress=False)
    assert report["lava_samples"] == report["lava_spike_samples"] == 9 and report["lava_workers"] == 2
    for tag in ("fixed_pt", "floating_pt"):
        assert report["lava_spike_mismatches"][tag] == report["lava_voltage_mismatches"][tag] == 0
        assert report["lava_prediction_mismatches"][tag] == 0
        assert report["lava_accuracy"][tag] == report["lava_simulator_accuracy"][tag]
        assert report["lava_samples_per_s"][tag] > 0
    assert report["lava_simulator_accuracy"]["fixed_pt"] == report["snn_accuracy"]
    at = report["lava_at_timesteps"]                    # the same Lava run read at every swept T
    assert list(at) == list(report["accuracy_vs_timesteps"]) and len(at) > 2
    for t, per_tag in at.items():
        assert per_tag["fixed_pt"]["simulator_accuracy"] == report["accuracy_vs_timesteps"][t]
        for tag, row in per_tag.items():
            assert row["accuracy"] == row["simulator_accuracy"], (t, tag)
            assert row["prediction_mismatches"] == row["spike_mismatches"] == 0, (t, tag)
    lines = lava_lines(report)
    assert lines[0].startswith("Lava fixed_pt           accuracy") and "on 9 samples" in lines[0]
    assert "0 spike and 0 voltage mismatches" in lines[0] and "samples/s" in lines[0]
    assert lines[1].startswith("  read at T = ") and lines[1].endswith("0 predictions differ from the simulator's")


def _digits_net(tmp_path):
    return digits_conv_net(tmp_path / "net.net")


def test_run_lava_samples_all_on_the_command_line(tmp_path):
    path = _digits_net(tmp_path)
    out = subprocess.run([sys.executable, "-m", "neurosim", "run", str(path), "--limit", "50", "--lava-samples", "all",
                          "--lava-workers", "2", "--lava-modes", "fixed", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lava = [line for line in out.stdout.splitlines() if "samples/s" in line]
    assert len(lava) == 1 and lava[0].startswith("Lava fixed_pt") and "on 50 samples" in lava[0] \
        and "0 spike and 0 voltage mismatches" in lava[0], out.stdout
    data = json.loads((tmp_path / "net-report.json").read_text())
    assert data["lava_samples"] == 50 and data["lava_workers"] == 2
    assert list(data["lava_spike_mismatches"]) == ["fixed_pt"]
    for flag, value, said in (("--lava-samples", "most", "expected a whole number, got 'most'"),
                              ("--lava-modes", "fixd", "expected fixed, float or fixed,float, got 'fixd'")):
        bad = subprocess.run([sys.executable, "-m", "neurosim", "run", str(path), flag, value],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and said in bad.stderr, bad.stderr


def _workers_of(parent: int) -> list[int]:
    """Pids of the Lava workers ``parent`` started."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (proc_stat(int(entry.name)) or ["", "0"])[1] == str(parent):
            try:
                if b"neurosim.lava.worker" in open(f"/proc/{entry.name}/cmdline", "rb").read():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_killed_command_leaves_no_worker_of_any_mode(tmp_path):
    """``neurosim run --lava-workers 2`` runs 4 workers (2 per mode, a minute of Lava each);
    SIGKILL of the command: every worker group and its shared memory are gone within 3 s."""
    path = _digits_net(tmp_path)
    cmd = subprocess.Popen([sys.executable, "-m", "neurosim", "run", str(path), "--steps", "20000", "--limit", "8",
                            "--lava-samples", "all", "--lava-workers", "2", "--lava-timeout", "900",
                            "--out", str(tmp_path)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert cmd.poll() is None and time.monotonic() < deadline, "no 4 Lava workers running"
            groups = _workers_of(cmd.pid)
            # Each group is a worker, its guardian and Lava's runtime processes; a group counts
            # as running once its processes have mapped their shared memory.
            shm = {g: mapped_shm(group_members(g)) & set(os.listdir("/dev/shm")) for g in groups}
            if len(groups) == 4 and all(shm.values()):
                break
            time.sleep(0.2)
        held = set().union(*shm.values())
        t_kill = time.monotonic()
        cmd.send_signal(signal.SIGKILL)
        while any(group_members(g) for g in groups) or held & set(os.listdir("/dev/shm")):
            assert time.monotonic() - t_kill < 3.0, "a worker group or its shared memory outlived the command"
            time.sleep(0.02)
    finally:
        if cmd.poll() is None:
            cmd.kill()
        cmd.wait()
