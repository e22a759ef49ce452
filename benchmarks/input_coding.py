#!/usr/bin/env python
"""What spike-coding the input costs at T steps, measured on the ANN alone (issue 19).

    .venv/bin/python benchmarks/input_coding.py --run runs/bench90/cifar_resnet20 --test-limit 2000

neurosim's netlists take images through an input layer of soft-reset IF neurons starting at
θ/2: over T steps such a neuron fires ``round(x T)`` times for a pixel ``x`` in [0, 1], so the
first layer sees the image rounded to a multiple of ``1/T``. SpikingJelly's converted nets feed
the analog image into their first layer at every step instead. This script evaluates the
trained ANN of a ``python -m models.<recipe>`` run folder on its test images rounded to
``floor(x T + 1/2) / T`` for every T: the accuracy the input coding alone leaves to the SNN,
before any hidden layer's rate error. Prints the table and writes it as JSON (``--out``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import neurosim  # noqa: E402,F401  (before torch: passive OpenMP waiting)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.conversion import load_model  # noqa: E402
from neurosim.ann.train import accuracy  # noqa: E402
from neurosim.data.dataset import load_dataset  # noqa: E402
from neurosim.io.atomic import write_text  # noqa: E402


def rounded_accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, steps: int | None) -> float:
    """Top-1 accuracy of ``model`` on ``x`` rounded to multiples of ``1/steps`` (as given: None)."""
    return accuracy(model, x if steps is None else np.floor(x * steps + 0.5) / steps, y)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a models.<recipe> run folder (result.json, weights.pt)")
    ap.add_argument("--test-limit", type=int, default=2000, help="first N test images (default 2000)")
    ap.add_argument("--steps", default="2,4,8,16,32,64,128", help="T values, comma-separated")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the table")
    args = ap.parse_args(argv)
    model, result, _ = load_model(args.run)
    _, test = load_dataset(result.get("dataset", "cifar10"), data_dir=args.data_dir)
    x, y = test.x[:args.test_limit], test.y[:args.test_limit]
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise SystemExit(f"{args.run}: its test images are not in [0, 1] (an input layer rate-codes them so)")
    steps = [int(t) for t in args.steps.split(",") if t]
    ann = rounded_accuracy(model, x, y, None)
    rows = {t: rounded_accuracy(model, x, y, t) for t in steps}
    print(f"{args.run}: ANN {100 * ann:.2f} % on {len(x)} test images; on the images rounded to 1/T:")
    print("  T  " + "  ".join(f"{t:>6}" for t in steps))
    print("  %  " + "  ".join(f"{100 * rows[t]:6.2f}" for t in steps))
    if args.out is not None:
        write_text(args.out, json.dumps({"run": str(args.run), "test_images": len(x), "ann_accuracy": ann,
                                         "rounded_accuracy": {str(t): a for t, a in rows.items()},
                                         "command": " ".join(sys.argv)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
