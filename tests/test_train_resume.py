"""Training resumes from its checkpoint with the same result as an uninterrupted run; the
device option leaves CPU training bit for bit as it was."""
from __future__ import annotations

import dataclasses

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


def test_device_cpu_is_the_default_bit_for_bit_and_checkpoints_hold_cpu_tensors(tmp_path):
    tr, te = load_digits_split()
    cfg = TrainConfig(epochs=2, lr=1e-2, optimizer="sgd", schedule="cosine", augment="crop-flip", crop_padding=1,
                      autocast="bf16")
    runs = {}
    for device in ("default", "cpu", "auto"):
        if device == "auto" and torch.cuda.is_available():
            continue                                       # auto would train on the GPU
        history: list[dict] = []
        c = cfg if device == "default" else dataclasses.replace(cfg, device=device)
        model = train(_model(), tr.x[:400], tr.y[:400], c, checkpoint=tmp_path / f"{device}.pt", progress=False,
                      eval_data=(te.x, te.y), on_epoch=history.append)
        runs[device] = history, model.state_dict()
    ref_history, ref_weights = runs.pop("default")
    assert [r["device"] for r in ref_history] == ["cpu", "cpu"]
    for history, weights in runs.values():
        assert [(r["loss"], r["train_acc"], r["test_acc"]) for r in history] == \
            [(r["loss"], r["train_acc"], r["test_acc"]) for r in ref_history]
        for a, b in zip(ref_weights.values(), weights.values()):
            assert torch.equal(a, b)
    ckpt = load_checkpoint(tmp_path / "cpu.pt")
    tensors = [*ckpt["model"].values(), *(t for s in ckpt["optimizer"]["state"].values() for t in s.values())]
    assert tensors and all(t.device.type == "cpu" for t in tensors)


def test_autocast_auto_is_bf16_only_where_the_cpu_computes_it_natively(tmp_path, monkeypatch):
    import pytest

    import neurosim.ann.train as train_mod
    from neurosim.device import cpu_has_bf16
    from neurosim.errors import NeurosimError

    native, emulated = tmp_path / "native", tmp_path / "emulated"
    native.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n\n")
    emulated.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n\n")
    assert cpu_has_bf16(str(native)) and not cpu_has_bf16(str(emulated))
    assert not cpu_has_bf16(str(tmp_path / "absent"))                  # no /proc: float32
    cpu = torch.device("cpu")
    assert train_mod.resolve_autocast(cpu, "bf16") == "bf16" and train_mod.resolve_autocast(cpu, "none") == "none"
    for flag, want in ((True, "bf16"), (False, "none")):
        monkeypatch.setattr(train_mod, "cpu_has_bf16", lambda flag=flag: flag)
        assert train_mod.resolve_autocast(cpu, "auto") == want
        tr, _ = load_digits_split()
        history: list[dict] = []
        train(_model(), tr.x[:64], tr.y[:64], TrainConfig(epochs=1, autocast="auto"), progress=False,
              on_epoch=history.append)
        assert history[0]["autocast"] == want                          # the record says what ran
    with pytest.raises(NeurosimError, match="unknown autocast 'fp16'"):
        train_mod.resolve_autocast(cpu, "fp16")
