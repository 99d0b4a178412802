"""The LibriSpeech readers of ``../shared/data/librispeech``: index, level-normalised loading, seeded splits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .speech import SR, active_rms, db_to_gain, energy_threshold

TARGET_DBFS = -23.0  # every utterance is scaled to this active speech level before use
TUNE_FRACTION = 0.7


@dataclass(frozen=True)
class Utterance:
    uid: str
    reader: str
    path: Path


@dataclass(frozen=True)
class Split:
    """Readers of one split: ``rich`` have ~10 utterances (test-other), ``single`` have one (train-clean-100)."""

    rich: tuple[str, ...]
    single: tuple[str, ...]


class Corpus:
    """Index of the LibriSpeech files; loads utterances as float32 16 kHz at a common speech level."""

    def __init__(self, root: Path) -> None:
        self.root = root
        files = sorted((root / "test-other").glob("*/*.flac")) + sorted((root / "train-clean-100").glob("*.flac"))
        self.utterances = {p.stem: Utterance(p.stem, p.stem.split("-")[0], p) for p in files}
        self.by_reader: dict[str, list[str]] = {}
        for utt in self.utterances.values():
            self.by_reader.setdefault(utt.reader, []).append(utt.uid)
        self.rich = tuple(sorted(p.name for p in (root / "test-other").iterdir() if p.is_dir()))
        self.single = tuple(sorted({p.stem.split("-")[0] for p in (root / "train-clean-100").glob("*.flac")}))
        self.sex = _read_sex(root / "SPEAKERS.TXT")

    def split(self, seed: int, name: str) -> Split:
        """Readers of split ``tune`` or ``heldout``: a seeded 70/30 shuffle of each reader group."""
        rng = np.random.default_rng([seed, 70_30])
        parts = []
        for group in (self.rich, self.single):
            order = [group[i] for i in rng.permutation(len(group))]
            cut = int(round(TUNE_FRACTION * len(group) - 0.01))
            parts.append(tuple(sorted(order[:cut] if name == "tune" else order[cut:])))
        if name not in ("tune", "heldout"):
            raise ValueError(f"unknown split {name!r}")
        return Split(*parts)

    def load(self, uid: str) -> tuple[np.ndarray, float]:
        """``(audio, energy threshold)`` of one utterance, active speech level at ``TARGET_DBFS``."""
        return _load(self.utterances[uid].path)


@lru_cache(maxsize=512)
def _load(path: Path) -> tuple[np.ndarray, float]:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SR:
        audio = soxr.resample(audio, sr, SR).astype(np.float32)
    thr = energy_threshold(audio)
    gain = db_to_gain(TARGET_DBFS) / max(active_rms(audio, thr), 1e-9)
    audio = (audio * gain).astype(np.float32)
    audio.setflags(write=False)
    return audio, thr + 20.0 * float(np.log10(gain))


def _read_sex(path: Path) -> dict[str, str]:
    sex: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            fields = [f.strip() for f in line.split("|")]
            if len(fields) >= 2 and not line.startswith(";"):
                sex[fields[0]] = fields[1]
    return sex
