#!/usr/bin/env bash
# Installs the optional ECAPA backend (the `ecapa` extra: speechbrain + torchaudio) into the current
# Python environment, keeping the CPU torch 2.13.0 wheel. Run from anywhere after
# `pip install torch==2.13.0 -e ".[dev]"`; PYTHON selects the interpreter (default: python).
#
# Why more than one pip command: speechbrain imports torchaudio at module level. torchaudio 2.11.0 is
# the only release whose wheel does not pin a torch version (older ones would pull a multi-GB CUDA
# torch), but PyPI's Linux wheel is a CUDA build whose native extension (torchaudio/lib/*.so) links
# libc10_cuda.so and cannot load next to CPU torch. SpeechBrain's ECAPA path (Fbank, ECAPA_TDNN,
# EncoderClassifier) uses only torchaudio's pure-Python code, and torchaudio imports without its
# extension when the library files are absent (its supported layout for pex deployments), so step 2
# removes those files when, and only when, they fail to load. Idempotent; rerun after any reinstall.
set -euo pipefail

PYTHON="${PYTHON:-python}"
cd "$(dirname "$0")/.."

torch_before="$("$PYTHON" -c 'import torch; print(torch.__version__)')"

# 1. The extra; naming torch==2.13.0 makes pip refuse any plan that would replace torch.
"$PYTHON" -m pip install "torch==2.13.0" -e ".[ecapa]"

# 2. Drop torchaudio's native extension if it cannot load here.
"$PYTHON" - <<'EOF'
import importlib.util
import pathlib
import subprocess
import sys

probe = subprocess.run([sys.executable, "-c", "import torchaudio"], capture_output=True, text=True)
if probe.returncode == 0:
    print("install-ecapa: torchaudio imports; nothing to remove")
    sys.exit(0)
if "Could not load this library" not in probe.stderr:
    sys.stderr.write(probe.stderr)
    sys.exit("install-ecapa: torchaudio fails to import for another reason; left untouched")
lib = pathlib.Path(importlib.util.find_spec("torchaudio").submodule_search_locations[0]) / "lib"
for so in sorted(lib.glob("*.so")):
    print(f"install-ecapa: removing unloadable native library {so}")
    so.unlink()
EOF

# 3. Check: torch unchanged, and the modules the backend uses import.
"$PYTHON" - "$torch_before" <<'EOF'
import sys

import torch
import torchaudio
from speechbrain.inference.speaker import EncoderClassifier  # noqa: F401

if torch.__version__ != sys.argv[1]:
    sys.exit(f"install-ecapa: torch changed from {sys.argv[1]} to {torch.__version__}")
print(f"install-ecapa: ok (torch {torch.__version__}, torchaudio {torchaudio.__version__})")
EOF
