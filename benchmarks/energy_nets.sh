#!/usr/bin/env bash
# Issue 21: the benchmark nets re-run with every energy model kept (deployed45nm included), for
# benchmarks/energy_table.py. Two halves that can run side by side, one core each:
#
#     OMP_NUM_THREADS=1 bash benchmarks/energy_nets.sh conversion   # ~1 h on one core
#     OMP_NUM_THREADS=1 bash benchmarks/energy_nets.sh bntt         # ~1.5 h on one core
#
# Results go to benchmarks/results/energy-nets/<net>/ (results.json, report.md, plots). The
# conversion half converts the committed MNIST CNN and ResNet-20 checkpoints and retrains the
# Fashion-MNIST CNN (3 epochs) and CIFAR-10 VGG (1 epoch) as docs/conversion.md did; the BNTT
# half retrains BNTT's nets (BNTT norm only) with the commands of docs/bntt.md. Each step is
# resumable: a finished model or setting is kept, not redone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/energy-nets
RUNS=runs/energy-nets

conversion() {
    mkdir -p "$RUNS"
    for ckpt in mnist_cnn cifar_resnet20; do
        [ -f "$RUNS/$ckpt/weights.pt" ] || { mkdir -p "$RUNS/$ckpt" && cp benchmarks/checkpoints/$ckpt/{weights.pt,result.json} "$RUNS/$ckpt/"; }
    done
    [ -f "$RUNS/fashion_cnn/weights.pt" ] || $PY -m models.fashion_cnn --epochs 3 --out "$RUNS/fashion_cnn"
    [ -f "$RUNS/cifar_vgg/weights.pt" ] || $PY -m models.cifar_vgg --epochs 1 --out "$RUNS/cifar_vgg"
    $PY benchmarks/conversion.py --runs "$RUNS" --models mnist_cnn --grid peer --no-spikingjelly \
        --test-limit 2000 --steps 8,16,32,64,128,256 --out "$OUT/mnist_cnn" --no-progress
    $PY benchmarks/conversion.py --runs "$RUNS" --models fashion_cnn --grid peer --no-spikingjelly \
        --test-limit 2000 --steps 8,16,32,64,128,256 --out "$OUT/fashion_cnn" --no-progress
    $PY benchmarks/conversion.py --runs "$RUNS" --models cifar_vgg --grid peer --no-spikingjelly \
        --test-limit 1000 --steps 16,32,64,128,256 --out "$OUT/cifar_vgg" --no-progress
    $PY benchmarks/conversion.py --runs "$RUNS" --models cifar_resnet20 --grid peer --no-spikingjelly --papers-t \
        --test-limit 2000 --steps 16,32,64,128,256 --out "$OUT/cifar_resnet20" --no-progress
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
    conversion) conversion ;;
    bntt) bntt ;;
    all) conversion; bntt ;;
    *) echo "usage: $0 conversion|bntt|all" >&2; exit 2 ;;
esac
