"""The main job: train an ANN on digits, convert it to RMP, export the netlist, measure it."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch

from neurosim.ann.train import accuracy, load_checkpoint, train
from neurosim.convert.rmp import convert
from neurosim.convert import DEFAULT_PERCENTILE, DEFAULT_RULE
from neurosim.data.dataset import load_dataset
from neurosim.errors import NeurosimError
from neurosim.evaluate import evaluate, write_report
from neurosim.netlist import hdf5

NETLIST_NAME = "network.net"
CHECKPOINT_NAME = "ann.pt"


def export_and_measure(out_dir: Path, steps: Optional[int] = None, epochs: Optional[int] = None,
                       rule: str = DEFAULT_RULE, percentile: float = DEFAULT_PERCENTILE, lava_samples: int = 10,
                       lava_timeout: Optional[float] = None, retrain: bool = False,
                       progress: bool = True) -> dict:
    """Run the whole path on the embedded digits data set; return the report (also written)."""
    from models import digits_cnn

    t0 = time.time()
    steps = steps or digits_cnn.DEFAULT_STEPS
    cfg = digits_cnn.RECIPE if epochs is None else replace(digits_cnn.RECIPE, epochs=epochs)
    if cfg.epochs < 1:
        raise NeurosimError(f"--epochs must be at least 1, got {cfg.epochs}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_split, test_split = load_dataset("digits")

    ckpt = out_dir / CHECKPOINT_NAME
    if retrain and ckpt.exists():
        ckpt.unlink()
    torch.manual_seed(cfg.seed)          # the initial weights depend on the seed alone
    model = digits_cnn.build()
    if ckpt.exists() and int(load_checkpoint(ckpt)["epoch"]) >= cfg.epochs:
        model.load_state_dict(load_checkpoint(ckpt)["model"])
        print(f"ANN: loaded trained checkpoint {ckpt}")
    else:
        train(model, train_split.x, train_split.y, cfg, checkpoint=ckpt, progress=progress)
    model.eval()
    ann_acc = accuracy(model, test_split.x, test_split.y)
    t_train = time.time() - t0

    net = convert(model, train_split.x, digits_cnn.INPUT_SHAPE, rule=rule, percentile=percentile)
    net.meta.update({"dataset": "digits", "timesteps": steps, "ann_accuracy": ann_acc})
    netlist_path = hdf5.save(net, out_dir / NETLIST_NAME)

    report = evaluate(hdf5.load(netlist_path), test_split, steps, ann_accuracy=ann_acc,
                      lava_samples=lava_samples, lava_timeout=lava_timeout, progress=progress)
    report["netlist"] = str(netlist_path)
    report["checkpoint"] = str(ckpt)
    report["seconds"].update({"train_ann": t_train, "total": time.time() - t0})
    json_path, png_path = write_report(report, out_dir)
    report["report_paths"] = [str(json_path), str(png_path)]
    return report
