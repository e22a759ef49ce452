#!/usr/bin/env bash
# Create .venv-peer with Python 3.11 and SpikingJelly 2.0.0 on a CPU build of torch (idempotent).
# The conversion benchmark's peer (benchmarks/peer_spikingjelly.py) runs in it: SpikingJelly 2.0
# needs Python >= 3.11 and torch >= 2.6, neurosim's .venv has Python 3.10 and torch 2.3.
# Choose the interpreter with PYTHON=/path/to/python3.11; otherwise python3.11 on PATH or pyenv is used.
# torch is pinned to the CPU build (2.13.0+cpu, ~190 MB) so that pip never pulls a CUDA build of
# several GB; where no index or --find-links folder offers it, set
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
# SpikingJelly is installed without its declared dependencies (torchvision, torchaudio, tensorboard,
# matplotlib, h5py, scipy, SciencePlots: none used by ann2snn); the ones its ann2snn imports are pinned below.
set -u
cd "$(dirname "$0")/.."
VENV=.venv-peer
PINS="torch==2.13.0+cpu numpy==2.4.6 loguru==0.7.3 tqdm==4.70.1 requests==2.34.2"
SJ_PIN="spikingjelly==2.0.0"

is311() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; }

find_python() {
  if [ -n "${PYTHON:-}" ]; then
    is311 "$PYTHON" && { echo "$PYTHON"; return 0; }
    echo "neurosim setup_peer: PYTHON=$PYTHON is not a working Python 3.11 interpreter; point PYTHON at one." >&2
    return 1
  fi
  for cand in python3.11 "$(command -v pyenv >/dev/null 2>&1 && ls -d "$(pyenv root)"/versions/3.11.*/bin/python 2>/dev/null | sort -V | tail -1)" \
              "$(ls -d "${HOME}"/.pyenv/versions/3.11.*/bin/python 2>/dev/null | sort -V | tail -1)" /usr/bin/python3.11; do
    is311 "$cand" && { command -v "$cand" 2>/dev/null || echo "$cand"; return 0; }
  done
  echo "neurosim setup_peer: no Python 3.11 found (SpikingJelly 2.0 needs Python >= 3.11, torch 2.13 is pinned for 3.11); install it (e.g. 'pyenv install 3.11') or run with PYTHON=/path/to/python3.11." >&2
  return 1
}

if [ -x "$VENV/bin/python" ] && is311 "$VENV/bin/python"; then
  :
else
  PY=$(find_python) || exit 1
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || { echo "neurosim setup_peer: '$PY -m venv' failed; install the venv module for Python 3.11 or set PYTHON." >&2; exit 1; }
fi

stamp="$VENV/.peer-installed"
want=$(echo "$PINS $SJ_PIN" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "neurosim setup_peer: installing $SJ_PIN and $PINS into $VENV (first time: torch is a ~190 MB download)..." >&2
  # shellcheck disable=SC2086  # PINS is a list of requirement words
  if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check -q $PINS \
         && "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps "$SJ_PIN" \
         && "$VENV/bin/python" -c 'import spikingjelly.activation_based.ann2snn'; } > "$VENV/pip.log" 2>&1; then
    tail -5 "$VENV/pip.log" >&2
    echo "neurosim setup_peer: installing the peer failed (full log: $VENV/pip.log); check access to PyPI, and that an index offers torch 2.13.0+cpu (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu)." >&2
    exit 1
  fi
  "$VENV/bin/python" -m pip freeze --disable-pip-version-check > "$VENV/requirements-frozen.txt"
  echo "$want" > "$stamp"
fi
