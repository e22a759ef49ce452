#!/usr/bin/env bash
# Issue 21: the benchmark nets re-run with every energy model kept (deployed45nm included), for
# benchmarks/energy_table.py. Each part can run beside another, one core each:
#
#     OMP_NUM_THREADS=1 bash benchmarks/energy_nets.sh mnist_cnn      # one conversion net (or all: conversion)
#     OMP_NUM_THREADS=1 bash benchmarks/energy_nets.sh bntt           # BNTT's four nets
#
# Results go to benchmarks/results/energy-nets/<net>/ (results.json, report.md, plots). The
# conversion nets are the committed MNIST CNN and ResNet-20 checkpoints and the Fashion-MNIST
# CNN (3 epochs) and CIFAR-10 VGG (1 epoch) retrained as docs/conversion.md trained them, each
# with the two theta/2 settings of the `peer` grid up to a T past its operating point; BNTT's
# nets are retrained (BNTT norm only) with the commands of docs/bntt.md. Each step is
# resumable: a finished model or setting is kept, not redone (so a committed results.json is
# reprinted, not re-measured: delete it, or the net's folder, to measure afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/energy-nets
RUNS=runs/energy-nets

prepare() {
    mkdir -p "$RUNS"
    for ckpt in mnist_cnn cifar_resnet20; do
        [ -f "$RUNS/$ckpt/weights.pt" ] || { mkdir -p "$RUNS/$ckpt" && cp benchmarks/checkpoints/$ckpt/{weights.pt,result.json} "$RUNS/$ckpt/"; }
    done
    [ -f "$RUNS/fashion_cnn/weights.pt" ] || $PY -m models.fashion_cnn --epochs 3 --out "$RUNS/fashion_cnn"
    [ -f "$RUNS/cifar_vgg/weights.pt" ] || $PY -m models.cifar_vgg --epochs 1 --out "$RUNS/cifar_vgg"
}

# convert NET TEST_IMAGES STEPS [--papers-t]
convert() {
    prepare
    $PY benchmarks/conversion.py --runs "$RUNS" --models "$1" --grid peer --no-spikingjelly --test-limit "$2" \
        --steps "$3" ${4:-} --out "$OUT/$1" --no-progress
}

bntt() {
    $PY benchmarks/bntt.py --dataset digits --arch mlp --norms bntt --epochs 10 --batch-size 32 \
        --test-limit 360 --lava-samples 2 --out "$OUT/bntt-digits" --no-progress
    $PY benchmarks/bntt.py --dataset nmnist --arch cnn --norms bntt --steps 10 --epochs 10 \
        --test-limit 100 --lava-samples 2 --out "$OUT/bntt-nmnist" --no-progress
    $PY benchmarks/bntt.py --dataset cifar10 --arch vgg9 --width 0.25 --norms bntt --steps 10 --epochs 5 \
        --limit 5000 --test-limit 500 --lava-samples 1 --out "$OUT/bntt-cifar-vgg9" --no-progress
    $PY benchmarks/bntt.py --dataset fashion-mnist --arch cnn --norms bntt --steps 10 --epochs 6 \
        --test-limit 2000 --lava-samples 2 --out "$OUT/bntt-fashion" --no-progress
}

case "${1:-}" in
    mnist_cnn) convert mnist_cnn 2000 8,16,32,64,128,256 ;;
    fashion_cnn) convert fashion_cnn 2000 8,16,32,64 ;;
    cifar_vgg) convert cifar_vgg 1000 16,32,64,128 ;;
    cifar_resnet20) convert cifar_resnet20 2000 16,32,64,128 --papers-t ;;
    conversion) for net in mnist_cnn fashion_cnn cifar_vgg cifar_resnet20; do bash "$0" "$net"; done ;;
    bntt) bntt ;;
    *) echo "usage: $0 mnist_cnn|fashion_cnn|cifar_vgg|cifar_resnet20|conversion|bntt" >&2; exit 2 ;;
esac
