"""The benchmark sets. Generated ones are built from ``../shared/data`` into ``benchmarks/cache/`` on first use.

Every generated file is a pure function of (seed, set, index): per-file random generators are seeded with
``[seed, set id, index]``, so any subset can be generated alone and gives the same bytes as in a full run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf
import soxr
from pyannote.core import Annotation, Segment, Timeline

from diarize.result import annotation_to_rttm, read_rttm

from . import cache_root, require_data
from .librispeech import TARGET_DBFS, Corpus
from .simulate import (FLOOR_DB, NOISE_SNR_DB, Piece, Turn, add_noise, choose_overlaps, cycle, place, reference,
                       render, speaker_pieces, speaker_sequence, speech_rms)
from .speech import SR, coloured_noise, db_to_gain

SEED = 1234
VERSION = 3  # bump whenever generation changes: cached files of another version are regenerated
SIM_FILES = {"tune": 60, "heldout": 30}
MAX_SPEAKERS = 6
CALLS = 10
LONG = {"long-10m": (600.0, 4), "long-1h": (3600.0, 6), "long-2h": (7200.0, 8)}
_SET_ID = {"sim-tune": 1, "sim-heldout": 2, "calls": 3, "long": 4}


@dataclass(frozen=True)
class Item:
    """One benchmark recording with its reference."""

    uri: str
    audio: Path
    reference: Annotation
    uem: Timeline
    duration: float
    info: dict[str, Any] = field(default_factory=dict)
    channel_references: tuple[Annotation, ...] = ()

    @property
    def num_speakers(self) -> int:
        return len(self.reference.crop(self.uem).labels())


@lru_cache(maxsize=1)
def corpus() -> Corpus:
    return Corpus(require_data() / "librispeech")


def ami_items(names: list[str] | None = None) -> list[Item]:
    """The nine AMI excerpts (or those named), scored inside their UEM."""
    root = require_data() / "ami-excerpts"
    refs = read_rttm(root / "reference.rttm")
    uems = read_uem(root / "reference.uem")
    items = []
    for wav in sorted(root.glob("*.wav")):
        if names is not None and wav.stem not in names:
            continue
        ref = refs.get(wav.stem, Annotation(uri=wav.stem))
        items.append(Item(wav.stem, wav, ref, uems[wav.stem], sf.info(str(wav)).duration))
    return items


def read_uem(path: Path) -> dict[str, Timeline]:
    uems: dict[str, list[Segment]] = {}
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 4:
            uems.setdefault(f[0], []).append(Segment(float(f[2]), float(f[3])))
    return {uri: Timeline(segs, uri=uri) for uri, segs in uems.items()}


def sim_items(split: str, limit: int | None = None, seed: int = SEED) -> list[Item]:
    """Simulated conversations of readers of one split (``tune`` or ``heldout``); file i has i % 6 + 1 speakers."""
    n = SIM_FILES[split] if limit is None else min(limit, SIM_FILES[split])
    return [_cached(f"sim-{split}", f"sim-{split}-{i:03d}", seed, lambda i=i: _make_sim(split, i, seed))
            for i in range(n)]


def call_items(limit: int | None = None, seed: int = SEED) -> list[Item]:
    """Two-party stereo calls, one test-other reader pair per call."""
    n = CALLS if limit is None else min(limit, CALLS)
    return [_cached("calls", f"call-{i:02d}", seed, lambda i=i: _make_call(i, seed)) for i in range(n)]


def long_items(names: list[str] | None = None, seed: int = SEED) -> list[Item]:
    """Long conversations for speed and memory (audio reused within each file)."""
    return [_cached("long", name, seed, lambda name=name: _make_long(name, seed)) for name in names or list(LONG)]


# --- generation ----------------------------------------------------------------------------------------------

@dataclass
class _Generated:
    turns: list[Turn]
    info: dict[str, Any]
    write: Any  # callable(path) writing the audio; returns the file suffix
    channel_speakers: tuple[str, ...] = ()


def _cached(set_name: str, uri: str, seed: int, make: Any) -> Item:
    folder = cache_root() / set_name
    meta_path = folder / f"{uri}.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    if not (meta and meta["version"] == VERSION and meta["seed"] == seed and (folder / meta["audio"]).exists()):
        meta = _generate(folder, uri, seed, make())
    refs = read_rttm(folder / f"{uri}.rttm")
    duration = meta["duration"]
    channels = tuple(refs.get(f"{uri}.ch{c}", Annotation(uri=f"{uri}.ch{c}")) for c in range(meta.get("channels", 0)))
    whole = Timeline([Segment(0, duration)], uri=uri)
    ref = refs.get(uri, Annotation(uri=uri))
    return Item(uri, folder / meta["audio"], ref, whole, duration, meta["info"], channels)


def _generate(folder: Path, uri: str, seed: int, gen: _Generated) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{uri}.tmp"
    suffix = gen.write(tmp)
    audio = folder / f"{uri}{suffix}"
    tmp.replace(audio)
    rttm = annotation_to_rttm(reference(gen.turns, uri))
    for c, spk in enumerate(gen.channel_speakers):
        rttm += annotation_to_rttm(reference(gen.turns, f"{uri}.ch{c}", [spk]))
    (folder / f"{uri}.rttm").write_text(rttm)
    meta = {
        "version": VERSION, "seed": seed, "uri": uri, "audio": audio.name, "sha256": _sha256(audio),
        "duration": gen.info["duration"], "channels": len(gen.channel_speakers), "info": gen.info,
        "turns": [[t.speaker, t.piece.uid, t.piece.start, t.piece.end, t.onset, t.overlap, t.piece.backchannel,
                   [[a - t.piece.start, b - t.piece.start] for a, b in t.piece.spans]]
                  for t in gen.turns] if len(gen.turns) < 5000 else len(gen.turns),
    }
    (folder / f"{uri}.json").write_text(json.dumps(meta, indent=1))
    return meta


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _take(uids: list[str], seconds: float, rng: np.random.Generator) -> list[str]:
    """Whole utterances in random order until about ``seconds`` of audio."""
    c = corpus()
    out, total = [], 0.0
    for i in rng.permutation(len(uids)):
        if total >= seconds:
            break
        out.append(uids[int(i)])
        total += len(c.load(uids[int(i)])[0]) / SR
    return out


def _stats(turns: list[Turn], n: int) -> dict[str, Any]:
    return {
        "duration": n / SR,
        "turns": len(turns),
        "overlapping_turns": sum(t.overlap for t in turns),
        "overlap_turn_fraction": sum(t.overlap for t in turns) / max(len(turns), 1),
        "backchannels": sum(t.piece.backchannel for t in turns),
        "turn_seconds": sum(t.piece.seconds for t in turns),
        "speech_seconds": sum(t.piece.speech_seconds for t in turns),
    }


def _make_sim(split: str, index: int, seed: int) -> _Generated:
    c = corpus()
    rng = np.random.default_rng([seed, _SET_ID[f"sim-{split}"], index])
    readers = c.split(seed, split)
    k = index % MAX_SPEAKERS + 1
    # Readers with one utterance have ~11 s of speech: up to five voices need a test-other reader to last a minute.
    lo = 0 if k == MAX_SPEAKERS else 1
    m = int(rng.integers(lo, min(k if k <= 4 else 2, len(readers.rich)) + 1))
    chosen = [str(r) for r in rng.choice(readers.rich, m, replace=False)]
    chosen += [str(r) for r in rng.choice(readers.single, k - m, replace=False)]
    target = rng.uniform(60, 180) if k <= 4 else rng.uniform(60, 90)
    single_seconds = sum(len(c.load(u)[0]) / SR for r in chosen[m:] for u in c.by_reader[r])
    rich_budget = max(15.0, (0.85 * target - single_seconds) / max(m, 1))
    queues = {f"spk{r}": speaker_pieces(c, _take(c.by_reader[r], rich_budget, rng) if i < m else c.by_reader[r], rng)
              for i, r in enumerate(chosen)}
    order = speaker_sequence(queues, rng)
    flags = choose_overlaps(order, rng)
    turns = place(((s, p, f) for (s, p), f in zip(order, flags)), rng)
    n = turns[-1].end + int(rng.uniform(0.3, 1.0) * SR)
    gains = {s: db_to_gain(rng.uniform(-3, 3)) for s in sorted(queues)}
    x = render(c, turns, n, gains)
    ref = reference(turns, "tmp")
    rms = speech_rms(x, ref)
    x = add_noise(x, rng, FLOOR_DB, 1.0, rms)
    noisy = (index // MAX_SPEAKERS + k) % 3 == 2
    info: dict[str, Any] = {"split": split, "speakers": k, "readers": chosen, "noisy": noisy, **_stats(turns, n)}
    if noisy:
        snr, exponent = float(rng.uniform(*NOISE_SNR_DB)), float(rng.choice([1.0, 2.0]))
        x = add_noise(x, rng, -snr, exponent, rms)
        info.update(snr_db=round(snr, 2), noise="pink" if exponent == 1.0 else "brown")
    return _Generated(turns, info, _wav_writer(_peak_safe(x)))


def _make_call(index: int, seed: int) -> _Generated:
    c = corpus()
    rng = np.random.default_rng([seed, _SET_ID["calls"], index])
    pair = list(itertools.combinations(c.rich, 2))[index % 10]
    queues = {f"spk{r}": speaker_pieces(c, _take(c.by_reader[r], rng.uniform(25, 45), rng), rng) for r in pair}
    order = speaker_sequence(queues, rng)
    turns = place(((s, p, f) for (s, p), f in zip(order, choose_overlaps(order, rng))), rng)
    n = turns[-1].end + int(rng.uniform(0.3, 1.0) * SR)
    speakers = tuple(f"spk{r}" for r in pair)
    own = [render(c, [t for t in turns if t.speaker == s], n, {s: 1.0}) for s in speakers]
    bleed_db = [float(rng.uniform(-30, -20)) for _ in speakers]
    delay = [int(rng.uniform(0.005, 0.03) * SR) for _ in speakers]
    chans = []
    for ch in range(2):
        other = np.concatenate([np.zeros(delay[ch], np.float32), own[1 - ch][: n - delay[ch]]])
        x = own[ch] + db_to_gain(bleed_db[ch]) * other
        x = soxr.resample(soxr.resample(x, SR, 8000), 8000, SR)[:n]  # telephone band
        x = np.pad(x, (0, n - len(x)))
        chans.append(add_noise(x, rng, FLOOR_DB, 1.0, db_to_gain(TARGET_DBFS)))
    info = {"speakers": 2, "readers": list(pair), "bleed_db": [round(b, 2) for b in bleed_db],
            "delay_ms": [d / SR * 1000 for d in delay], **_stats(turns, n)}
    return _Generated(turns, info, _wav_writer(_peak_safe(np.stack(chans, axis=1))), speakers)


def _make_long(name: str, seed: int) -> _Generated:
    c = corpus()
    seconds, k = LONG[name]
    rng = np.random.default_rng([seed, _SET_ID["long"], list(LONG).index(name)])
    rich = [str(r) for r in rng.choice(c.rich, min(k // 2, len(c.rich)), replace=False)]
    single = [str(r) for r in rng.choice(c.single, k - len(rich), replace=False)]
    pools = {f"spk{r}": cycle(speaker_pieces(c, c.by_reader[r], rng), rng) for r in rich + single}
    turns = place(_alternate(pools, rng), rng, stop_at=seconds)
    n = int(seconds * SR)
    turns = [t for t in turns if t.end <= n]
    gains = {s: db_to_gain(rng.uniform(-3, 3)) for s in sorted(pools)}
    info = {"speakers": k, "readers": rich + single, "audio_reused": True, **_stats(turns, n)}

    def write(path: Path) -> str:
        block = 60 * SR
        floor = db_to_gain(TARGET_DBFS + FLOOR_DB)
        with sf.SoundFile(str(path), "w", SR, 1, subtype="PCM_16", format="FLAC") as f:
            for b, start in enumerate(range(0, n, block)):
                x = render(c, turns, min(block, n - start), gains, offset=start)
                x += floor * coloured_noise(len(x), np.random.default_rng([seed, 99, b]), 1.0)
                f.write(np.clip(x, -0.99, 0.99))
        return ".flac"

    return _Generated(turns, info, write)


def _alternate(pools: dict[str, Iterator[Piece]], rng: np.random.Generator) -> Iterator[tuple[str, Piece, bool]]:
    """Endless turns: a different speaker each time, 10% of turns overlapping the previous one."""
    speakers, prev = sorted(pools), None
    while True:
        spk = str(rng.choice([s for s in speakers if s != prev]))
        yield spk, next(pools[spk]), bool(rng.random() < 0.1)
        prev = spk


def _peak_safe(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    return (x * (0.99 / peak) if peak > 0.99 else x).astype(np.float32)


def _wav_writer(x: np.ndarray) -> Any:
    def write(path: Path) -> str:
        sf.write(str(path), x, SR, subtype="PCM_16", format="WAV")
        return ".wav"

    return write
