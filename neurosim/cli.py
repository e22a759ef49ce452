"""The ``neurosim`` command line: ``export`` (the main job), ``run`` (measure any netlist), ``info``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from neurosim.convert import DEFAULT_PERCENTILE, DEFAULT_RULE, RULES
from neurosim.data.encodings import ENCODINGS
from neurosim.data.timing import TIMINGS
from neurosim.errors import NeurosimError
from neurosim.io.npy_input import LAYOUTS, TIME_AXES
from neurosim.netlist.schema import MAX_TIMESTEPS

DEFAULT_OUT = Path("runs/digits")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _steps(text: str) -> int:
    value = _positive_int(text)
    if not 1 <= value <= MAX_TIMESTEPS:
        raise argparse.ArgumentTypeError(f"time steps must be between 1 and {MAX_TIMESTEPS}, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _add_lava_args(p: argparse.ArgumentParser, default_samples: int) -> None:
    p.add_argument("--lava-samples", type=_positive_int, default=default_samples,
                   help="test samples also run on Lava's CPU simulator and compared spike for spike "
                        f"with the reference, in both fixed_pt and floating_pt (default {default_samples}; 0 = skip)")
    p.add_argument("--lava-timeout", type=_positive_float, default=None,
                   help="seconds before a Lava run is stopped and reported as failed (default: estimated)")


def _add_convert_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--model", required=required, default=None, help="FILE.py:CLASS, a torch.fx-traceable "
                   "nn.Module built without arguments")
    p.add_argument("--weights", type=Path, default=None, help="its trained state_dict (torch.save), or a neurosim "
                   "checkpoint")
    p.add_argument("--dataset", default=None if not required else "mnist",
                   help="digits | mnist | fashion-mnist | cifar10 (default mnist)")
    p.add_argument("--data-dir", default=None, help="where the data set's files are (default ../shared/datasets)")
    p.add_argument("--reset", choices=("soft", "hard"), default="soft", help="neuron reset (default soft: RMP)")
    p.add_argument("--v-init-half", action=argparse.BooleanOptionalAction, default=None,
                   help="start every neuron at half its threshold (default: on for a model trained with "
                        "QCFS activations, whose trained thresholds are used, off otherwise)")
    p.add_argument("--alpha", type=float, default=1.0, help="global scale of every threshold (default 1)")
    p.add_argument("--no-fold-pool", action="store_true", help="keep average pooling as spiking layers")
    p.add_argument("--calib-samples", type=_positive_int, default=2000,
                   help="training samples for threshold balancing (default 2000)")
    p.add_argument("--limit", type=_positive_int, default=None, help="use only the first N test samples")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurosim", description="Low-latency SNNs from training to "
                                     "neuromorphic deployment: RMP conversion, HDF5 netlists, Lava, SynOps.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ex = sub.add_parser("export", help="the main job: train the digits ANN, convert to RMP-SNN, export "
                        "the netlist, run it (reference + Lava) and write report.json/report.png",
                        description="Train a small CNN on scikit-learn's 8x8 digits, convert it to an SNN of "
                        "RMP (soft-reset IF) neurons with layer-wise threshold balancing, export an HDF5 "
                        "netlist (netx layout), run it on the reference simulator over the whole test split "
                        "and on Lava for a few samples, and report accuracy, spikes, SynOps and energy.")
    ex.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ex.add_argument("--steps", type=_steps, default=None, help=f"time steps T, 1..{MAX_TIMESTEPS} (default 64)")
    ex.add_argument("--epochs", type=_positive_int, default=None, help="ANN training epochs (default 60)")
    ex.add_argument("--rule", choices=RULES, default=DEFAULT_RULE,
                    help=f"threshold balancing rule (default {DEFAULT_RULE})")
    ex.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE,
                    help=f"percentile for --rule percentile (default {DEFAULT_PERCENTILE})")
    ex.add_argument("--retrain", action="store_true", help="ignore an existing checkpoint and train afresh")
    _add_lava_args(ex, 10)
    _add_convert_args(ex, required=False)

    cv = sub.add_parser("convert", help="convert your own trained model (FILE.py:CLASS + state_dict) to an RMP "
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
                    help=f"percentile for --rule percentile (default {DEFAULT_PERCENTILE})")
    _add_lava_args(cv, 5)

    run = sub.add_parser("run", help="run a netlist on the reference simulator (and Lava with --lava) "
                         "and print the report",
                         description="Validate and run any netlist neurosim can read on a test split.")
    run.add_argument("netlist", type=Path, help="HDF5 netlist (netx layout)")
    run.add_argument("--dataset", default=None, help="digits | mnist | fashion-mnist | nmnist | cifar10 (default: the "
                     "netlist's metadata)")
    run.add_argument("--data-dir", default=None, help="folder with the idx files for mnist/fashion-mnist")
    run.add_argument("--steps", type=_steps, default=None,
                     help=f"time steps T, 1..{MAX_TIMESTEPS} (default: the netlist's metadata, else 64)")
    run.add_argument("--mode", choices=("fixed", "float"), default="fixed", help="numeric mode (fixed)")
    run.add_argument("--limit", type=_positive_int, default=None, help="use only the first N test samples")
    run.add_argument("--lava", action="store_true", help="also run on Lava (see --lava-samples)")
    run.add_argument("--out", type=Path, default=None, help="folder for report.json/png "
                     "(default: next to the netlist)")
    run.add_argument("--encoding", choices=ENCODINGS, default=None,
                     help="how --dataset images drive the input layer: current (the image in [0, 1]) | bootstrap "
                          "(lava-dl's bootstrap tutorial: (image - 0.5) / 0.5 on SLAYER's 8-bit grid) (default: the "
                          "netlist's metadata; bootstrap for a lava-dl tutorial export with an input layer; else current)")
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
    _add_lava_args(run, 5)

    bt = sub.add_parser("train-bntt", help="train an SNN from scratch with BNTT (SLAYER synapses), export the "
                        "netlist (BNTT folded into per-step scale and bias) and measure it",
                        description="Train a spiking net with Batch Normalization Through Time (Kim & Panda 2021) on "
                        "Poisson-coded images or binned events, resumably (bntt.pt); export network.net; run it on the "
                        "reference simulator and Lava; write report.json/report.png with the BNTT section (model, float "
                        "and fixed netlist accuracy, early exit). Several processes: torchrun -m neurosim train-bntt ...")
    bt.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist | mnist | nmnist | cifar10 | digits")
    bt.add_argument("--data-dir", default=None, help="where the data set's files are (default ../shared/datasets)")
    bt.add_argument("--steps", type=_steps, default=25, help="time steps T (default 25)")
    bt.add_argument("--epochs", type=_positive_int, default=10, help="training epochs (default 10)")
    bt.add_argument("--arch", default="cnn", help="vgg9 | cnn | mlp (models/bntt.py; default cnn)")
    bt.add_argument("--width", type=_positive_float, default=1.0, help="channel width multiplier (default 1)")
    bt.add_argument("--norm", choices=("bntt", "shared", "none"), default="bntt",
                    help="BNTT (default), one BN shared over time, or none")
    bt.add_argument("--reset", choices=("soft", "hard"), default="soft", help="neuron reset (default soft, the paper's)")
    bt.add_argument("--leak", type=_positive_float, default=0.95, help="membrane leak factor lambda (default 0.95)")
    bt.add_argument("--lr", type=_positive_float, default=0.1, help="SGD learning rate (default 0.1)")
    bt.add_argument("--batch-size", type=_positive_int, default=64, help="global batch size (default 64)")
    bt.add_argument("--seed", type=_positive_int, default=0)
    bt.add_argument("--limit", type=_positive_int, default=None, help="train on the first N samples")
    bt.add_argument("--test-limit", type=_positive_int, default=2000,
                    help="measure on the first N test samples (default 2000)")
    bt.add_argument("--out", type=Path, default=Path("runs/bntt"), help="output folder (default runs/bntt)")
    bt.add_argument("--no-progress", action="store_true")
    _add_lava_args(bt, 3)

    nx = sub.add_parser("export-netx", help="write a netlist so that stock lava-dl netx loads it with the same "
                        "spikes, or say which layer netx cannot express and why",
                        description="Check that NET holds only what lava-dl's netx.hdf5.Network builds (a chain of "
                        "dense/conv layers of CUBA neurons with hard reset, v = 0 at the start, integer mantissas, no "
                        "schedule, join, pool or identity layer; RMP with hard reset is written as CUBA with iDecay "
                        "4096) and write it with no neurosim v2 key (docs/interop.md).")
    nx.add_argument("netlist", type=Path, help="neurosim netlist")
    nx.add_argument("out", type=Path, help="netx file to write")

    en = sub.add_parser("export-nir", help="write a netlist as a NIR graph (nir 1.0) for snnTorch, Norse, ... "
                        "(reset, vInit and the one-step synaptic delay kept in node metadata)",
                        description="Write NET as a NIR file: IF/LIF/CubaLIF neurons, Affine/Linear, Conv2d, "
                        "SumPool2d/AvgPool2d, Scale, Flatten; per-step schedules are refused naming the layer "
                        "(docs/interop.md, section NIR).")
    en.add_argument("netlist", type=Path, help="neurosim netlist")
    en.add_argument("out", type=Path, help="NIR file to write")
    en.add_argument("--dt", type=_positive_float, default=None,
                    help="seconds per step for NIR's time constants (default 1e-4, snnTorch's)")

    im = sub.add_parser("import-nir", help="read a NIR graph (from snnTorch, Norse, export-nir, ...) into a netlist",
                        description="Read a NIR file into a neurosim netlist (float weights; threshold, decays and "
                        "reset as in docs/interop.md, section NIR); what neurosim cannot run is refused naming the "
                        "node.")
    im.add_argument("nir", type=Path, help="NIR file")
    im.add_argument("out", type=Path, help="netlist to write")
    im.add_argument("--dt", type=_positive_float, default=None,
                    help="seconds per step (default: the one export-nir wrote, else 1e-4, snnTorch's)")

    lr = sub.add_parser("loihi2-report", help="per-layer Loihi 2 deployment report: neurons, synapses, fan-in/out, "
                        "native or custom neuron program, number formats, neuro-core estimate",
                        description="Print the Loihi 2 deployment report of NET as a table and write it as JSON "
                        "(limits: published figures and stated assumptions, docs/interop.md).")
    lr.add_argument("netlist", type=Path)
    lr.add_argument("--json", type=Path, default=None, help="where to write the JSON (default NET.loihi2.json)")

    qz = sub.add_parser("quantize-loihi2", help="scale and round a (float) netlist to Loihi 2's number formats",
                        description="Per layer, multiply incoming weights, bias, threshold and vInit by one factor "
                        "(spikes unchanged in float mode) so the largest weight lands on the 8-bit grid, then round; "
                        "write the result (docs/interop.md).")
    qz.add_argument("netlist", type=Path)
    qz.add_argument("out", type=Path)

    info = sub.add_parser("info", help="validate a netlist and print its layers")
    info.add_argument("netlist", type=Path)
    return parser


def _summary(report: dict) -> str:
    lines = []
    if report.get("ann_accuracy") is not None:
        lines.append(f"ANN accuracy            {100 * report['ann_accuracy']:.2f} %")
    lines.append(f"SNN accuracy (T={report['timesteps']:<3d})   {100 * report['snn_accuracy']:.2f} %  "
                 f"({report['test_samples']} test samples, {report['mode']} mode)")
    curve = report["accuracy_vs_timesteps"]
    lines.append("accuracy vs T           " + "  ".join(f"{t}:{100 * a:.1f}" for t, a in
                                                       sorted(curve.items(), key=lambda kv: int(kv[0]))))
    for tag, mism in report.get("lava_spike_mismatches", {}).items():
        lines.append(f"Lava {tag:<11s}        {mism} spike mismatches of {report['lava_spikes_compared'][tag]} "
                     f"spikes, {report['lava_samples']} samples, every layer")
    lines.append("spikes per sample       " + ", ".join(f"{k}={v:.0f}" for k, v in
                                                         report["spikes_per_sample_per_layer"].items()))
    lines.append(f"SynOps per sample       {report['synops_per_sample']:.4g}   "
                 f"(ANN MACs {report['ann_macs_per_sample']:.4g})")
    e = report["energy"]
    lines.append(f"energy per sample       45nm SNN {e['cmos45nm']['snn_j']:.3g} J, ANN {e['cmos45nm']['ann_j']:.3g} J;"
                 f" Loihi SNN {e['loihi']['snn_j']:.3g} J")
    return "\n".join(lines)


def _cmd_export(args: argparse.Namespace) -> int:
    from neurosim.workflow import export_and_measure
    if args.model is not None:              # a user's model: the convert path, digits defaults otherwise
        args.dataset = args.dataset or "digits"
        args.steps = args.steps or 64
        return _cmd_convert(args)
    if args.weights is not None or args.dataset is not None:
        raise NeurosimError("--weights and --dataset need --model FILE.py:CLASS (the digits job trains its own CNN)")
    report = export_and_measure(args.out, steps=args.steps or None, epochs=args.epochs, rule=args.rule,
                                percentile=args.percentile, lava_samples=args.lava_samples,
                                lava_timeout=args.lava_timeout, retrain=args.retrain)
    print(_summary(report))
    print(f"netlist  {report['netlist']}\nreport   {report['report_paths'][0]}\nplot     {report['report_paths'][1]}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from neurosim.workflow import convert_and_measure
    report = convert_and_measure(args.model, args.weights, args.dataset, args.out, data_dir=args.data_dir,
                                 steps=args.steps, reset=args.reset, rule=args.rule, percentile=args.percentile,
                                 v_init_half=args.v_init_half, alpha=args.alpha, fold_pool=not args.no_fold_pool,
                                 calib_samples=args.calib_samples, limit=args.limit,
                                 lava_samples=args.lava_samples, lava_timeout=args.lava_timeout)
    print(_summary(report))
    print(f"netlist  {report['netlist']}\nreport   {report['report_paths'][0]}\nplot     {report['report_paths'][1]}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from neurosim.data.dataset import Split, load_dataset
    from neurosim.data.encodings import encode, infer_encoding
    from neurosim.data.timing import apply_timing
    from neurosim.evaluate import evaluate, write_report
    from neurosim.netlist import hdf5

    if args.backend == "loihi2":
        from neurosim.loihi2.backend import require_loihi2
        require_loihi2()                 # at once, before any data is loaded
        if args.input is not None:
            raise NeurosimError("--backend loihi2 runs --dataset samples; --input runs use the CPU simulator")
    net, timing = apply_timing(hdf5.load(args.netlist), args.timing)
    if args.input is not None:
        return _run_input(args, net, timing)
    for flag, given in (("--raw-current", args.raw_current), ("--save-spikes", args.save_spikes is not None)):
        if given:
            raise NeurosimError(f"{flag} applies to --input runs")
    dataset = args.dataset or net.meta.get("dataset")
    if not dataset:
        raise NeurosimError(f"{args.netlist}: no data set recorded in the netlist; pass --dataset or --input FILE.npy")
    _, test = load_dataset(dataset, args.data_dir)
    if args.limit:
        test = Split(test.name, test.x[:args.limit], test.y[:args.limit])
    encoding = args.encoding or infer_encoding(net)
    if net.has_input_layer:
        test = Split(test.name, encode(encoding, test.x, net), test.y)
    elif args.encoding:
        raise NeurosimError(f"--encoding drives an 'input' layer; {args.netlist} takes spikes: use --input FILE.npy")
    steps = args.steps or int(net.meta.get("timesteps", 64))
    if args.backend == "loihi2":
        return _run_loihi2(net, test, steps, args.lava_timeout)
    report = evaluate(net, test, steps, ann_accuracy=net.meta.get("ann_accuracy"), mode=args.mode,
                      lava_samples=args.lava_samples if args.lava else 0,
                      lava_modes=("fixed", "float"), lava_timeout=args.lava_timeout)
    report.update({"netlist": str(args.netlist), "encoding": encoding if net.has_input_layer else None,
                   "timing": timing})
    json_path, png_path = write_report(report, args.out or args.netlist.parent, stem=f"{args.netlist.stem}-report")
    if net.has_input_layer:
        print(f"input encoding          {encoding}, timing {timing}")
    print(_summary(report))
    print(f"report   {json_path}\nplot     {png_path}")
    return 0


def _run_loihi2(net, test, steps: int, timeout: Optional[float]) -> int:
    """``run NET --backend loihi2``: the test samples on the chip, accuracy printed."""
    from neurosim.loihi2.backend import run_loihi2

    res = run_loihi2(net, test.x, steps, timeout=timeout)
    acc = float((res.predictions() == test.y).mean())
    print(f"Loihi 2 (Loihi2HwCfg)   accuracy {100 * acc:.2f} % on {len(test.y)} samples, T={steps}")
    return 0


def _run_input(args: argparse.Namespace, net, timing: str) -> int:
    """``run NET --input FILE.npy``: the user's array through the simulator; spikes and
    readout printed per layer and, with ``--save-spikes``, written as ``.npy``."""
    import numpy as np

    from neurosim.io.npy_input import load_npy, samples_from_array, save_run
    from neurosim.sim.simulator import Simulator

    for flag, given in (("--dataset", args.dataset), ("--encoding", args.encoding), ("--lava", args.lava),
                        ("--limit", args.limit)):
        if given:
            raise NeurosimError(f"{flag} applies to data-set runs, not to --input")
    if args.raw_current and not net.has_input_layer:
        raise NeurosimError("--raw-current needs a net with an 'input' layer; this one takes spikes")
    steps = args.steps or (int(net.meta.get("timesteps", 64)) if net.has_input_layer else None)
    x, steps = samples_from_array(load_npy(args.input), net, time_axis=args.time_axis, layout=args.layout,
                                  steps=steps, source=str(args.input))
    res = Simulator(net, args.mode).run(x, steps, raw_current=args.raw_current,
                                        record_spikes=args.save_spikes is not None)
    print(f"{args.input}: {len(x)} sample(s), {steps} steps, {args.mode} mode, timing {timing}")
    for i in net.neuron_layers:
        print(f"  layer {i:2d} {net.layers[i].type_name:8s} spikes per sample {res.layer_spikes[i].mean():.1f}")
    shown = np.argmax(res.readout, axis=1)[:10].tolist()
    print(f"output argmax (count * vth + v) {shown}{' ...' if len(x) > 10 else ''}")
    if args.save_spikes is not None:
        paths = save_run(args.save_spikes, net, res.spikes, res.readout)
        print(f"saved    {len(paths)} arrays in {args.save_spikes}")
    return 0


def _cmd_train_bntt(args: argparse.Namespace) -> int:
    import os

    from neurosim.bntt.train import BNTTConfig
    from neurosim.bntt.workflow import train_and_deploy
    from models.bntt import ARCHS

    if args.arch not in ARCHS:
        raise NeurosimError(f"--arch must be one of {', '.join(ARCHS)}, got '{args.arch}'")
    if not 0 < args.leak <= 1:
        raise NeurosimError(f"--leak must be in (0, 1], got {args.leak}")
    cfg = BNTTConfig(dataset=args.dataset, arch=args.arch, steps=args.steps, epochs=max(1, args.epochs),
                     batch_size=max(1, args.batch_size), lr=args.lr, norm=args.norm, leak=args.leak, reset=args.reset,
                     width=args.width, seed=args.seed, limit=args.limit, test_limit=args.test_limit,
                     data_dir=args.data_dir)
    rank = int(os.environ.get("RANK", "0"))
    report = train_and_deploy(cfg, args.out, report_limit=args.test_limit, lava_samples=args.lava_samples,
                              lava_timeout=args.lava_timeout, progress=not args.no_progress, measure=rank == 0)
    if rank != 0:
        return 0
    b = report["bntt"]
    print(_summary(report))
    print(f"BNTT                    SLAYER model {100 * b['model_accuracy']:.2f} %, float netlist "
          f"{100 * b['float_netlist_accuracy']:.2f} %, fixed netlist {100 * b['fixed_netlist_accuracy']:.2f} % "
          f"(latency {b['latency_steps']} steps)")
    if "early_exit_default" in b:
        ee = b["early_exit_default"]
        print(f"early exit (alpha {ee['alpha']})  step {ee['exit_step']} of {args.steps}")
    ce = b["calibrated_exit"]
    print(f"calibrated exit         step {ce['exit_step']} of {args.steps}: {100 * ce['accuracy']:.2f} % against "
          f"{100 * ce['full_accuracy']:.2f} % (chosen on {ce['calibration_samples']} training samples, "
          f"tolerance {100 * ce['tolerance']:.1f} point)")
    print(f"netlist  {report['netlist']}\nreport   {report['report_paths'][0]}\nplot     {report['report_paths'][1]}")
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
    path = save_nir(net, args.out, dt=args.dt or DT)
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
    path = args.json or args.netlist.with_suffix(".loihi2.json")
    write_json(path, report)
    print(format_table(report))
    print(f"report   {path}")
    return 0


def _cmd_quantize_loihi2(args: argparse.Namespace) -> int:
    from neurosim.loihi2.quantize import fit_report, quantize
    from neurosim.netlist import hdf5

    net = hdf5.load(args.netlist)
    before = fit_report(net)
    q, lams = quantize(net)
    hdf5.save(q, args.out)
    print(f"{args.netlist}: {'fits Loihi 2 formats already' if not before else f'{len(before)} layer(s) do not fit'}; "
          "scale per layer " + ", ".join(f"{i}:{lam:.4g}" for i, lam in lams.items()))
    print(f"netlist  {args.out}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import numpy as np

    from neurosim.netlist import hdf5
    from neurosim.netlist.schema import Flatten, Population

    net = hdf5.load(args.netlist)
    print(f"{args.netlist}: {len(net.layers)} layers, neuron types {', '.join(sorted(net.neuron_types))}")
    for i, layer in enumerate(net.layers):
        extra = ""
        if not isinstance(layer, Flatten):
            n = layer.neuron
            extra = f"{n.type_name} vThMant={n.vThMant} reset={n.reset}"
        if isinstance(layer, Population):
            extra += "  " + " + ".join(f"{kind.type_name}{tuple(np.shape(kind.weight))} from "
                                       f"{'input' if src < 0 else src}" for src, kind in net.inputs(i))
            if layer.schedule is not None:
                extra += f"  schedule of {layer.schedule.steps} steps"
        print(f"  {i:2d} {layer.type_name:8s} shape {str(tuple(layer.shape)):16s} {extra}")
    return 0


COMMANDS = {"export": _cmd_export, "convert": _cmd_convert, "run": _cmd_run, "train-bntt": _cmd_train_bntt,
            "export-netx": _cmd_export_netx, "export-nir": _cmd_export_nir, "import-nir": _cmd_import_nir,
            "loihi2-report": _cmd_loihi2_report,
            "quantize-loihi2": _cmd_quantize_loihi2, "info": _cmd_info}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from neurosim.lava.lifetime import Terminated     # standard library only: no Lava import

    args = build_parser().parse_args(argv)
    try:
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
