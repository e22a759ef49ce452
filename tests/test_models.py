"""The conversion-friendly architectures (neurosim/architectures/) and their recipes in models/:
build, trace, shapes, one step, QCFS, resume, committed weights."""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import torch
import torch.fx as fx
import torch.nn as nn

from neurosim.ann import qcfs
from neurosim.ann.train import TrainConfig, load_checkpoint, lr_at, train
from neurosim.data.augment import crop_flip, cutout
from tests.conftest import ROOT

ARCHITECTURES = ["digits_cnn", "mnist_cnn", "cifar_vgg", "cifar_resnet20"]
RECIPES = ["mnist_cnn", "fashion_cnn", "cifar_vgg", "cifar_resnet20"]
ARCHITECTURE_OF = {"fashion_cnn": "mnist_cnn"}
ALLOWED = (nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
           nn.Flatten, nn.Linear, nn.Dropout, qcfs.QCFS)


def _recipe(name):
    return importlib.import_module(f"models.{name}")


def _architecture(name):
    return importlib.import_module(f"neurosim.architectures.{name}")


def _build(name, **kw):
    torch.manual_seed(0)
    return _recipe(name).build(**kw)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_module_api(name):
    r = _recipe(name)
    assert isinstance(r.RECIPE, TrainConfig)
    assert r.DATASET in ("mnist", "fashion-mnist", "cifar10")
    assert len(r.INPUT_SHAPE) == 3 and r.DEFAULT_STEPS > 0
    assert callable(r.main)
    assert r.build is _architecture(ARCHITECTURE_OF.get(name, name)).build     # the library's network


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("use_qcfs", [False, True])
def test_builds_traces_and_output_shape(name, use_qcfs):
    r = _architecture(name)
    torch.manual_seed(0)
    model = r.build()
    if use_qcfs:
        model = qcfs.replace_relu(model, levels=4)
        assert not any(isinstance(m, nn.ReLU) for m in model.modules())
        assert len(qcfs.thresholds(model)) > 0
    model.eval()
    x = torch.rand(3, *r.INPUT_SHAPE)
    gm = fx.symbolic_trace(model)                        # plain fx, as a converter would
    gm_leaf = qcfs.trace(model)                          # QCFS kept as leaves
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(gm(x), out, rtol=0, atol=0)
        torch.testing.assert_close(gm_leaf(x), out, rtol=0, atol=0)
    assert out.shape == (3, 10)
    # only conversion-friendly layers; only residual adds/flatten besides modules
    for node in gm_leaf.graph.nodes:
        if node.op == "call_module":
            mod = gm_leaf.get_submodule(node.target)
            assert isinstance(mod, ALLOWED), (node.target, type(mod))
        elif node.op == "call_function":
            assert node.target.__name__ in ("add", "iadd"), node.target
        else:
            assert node.op in ("placeholder", "output"), node


def test_no_maxpool_and_shortcuts_in_resnet20():
    model = _build("cifar_resnet20", width=1.0)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    blocks = [m for m in model.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 9
    assert sum(b.shortcut is not None for b in blocks) == 2        # stage 2 and 3 entry
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 19                                       # + fc = 20 weighted layers
    assert all(c.bias is not None for c in model.modules() if isinstance(c, nn.Conv2d))
    adds = [n for n in fx.symbolic_trace(model).graph.nodes if n.op == "call_function"]
    assert len(adds) == 9


@pytest.mark.parametrize("folder, levels", [("cifar_resnet20", None), ("cifar_resnet20_cutout", None),
                                           ("cifar_resnet20_qcfs4", 4)])
def test_committed_resnet20_weights_load(folder, levels):
    """benchmarks/checkpoints/<folder>/weights.pt fits the recipe's ResNet-20 (its QCFS twin:
    with QCFS activations of ``levels`` levels) key for key, as result.json says."""
    import json

    from models.recipe import build_model
    result = json.loads((ROOT / "benchmarks/checkpoints" / folder / "result.json").read_text())
    assert result.get("qcfs_levels") == levels
    weights = torch.load(ROOT / "benchmarks/checkpoints" / folder / "weights.pt", map_location="cpu",
                         weights_only=True)
    model = build_model(importlib.import_module(result["recipe"]), result["width"], levels)
    model.load_state_dict(weights, strict=True)


@pytest.mark.parametrize("name", RECIPES)
def test_width_multiplier_scales_parameters(name):
    small = sum(p.numel() for p in _build(name, width=0.5).parameters())
    big = sum(p.numel() for p in _build(name, width=1.0).parameters())
    assert big > 2 * small


@pytest.mark.parametrize("name", RECIPES)
def test_one_optimisation_step(name):
    r = _recipe(name)
    model = _build(name)
    cfg = dataclasses.replace(r.RECIPE, epochs=1, batch_size=8)
    x = np.random.default_rng(0).random((8, *r.INPUT_SHAPE), dtype=np.float32)
    y = np.arange(8) % 10
    before = [p.detach().clone() for p in model.parameters()]
    train(model, x, y, cfg, progress=False)
    changed = [not torch.equal(a, p) for a, p in zip(before, model.parameters())]
    assert all(changed)


# ---- QCFS ---------------------------------------------------------------------------------

def test_qcfs_forward_equals_formula():
    torch.manual_seed(0)
    for levels, lam in [(1, 1.0), (4, 2.5), (8, 0.7), (16, 8.0)]:
        act = qcfs.QCFS(levels, lam)
        x = torch.linspace(-2 * lam, 2 * lam, 1001, dtype=torch.float64).float()
        x = torch.cat([x, torch.randn(1000) * lam])
        want = lam * torch.clip(torch.floor(x * levels / lam + 0.5) / levels, 0, 1)
        torch.testing.assert_close(act(x), want, rtol=0, atol=1e-6)
        assert len(torch.unique(act(x))) <= levels + 1


def test_qcfs_equals_if_neuron_rate():
    """IF, soft reset, v0 = theta/2, constant input for T = L steps: rate * theta = h(x)."""
    levels, lam = 4, 1.5
    x = torch.linspace(-1, 3, 401)
    v, spikes = torch.full_like(x, lam / 2), torch.zeros_like(x)
    for _ in range(levels):
        v = v + x
        s = (v >= lam).float()
        v, spikes = v - s * lam, spikes + s
    # floor ties at exact half-steps can go either way numerically; compare away from them
    u = x * levels / lam + 0.5
    away = (u - u.round()).abs() > 1e-4
    torch.testing.assert_close((spikes * lam / levels)[away], qcfs.QCFS(levels, lam)(x)[away])


def test_qcfs_gradients_flow():
    lam, levels = 2.0, 4
    act = qcfs.QCFS(levels, lam)
    x = torch.tensor([-1.0, 0.3, 0.9, 1.7, 2.5, 5.0], requires_grad=True)
    h = act(x)
    h.sum().backward()
    inside = (x >= 0) & (x <= lam)
    torch.testing.assert_close(x.grad, inside.float())           # straight-through in [0, lambda]
    want = torch.where(x > lam, torch.ones_like(x),
                       torch.where(inside, h / lam - x / lam, torch.zeros_like(x))).sum()
    torch.testing.assert_close(act.threshold.grad, want.detach())


def test_qcfs_model_trains_and_thresholds_move():
    model = qcfs.replace_relu(_build("mnist_cnn", width=0.25), levels=4, threshold=2.0)
    x = torch.rand(16, 1, 28, 28)
    y = torch.arange(16) % 10
    nn.functional.cross_entropy(model(x), y).backward()
    grads = [m.threshold.grad for m in qcfs.qcfs_modules(model).values()]
    assert all(g is not None and torch.isfinite(g) for g in grads)
    assert any(float(g) != 0 for g in grads)


def test_replace_relu_functional():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)) + nn.functional.relu(x).sum(1, keepdim=True))

    torch.manual_seed(0)
    net = Net()
    q = qcfs.replace_relu(net, levels=8, threshold=1.0)
    assert len(qcfs.qcfs_modules(q)) == 2
    x = torch.randn(5, 4)
    want = net.fc2(qcfs.qcfs(net.fc1(x), torch.tensor(1.0), 8) + qcfs.qcfs(x, torch.tensor(1.0), 8).sum(1, keepdim=True))
    torch.testing.assert_close(q(x), want)


def test_relu_equivalent_and_calibration():
    model = qcfs.replace_relu(_build("cifar_resnet20", width=0.25), levels=4)
    model.eval()
    found = qcfs.calibrate_thresholds(model, torch.rand(8, 3, 32, 32))
    assert len(found) == len(qcfs.qcfs_modules(model)) == 19 and all(v > 0 for v in found.values())
    plain = qcfs.relu_equivalent(model)
    assert not qcfs.qcfs_modules(plain)
    assert plain.state_dict().keys() <= model.state_dict().keys()


# ---- training extensions ----------------------------------------------------------------------

def test_lr_schedule_and_augmentation():
    cfg = TrainConfig(epochs=10, lr=0.1, schedule="cosine", warmup_epochs=1)
    lrs = [lr_at(cfg, s, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 1e-3
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    out = crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert out.shape == x.shape
    same = crop_flip(x, torch.Generator().manual_seed(0), padding=0)
    for i in range(2):                                   # no padding: identity or a mirror
        assert torch.equal(same[i], x[i]) or torch.equal(same[i], x[i].flip(-1))


def test_cutout_zeroes_one_square_per_image_clipped_at_the_edges():
    x = torch.ones(64, 3, 12, 12)
    out = cutout(x, torch.Generator().manual_seed(0), 6)
    holes = out[:, 0] == 0
    assert torch.equal(holes[:, None].expand_as(out), out == 0)          # the same square in every channel
    rows, cols = holes.any(2).sum(1), holes.any(1).sum(1)
    assert torch.equal(holes.sum((1, 2)), rows * cols)                   # a rectangle ...
    assert rows.max() == cols.max() == 6 and rows.min() < 6             # ... 6 x 6, or cut by an edge
    assert torch.equal(out, cutout(x, torch.Generator().manual_seed(0), 6))


@pytest.mark.parametrize("name", ["cifar_vgg", "mnist_cnn"])
def test_resume_is_bit_identical(tmp_path, name):
    """2 epochs straight == 1 epoch, checkpoint, 1 more (cosine LR, crop-flip, dropout, BN)."""
    r = _recipe(name)
    rng = np.random.default_rng(1)
    x = rng.random((48, *r.INPUT_SHAPE), dtype=np.float32)
    y = rng.integers(0, 10, 48)
    cfg = dataclasses.replace(r.RECIPE, epochs=2, batch_size=16, augment="crop-flip", warmup_epochs=0.5)
    straight = train(_build(name, width=0.25), x, y, cfg, progress=False)
    ckpt = tmp_path / "ann.pt"
    train(_build(name, width=0.25), x, y, cfg, checkpoint=ckpt, progress=False, until=1)
    assert int(load_checkpoint(ckpt)["epoch"]) == 1
    log = []
    resumed = train(_build(name, width=0.25), x, y, cfg, checkpoint=ckpt, progress=False,
                    eval_data=(x[:8], y[:8]), on_epoch=log.append)
    assert [rec["epoch"] for rec in log] == [2] and "test_acc" in log[0]
    assert [rec["epoch"] for rec in load_checkpoint(ckpt)["history"]] == [1, 2]
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_recipe_main_runs_and_resumes(tmp_path, capsys):
    from tests.conftest import needs_shared
    needs_shared("datasets", "mnist")
    from models import mnist_cnn
    args = ["--epochs", "1", "--limit", "256", "--test-limit", "200", "--width", "0.25",
            "--out", str(tmp_path), "--no-progress"]
    res = mnist_cnn.main(args)
    assert res["epochs_done"] == 1 and 0 <= res["test_acc"] <= 1
    assert (tmp_path / "weights.pt").exists() and (tmp_path / "result.json").exists()
    again = mnist_cnn.main(args)                          # finished: only re-evaluated
    assert again["test_acc"] == res["test_acc"]
    assert "test accuracy" in capsys.readouterr().out


def test_qcfs_recipe_threshold_init_fixed_or_from_data(tmp_path):
    from tests.conftest import needs_shared
    needs_shared("datasets", "mnist")
    from models import mnist_cnn
    base = ["--epochs", "1", "--limit", "128", "--test-limit", "50", "--width", "0.25", "--qcfs", "4",
            "--lr", "0", "--no-progress"]
    data = mnist_cnn.main(base + ["--qcfs-init", "data", "--out", str(tmp_path / "d")])
    fixed = mnist_cnn.main(base + ["--qcfs-init", "fixed", "--out", str(tmp_path / "f")])   # the paper's 8
    batch = mnist_cnn.main(base + ["--out", str(tmp_path / "b")])          # the default: the first batch
    assert (data["qcfs_init"], fixed["qcfs_init"], batch["qcfs_init"]) == ("data", "fixed", "batch")
    assert all(v == pytest.approx(qcfs.DEFAULT_THRESHOLD) for v in fixed["qcfs_thresholds"].values())
    assert all(0 < v < qcfs.DEFAULT_THRESHOLD for v in data["qcfs_thresholds"].values())
    assert all(0 < v < qcfs.DEFAULT_THRESHOLD for v in batch["qcfs_thresholds"].values())
