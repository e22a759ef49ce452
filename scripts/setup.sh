#!/usr/bin/env bash
# Create .venv with Python 3.10 and install neurosim with its pinned dependencies (idempotent).
# Python 3.10 is required: lava-nc 0.10 / lava-dl 0.6 support only 3.10.
# Choose the interpreter with PYTHON=/path/to/python3.10; otherwise python3.10 on PATH or pyenv is used.
set -u
cd "$(dirname "$0")/.."
VENV=.venv

is310() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; }

find_python() {
  if [ -n "${PYTHON:-}" ]; then
    is310 "$PYTHON" && { echo "$PYTHON"; return 0; }
    echo "neurosim setup: PYTHON=$PYTHON is not a working Python 3.10 interpreter; point PYTHON at one." >&2
    return 1
  fi
  for cand in python3.10 "$(command -v pyenv >/dev/null 2>&1 && ls -d "$(pyenv root)"/versions/3.10.*/bin/python 2>/dev/null | sort -V | tail -1)" \
              "$(ls -d "${HOME}"/.pyenv/versions/3.10.*/bin/python 2>/dev/null | sort -V | tail -1)" /usr/bin/python3.10 python3; do
    is310 "$cand" && { command -v "$cand" 2>/dev/null || echo "$cand"; return 0; }
  done
  echo "neurosim setup: no Python 3.10 found (lava-nc 0.10 needs exactly 3.10); install it (e.g. 'pyenv install 3.10') or run with PYTHON=/path/to/python3.10." >&2
  return 1
}

if [ -x "$VENV/bin/python" ] && is310 "$VENV/bin/python"; then
  :
else
  PY=$(find_python) || exit 1
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || { echo "neurosim setup: '$PY -m venv' failed; install the venv module for Python 3.10 or set PYTHON." >&2; exit 1; }
fi

stamp="$VENV/.neurosim-installed"
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "neurosim setup: installing dependencies into $VENV (first time: torch is a ~2.7 GB download, a few minutes)..." >&2
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e '.[test,interop]' > "$VENV/pip.log" 2>&1; then
    tail -5 "$VENV/pip.log" >&2
    echo "neurosim setup: installing the dependencies failed (full log: $VENV/pip.log); check access to the package registry (PyPI) or set PIP_INDEX_URL." >&2
    exit 1
  fi
  # NeuroBench's metrics (tests/test_neurobench.py) need only torch and snntorch: no torchaudio/tonic
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps 'neurobench==2.3.0' >> "$VENV/pip.log" 2>&1; then
    tail -5 "$VENV/pip.log" >&2
    echo "neurosim setup: installing neurobench failed (full log: $VENV/pip.log)." >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
