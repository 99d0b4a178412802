"""The core package must import without the optional heavy dependencies of the ECAPA backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

OPTIONAL = ("speechbrain", "torchaudio")


@pytest.mark.parametrize(
    "modules",
    [
        ["diarize"],
        ["diarize", "diarize.config", "diarize.errors", "diarize.models"],
        ["diarize.embeddings", "diarize.embeddings.base"],
        ["diarize.embeddings.ecapa"],
    ],
)
def test_core_imports_leave_out_speechbrain_and_torchaudio(modules):
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {OPTIONAL!r})))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []


BROKEN_TORCHAUDIO = 'raise OSError("libc10_cuda.so: cannot open shared object file")\n'


@pytest.mark.parametrize("breakage", ["speechbrain missing", "torchaudio native library broken"])
def test_ecapa_backend_without_a_working_speechbrain_raises_model_error(tmp_path, breakage):
    env = dict(os.environ)
    prelude = ""
    if breakage == "speechbrain missing":
        prelude = "import sys\nsys.modules['speechbrain'] = None\n"
    else:
        (tmp_path / "torchaudio").mkdir()
        (tmp_path / "torchaudio" / "__init__.py").write_text(BROKEN_TORCHAUDIO)
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    code = prelude + (
        "from diarize.embeddings.ecapa import EcapaBackend\n"
        "from diarize.errors import ModelError\n"
        "try:\n"
        "    EcapaBackend('speechbrain/spkrec-ecapa-voxceleb')\n"
        "except ModelError as exc:\n"
        "    print('ModelError:', exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ModelError:"), run.stdout
    assert "install the ecapa extra" in run.stdout
