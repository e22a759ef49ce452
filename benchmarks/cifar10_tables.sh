#!/usr/bin/env bash
# Issue 19's CIFAR-10 conversion tables (docs/conversion.md) on one ResNet-20 checkpoint and,
# optionally, its QCFS twin: the grids papers, analog, rules and corrected (two passes) of
# benchmarks/conversion.py on the first 2,000 test images in the papers' T (the readout read
# after T + D Lava steps), SpikingJelly 2.0's recipes beside the papers grid on the same
# checkpoint, calibration and test images (from .venv-peer, made by scripts/setup_peer.sh;
# without it, conversion.py's fallback: a SpikingJelly installed in .venv, or no peer row).
#
#   benchmarks/cifar10_tables.sh CHECKPOINT [QCFS_CHECKPOINT] [OUT]
#
# CHECKPOINT (and QCFS_CHECKPOINT): a folder with weights.pt and result.json, as
# `python -m models.cifar_resnet20 --out DIR` writes them (e.g. benchmarks/checkpoints/cifar_resnet20_cutout).
# OUT (default benchmarks/results/cifar10-<CHECKPOINT's name>-<TEST_LIMIT>) gets one folder per
# grid, each with results.json, report.md and the plot. Resumable: run the same command again
# and every setting already in a results.json (same steps and test images) is kept; a run with
# other STEPS or TEST_LIMIT into the same OUT starts those files afresh, so give a smoke run its
# own OUT. Long: ~1 h per setting at T = 256 on 2 cores, ten to fifteen hours in all; start it
# with nohup. TEST_LIMIT, STEPS and QCFS_STEPS (the twin's T) override the defaults (e.g.
# TEST_LIMIT=20 STEPS=2,8 QCFS_STEPS=2,8 for a smoke run).
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    echo "usage: benchmarks/cifar10_tables.sh CHECKPOINT [QCFS_CHECKPOINT] [OUT]" >&2
    exit 2
fi
absolute() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }   # the caller's paths
ckpt=$(absolute "$1")
qcfs=${2:+$(absolute "$2")}
out=${3:+$(absolute "$3")}
cd "$(dirname "$0")/.."                                              # the repository
limit=${TEST_LIMIT:-2000}
out=${out:-benchmarks/results/cifar10-$(basename "$ckpt")-$limit}
steps=${STEPS:-2,4,8,16,32,64,128,256}
qsteps=${QCFS_STEPS:-2,4,8,16,32,64}
py=.venv/bin/python

stage() {   # stage RUNS MODEL CHECKPOINT: the checkpoint as <RUNS>/<MODEL>, where conversion.py reads it
    for f in weights.pt result.json; do
        [ -f "$3/$f" ] || { echo "cifar10_tables.sh: $3/$f: no such file" >&2; exit 2; }
    done
    mkdir -p "$1/$2" && cp "$3/weights.pt" "$3/result.json" "$1/$2/"
}

runs=runs/tables/$(basename "$ckpt")
stage "$runs" cifar_resnet20 "$ckpt"
common=(--runs "$runs" --models cifar_resnet20 --papers-t --test-limit "$limit")
# soft vs hard reset, aligned joins, SpikingJelly's recipes (the peer rows)
$py benchmarks/conversion.py "${common[@]}" --grid papers --steps "$steps" --out "$out/papers"
# the image as the first layer's current (the papers' input), the rules, the 8-bit rounding
$py benchmarks/conversion.py "${common[@]}" --grid analog --steps "$steps" --no-spikingjelly --out "$out/analog"
$py benchmarks/conversion.py "${common[@]}" --grid rules --steps "$steps" --no-spikingjelly --out "$out/rules"
# biases corrected at T = 8, 32, 128, two passes per layer
$py benchmarks/conversion.py "${common[@]}" --grid corrected --correction-passes 2 --steps "$steps" \
    --no-spikingjelly --out "$out/corrected2"
if [ -n "$qcfs" ]; then
    qruns=runs/tables/$(basename "$qcfs")
    stage "$qruns" cifar_resnet20_qcfs4 "$qcfs"
    qcommon=(--runs "$qruns" --models cifar_resnet20_qcfs4 --papers-t --test-limit "$limit")
    $py benchmarks/conversion.py "${qcommon[@]}" --grid papers --steps "$qsteps" --out "$out/qcfs-papers"
    $py benchmarks/conversion.py "${qcommon[@]}" --grid analog --steps "$qsteps" --no-spikingjelly --out "$out/qcfs-analog"
    $py benchmarks/conversion.py "${qcommon[@]}" --grid corrected --correction-passes 2 --steps "$qsteps" \
        --no-spikingjelly --out "$out/qcfs-corrected2"
fi
echo "cifar10_tables.sh: every table in $out"
