"""Nothing is lost: a SIGKILLed training resumes bit-identically, writes are atomic.

* ``deploy/export.py`` is killed (SIGKILL) mid-training, rerun to completion, and its final
  checkpoint is compared bit for bit with an uninterrupted run of the same arguments.
* Processes that keep rewriting a netlist, a checkpoint and a JSON report are killed at
  random moments: every target file is always complete (the old or the new version).
* A write that fails (file size limit reached: the same error as a full disk) leaves the
  existing file untouched and no temp file behind.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from neurosim.ann.train import load_checkpoint
from neurosim.netlist import hdf5
from tests.conftest import ROOT, small_conv_net

EPOCHS = 40
KILL_AFTER_EPOCH = 5


def export(out: Path) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / f"{out.name}.log", "w")     # a file, not a pipe: a full pipe would block
    try:
        return subprocess.Popen([sys.executable, "deploy/export.py", "--out", str(out), "--lava-samples", "0",
                                 "--epochs", str(EPOCHS)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def kill_at_epoch(proc: subprocess.Popen, ckpt: Path, epoch: int, timeout: float = 300) -> int:
    """SIGKILL ``proc`` right after its checkpoint reaches ``epoch`` (between two saves); return the epoch."""
    deadline = time.time() + timeout
    seen = None
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                log = ckpt.parent.parent / f"{ckpt.parent.name}.log"
                raise AssertionError(f"run ended before epoch {epoch}: {log.read_text()[-2000:]}")
            try:
                st = ckpt.stat()
            except FileNotFoundError:
                time.sleep(0.005)
                continue
            if (st.st_ino, st.st_mtime_ns) != seen:       # a new checkpoint was renamed into place
                seen = (st.st_ino, st.st_mtime_ns)
                if int(load_checkpoint(ckpt)["epoch"]) >= epoch:
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.002)
        else:
            raise AssertionError(f"no checkpoint of epoch {epoch} within {timeout} s")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return int(load_checkpoint(ckpt)["epoch"])


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def test_killed_export_resumes_to_bit_identical_weights(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"

    # The uninterrupted reference: the same command; once its final checkpoint is written
    # (training is over, the checkpoint never changes again) the rest of its job is not needed.
    ref = export(straight)
    assert kill_at_epoch(ref, straight / "ann.pt", EPOCHS) == EPOCHS

    run = export(killed)
    at = kill_at_epoch(run, killed / "ann.pt", KILL_AFTER_EPOCH)
    assert KILL_AFTER_EPOCH <= at < EPOCHS, f"killed at epoch {at}: not mid-training"
    assert not (killed / "network.net").exists() and not (killed / "report.json").exists()

    done = subprocess.run([sys.executable, "deploy/export.py", "--out", str(killed), "--lava-samples", "0",
                           "--epochs", str(EPOCHS)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    a, b = load_checkpoint(straight / "ann.pt"), load_checkpoint(killed / "ann.pt")
    assert int(a["epoch"]) == int(b["epoch"]) == EPOCHS
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), f"{key} differs after resuming"
    assert temp_files(killed) == [], "temp files left behind"

    net = hdf5.load(killed / "network.net")
    report = json.loads((killed / "report.json").read_text())
    assert report["netlist"] == str(killed / "network.net") and report["checkpoint"] == str(killed / "ann.pt")
    assert 0.8 < report["snn_accuracy"] <= 1 and report["test_samples"] == 360
    assert len(report["spikes_per_sample_per_layer"]) == len(net.neuron_layers)
    assert (killed / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    with Image.open(killed / "report.png") as img:
        img.load()


WRITER = textwrap.dedent("""
    import sys, numpy as np, torch
    sys.path.insert(0, {root!r})
    from neurosim.netlist import hdf5
    from neurosim.ann.train import save_checkpoint
    from neurosim.io.atomic import write_json
    from tests.conftest import small_conv_net
    out = {out!r}
    nets = [small_conv_net(seed) for seed in (0, 1)]
    for net, tag in zip(nets, (0, 1)):
        net.meta = {{"version": tag}}
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(torch.nn.Linear(256, 256))
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
    big = [{{"version": v, "payload": [v] * 200000}} for v in (0, 1)]
    print("ready", flush=True)
    k = 0
    while True:
        v = k % 2
        hdf5.save(nets[v], out + "/net.net")
        save_checkpoint(out + "/ann.pt", models[v], opts[v], v)
        write_json(out + "/report.json", big[v])
        k += 1
""")


def test_killed_writers_never_leave_a_partial_file(tmp_path):
    """Kill a process that keeps rewriting three outputs at random moments, 6 times."""
    rng = np.random.default_rng(0)
    leftovers = 0
    for trial in range(6):
        out = tmp_path / f"t{trial}"
        out.mkdir()
        proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), out=str(out))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        deadline = time.time() + 60
        while not (out / "report.json").exists() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close(), proc.stderr.close()
        net = hdf5.load(out / "net.net")                         # complete, either version
        assert net.meta["version"] in (0, 1)
        ckpt = load_checkpoint(out / "ann.pt")
        assert int(ckpt["epoch"]) in (0, 1) and ckpt["model"]["weight"].shape == (256, 256)
        report = json.loads((out / "report.json").read_text())
        assert report["version"] in (0, 1) and len(report["payload"]) == 200000
        names = {p.name for p in out.iterdir()}
        assert {"net.net", "ann.pt", "report.json"} <= names
        # a kill during a write can leave that write's hidden temp file, never a partial target
        extra = names - {"net.net", "ann.pt", "report.json"}
        assert all(n.startswith(".") and n.endswith(".tmp") for n in extra), extra
        leftovers += len(extra)
    print(f"stale temp files after 6 SIGKILLs: {leftovers}")


FAILING_WRITES = textwrap.dedent("""
    import json, resource, signal, sys, numpy as np, torch
    sys.path.insert(0, {root!r})
    from neurosim.errors import NeurosimError
    from neurosim.netlist import hdf5
    from neurosim.netlist import Input, Netlist, RMP, dense
    from neurosim.ann.train import save_checkpoint
    from neurosim.io.atomic import write_json
    out = {out!r}
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # exceeding the limit: EFBIG, like a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
    results = {{}}
    big_net = Netlist([Input((400,), RMP(1)), dense((400,), np.ones((400, 400)), RMP(1))])
    try:
        hdf5.save(big_net, out + "/net.net")
        results["netlist"] = "written"
    except NeurosimError as exc:
        results["netlist"] = "NeurosimError: " + str(exc)
    model = torch.nn.Linear(400, 400)
    try:
        save_checkpoint(out + "/ann.pt", model, torch.optim.SGD(model.parameters(), lr=0.1), 3)
        results["checkpoint"] = "written"
    except Exception as exc:
        results["checkpoint"] = type(exc).__name__ + ": " + str(exc)[:200]
    try:
        write_json(out + "/report.json", {{"payload": list(range(100000))}})
        results["report"] = "written"
    except Exception as exc:
        results["report"] = type(exc).__name__ + ": " + str(exc)[:200]
    print(json.dumps(results))
""")


def test_failing_writes_keep_the_existing_files(tmp_path):
    hdf5.save(small_conv_net(), tmp_path / "net.net")
    model = torch.nn.Linear(3, 2)
    from neurosim.ann.train import save_checkpoint
    from neurosim.io.atomic import write_json
    save_checkpoint(tmp_path / "ann.pt", model, torch.optim.SGD(model.parameters(), lr=0.1), 1)
    write_json(tmp_path / "report.json", {"ok": True})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    out = subprocess.run([sys.executable, "-c", FAILING_WRITES.format(root=str(ROOT), out=str(tmp_path))],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert results["netlist"].startswith("NeurosimError: ") and "cannot write the netlist" in results["netlist"]
    assert results["checkpoint"] != "written" and results["report"] != "written", results
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before                                   # untouched, and no temp file left
    assert hdf5.load(tmp_path / "net.net").layers[1].synapse.weight.shape == (4, 1, 3, 3)


def test_checkpoints_load_without_running_code(tmp_path):
    """A pickle that would run code on load is refused (weights_only=True) and runs nothing."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "ann.pt"
    torch.save({"model": {}, "epoch": torch.tensor(1), "x": Evil()}, path)
    from neurosim.errors import NeurosimError
    with pytest.raises(NeurosimError, match="not a readable neurosim checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_temp_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    """A SIGKILL between mkstemp and os.replace leaves a temp file: the next write of the same
    target removes it once its writer is gone and it is old; a live writer's file is kept."""
    from neurosim.io.atomic import STALE_AFTER_S, write_json

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)                       # exited: no such process any more
    old = time.time() - 2 * STALE_AFTER_S
    stale = tmp_path / f".report.json.{dead_pid}.abc123xy.tmp"
    recent = tmp_path / f".report.json.{dead_pid}.zzz999qq.tmp"      # dead writer, but young
    live = tmp_path / f".report.json.{os.getppid()}.live0000.tmp"     # a writer still running
    other = tmp_path / f".other.json.{dead_pid}.abc123xy.tmp"         # another target's
    for f in (stale, recent, live, other):
        f.write_text("{half")
    for f in (stale, live, other):
        os.utime(f, (old, old))
    write_json(tmp_path / "report.json", {"ok": True})
    assert not stale.exists()
    assert recent.exists() and live.exists() and other.exists()
    assert json.loads((tmp_path / "report.json").read_text()) == {"ok": True}


def test_a_temp_name_with_an_impossible_pid_does_not_block_writes(tmp_path):
    from neurosim.io.atomic import write_json

    odd = tmp_path / ".report.json.99999999999999999999.abc123xy.tmp"
    odd.write_text("?")
    write_json(tmp_path / "report.json", {"ok": 1})
    assert json.loads((tmp_path / "report.json").read_text()) == {"ok": 1} and odd.exists()
