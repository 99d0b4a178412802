"""Voiceprint benchmarks on LibriSpeech (../shared/data): calibration, identification, fingerprinting, store speed.

    python benchmarks/voiceprints.py embed        # utterance vectors of every reader -> benchmarks/cache/
    python benchmarks/voiceprints.py methods      # EER of each way of embedding an utterance (both halves)
    python benchmarks/voiceprints.py calibrate    # thresholds -> models/thresholds.json, models/calibration/
    python benchmarks/voiceprints.py identify     # closed-set top-1, open-set false accepts, enrollment gates
    python benchmarks/voiceprints.py fingerprint [--pipeline]   # simulated calls: agents and customers
    python benchmarks/voiceprints.py store [--sizes 20000 200000]   # embedded store speed, synthetic vectors
    python benchmarks/voiceprints.py all
    (every command takes --model campplus|resemblyzer; default campplus, the pipeline's default)

Readers are split in two halves that never meet (see models/calibration/README.md):

- calibration half: the train-clean-100 readers with an even id (103 readers, one utterance each).
  Same-speaker scores come from each utterance cut in three parts of equal speech time.
  ``calibrate`` reads this half only.
- scoring half: the 5 test-other readers (10 utterances each; they are the enrolled speakers and
  the recurring agents) and the train-clean-100 readers with an odd id (97: impostors and
  customers). ``identify`` and ``fingerprint`` read this half only.

Utterance vectors are computed exactly as enrollment computes them without a diarizer
(:func:`diarize.voiceprints.enrollment.prepare_sample`: Silero VAD regions, the speech level
normalised, then for GE2E the mean of 1.5 s windows every 0.75 s, for CAM++ the speech joined and
embedded in pieces of at most 30 s); identification and linking run through the real store.
Results go to benchmarks/results/voiceprints-<model>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diarize.result import Result, Speaker  # noqa: E402
from diarize.voiceprints import (  # noqa: E402
    Calibration,
    EmbeddedStore,
    ServerStore,
    SpeakerRegistry,
    VoiceLinker,
)
from diarize.voiceprints.enrollment import (  # noqa: E402
    SEGMENT_SECONDS,
    EnrollmentSample,
    _windows,
    embed_speech,
    two_means,
    voice_frames,
)
from diarize.voiceprints.identification import identify_vectors  # noqa: E402
from diarize.voiceprints.store import NewPoint  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "librispeech"
CACHE = ROOT / "benchmarks" / "cache"
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ROOT / "models"
TENANT = "bench"
SR = 16000
FRAMES_PER_S = 100  # CAM++ filterbank frames

MODEL_IDS = {"campplus": "campplus-zh-en-common", "resemblyzer": "resemblyzer-ge2e"}

#: Threshold rules (see models/calibration/README.md).
IDENTIFY_FA = 0.002  # per comparison: about 1 % open-set false accepts against 5 enrolled voices
LINK_FA = 0.0005  # per comparison: a one-off voice is compared with ~40 stored voices
MEMBER_MISS = 0.01
CONSISTENCY_MISS = 0.005
SEPARATION_MISS = 0.005

#: Same-speaker material of a calibration reader: its utterance cut in this many parts of equal speech time,
#: each of at least PART_MIN_SPEECH seconds (readers with less speech only give different-speaker scores).
PARTS = 3
PART_MIN_SPEECH = 3.0
#: Simulated calls of the calibration half (links): this many agents, one call per part each.
CALIBRATION_AGENTS = 24

#: Ways of turning an utterance into one vector (``methods`` compares them; CAM++ only but ``windows``).
#: windows: mean of 1.5 s windows every 0.75 s (what GE2E enrollment does); windows3: 3 s every 1.5 s;
#: regions: each VAD region one segment (cut at 10 s); speech10 / speech: the speech of all regions
#: joined and embedded in pieces of at most 10 s / SEGMENT_SECONDS.
METHODS = ("windows", "windows3", "regions", "speech10", "speech")


def enrollment_method(model: str) -> str:
    """How enrollment (without a diarizer) embeds a sample for this model."""
    return "speech" if model == "campplus" else "windows"


# --------------------------------------------------------------------------- data and split


def _files() -> list[Path]:
    if not DATA.is_dir():
        sys.exit(f"LibriSpeech not found at {DATA} (../shared/data beside the checkout)")
    return sorted((DATA / "test-other").glob("*/*.flac")) + sorted((DATA / "train-clean-100").glob("*.flac"))


def half_of(path: str | Path) -> str:
    """``calibration`` or ``scoring`` for a LibriSpeech file: test-other readers and odd train-clean-100 ids
    score, even train-clean-100 ids calibrate."""
    parts = Path(path).parts
    if "test-other" in parts:
        return "scoring"
    if "train-clean-100" in parts:
        return "calibration" if int(Path(path).stem.split("-")[0]) % 2 == 0 else "scoring"
    raise ValueError(f"not a LibriSpeech test-other or train-clean-100 file: {path}")


def _backend(model: str):
    from diarize.config import EmbeddingConfig
    from diarize.embeddings import load_backend

    return load_backend(EmbeddingConfig(backend=model, num_threads=1))


def _sub_regions(regions: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """The part of ``regions`` (seconds) between ``t0`` and ``t1`` seconds of speech, counted from the first region."""
    out, cursor = [], 0.0
    for a, b in regions:
        lo, hi = max(a, a + t0 - cursor), min(b, a + t1 - cursor)
        if hi - lo > 1e-6:
            out.append((lo, hi))
        cursor += b - a
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _frames(backend, regions: np.ndarray, n_frames: int) -> list[np.ndarray]:
    """Filterbank frame indices of each region (the frames wholly inside it)."""
    if len(regions) == 0:
        return []
    first, count = backend.window_frames((regions[:, 0] * SR).astype(np.int64), (regions[:, 1] * SR).astype(np.int64),
                                         n_frames)
    return [np.arange(a, a + c) for a, c in zip(first, count)]


def _window_embeddings(backend, audio, regions: np.ndarray, window: float = 1.5, hop: float = 0.75) -> np.ndarray:
    """Window embeddings as enrollment computes them (``audio``: CAM++ fbank, else (samples, gain))."""
    s, e = _windows([tuple(r) for r in regions], window, hop)
    if len(s) == 0:
        return np.zeros((0, backend.dimension), np.float32)
    if hasattr(backend, "embed_features"):
        first, count = backend.window_frames(s, e, len(audio))
        return backend.embed_features([audio[a:a + c] for a, c in zip(first, count)])
    samples, gain = audio
    return backend.embed_windows(samples, s, e, gain=gain)


def unit_vector(backend, audio, regions: np.ndarray, method: str) -> np.ndarray:
    """One vector for the speech of ``regions`` (seconds), the way ``method`` computes it."""
    if method in ("windows", "windows3"):
        w = _window_embeddings(backend, audio, regions, *((1.5, 0.75) if method == "windows" else (3.0, 1.5)))
        return _unit(w.mean(axis=0))
    frames = _frames(backend, regions, len(audio))
    if method == "regions":
        pieces = [p for f in frames for p in np.array_split(f, max(1, -(-len(f) // (10 * FRAMES_PER_S))))]
        v = backend.embed_features([audio[p] for p in pieces])
        return _unit((np.array([len(p) for p in pieces], float)[:, None] * v).sum(axis=0))
    # speech10 / speech: enrollment's frames (every frame inside a 1.5 s window of the speech)
    s, e = _windows([tuple(r) for r in regions])
    first, count = backend.window_frames(s, e, len(audio))
    seconds = {"speech10": 10.0, "speech": SEGMENT_SECONDS}[method]
    return embed_speech(backend, audio, voice_frames(first, count, np.ones(len(s), bool), len(audio)),
                        int(seconds * FRAMES_PER_S))


def embed(model: str) -> Path:
    """Cache every utterance's (and calibration part's) VAD regions, windows and vectors by every method."""
    import soundfile as sf

    from diarize.config import EmbeddingConfig
    from diarize.embeddings import level_gain
    from diarize.vad import SileroVAD, frame_energies_db, speech_level_db

    backend, vad = _backend(model), SileroVAD()
    methods = METHODS if hasattr(backend, "embed_features") else ("windows",)
    target = EmbeddingConfig().speech_level_db
    out = CACHE / f"voiceprints-{backend.model_id}.npz"
    files, gains, regions_all, region_off = [], [], [], [0]
    u_file, u_part, u_speech, windows, w_off = [], [], [], [], [0]
    vectors: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    t0 = time.time()
    for fi, f in enumerate(_files()):
        samples, sr = sf.read(f, dtype="float32")
        assert sr == SR, f
        regions = np.asarray([(float(a), float(b)) for a, b in vad(samples)], dtype=np.float64).reshape(-1, 2)
        gain = level_gain(speech_level_db(regions, frame_energies_db(samples)), target)
        audio = backend.features(samples, gain=gain) if hasattr(backend, "embed_features") else (samples, gain)
        total = float(np.sum(regions[:, 1] - regions[:, 0]))
        units = [(-1, regions)]
        if half_of(f) == "calibration":
            units += [(p, _sub_regions(regions, total * p / PARTS, total * (p + 1) / PARTS)) for p in range(PARTS)]
        for part, reg in units:
            u_file.append(fi)
            u_part.append(part)
            u_speech.append(float(np.sum(reg[:, 1] - reg[:, 0])))
            w = _window_embeddings(backend, audio, reg)
            windows.append(w)
            w_off.append(w_off[-1] + len(w))
            for m in methods:
                vectors[m].append(_unit(w.mean(axis=0)) if m == "windows" else unit_vector(backend, audio, reg, m))
        files.append(str(f.relative_to(DATA)))
        gains.append(gain)
        regions_all.append(regions)
        region_off.append(region_off[-1] + len(regions))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(out, files=np.array(files), gains=np.array(gains), regions=np.concatenate(regions_all),
             region_offsets=np.array(region_off), unit_file=np.array(u_file), unit_part=np.array(u_part),
             unit_speech=np.array(u_speech), windows=np.concatenate(windows), window_offsets=np.array(w_off),
             methods=np.array(methods), model=model, model_id=backend.model_id, dimension=backend.dimension,
             **{f"vectors_{m}": np.stack(v).astype(np.float32) for m, v in vectors.items()})
    speech = sum(s for s, p in zip(u_speech, u_part) if p < 0)
    print(f"embedded {len(files)} utterances and {len(u_file) - len(files)} parts ({speech:.0f} s of speech) "
          f"in {time.time() - t0:.0f} s -> {out}")
    return out


class Corpus:
    """Cached utterances: per unit (a whole utterance, or one part of a calibration utterance) its reader,
    half, speech seconds, 1.5 s window embeddings and vector (by ``method``)."""

    def __init__(self, model: str, method: str | None = None) -> None:
        self.model_id = MODEL_IDS[model]
        path = CACHE / f"voiceprints-{self.model_id}.npz"
        if not path.exists():
            sys.exit(f"{path} missing: run `python benchmarks/voiceprints.py embed --model {model}` first")
        d = np.load(path)
        self.model, self.method = model, method or enrollment_method(model)
        if self.method not in list(d["methods"]):
            sys.exit(f"{path} has no vectors by {self.method!r}: re-run embed")
        self.dimension = int(d["dimension"])
        self.files = [str(f) for f in d["files"]]
        self.gains = d["gains"]
        ro = d["region_offsets"]
        self.regions = [d["regions"][ro[i]:ro[i + 1]] for i in range(len(self.files))]
        self.file = d["unit_file"]
        self.part = d["unit_part"]
        self.speech = d["unit_speech"]
        wo = d["window_offsets"]
        self.windows = [d["windows"][wo[i]:wo[i + 1]] for i in range(len(self.file))]
        self.vectors = d[f"vectors_{self.method}"].astype(np.float64)
        self.all_vectors = {str(m): d[f"vectors_{m}"].astype(np.float64) for m in d["methods"]}
        self.names = [Path(self.files[f]).stem for f in self.file]
        self.reader = [n.split("-")[0] for n in self.names]
        self.half = [half_of(self.files[f]) for f in self.file]
        whole = [u for u in range(len(self.file)) if self.part[u] < 0]
        # scoring half: test-other readers (several utterances each) and odd train-clean readers
        self.test = [u for u in whole if self.files[self.file[u]].startswith("test-other/")]
        self.impostors = [u for u in whole if self.half[u] == "scoring" and u not in set(self.test)]
        self.readers = sorted({self.reader[u] for u in self.test})
        # calibration half: even train-clean readers, whole and in parts
        self.cal_whole = [u for u in whole if self.half[u] == "calibration"]
        self.cal_readers = sorted({self.reader[u] for u in self.cal_whole}, key=int)
        self.cal_utt = {self.reader[u]: u for u in self.cal_whole}
        long_enough = [r for r in self.cal_readers if self.speech[self.cal_utt[r]] >= PARTS * PART_MIN_SPEECH]
        self.cal_parts = {r: [u for u in range(len(self.file)) if self.part[u] >= 0 and self.reader[u] == r]
                          for r in long_enough}
        assert not set(self.readers + [self.reader[u] for u in self.impostors]) & set(self.cal_readers)

    def utts(self, reader: str) -> list[int]:
        return [i for i in self.test if self.reader[i] == reader]

    # on-the-fly vectors of crops (simulated calls): CAM++ from the file's filterbank, GE2E from windows
    @lru_cache(maxsize=1)
    def backend(self):
        return _backend(self.model)

    @lru_cache(maxsize=64)
    def _fbank(self, f: int) -> np.ndarray:
        import soundfile as sf

        samples = sf.read(DATA / self.files[f], dtype="float32")[0]
        return self.backend().features(samples, gain=float(self.gains[f]))

    def crop(self, u: int, rng: np.random.Generator, lo: float = 0.6) -> tuple[np.ndarray, float]:
        """A random contiguous crop of ``lo``-100 % of unit ``u``'s speech: its vector and speech seconds."""
        keep = rng.uniform(lo, 1.0)
        start = rng.uniform(0.0, 1.0 - keep)
        if self.method == "windows":
            w = self.windows[u]
            n = len(w)
            k = min(n, max(2, int(round(n * keep))))
            a = min(int(round(n * start)), n - k)
            return _unit(w[a:a + k].mean(axis=0)), float(self.speech[u] * k / max(n, 1))
        f = int(self.file[u])
        regions = self.regions[f] if self.part[u] < 0 else self._part_regions(u)
        total = float(np.sum(regions[:, 1] - regions[:, 0]))
        sub = _sub_regions(regions, total * start, total * (start + keep))
        return unit_vector(self.backend(), self._fbank(f), sub, self.method), total * keep

    def _part_regions(self, u: int) -> np.ndarray:
        regions = self.regions[int(self.file[u])]
        total = float(np.sum(regions[:, 1] - regions[:, 0]))
        p = int(self.part[u])
        return _sub_regions(regions, total * p / PARTS, total * (p + 1) / PARTS)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _enroll_vector(c: Corpus, idx: list[int], vectors: np.ndarray | None = None) -> np.ndarray:
    vectors = c.vectors if vectors is None else vectors
    w = np.minimum(c.speech[idx], 60.0)
    return _unit((w[:, None] * vectors[idx]).sum(axis=0))


def _threshold_at_fa(impostor: np.ndarray, fa: float) -> float:
    """Smallest threshold (0.005 grid) accepting at most a share ``fa`` of impostor scores."""
    for t in np.arange(-0.2, 1.0, 0.005):
        if np.mean(impostor >= t) <= fa:
            return round(float(t), 3)
    return 1.0


def _hist(scores: np.ndarray) -> dict:
    counts, edges = np.histogram(scores, bins=np.arange(-0.2, 1.0001, 0.01))
    return {"n": int(len(scores)), "mean": round(float(np.mean(scores)), 4), "std": round(float(np.std(scores)), 4),
            "quantiles": {str(q): round(float(np.quantile(scores, q)), 4)
                          for q in (0.001, 0.005, 0.01, 0.05, 0.5, 0.95, 0.99, 0.995, 0.999)},
            "histogram": {"bin_start": -0.2, "bin_width": 0.01, "counts": counts.tolist()}}


def _eer(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    ts = np.linspace(-0.2, 1, 1201)
    far = np.array([np.mean(impostor >= t) for t in ts])
    frr = np.array([np.mean(genuine < t) for t in ts])
    i = int(np.argmin(np.abs(far - frr)))
    return {"eer": round(float((far[i] + frr[i]) / 2), 4), "threshold": round(float(ts[i]), 3)}


# --------------------------------------------------------------------------- score populations


def calibration_identify_scores(c: Corpus, vectors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Calibration half: enrollment from 2 parts of a reader's utterance vs its third part (same speaker) and
    vs every other calibration reader's whole utterance (different speakers)."""
    vectors = c.vectors if vectors is None else vectors
    genuine, impostor = [], []
    whole = np.array(c.cal_whole)
    for r, parts in c.cal_parts.items():
        others = whole[[c.reader[u] != r for u in whole]]
        for probe in parts:
            v = _enroll_vector(c, [p for p in parts if p != probe], vectors)
            genuine.append(float(v @ vectors[probe]))
            impostor += (vectors[others] @ v).tolist()
    return np.array(genuine), np.array(impostor)


def scoring_identify_scores(c: Corpus, vectors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scoring half: enrollment from every pair of a test-other reader's utterances vs each other utterance of
    the reader, and vs the odd train-clean readers and the other test-other readers."""
    vectors = c.vectors if vectors is None else vectors
    genuine, impostor = [], []
    imp = vectors[c.impostors]
    for r in c.readers:
        utts = c.utts(r)
        others = [i for i in c.test if c.reader[i] != r]
        for pair in combinations(utts, 2):
            v = _enroll_vector(c, list(pair), vectors)
            genuine += [float(v @ vectors[k]) for k in utts if k not in pair]
            impostor += (imp @ v).tolist() + (vectors[others] @ v).tolist()
    return np.array(genuine), np.array(impostor)


def methods_benchmark(c: Corpus) -> dict:
    """Identification scores for every way of embedding an utterance, on each half: EER, d' (separation of the
    two score distributions in pooled standard deviations), low genuine and high impostor quantiles, and the
    share of genuine scores below the identify rule's threshold."""
    out = {}
    for m, vectors in c.all_vectors.items():
        out[m] = {}
        for half, scores in (("calibration_half", calibration_identify_scores),
                             ("scoring_half", scoring_identify_scores)):
            g, i = scores(c, vectors)
            t = _threshold_at_fa(i, IDENTIFY_FA)
            d_prime = (g.mean() - i.mean()) / np.sqrt((g.var() + i.var()) / 2)
            out[m][half] = {**_eer(g, i), "d_prime": round(float(d_prime), 3),
                            "genuine_mean": round(float(g.mean()), 4), "impostor_mean": round(float(i.mean()), 4),
                            "genuine_q01": round(float(np.quantile(g, 0.01)), 4),
                            "impostor_q998": round(float(np.quantile(i, 0.998)), 4),
                            "genuine_below_identify_rule": round(float(np.mean(g < t)), 4),
                            "genuine": len(g), "impostor": len(i)}
        print(m, json.dumps(out[m]))
    return out


# --------------------------------------------------------------------------- simulated calls


def simulate_calls(c: Corpus, n_calls: int, seed: int) -> list[dict]:
    """Scoring half: calls of one recurring agent (a test-other reader) and a one-off customer (an odd
    train-clean reader, each in one call at most).

    The agent speaks random crops of 2-3 of its utterances; the customer a crop of its one utterance.
    Observation vectors come from the crops (oracle diarization), embedded the corpus's way.
    """
    if n_calls > len(c.impostors):
        sys.exit(f"{n_calls} calls need as many one-off customers; the scoring half has {len(c.impostors)}")
    rng = np.random.default_rng(seed)
    customers = rng.permutation(c.impostors)
    calls = []
    for k in range(n_calls):
        agent = c.readers[k % len(c.readers)]
        picks = rng.choice(c.utts(agent), size=int(rng.integers(2, 4)), replace=False)
        crops = [c.crop(int(i), rng) for i in picks]
        customer = int(customers[k])
        cvec, ctalk = c.crop(customer, rng)
        calls.append({"file_id": f"call-{seed}-{k:03d}", "agent": agent, "agent_utts": [c.names[i] for i in picks],
                      "customer": c.reader[customer], "customer_utt": c.names[customer],
                      "agent_vec": _unit(sum(t * v for v, t in crops)), "agent_talk": sum(t for _, t in crops),
                      "customer_vec": cvec, "customer_talk": ctalk})
    return calls


def calibration_calls(c: Corpus, seed: int = 1) -> list[dict]:
    """Calibration half: CALIBRATION_AGENTS readers are agents with one call per part of their utterance
    (the whole part); every call's customer is another calibration reader (a crop of its utterance),
    each in one call."""
    rng = np.random.default_rng(seed)
    agents = [str(r) for r in rng.permutation(sorted(c.cal_parts, key=int))[:CALIBRATION_AGENTS]]
    customers = [str(r) for r in rng.permutation([r for r in c.cal_readers if r not in agents])]
    assert PARTS * len(agents) <= len(customers)
    calls = []
    for p in range(PARTS):
        for agent in agents:
            part = c.cal_parts[agent][p]
            customer = customers[len(calls)]
            cvec, ctalk = c.crop(c.cal_utt[customer], rng)
            calls.append({"file_id": f"cal-{len(calls):03d}", "agent": agent, "agent_utts": [f"{c.names[part]}/{p}"],
                          "customer": customer, "agent_vec": c.vectors[part], "agent_talk": float(c.speech[part]),
                          "customer_vec": cvec, "customer_talk": ctalk})
    return calls


# --------------------------------------------------------------------------- calibration


def calibrate(c: Corpus, write: bool = True) -> dict:
    """Measure same/different-speaker score distributions on the calibration half; choose every threshold."""
    # identification: enrollment from 2 parts vs the third part / other readers' utterances
    genuine, impostor = calibration_identify_scores(c)
    identify = _threshold_at_fa(impostor, IDENTIFY_FA)

    # consistency: one sample against another sample of the same reader (parts)
    same_utt = np.array([float(c.vectors[a] @ c.vectors[b]) for parts in c.cal_parts.values()
                         for a, b in combinations(parts, 2)])
    consistency = round(float(np.floor(np.quantile(same_utt, CONSISTENCY_MISS) * 20) / 20), 3)

    # separation: 2-means centroid cosine of one-voice samples vs 50/50 two-voice samples
    single, mixed = _separation_scores(c, c.cal_whole, seed=7)
    # the largest value (0.025 grid) that splits at most SEPARATION_MISS of the one-voice samples, or one
    # sample when there are too few for that (a quantile of 90 samples would fall between the two lowest)
    allowed = max(1, int(SEPARATION_MISS * len(single)))
    separation = round(float(np.floor(np.sort(single)[allowed] * 40) / 40), 3)

    # linking: call observations of calibration readers
    calls = calibration_calls(c, seed=1)
    obs_genuine, obs_impostor, member = _link_scores(calls)
    link = _threshold_at_fa(obs_impostor, LINK_FA)
    link_member = round(float(np.floor(np.quantile(member, MEMBER_MISS) * 40) / 40), 3)

    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([genuine, impostor])[:, None]
    y = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    lr = LogisticRegression(class_weight="balanced", C=100.0).fit(x, y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    fitted_midpoint = -b / a
    if fitted_midpoint > identify:  # a named match must not count against its name: P >= 0.5 from `identify` up
        b = -a * identify

    thresholds = {"identify": identify, "link": link, "link_member": link_member, "consistency": consistency,
                  "separation": separation, "confidence_a": round(a, 4), "confidence_b": round(b, 4)}
    data = {
        "model_id": c.model_id,
        "data": (f"calibration half of LibriSpeech: the {len(c.cal_readers)} train-clean-100 readers with an even "
                 f"id, one utterance each; the {len(c.cal_parts)} with {PARTS * PART_MIN_SPEECH:.0f} s of speech "
                 "or more "
                 f"cut in {PARTS} parts of equal speech time for same-speaker scores. No test-other reader and no "
                 "odd train-clean-100 reader (the scoring half)"),
        "vectors": c.method,
        "thresholds": thresholds,
        "rules": {
            "identify": f"smallest threshold with at most {IDENTIFY_FA:.1%} of impostor comparisons accepted",
            "link": f"smallest threshold with at most {LINK_FA:.2%} of impostor observation-voice comparisons accepted",
            "link_member": f"{MEMBER_MISS:.0%} quantile of same-agent observation-observation scores",
            "consistency": f"{CONSISTENCY_MISS:.1%} quantile of same-reader sample-sample scores (parts)",
            "separation": f"largest value (0.025 grid) splitting at most {SEPARATION_MISS:.1%} of one-voice samples "
                          "(two-means centroid cosine below it), or one sample when that allows none",
            "confidence": "logistic regression of same-speaker on identification score, balanced classes; "
                          "shifted (same slope) so that P(same) = 0.5 at `identify` when the fit puts 0.5 higher",
        },
        "confidence_fit": {"a": round(a, 4), "b_fitted": round(float(lr.intercept_[0]), 4),
                           "midpoint_fitted": round(fitted_midpoint, 4), "shifted": bool(fitted_midpoint > identify)},
        "separation_tradeoff": _separation_tradeoff(c, single, mixed),
        "at_threshold": {
            "identify_genuine_accept": round(float(np.mean(genuine >= identify)), 4),
            "identify_impostor_accept": round(float(np.mean(impostor >= identify)), 5),
            "link_genuine_accept": round(float(np.mean(obs_genuine >= link)), 4),
            "link_impostor_accept": round(float(np.mean(obs_impostor >= link)), 5),
            "member_genuine_pass": round(float(np.mean(member >= link_member)), 4),
            "consistency_genuine_pass": round(float(np.mean(same_utt >= consistency)), 4),
            "separation_two_voice_detected": round(float(np.mean(mixed < separation)), 4),
            "separation_one_voice_split": round(float(np.mean(single < separation)), 4),
        },
        "eer": _eer(genuine, impostor),
        "distributions": {
            "identify_genuine": _hist(genuine), "identify_impostor": _hist(impostor),
            "utterance_same_reader": _hist(same_utt),
            "link_genuine": _hist(obs_genuine), "link_impostor": _hist(obs_impostor), "link_member": _hist(member),
            "separation_one_voice": _hist(single), "separation_two_voices": _hist(mixed),
        },
    }
    if write:
        (MODELS / "calibration").mkdir(parents=True, exist_ok=True)
        (MODELS / "calibration" / f"{c.model_id}.json").write_text(json.dumps(data, indent=1) + "\n")
        table_path = MODELS / "thresholds.json"
        table = json.loads(table_path.read_text()) if table_path.exists() else {"schema": 1, "models": {}}
        table["models"][c.model_id] = {**thresholds, "measured": f"calibration/{c.model_id}.json"}
        table_path.write_text(json.dumps(table, indent=2) + "\n")
    print(json.dumps({"thresholds": thresholds, "at_threshold": data["at_threshold"], "eer": data["eer"]}, indent=1))
    return data


def _separation_scores(c: Corpus, units: list[int], seed: int, pairs: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Two-means centroid cosine of one-voice samples (units with 8 windows or more) and of 50/50
    concatenations of two readers' windows (random pairs of ``units``)."""
    rng = np.random.default_rng(seed)
    single = np.array([_split_cosine(c.windows[u]) for u in units if len(c.windows[u]) >= 8])
    mixed = []
    for _ in range(pairs):
        a, b = rng.choice(units, size=2, replace=False)
        if c.reader[a] == c.reader[b] or min(len(c.windows[a]), len(c.windows[b])) < 4:
            continue
        n = min(len(c.windows[a]), len(c.windows[b]))
        mixed.append(_split_cosine(np.concatenate([c.windows[a][:n], c.windows[b][:n]])))
    return single, np.array(mixed)


def _separation_tradeoff(c: Corpus, single: np.ndarray, mixed: np.ndarray) -> dict:
    """Calibration half, for a few separation values: one-voice samples split / refused (main voice under
    DOMINANT_SHARE of the windows), 50/50 two-voice samples split (refused: the same)."""
    from diarize.voiceprints.enrollment import DOMINANT_SHARE, _main_voice

    ones = [c.windows[u] for u in c.cal_whole if len(c.windows[u]) >= 8]
    out = {}
    for t in (0.2, 0.3, 0.4, 0.5):
        out[str(t)] = {"one_voice_split": round(float(np.mean(single < t)), 4),
                       "one_voice_refused": round(float(np.mean([_main_voice(w, t)[1] < DOMINANT_SHARE
                                                                 for w in ones])), 4),
                       "two_voice_split": round(float(np.mean(mixed < t)), 4)}
    return out


def _link_scores(calls: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observation-to-voice scores: same agent (vs the centroid of its calls sharing no utterance), different
    people (customers and other agents vs each agent's centroid, customer vs customer), and agent member pairs."""
    obs_genuine, obs_impostor, member = [], [], []
    by_agent: dict[str, list[dict]] = {}
    for call in calls:
        by_agent.setdefault(call["agent"], []).append(call)
    for agent, own in by_agent.items():
        for x, y in combinations(own, 2):
            if not set(x["agent_utts"]) & set(y["agent_utts"]):
                member.append(float(x["agent_vec"] @ y["agent_vec"]))
        for x in own:
            rest = [y["agent_vec"] for y in own if not set(x["agent_utts"]) & set(y["agent_utts"])]
            if rest:
                obs_genuine.append(float(x["agent_vec"] @ _unit(np.mean(rest, axis=0))))
        centroid = _unit(np.mean([x["agent_vec"] for x in own], axis=0))
        obs_impostor += [float(call["customer_vec"] @ centroid) for call in calls]
        obs_impostor += [float(x["agent_vec"] @ centroid) for a2, other in by_agent.items() if a2 != agent
                         for x in other]
    cust = np.stack([call["customer_vec"] for call in calls])
    cc = cust @ cust.T
    obs_impostor += cc[np.triu_indices(len(cust), 1)].tolist()
    return np.array(obs_genuine), np.array(obs_impostor), np.array(member)


def _split_cosine(windows: np.ndarray) -> float:
    """Cosine between the two centroids two-means finds (1.0 when it finds one group)."""
    split = two_means(windows)
    return 1.0 if split is None else float(split[0][0] @ split[0][1])


# --------------------------------------------------------------------------- benchmarks (scoring half)


def _calibration(model_id: str) -> Calibration:
    from diarize.voiceprints.calibration import load_calibration

    return load_calibration(model_id)


def identify_benchmark(c: Corpus, cal: Calibration) -> dict:
    """Enroll each test-other reader from its first 2 utterances; identify the other 8 and the odd train-clean
    readers (impostors). Then the enrollment gates on the same half."""
    tmp = Path(tempfile.mkdtemp())
    try:
        with EmbeddedStore(tmp) as store:
            reg = SpeakerRegistry(store.collection(c.model_id, c.dimension))
            for r in c.readers:
                utts = c.utts(r)[:2]
                reg.enroll(TENANT, f"reader {r}", [
                    EnrollmentSample(c.vectors[i].astype(np.float32), float(c.speech[i]), c.names[i], c.names[i])
                    for i in utts], consistency=cal.consistency)
            probes = [i for r in c.readers for i in c.utts(r)[2:]]
            top1 = named = 0
            per_reader: dict[str, int] = {}
            for i in probes:
                m = identify_vectors(["probe"], [c.vectors[i]], reg, TENANT, cal, threshold=-1.0)[0]
                top1 += m.name == f"reader {c.reader[i]}"
                m = identify_vectors(["probe"], [c.vectors[i]], reg, TENANT, cal)[0]
                named += m.name == f"reader {c.reader[i]}"
                per_reader[c.reader[i]] = per_reader.get(c.reader[i], 0) + (m.name == f"reader {c.reader[i]}")
            accepted = [c.names[i] for i in c.impostors
                        if identify_vectors(["x"], [c.vectors[i]], reg, TENANT, cal)[0].name is not None]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    genuine, impostor = scoring_identify_scores(c)
    out = {"half": "scoring", "vectors": c.method, "enrolled": len(c.readers), "probes": len(probes),
           "closed_set_top1": top1 / len(probes), "open_set_named": named / len(probes),
           "impostors": len(c.impostors), "open_set_false_accepts": len(accepted) / len(c.impostors),
           "impostors_accepted": accepted, "threshold": cal.identify,
           "named_per_reader": {r: n / len(c.utts(r)[2:]) for r, n in per_reader.items()},
           "every_enrollment_pair": {"genuine": len(genuine), "impostor": len(impostor),
                                     "genuine_accept": round(float(np.mean(genuine >= cal.identify)), 4),
                                     "impostor_accept": round(float(np.mean(impostor >= cal.identify)), 5),
                                     "eer": _eer(genuine, impostor)},
           "gates": gates_benchmark(c, cal)}
    print(json.dumps(out, indent=1))
    return out


def gates_benchmark(c: Corpus, cal: Calibration) -> dict:
    """Enrollment gates on the scoring half: the consistency check (a reader's utterance against the
    speech-weighted mean of its other 9; another reader's utterance against all 10) and the one-voice
    check without a diarizer (two-means centroids below ``separation``: split; the sample is refused when
    the main voice then holds under DOMINANT_SHARE of the windows)."""
    from diarize.voiceprints.enrollment import DOMINANT_SHARE, _main_voice

    kept, refused = [], []
    for r in c.readers:
        utts = c.utts(r)
        for i in utts:
            rest = [j for j in utts if j != i]
            kept.append(float(c.vectors[i] @ _enroll_vector(c, rest)) >= cal.consistency)
        voice = _enroll_vector(c, utts)
        refused += [float(c.vectors[k] @ voice) < cal.consistency for k in c.impostors]
        refused += [float(c.vectors[k] @ voice) < cal.consistency for k in c.test if c.reader[k] != r]
    units = c.test + c.impostors
    single, mixed = _separation_scores(c, units, seed=8)
    one_refused = [_main_voice(c.windows[u], cal.separation)[1] < DOMINANT_SHARE
                   for u in units if len(c.windows[u]) >= 8]
    rng = np.random.default_rng(8)
    two_refused = []
    for _ in range(300):
        a, b = rng.choice(units, size=2, replace=False)
        n = min(len(c.windows[a]), len(c.windows[b]))
        if c.reader[a] != c.reader[b] and n >= 4:
            two_refused.append(_main_voice(np.concatenate([c.windows[a][:n], c.windows[b][:n]]),
                                           cal.separation)[1] < DOMINANT_SHARE)
    return {"consistency": cal.consistency,
            "same_reader_sample_accepted": round(float(np.mean(kept)), 4), "same_reader_samples": len(kept),
            "other_reader_sample_refused": round(float(np.mean(refused)), 4), "other_reader_samples": len(refused),
            "separation": cal.separation,
            "one_voice_sample_kept_whole": round(float(np.mean(single >= cal.separation)), 4),
            "one_voice_sample_refused": round(float(np.mean(one_refused)), 4),
            "one_voice_samples": len(single),
            "two_voice_sample_split": round(float(np.mean(mixed < cal.separation)), 4),
            "two_voice_sample_refused": round(float(np.mean(two_refused)), 4),
            "two_voice_samples": len(mixed)}


def fingerprint_benchmark(c: Corpus, cal: Calibration, n_calls: int = 40, pipeline: bool = False,
                          rerun: bool = False) -> dict:
    """Observe simulated calls in order; score agents' voice-id consistency and customers' false merges."""
    calls = simulate_calls(c, n_calls, seed=0)
    if pipeline:
        cached = CACHE / f"voiceprints-calls-{c.model_id}-{n_calls}-scoring-half.pkl"
        if cached.exists() and not rerun:
            results = pickle.loads(cached.read_bytes())
        else:
            results = _pipeline_results(calls, c.model)
            cached.write_bytes(pickle.dumps(results))
    else:
        results = []
        for call in calls:
            agent = Speaker("Speaker A", call["agent_talk"], 3, call["agent_vec"].astype(np.float32))
            customer = Speaker("Speaker B", call["customer_talk"], 3, call["customer_vec"].astype(np.float32))
            people = {"Speaker A": call["agent"], "Speaker B": call["customer"]}
            results.append((Result([], [agent, customer], 60.0, c.model_id), people))
    tmp = Path(tempfile.mkdtemp())
    try:
        with EmbeddedStore(tmp) as store:
            linker = VoiceLinker(store.collection(c.model_id, c.dimension), cal)
            links = []
            for call, (res, people) in zip(calls, results):
                for link in linker.observe(TENANT, call["file_id"], res.speakers):
                    links.append((call, people.get(link.label), link))
            voice_people: dict[str, set[str]] = {}
            for _, person, link in links:
                if link.voice_id and person:
                    voice_people.setdefault(link.voice_id, set()).add(person)
            agents = {}
            for agent in c.readers:
                own = [(call["file_id"], link) for call, person, link in links if person == agent]
                vids = [link.voice_id for _, link in own if link.voice_id]
                if not vids:
                    continue
                best = max(set(vids), key=vids.count)
                calls_of = {f for f, _ in own}
                agents[agent] = {
                    "calls": len(calls_of), "linked_appearances": len(vids),
                    "in_main_voice": vids.count(best) / len(vids),
                    "calls_with_main_voice": len({f for f, link in own if link.voice_id == best}) / len(calls_of),
                    "unlinked_pieces": sum(1 for _, link in own if link.voice_id is None),
                    "main_voice_pure": voice_people.get(best, set()) == {agent}}
            customers = [(person, link) for call, person, link in links if person == call["customer"]]
            merged = sum(1 for person, link in customers
                         if link.voice_id is not None and voice_people[link.voice_id] != {person})
            kept_apart = sum(1 for person, link in customers
                             if link.voice_id is None or voice_people[link.voice_id] == {person})
            n_apps = sum(a["linked_appearances"] for a in agents.values())
            n_calls_agents = sum(a["calls"] for a in agents.values())
            out = {"half": "scoring", "vectors": c.method, "calls": n_calls, "agents": len(agents),
                   "customer_observations": len(customers),
                   "diarization": "pipeline" if pipeline else "oracle",
                   "agent_appearances_in_own_voice": round(sum(a["linked_appearances"] * a["in_main_voice"]
                                                               for a in agents.values()) / max(n_apps, 1), 4),
                   "agent_calls_with_own_voice": round(sum(a["calls"] * a["calls_with_main_voice"]
                                                           for a in agents.values()) / max(n_calls_agents, 1), 4),
                   "agent_main_voices_pure": all(a["main_voice_pure"] for a in agents.values()),
                   "customers_kept_apart": round(kept_apart / max(len(customers), 1), 4),
                   "customers_wrongly_merged": round(merged / max(len(customers), 1), 4),
                   "customer_observations_unlinked": sum(1 for _, link in customers if link.voice_id is None),
                   "voices": len(linker.voices(TENANT)), "per_agent": agents,
                   "link": cal.link, "link_member": cal.link_member}
            if pipeline:
                out["speakers_per_call"] = _histogram_of([len(res.speakers) for res, _ in results])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=1))
    return out


def _histogram_of(values: list[int]) -> dict[str, int]:
    return {str(k): values.count(k) for k in sorted(set(values))}


def _pipeline_results(calls: list[dict], model: str) -> list[tuple[Result, dict[str, str]]]:
    """Render each call as audio (agent and customer turns) and diarize it with the real pipeline (the
    default one for CAM++, the ``fast`` preset for GE2E), one thread.

    Each diarized label is attributed to the person who spoke most of its utterances.
    """
    import soundfile as sf

    from diarize.audio import Audio
    from diarize.config import PipelineConfig
    from diarize.pipeline import DiarizationPipeline

    config = PipelineConfig() if model == "campplus" else PipelineConfig.preset("fast")
    config = config.model_copy(update={"embedding": config.embedding.model_copy(update={"num_threads": 1})})
    pipe = DiarizationPipeline(config)
    assert pipe.embedding_backend.model_id == MODEL_IDS[model]
    paths = {p.stem: p for p in _files()}
    out = []
    t0 = time.time()
    for k, call in enumerate(calls):
        rng = np.random.default_rng(1000 + k)
        agent = [sf.read(paths[n], dtype="float32")[0] for n in call["agent_utts"]]
        customer = sf.read(paths[call["customer_utt"]], dtype="float32")[0]
        half = len(customer) // 2
        turns = [(call["agent"], agent[0]), (call["customer"], customer[:half]),
                 *[(call["agent"], a) for a in agent[1:]], (call["customer"], customer[half:])]
        pieces, spans, cursor = [], [], 0
        for person, x in turns:
            gap = np.zeros(int(rng.uniform(0.3, 0.8) * 16000), np.float32)
            pieces += [gap, x]
            spans.append((person, (cursor + len(gap)) / 16000, (cursor + len(gap) + len(x)) / 16000))
            cursor += len(gap) + len(x)
        res = pipe(Audio(np.ascontiguousarray(np.concatenate(pieces)[None, :]), 16000))
        people = {}
        for spk in res.speakers:
            overlap: dict[str, float] = {}
            for u in (u for u in res.utterances if u.speaker == spk.label):
                for person, a, b in spans:
                    overlap[person] = overlap.get(person, 0.0) + max(0.0, min(b, u.end) - max(a, u.start))
            people[spk.label] = max(overlap, key=overlap.get) if overlap else ""
        out.append((res, people))
        print(f"call {k + 1}/{len(calls)}: {len(res.speakers)} speakers ({time.time() - t0:.0f} s)", flush=True)
    return out


def store_benchmark(sizes: list[int], dimension: int = 256, queries: int = 300, engine: str = "edge") -> dict:
    """Tenant-filtered top-5 search and re-open time of the embedded store on synthetic unit vectors.

    40 % of the points belong to one large tenant, the rest to 99 small ones; queries go to the large
    tenant (the worst case) and to a small one. ``engine="client-local"`` measures qdrant-client's
    local mode through the same code instead, for comparison.
    """
    def open_store(path: Path):
        if engine == "edge":
            return EmbeddedStore(path)
        from qdrant_client import QdrantClient

        return ServerStore(client=QdrantClient(path=str(path)))

    out = {}
    for n in sizes:
        rng = np.random.default_rng(0)
        tmp = Path(tempfile.mkdtemp())
        try:
            tenants = np.where(rng.random(n) < 0.4, 0, rng.integers(1, 100, n))
            t0 = time.perf_counter()
            with open_store(tmp) as store:
                coll = store.collection("synthetic", dimension)
                for start in range(0, n, 2000):
                    block = rng.normal(size=(min(2000, n - start), dimension)).astype(np.float32)
                    by_tenant: dict[int, list[NewPoint]] = {}
                    for j, v in enumerate(block):
                        i = start + j
                        by_tenant.setdefault(int(tenants[i]), []).append(NewPoint(
                            "speaker", str(i), v, {"speaker_id": str(i), "name": f"speaker {i}", "name_key": str(i)}))
                    for t, pts in by_tenant.items():
                        coll.upsert(f"tenant-{t}", pts)
            write_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            store = open_store(tmp)
            coll = store.collection("synthetic", dimension)
            reopen_s = time.perf_counter() - t0
            lat = {}
            for label, tenant in (("large_tenant", "tenant-0"), ("small_tenant", "tenant-7")):
                q = rng.normal(size=(queries, dimension))
                ms, cpu = [], []
                for v in q:
                    t0, c0 = time.perf_counter(), time.process_time()
                    hits = coll.search(tenant, v, "speaker", limit=5)
                    ms.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.process_time() - c0) * 1000)
                    assert len(hits) == 5 and all(h.payload["tenant"] == tenant for h in hits)
                size = int(np.sum(tenants == int(tenant.split("-")[1])))
                lat[label] = {"points": size,
                              "p50_ms": round(float(np.percentile(ms, 50)), 2),
                              "p99_ms": round(float(np.percentile(ms, 99)), 2),
                              "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
                              "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 2)}
            store.close()
            size_mb = sum(f.stat().st_blocks * 512 for f in tmp.rglob("*") if f.is_file()) / 2**20
            out[str(n)] = {"engine": engine, "points": n, "dimension": dimension,
                           "load_average": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
                           "write_s": round(write_s, 1), "reopen_s": round(reopen_s, 3),
                           "disk_mb": round(size_mb), **lat}
            print(json.dumps(out[str(n)]))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out



def _save(model_id: str, key: str, value: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"voiceprints-{model_id}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=1, default=float) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["embed", "methods", "calibrate", "identify", "fingerprint", "store", "all"])
    ap.add_argument("--model", choices=sorted(MODEL_IDS), default="campplus", help="embedding model (default campplus)")
    ap.add_argument("--vectors", choices=METHODS, help="utterance vectors (default: as enrollment computes them)")
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--pipeline", action="store_true", help="fingerprint: diarize rendered calls with the pipeline")
    ap.add_argument("--rerun", action="store_true", help="fingerprint --pipeline: ignore the cached diarizations")
    ap.add_argument("--dry-run", action="store_true", help="calibrate: print, write nothing")
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000, 200000])
    ap.add_argument("--engine", choices=["edge", "client-local"], default="edge", help="store: engine to measure")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    model, model_id = args.model, MODEL_IDS[args.model]
    suffix = f"_{args.vectors}" if args.vectors and args.vectors != enrollment_method(model) else ""
    cmd = args.command
    if cmd in ("embed", "all") and (cmd == "embed" or not (CACHE / f"voiceprints-{model_id}.npz").exists()):
        embed(model)
    if cmd in ("methods", "all"):
        _save(model_id, "vector_methods", methods_benchmark(Corpus(model)))
    if cmd in ("calibrate", "all"):
        data = calibrate(Corpus(model, args.vectors), write=not (args.dry_run or suffix))
        if not (args.dry_run or suffix):
            _save(model_id, "calibration", {"vectors": data["vectors"], "thresholds": data["thresholds"],
                                            **data["at_threshold"], "eer": data["eer"]})
    if cmd in ("identify", "all"):
        _save(model_id, "identify" + suffix, identify_benchmark(Corpus(model, args.vectors), _calibration(model_id)))
    if cmd in ("fingerprint", "all"):
        key = f"fingerprint_{'pipeline' if args.pipeline else 'oracle'}_{args.calls}_calls{suffix}"
        _save(model_id, key, fingerprint_benchmark(Corpus(model, args.vectors), _calibration(model_id), args.calls,
                                                   args.pipeline, args.rerun))
    if cmd in ("store", "all"):
        key = "store" if args.engine == "edge" else f"store_{args.engine}"
        _save(model_id, key, store_benchmark(args.sizes, engine=args.engine))


if __name__ == "__main__":
    main()
