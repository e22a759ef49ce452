"""The ``neurosim`` command line: ``export`` (the main job), ``convert``, ``run`` (measure any
netlist), ``train-bntt``, the interop commands and ``info``.

This module holds the parser, maps each command's arguments onto library calls
(:mod:`neurosim.workflow`, :mod:`neurosim.bntt.workflow`, :mod:`neurosim.commands`, ...) and
prints; errors become ``neurosim: error: ...`` and exit code 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence, Union

import neurosim

from neurosim.commands.outputs import RUNS, default_out
from neurosim.commands.summary import bntt_summary, report_summary
from neurosim.convert import CHANNEL_RULES, DEFAULT_PERCENTILE, DEFAULT_RULE, INPUT_CODINGS, RULES
from neurosim.data.augment import AUGMENTS
from neurosim.data.encodings import ENCODINGS, SPIKE_ENCODINGS
from neurosim.data.timing import TIMINGS
from neurosim.device import HELP as DEVICE_HELP
from neurosim.device import device_arg
from neurosim.dynamics import MODES
from neurosim.errors import NeurosimError
from neurosim.data.npy_input import LAYOUTS, TIME_AXES
from neurosim.netlist.schema import MAX_TIMESTEPS

DEFAULT_OUT = Path("runs/digits")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``neurosim: error: ...`` and where the options are listed)."""

    def error(self, message: str) -> NoReturn:
        print(f"neurosim: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _count(text: str) -> int:
    value = _positive_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _steps(text: str) -> int:
    value = _positive_int(text)
    if not 1 <= value <= MAX_TIMESTEPS:
        raise argparse.ArgumentTypeError(f"time steps must be between 1 and {MAX_TIMESTEPS}, got {value}")
    return value


def _sweep(text: str) -> list[int]:
    try:
        values = [_steps(t) for t in text.replace(" ", "").split(",") if t]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} in '{text}'") from None
    if not values:
        raise argparse.ArgumentTypeError("expected time steps separated by commas, e.g. 8,16,32")
    return sorted(set(values))


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value >= 0:                  # NaN too
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _lava_samples(text: str) -> Union[int, str]:
    """``--lava-samples``: a number >= 0, or ``all`` (the whole test split:
    :data:`neurosim.evaluate.LAVA_ALL`, not imported here: it loads PyTorch)."""
    return "all" if text.strip().lower() == "all" else _positive_int(text)


def _lava_modes(text: str) -> tuple[str, ...]:
    """``--lava-modes``: a comma-separated subset of ``fixed,float``."""
    modes = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    bad = [m for m in modes if m not in MODES]
    if not modes or bad:
        raise argparse.ArgumentTypeError(f"expected fixed, float or fixed,float, got {text!r}")
    return modes


def _add_lava_args(p: argparse.ArgumentParser, default_samples: Union[int, str], implied: bool = False,
                   whole_split: bool = True, workers: bool = False) -> None:
    default = None if implied else default_samples
    p.add_argument("--lava-samples", type=_lava_samples if whole_split else _positive_int, default=default,
                   metavar="N|all" if whole_split else "N",
                   help="test samples also run on Lava's CPU simulator (batched graphs) and compared spike for spike "
                        "with the reference, in fixed_pt and floating_pt"
                        + (" (--lava-modes)" if workers else "")
                        + (" (all: the whole test split)" if whole_split else "") + f" (default {default_samples}"
                        + (" with --lava; a number > 0 implies --lava" if implied else "; 0 = skip") + ")")
    p.add_argument("--lava-timeout", type=_positive_float, default=None,
                   help="seconds before a Lava run is stopped and reported as failed (default: estimated)")
    if workers:
        p.add_argument("--lava-workers", type=_count, default=1,
                       help="Lava worker processes per mode (fixed_pt and floating_pt run side by side), each on "
                            "its share of the samples' batches (default 1)")
        p.add_argument("--lava-modes", type=_lava_modes, default=MODES, metavar="fixed,float",
                       help="Lava's numeric modes to check, side by side: fixed (fixed_pt), float (floating_pt) or "
                            "both (default fixed,float)")


def _add_sweep_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sweep", type=_sweep, default=None, metavar="T1,T2,...",
                   help="time steps to report accuracy, spikes, SynOps and energy at, all read from one run "
                        "(default: 4, 8, 16, ... up to --steps, and --steps)")


def _add_convert_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--model", required=required, default=None,
                   help="FILE.py:NAME (the file's folder is importable) or package.module:NAME: a torch.fx-traceable "
                        "nn.Module class or a function returning one" + ("" if required else
                        " (default: the main job trains its own digits CNN)"))
    p.add_argument("--model-args", default=None, metavar="JSON",
                   help="keyword arguments for NAME, a JSON object, e.g. '{\"num_classes\": 10}'")
    p.add_argument("--weights", type=Path, default=None, help="its trained state_dict (torch.save), or a neurosim "
                   "checkpoint (without it the untrained initial weights are converted, with a warning)")
    p.add_argument("--dataset", default=None if not required else "mnist",
                   help="digits | mnist | fashion-mnist | cifar10 (default " + ("mnist)" if required else
                        "digits; with --model only)"))
    p.add_argument("--data-dir", default=None, help="where the data set's files are (default ../shared/datasets)")
    p.add_argument("--reset", choices=("soft", "hard"), default="soft", help="neuron reset (default soft: RMP)")
    p.add_argument("--v-init-half", action=argparse.BooleanOptionalAction, default=None,
                   help="start every neuron at half its threshold (default: on for the main job and for a model "
                        "trained with QCFS activations, whose trained thresholds are used; off otherwise)")
    p.add_argument("--alpha", type=float, default=1.0, help="global scale of every threshold (default 1)")
    p.add_argument("--no-fold-pool", action="store_true", help="keep average pooling as spiking layers")
    p.add_argument("--bias-onset", action=argparse.BooleanOptionalAction, default=True,
                   help="switch each layer's bias on at the step its first input arrives (default on; "
                        "--no-bias-onset writes no schedule, as stock netx needs: docs/interop.md)")
    p.add_argument("--align-joins", action=argparse.BooleanOptionalAction, default=True,
                   help="delay the projections into each residual join so that all its branches arrive at the "
                        "same step (default on; --no-align-joins keeps Lava's one step per projection, where a "
                        "shortcut arrives early: docs/netlist.md)")
    p.add_argument("--input-coding", choices=INPUT_CODINGS, default=INPUT_CODINGS[0],
                   help="how the SNN takes the image: spikes (default) of IF input neurons driven by the pixels; "
                        "analog: the first conv or dense layer is computed on the host and drives the first "
                        "layer's neurons every step, as the RMP and QCFS papers do (Lava and the simulator run it; "
                        "stock netx, NIR and Loihi 2 take spikes only: docs/conversion.md)")
    p.add_argument("--bias-correction", type=_positive_int, default=None, metavar="T",
                   help="after balancing, correct every hidden layer's bias per channel so that its simulated "
                        "rate over T steps of its own matches the ANN's on 256 calibration images (SNN "
                        "calibration, Li et al. 2021: one simulation per layer; best near that T, "
                        "docs/conversion.md)")
    p.add_argument("--bias-correction-passes", type=_positive_int, default=1, metavar="N",
                   help="with --bias-correction: measure and correct each layer N times before the next one "
                        "(default 1; each pass corrects what the previous one left, at one more simulation per "
                        "layer and pass; 2 was the best at T = 32 on the CIFAR-10 ResNet-20, docs/conversion.md)")
    p.add_argument("--readout-reset", choices=("soft", "hard"), default=None,
                   help="the output layer's reset (default soft: the readout integrates, count x threshold + v "
                        "is its summed current); hard: a spiking layer like the others, which stock lava-dl netx "
                        "builds (with --reset hard --no-bias-onset: docs/interop.md)")
    p.add_argument("--calib-samples", type=_count, default=None,
                   help="training samples for threshold balancing (default 2000; the main job: all)")
    p.add_argument("--limit", type=_count, default=None, help="use only the first N test samples")
    _add_sweep_arg(p)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=_count, default=None,
                        help="threads for torch and the simulator's kernels (default: the cores available, "
                             "or OMP_NUM_THREADS); idle threads sleep instead of spinning (docs/benchmarks.md)")
    common.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                        help="no progress bars (they are drawn only on a terminal anyway)")
    parser = _Parser(prog="neurosim", description="Low-latency SNNs from training to "
                     "neuromorphic deployment: RMP conversion, HDF5 netlists, Lava, SynOps.")
    parser.add_argument("--version", action="version", version=f"neurosim {neurosim.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, **kw) -> argparse.ArgumentParser:     # every command takes the common options
        return sub.add_parser(name, parents=[common], **kw)

    ex = command("export", help="the main job: train the digits ANN, convert to RMP-SNN, export "
                        "the netlist, run it (reference + Lava) and write report.json/report.png",
                        description="Train a small CNN on scikit-learn's 8x8 digits, convert it to an SNN of "
                        "RMP (soft-reset IF) neurons with layer-wise threshold balancing, export an HDF5 "
                        "netlist (netx layout), run it on the reference simulator and on Lava over the whole "
                        "test split, and report accuracy, spikes, SynOps and energy.")
    ex.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ex.add_argument("--steps", type=_steps, default=None, help=f"time steps T, 1..{MAX_TIMESTEPS} (default 64)")
    ex.add_argument("--epochs", type=_count, default=None, help="ANN training epochs (default 60)")
    ex.add_argument("--rule", choices=RULES, default=DEFAULT_RULE,
                    help=f"threshold balancing rule (default {DEFAULT_RULE})")
    ex.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE,
                    help=f"percentile for --rule percentile and channel-percentile (default {DEFAULT_PERCENTILE}; "
                         "SpikingJelly's channel-wise recipe uses 99.9)")
    ex.add_argument("--activity-l1", type=_nonnegative_float, default=None,
                    help="weight of the L1 penalty on the ANN's ReLU outputs while training (fewer spikes after "
                         "conversion; default 3e-4, the recipe's; 0: off)")
    ex.add_argument("--seed", type=_positive_int, default=None,
                    help="seed of the ANN's initial weights and sample order (default 0, the recipe's)")
    ex.add_argument("--retrain", action="store_true", help="ignore an existing checkpoint and train afresh")
    _add_lava_args(ex, "all")
    _add_convert_args(ex, required=False)

    cv = command("convert", help="convert your own trained model (FILE.py:CLASS + state_dict) to an RMP "
                        "netlist and measure it (as export does for the digits)",
                        description="Trace a trained PyTorch model with torch.fx, convert it to integrate-and-fire "
                        "neurons with threshold balancing on training samples, export network.net and measure it "
                        "on the test split (reference simulator; Lava on a few samples): report.json/report.png.")
    _add_convert_args(cv, required=True)
    cv.add_argument("--out", type=Path, default=Path("runs/convert"), help="output folder (default runs/convert)")
    cv.add_argument("--steps", type=_steps, default=64, help=f"time steps T, 1..{MAX_TIMESTEPS} (default 64)")
    cv.add_argument("--rule", choices=RULES, default=DEFAULT_RULE,
                    help=f"threshold balancing rule (default {DEFAULT_RULE}; snn: the SNN-based layer-by-layer "
                         "rule over --steps steps)")
    cv.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE,
                    help=f"percentile for --rule percentile and channel-percentile (default {DEFAULT_PERCENTILE}; "
                         "SpikingJelly's channel-wise recipe uses 99.9)")
    cv.add_argument("--device", type=device_arg, default="cpu",
                    help="where the ANN passes of threshold calibration compute (the SNN is simulated and "
                         f"measured on the CPU: the simulator's fixed-point kernels are CPU code): {DEVICE_HELP}")
    _add_lava_args(cv, 5, workers=True)

    run = command("run", help="run a netlist on the reference simulator (and Lava with --lava) "
                         "and print the report",
                         description="Validate and run any netlist neurosim can read on a test split.")
    run.add_argument("netlist", type=Path, help="HDF5 netlist (netx layout)")
    run.add_argument("--dataset", default=None, help="digits | mnist | fashion-mnist | nmnist | cifar10 (default: the "
                     "netlist's metadata)")
    run.add_argument("--data-dir", default=None, help="folder with the idx files for mnist/fashion-mnist")
    run.add_argument("--steps", type=_steps, default=None,
                     help=f"time steps T, 1..{MAX_TIMESTEPS} (default: the netlist's metadata, else 64)")
    run.add_argument("--mode", choices=MODES, default="fixed", help="numeric mode (fixed)")
    run.add_argument("--device", type=device_arg, default="cpu",
                     help="where --mode float computes its synaptic maps (the neurons, and all of --mode fixed, "
                          f"are CPU kernels): {DEVICE_HELP}")
    run.add_argument("--limit", type=_count, default=None, help="use only the first N test samples")
    run.add_argument("--lava", action="store_true", help="also run on Lava (see --lava-samples)")
    run.add_argument("--out", type=Path, default=None, help="folder for NET-report.json/png "
                     f"(default {RUNS}/<the netlist's folder name>)")
    run.add_argument("--encoding", choices=(*ENCODINGS, *SPIKE_ENCODINGS), default=None,
                     help="how --dataset images drive the net: current (the image in [0, 1]) | bootstrap "
                          "(lava-dl's bootstrap tutorial: (image - 0.5) / 0.5 on SLAYER's 8-bit grid) for a net with an "
                          "input layer; rate (Bernoulli spikes, the pixel the probability per step) for a spike-input "
                          "net (default: the netlist's metadata, e.g. train-bntt's Poisson recipe; bootstrap for a "
                          "lava-dl tutorial export with an input layer; else current)")
    run.add_argument("--timing", choices=TIMINGS, default="auto",
                     help="lava: the netlist's own time (stock netx); slayer: each layer's bias starts at its depth, "
                          "as in SLAYER training (default auto: slayer for lava-dl tutorial exports, else lava)")
    run.add_argument("--input", type=Path, default=None, metavar="FILE.npy",
                     help="run on your own array instead of a data set: spikes (T, *shape) / (N, T, *shape) for a net "
                          "without input layer, constant samples (*shape) / (N, *shape) for a net with one "
                          "(docs/netx-run.md)")
    run.add_argument("--time-axis", choices=TIME_AXES, default="first",
                     help="--input spikes: time before the neuron axes (first, neurosim) or after them (last, lava-dl)")
    run.add_argument("--layout", choices=LAYOUTS, default="chw",
                     help="--input spatial axes in (C, H, W) order (chw) or Lava's (W, H, C) (whc)")
    run.add_argument("--raw-current", action="store_true",
                     help="--input holds the input neurons' bias current in mantissas (netx's bias_mant), "
                          "not the sample x of weight * x + bias")
    run.add_argument("--save-spikes", type=Path, default=None, metavar="DIR",
                     help="--input runs: write readout.npy and layer<i>.npy (N, T, *shape) spikes into DIR")
    run.add_argument("--backend", choices=("cpu", "loihi2"), default="cpu",
                     help="cpu: the simulator (default); loihi2: the data set's samples on a Loihi 2 through Lava's "
                          "Loihi2HwCfg (needs Intel's Loihi extension; refused at once without it)")
    _add_sweep_arg(run)
    _add_lava_args(run, 5, implied=True, workers=True)

    bt = command("train-bntt", help="train an SNN from scratch with BNTT (SLAYER synapses), export the "
                        "netlist (BNTT folded into per-step scale and bias) and measure it",
                        description="Train a spiking net with Batch Normalization Through Time (Kim & Panda 2021) on "
                        "Poisson-coded images or binned events, resumably (bntt.pt); export network.net; run it on the "
                        "reference simulator and Lava; write report.json/report.png with the BNTT section (model, float "
                        "and fixed netlist accuracy, early exit). Several processes: torchrun -m neurosim train-bntt ...")
    bt.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist | mnist | nmnist | cifar10 | digits")
    bt.add_argument("--data-dir", default=None, help="where the data set's files are (default ../shared/datasets)")
    bt.add_argument("--steps", type=_steps, default=25, help="time steps T (default 25)")
    bt.add_argument("--epochs", type=_positive_int, default=10, help="training epochs (default 10)")
    bt.add_argument("--arch", default="cnn", help="vgg9 | cnn | mlp (neurosim/architectures/bntt.py; default cnn)")
    bt.add_argument("--width", type=_positive_float, default=1.0, help="channel width multiplier (default 1)")
    bt.add_argument("--norm", choices=("bntt", "shared", "none"), default="bntt",
                    help="BNTT (default), one BN shared over time, or none")
    bt.add_argument("--reset", choices=("soft", "hard"), default="soft", help="neuron reset (default soft, the paper's)")
    bt.add_argument("--leak", type=_positive_float, default=0.95, help="membrane leak factor lambda (default 0.95)")
    bt.add_argument("--lr", type=_positive_float, default=0.1, help="SGD learning rate (default 0.1)")
    bt.add_argument("--augment", choices=AUGMENTS, default="none",
                    help="training augmentation of images: crop-flip is the official BNTT code's random crop of the "
                         "4-pixel padded image and horizontal flip (default none)")
    bt.add_argument("--batch-size", type=_positive_int, default=64, help="global batch size (default 64)")
    bt.add_argument("--seed", type=_positive_int, default=0)
    bt.add_argument("--limit", type=_count, default=None, help="train on the first N samples")
    bt.add_argument("--test-limit", type=_count, default=2000,
                    help="measure on the first N test samples (default 2000)")
    bt.add_argument("--out", type=Path, default=Path("runs/bntt"), help="output folder (default runs/bntt)")
    bt.add_argument("--device", type=device_arg, default="cpu",
                    help="where the SLAYER model trains and its own accuracy is measured (under torchrun, cuda is "
                         "each process's LOCAL_RANK GPU, NCCL); the export, the simulator (fixed point and float) "
                         f"and Lava run on the CPU: {DEVICE_HELP}")
    _add_lava_args(bt, 3, workers=True)

    nx = command("export-netx", help="write a netlist so that stock lava-dl netx loads it with the same "
                        "spikes, or say which layer netx cannot express and why",
                        description="Check that NET holds only what lava-dl's netx.hdf5.Network builds (a chain of "
                        "dense/conv layers of CUBA neurons with hard reset, v = 0 at the start, integer mantissas, no "
                        "schedule, join, pool or identity layer; RMP with hard reset is written as CUBA with iDecay "
                        "4096) and write it with no neurosim v2 key (docs/interop.md).")
    nx.add_argument("netlist", type=Path, help="neurosim netlist")
    nx.add_argument("out", type=Path, help="netx file to write")

    en = command("export-nir", help="write a netlist as a NIR graph (nir 1.0) that snnTorch 1.0 loads "
                 "(reset, vInit and the one-step synaptic delay kept in node metadata)",
                 description="Write NET as a NIR file. Default (--consumer snntorch): only nodes snnTorch 1.0's "
                 "import_from_nir loads (LIF/CubaLIF, Affine/Linear, Conv2d, Flatten; the input scale folded into a "
                 "1x1 conv or affine); neurosim.interop.nir_io.to_snntorch restores the soft reset. --consumer nir: "
                 "NIR's own nodes (IF, Scale, SumPool2d, v_leak). What is lost per consumer: docs/interop.md, NIR.")
    en.add_argument("netlist", type=Path, help="neurosim netlist")
    en.add_argument("out", type=Path, help="NIR file to write")
    en.add_argument("--dt", type=_positive_float, default=None,
                    help="seconds per step for NIR's time constants (default 1e-4, snnTorch's)")
    en.add_argument("--consumer", choices=("snntorch", "nir"), default="snntorch",
                    help="snntorch (default): only nodes snnTorch 1.0's import_from_nir loads; nir: NIR's own nodes "
                         "(IF, Scale, SumPool2d, v_leak), needed for --dt other than 1e-4 and for biases on CUBA "
                         "layers with iDecay < 4096")

    im = command("import-nir", help="read a NIR graph (from snnTorch, Norse, export-nir, ...) into a netlist",
                        description="Read a NIR file into a neurosim netlist (float weights; threshold, decays and "
                        "reset as in docs/interop.md, section NIR); what neurosim cannot run is refused naming the "
                        "node.")
    im.add_argument("nir", type=Path, help="NIR file")
    im.add_argument("out", type=Path, help="netlist to write")
    im.add_argument("--dt", type=_positive_float, default=None,
                    help="seconds per step (default: the one export-nir wrote, else 1e-4, snnTorch's)")

    lr = command("loihi2-report", help="per-layer Loihi 2 deployment report: neurons, synapses, fan-in/out, "
                        "native or custom neuron program, number formats, neuro-core estimate",
                        description="Print the Loihi 2 deployment report of NET as a table and write it as JSON "
                        "(limits: published figures and stated assumptions, docs/interop.md).")
    lr.add_argument("netlist", type=Path)
    lr.add_argument("--json", type=Path, default=None,
                    help=f"where to write the JSON (default {RUNS}/<the netlist's folder name>/NET.loihi2.json)")

    qz = command("quantize-loihi2", help="scale and round a (float) netlist to Loihi 2's number formats",
                        description="Per layer, multiply incoming weights, bias, threshold and vInit by one factor "
                        "(spikes unchanged in float mode) so the largest weight lands on the 8-bit grid, then round; "
                        "write the result (docs/interop.md).")
    qz.add_argument("netlist", type=Path)
    qz.add_argument("out", type=Path)
    qz.add_argument("--force", action="store_true",
                    help="rescale and round even a netlist that already fits Loihi 2's formats (by default it is "
                         "written unchanged: rescaling an integer net only moves its spikes)")

    info = command("info", help="validate a netlist and print its layers")
    info.add_argument("netlist", type=Path)
    return parser


def _print_outputs(report: dict) -> None:
    print(f"netlist  {report['netlist']}\nreport   {report['report_paths'][0]}\nplot     {report['report_paths'][1]}")


def _check_correction_args(args: argparse.Namespace) -> None:
    """``--bias-correction-passes`` only with ``--bias-correction``, refused before any work."""
    if args.bias_correction is None and args.bias_correction_passes != 1:
        raise NeurosimError("--bias-correction-passes needs --bias-correction T (the T the biases are corrected at)")


def _cmd_export(args: argparse.Namespace) -> int:
    from neurosim.workflow import export_and_measure
    _check_correction_args(args)
    if args.model is not None:              # a user's model: the convert path, digits defaults otherwise
        args.dataset = args.dataset or "digits"
        args.steps = args.steps or 64
        return _cmd_convert(args)
    given = [flag for flag, value in (("--weights", args.weights), ("--dataset", args.dataset),
                                      ("--data-dir", args.data_dir), ("--model-args", args.model_args))
             if value is not None]
    if given:
        raise NeurosimError(f"{', '.join(given)} need(s) --model FILE.py:NAME (the main job trains its own CNN "
                            "on the embedded digits)")
    report = export_and_measure(args.out, steps=args.steps or None, epochs=args.epochs,
                                activity_l1=args.activity_l1, seed=args.seed, rule=args.rule,
                                percentile=args.percentile, lava_samples=args.lava_samples,
                                lava_timeout=args.lava_timeout, retrain=args.retrain, reset=args.reset,
                                v_init_half=args.v_init_half, alpha=args.alpha, fold_pool=not args.no_fold_pool,
                                align_bias=args.bias_onset, align_joins=args.align_joins,
                                readout_reset=args.readout_reset, input_coding=args.input_coding,
                                bias_correction=args.bias_correction,
                                bias_correction_passes=args.bias_correction_passes,
                                calib_samples=args.calib_samples, limit=args.limit, sweep=args.sweep)
    print(report_summary(report))
    _print_outputs(report)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from neurosim.device import resolve_device
    from neurosim.user_model import parse_model_args
    from neurosim.workflow import convert_and_measure

    resolve_device(args.device)             # no GPU for --device cuda: one line, before any work
    _check_correction_args(args)

    model_args = parse_model_args(args.model_args)
    report = convert_and_measure(args.model, args.weights, args.dataset, args.out, data_dir=args.data_dir,
                                 steps=args.steps, reset=args.reset, rule=args.rule, percentile=args.percentile,
                                 v_init_half=args.v_init_half, alpha=args.alpha, fold_pool=not args.no_fold_pool,
                                 align_bias=args.bias_onset, align_joins=args.align_joins,
                                 readout_reset=args.readout_reset, input_coding=args.input_coding,
                                 bias_correction=args.bias_correction,
                                 bias_correction_passes=args.bias_correction_passes,
                                 calib_samples=2000 if args.calib_samples is None else args.calib_samples,
                                 limit=args.limit, lava_samples=args.lava_samples, lava_timeout=args.lava_timeout,
                                 model_args=model_args, sweep=args.sweep, device=args.device,
                                 lava_workers=args.lava_workers, lava_modes=args.lava_modes)
    print(report_summary(report))
    hint = _convert_hint(args, report)
    if hint:
        print(hint)
    _print_outputs(report)
    return 0


def _convert_hint(args: argparse.Namespace, report: dict) -> Optional[str]:
    """A pointer to the setting that needs far fewer steps, when no swept T came within a
    point of the ANN with another one."""
    if (report.get("operating_point") or {}).get("timesteps") is not None or report.get("ann_accuracy") is None:
        return None
    if args.rule in CHANNEL_RULES and args.v_init_half:
        return None
    return ("hint: no T within 1 point of the ANN; channel-wise thresholds with every neuron starting at half its "
            "threshold usually need far fewer steps: --rule channel --v-init-half (the MNIST CNN of models/ at "
            "T = 32: 80.4 % with the defaults, 99.4 % with these; docs/conversion.md)")


def _check_run_device(args: argparse.Namespace) -> None:
    """``run --device``: one that torch sees, and a GPU only for ``--mode float``."""
    if args.device == "cpu":
        return
    from neurosim.device import resolve_device
    if resolve_device(args.device).type != "cpu" and args.mode == "fixed":
        raise NeurosimError(f"--device {args.device}: --mode fixed runs on the CPU (its kernels are CPU code); "
                            "add --mode float for a GPU")


def _cmd_run(args: argparse.Namespace) -> int:
    from neurosim.commands.run import dataset_input, loihi2_accuracy, run_dataset
    from neurosim.data.timing import apply_timing
    from neurosim.netlist import hdf5

    if args.backend == "loihi2":
        from neurosim.loihi2.backend import require_loihi2
        require_loihi2()                 # at once, before any data is loaded
        if args.input is not None:
            raise NeurosimError("--backend loihi2 runs --dataset samples; --input runs use the CPU simulator")
    lava_samples = (5 if args.lava else 0) if args.lava_samples is None else args.lava_samples
    _check_run_device(args)            # before any data is loaded
    net, timing = apply_timing(hdf5.load(args.netlist), args.timing)
    if args.input is not None:
        return _run_input(args, net, timing)
    for flag, given in (("--raw-current", args.raw_current), ("--save-spikes", args.save_spikes is not None)):
        if given:
            raise NeurosimError(f"{flag} applies to --input runs")
    test, steps, encoding = dataset_input(net, args.netlist, args.dataset, args.data_dir, args.encoding, args.steps,
                                          args.limit)
    if args.backend == "loihi2":
        acc = loihi2_accuracy(net, test, steps, args.lava_timeout)
        print(f"Loihi 2 (Loihi2HwCfg)   accuracy {100 * acc:.2f} % on {len(test.y)} samples, T={steps}")
        return 0
    report = run_dataset(net, args.netlist, test, steps, encoding=encoding, timing=timing, mode=args.mode,
                         sweep=args.sweep, lava_samples=lava_samples, lava_timeout=args.lava_timeout,
                         lava_workers=args.lava_workers, lava_modes=args.lava_modes, out=args.out,
                         device=args.device)
    print(f"input                   {encoding}; timing {timing}")
    print(report_summary(report))
    print(f"report   {report['report_paths'][0]}\nplot     {report['report_paths'][1]}")
    return 0


def _run_input(args: argparse.Namespace, net, timing: str) -> int:
    """``run NET --input FILE.npy``: the user's array through the simulator; spikes and
    readout printed per layer and, with ``--save-spikes``, written as ``.npy``."""
    from neurosim.commands.run import run_array
    from neurosim.data.npy_input import save_run

    for flag, given in (("--dataset", args.dataset), ("--encoding", args.encoding), ("--lava", args.lava),
                        ("--lava-samples", args.lava_samples), ("--lava-workers", args.lava_workers != 1),
                        ("--lava-modes", args.lava_modes != MODES),
                        ("--limit", args.limit), ("--sweep", args.sweep)):
        if given:
            raise NeurosimError(f"{flag} applies to data-set runs, not to --input")
    run = run_array(net, args.input, mode=args.mode, steps=args.steps, time_axis=args.time_axis, layout=args.layout,
                    raw_current=args.raw_current, record_spikes=args.save_spikes is not None, device=args.device)
    res = run.result
    print(f"{args.input}: {run.samples} sample(s), {run.steps} steps, {args.mode} mode, timing {timing}")
    for i in net.neuron_layers:
        print(f"  layer {i:2d} {net.layers[i].type_name:8s} spikes per sample {res.layer_spikes[i].mean():.1f}")
    print(f"output argmax (count * vth + v) {res.predictions[:10].tolist()}{' ...' if run.samples > 10 else ''}")
    if args.save_spikes is not None:
        paths = save_run(args.save_spikes, net, res.spikes, res.readout)
        print(f"saved    {len(paths)} arrays in {args.save_spikes}")
    return 0


def _cmd_train_bntt(args: argparse.Namespace) -> int:
    from neurosim.bntt.train import BNTTConfig
    from neurosim.bntt.workflow import launch_rank, train_and_deploy

    cfg = BNTTConfig(dataset=args.dataset, arch=args.arch, steps=args.steps, epochs=max(1, args.epochs),
                     batch_size=max(1, args.batch_size), lr=args.lr, norm=args.norm, leak=args.leak, reset=args.reset,
                     width=args.width, seed=args.seed, limit=args.limit, test_limit=args.test_limit,
                     data_dir=args.data_dir, augment=args.augment)
    rank = launch_rank()
    report = train_and_deploy(cfg, args.out, report_limit=args.test_limit, lava_samples=args.lava_samples,
                              lava_timeout=args.lava_timeout, lava_workers=args.lava_workers,
                              lava_modes=args.lava_modes, measure=rank == 0, device=args.device)
    if rank != 0:
        return 0
    print(bntt_summary(report, args.steps))
    _print_outputs(report)
    return 0


def _cmd_export_netx(args: argparse.Namespace) -> int:
    from neurosim.netlist import hdf5
    from neurosim.netlist.netx_compat import save_netx

    net = hdf5.load(args.netlist)
    path = save_netx(net, args.out, name=str(args.netlist))
    print(f"{path}: {len(net.neuron_layers)} neuron layers, netx-native (load with "
          "lava.lib.dl.netx.hdf5.Network)")
    return 0


def _cmd_export_nir(args: argparse.Namespace) -> int:
    from neurosim.interop.nir_io import DT, save_nir
    from neurosim.netlist import hdf5

    net = hdf5.load(args.netlist)
    path = save_nir(net, args.out, dt=args.dt or DT, consumer=args.consumer)
    print(f"{path}: {len(net.neuron_layers)} neuron layers as NIR (dt {args.dt or DT:g} s per step; reset, vInit "
          "and the one-step synaptic delay in node metadata 'neurosim')")
    return 0


def _cmd_import_nir(args: argparse.Namespace) -> int:
    from neurosim.interop.nir_io import load_nir
    from neurosim.netlist import hdf5

    net = load_nir(args.nir, dt=args.dt)
    hdf5.save(net, args.out)
    for note in net.meta.get("nir_import", {}).get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    print(f"{args.out}: {len(net.neuron_layers)} neuron layers from {args.nir} "
          f"({'input layer' if net.has_input_layer else f'spike input {tuple(net.input_shape)}'})")
    return 0


def _cmd_loihi2_report(args: argparse.Namespace) -> int:
    from neurosim.io.atomic import write_json
    from neurosim.loihi2.report import deployment_report, format_table
    from neurosim.netlist import hdf5

    report = deployment_report(hdf5.load(args.netlist))
    path = args.json or default_out(args.netlist) / f"{args.netlist.stem}.loihi2.json"
    write_json(path, report)
    print(format_table(report))
    print(f"report   {path}")
    return 0


def _cmd_quantize_loihi2(args: argparse.Namespace) -> int:
    from neurosim.loihi2.quantize import fit_report, quantize, rescale_reasons
    from neurosim.netlist import hdf5

    net = hdf5.load(args.netlist)
    misfits = fit_report(net)
    reasons = rescale_reasons(net, force=args.force)
    q, _ = quantize(net, force=args.force)
    hdf5.save(q, args.out)
    if not reasons:
        print(f"{args.netlist}: fits Loihi 2 formats already; written unchanged (--force rescales it anyway)")
    else:
        head = f"{len(misfits)} layer(s) do not fit; rescaled:" if misfits else "fits; rescaled anyway (--force):"
        print(f"{args.netlist}: {head}")
        for line in reasons.values():
            print(f"  {line}")
    print(f"netlist  {args.out}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from neurosim.commands.info import describe
    from neurosim.netlist import hdf5

    print(describe(hdf5.load(args.netlist), args.netlist))
    return 0


COMMANDS = {"export": _cmd_export, "convert": _cmd_convert, "run": _cmd_run, "train-bntt": _cmd_train_bntt,
            "export-netx": _cmd_export_netx, "export-nir": _cmd_export_nir, "import-nir": _cmd_import_nir,
            "loihi2-report": _cmd_loihi2_report,
            "quantize-loihi2": _cmd_quantize_loihi2, "info": _cmd_info}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from neurosim.lava.lifetime import Terminated     # standard library only: no Lava import

    from neurosim import progress, threads

    args = build_parser().parse_args(argv)
    progress.set_enabled(False if args.quiet else None)
    try:
        threads.configure(args.threads)
        return COMMANDS[args.command](args)
    except NeurosimError as exc:
        print(f"neurosim: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:      # a folder that is a file, no permission, disk full: the user's to fix
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"neurosim: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurosim: interrupted; files already written are complete (atomic writes)", file=sys.stderr)
        return 130
    except Terminated as exc:   # SIGTERM/SIGHUP during a Lava run, after its clean-up
        print(f"neurosim: {exc}; the Lava run was stopped, its processes and shared memory removed",
              file=sys.stderr)
        return exc.code
