"""Voiceprint benchmarks on LibriSpeech (../shared/data): calibration, identification, fingerprinting, store speed.

    python benchmarks/voiceprints.py embed        # window embeddings of every utterance -> benchmarks/cache/
    python benchmarks/voiceprints.py calibrate    # thresholds -> models/thresholds.json, models/calibration/
    python benchmarks/voiceprints.py identify     # closed-set top-1, open-set false accepts
    python benchmarks/voiceprints.py fingerprint [--pipeline]   # simulated calls: agents and customers
    python benchmarks/voiceprints.py store [--sizes 20000 200000]   # embedded store speed, synthetic vectors
    python benchmarks/voiceprints.py all

Utterance vectors are computed exactly as enrollment does (Silero VAD regions, 1.5 s windows every
0.75 s, mean of window embeddings); identification and linking run through the real store.
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
from diarize.voiceprints.enrollment import EnrollmentSample, _windows, two_means  # noqa: E402
from diarize.voiceprints.identification import identify_vectors  # noqa: E402
from diarize.voiceprints.store import NewPoint  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "librispeech"
CACHE = ROOT / "benchmarks" / "cache"
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ROOT / "models"
TENANT = "bench"

#: Threshold rules (see models/calibration/README.md).
IDENTIFY_FA = 0.002  # per comparison: about 1 % open-set false accepts against 5 enrolled voices
LINK_FA = 0.0005  # per comparison: a one-off voice is compared with ~40 stored voices
MEMBER_MISS = 0.01
CONSISTENCY_MISS = 0.005
SEPARATION_MISS = 0.005


# --------------------------------------------------------------------------- data


def _files() -> list[Path]:
    if not DATA.is_dir():
        sys.exit(f"LibriSpeech not found at {DATA} (../shared/data beside the checkout)")
    return sorted((DATA / "test-other").glob("*/*.flac")) + sorted((DATA / "train-clean-100").glob("*.flac"))


def _backend(name: str):
    from diarize.config import EmbeddingConfig
    from diarize.embeddings import load_backend

    return load_backend(EmbeddingConfig(backend=name))


def embed(backend_name: str) -> Path:
    """Cache the window embeddings of every utterance (as enrollment computes them)."""
    import soundfile as sf

    from diarize.config import EmbeddingConfig
    from diarize.embeddings import level_gain
    from diarize.vad import SileroVAD, frame_energies_db, speech_level_db

    backend, vad = _backend(backend_name), SileroVAD()
    target = EmbeddingConfig().speech_level_db
    out = CACHE / f"voiceprints-{backend.model_id}.npz"
    names, windows, offsets, starts, speech = [], [], [0], [], []
    t0 = time.time()
    for f in _files():
        samples, sr = sf.read(f, dtype="float32")
        assert sr == 16000, f
        regions = [(float(a), float(b)) for a, b in vad(samples)]
        s, e = _windows(regions)
        gain = level_gain(speech_level_db(np.asarray(regions), frame_energies_db(samples)), target)
        windows.append(backend.embed_windows(samples, s, e, gain=gain))
        starts.append(s / 16000)
        offsets.append(offsets[-1] + len(s))
        speech.append(sum(b - a for a, b in regions))
        names.append(f.stem)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(out, names=np.array(names), windows=np.concatenate(windows), offsets=np.array(offsets),
             starts=np.concatenate(starts), speech=np.array(speech), model_id=backend.model_id,
             dimension=backend.dimension)
    print(f"embedded {len(names)} utterances ({sum(speech):.0f} s of speech) in {time.time() - t0:.0f} s -> {out}")
    return out


class Corpus:
    """Cached window embeddings: per utterance its reader, speech seconds and windows."""

    def __init__(self, model_id: str) -> None:
        path = CACHE / f"voiceprints-{model_id}.npz"
        if not path.exists():
            sys.exit(f"{path} missing: run `python benchmarks/voiceprints.py embed` first")
        d = np.load(path)
        self.model_id, self.dimension = str(d["model_id"]), int(d["dimension"])
        self.names = [str(n) for n in d["names"]]
        self.reader = [n.split("-")[0] for n in self.names]
        self.speech = d["speech"]
        off = d["offsets"]
        self.windows = [d["windows"][off[i]:off[i + 1]] for i in range(len(self.names))]
        self.vectors = np.stack([_unit(w.mean(axis=0)) for w in self.windows])
        self.test = [i for i, n in enumerate(self.names) if i < 50]
        self.impostors = list(range(50, len(self.names)))
        self.readers = sorted({self.reader[i] for i in self.test})

    def utts(self, reader: str) -> list[int]:
        return [i for i in self.test if self.reader[i] == reader]


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _enroll_vector(c: Corpus, idx: list[int]) -> np.ndarray:
    w = np.minimum(c.speech[idx], 60.0)
    return _unit((w[:, None] * c.vectors[idx]).sum(axis=0))


def _threshold_at_fa(impostor: np.ndarray, fa: float) -> float:
    """Smallest threshold (0.005 grid) accepting at most a share ``fa`` of impostor scores."""
    for t in np.arange(0.0, 1.0, 0.005):
        if np.mean(impostor >= t) <= fa:
            return round(float(t), 3)
    return 1.0


def _hist(scores: np.ndarray) -> dict:
    counts, edges = np.histogram(scores, bins=np.arange(-0.2, 1.0001, 0.01))
    return {"n": int(len(scores)), "mean": round(float(np.mean(scores)), 4), "std": round(float(np.std(scores)), 4),
            "quantiles": {str(q): round(float(np.quantile(scores, q)), 4)
                          for q in (0.001, 0.005, 0.01, 0.05, 0.5, 0.95, 0.99, 0.995, 0.999)},
            "histogram": {"bin_start": -0.2, "bin_width": 0.01, "counts": counts.tolist()}}


# --------------------------------------------------------------------------- simulated calls


def simulate_calls(c: Corpus, n_calls: int, seed: int, agents: list[str] | None = None) -> list[dict]:
    """Calls of one recurring agent (a test-other reader) and a one-off customer (a train-clean reader).

    The agent speaks random crops of 2-3 of its utterances; the customer a crop of its one utterance.
    Observation centroids are window means over those crops (oracle diarization).
    """
    rng = np.random.default_rng(seed)
    agents = agents or c.readers
    customers = rng.permutation(c.impostors)
    calls = []
    for k in range(n_calls):
        agent = agents[k % len(agents)]
        picks = rng.choice(c.utts(agent), size=int(rng.integers(2, 4)), replace=False)
        crops = [_crop(c.windows[i], rng) for i in picks]
        customer = int(customers[k % len(customers)])
        calls.append({"file_id": f"call-{seed}-{k:03d}", "agent": agent, "agent_utts": [c.names[i] for i in picks],
                      "customer": c.reader[customer],
                      "agent_vec": _unit(np.concatenate(crops).mean(axis=0)),
                      "agent_talk": 0.75 * sum(len(x) for x in crops),
                      "customer_vec": _unit(_crop(c.windows[customer], rng).mean(axis=0)),
                      "customer_talk": 0.75 * len(c.windows[customer])})
    return calls


def _crop(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(w)
    keep = max(2, int(round(n * rng.uniform(0.6, 1.0))))
    start = int(rng.integers(0, n - keep + 1)) if n > keep else 0
    return w[start:start + keep]


# --------------------------------------------------------------------------- calibration


def calibrate(c: Corpus) -> dict:
    """Measure same/different-speaker score distributions and choose every threshold from them."""
    # identification: enrollment from 2 utterances vs one other utterance
    genuine, impostor = [], []
    imp = c.vectors[c.impostors]
    for r in c.readers:
        utts = c.utts(r)
        others = [i for i in c.test if c.reader[i] != r]
        for pair in combinations(utts, 2):
            v = _enroll_vector(c, list(pair))
            genuine += [float(v @ c.vectors[k]) for k in utts if k not in pair]
            impostor += (imp @ v).tolist() + (c.vectors[others] @ v).tolist()
    genuine, impostor = np.array(genuine), np.array(impostor)
    identify = _threshold_at_fa(impostor, IDENTIFY_FA)

    # consistency: one sample against another sample of the same reader
    same_utt = np.array([float(c.vectors[a] @ c.vectors[b]) for r in c.readers for a, b in combinations(c.utts(r), 2)])
    consistency = round(float(np.floor(np.quantile(same_utt, CONSISTENCY_MISS) * 20) / 20), 3)

    # separation: 2-means centroid cosine of one-voice samples vs 50/50 two-voice samples
    rng = np.random.default_rng(7)
    single = np.array([_split_cosine(w) for w in c.windows if len(w) >= 8])
    mixed = []
    for _ in range(300):
        a, b = rng.choice(len(c.names), size=2, replace=False)
        if c.reader[a] == c.reader[b] or min(len(c.windows[a]), len(c.windows[b])) < 4:
            continue
        n = min(len(c.windows[a]), len(c.windows[b]))
        mixed.append(_split_cosine(np.concatenate([c.windows[a][:n], c.windows[b][:n]])))
    mixed = np.array(mixed)
    separation = round(float(np.floor(np.quantile(single, SEPARATION_MISS) * 40) / 40), 3)

    # linking: call observations (separate seed from the benchmark's)
    calls = simulate_calls(c, 120, seed=1)
    obs_genuine, obs_impostor, member = [], [], []
    by_agent: dict[str, list[dict]] = {}
    for call in calls:
        by_agent.setdefault(call["agent"], []).append(call)
    for agent, own in by_agent.items():
        # same-agent pairs only where the two calls share no utterance (the corpus has 10 per reader)
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
    obs_genuine, obs_impostor, member = np.array(obs_genuine), np.array(obs_impostor), np.array(member)
    link = _threshold_at_fa(obs_impostor, LINK_FA)
    link_member = round(float(np.floor(np.quantile(member, MEMBER_MISS) * 40) / 40), 3)

    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([genuine, impostor])[:, None]
    y = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    lr = LogisticRegression(class_weight="balanced", C=100.0).fit(x, y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])

    thresholds = {"identify": identify, "link": link, "link_member": link_member, "consistency": consistency,
                  "separation": separation, "confidence_a": round(a, 4), "confidence_b": round(b, 4)}
    data = {
        "model_id": c.model_id,
        "data": "LibriSpeech test-other (5 readers x 10 utterances) and train-clean-100 (200 readers x 1)",
        "thresholds": thresholds,
        "rules": {
            "identify": f"smallest threshold with at most {IDENTIFY_FA:.1%} of impostor comparisons accepted",
            "link": f"smallest threshold with at most {LINK_FA:.2%} of impostor observation-voice comparisons accepted",
            "link_member": f"{MEMBER_MISS:.0%} quantile of same-agent observation-observation scores",
            "consistency": f"{CONSISTENCY_MISS:.1%} quantile of same-reader utterance-utterance scores",
            "separation": f"{SEPARATION_MISS:.1%} quantile of one-voice samples' two-means centroid cosine",
            "confidence": "logistic regression of same-speaker on identification score, balanced classes",
        },
        "at_threshold": {
            "identify_genuine_accept": round(float(np.mean(genuine >= identify)), 4),
            "identify_impostor_accept": round(float(np.mean(impostor >= identify)), 5),
            "link_genuine_accept": round(float(np.mean(obs_genuine >= link)), 4),
            "link_impostor_accept": round(float(np.mean(obs_impostor >= link)), 5),
            "member_genuine_pass": round(float(np.mean(member >= link_member)), 4),
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
    (MODELS / "calibration").mkdir(parents=True, exist_ok=True)
    (MODELS / "calibration" / f"{c.model_id}.json").write_text(json.dumps(data, indent=1) + "\n")
    table_path = MODELS / "thresholds.json"
    table = json.loads(table_path.read_text()) if table_path.exists() else {"schema": 1, "models": {}}
    table["models"][c.model_id] = {**thresholds, "measured": f"calibration/{c.model_id}.json"}
    table_path.write_text(json.dumps(table, indent=2) + "\n")
    print(json.dumps({"thresholds": thresholds, "at_threshold": data["at_threshold"], "eer": data["eer"]}, indent=1))
    return data


def _split_cosine(windows: np.ndarray) -> float:
    """Cosine between the two centroids two-means finds (1.0 when it finds one group)."""
    split = two_means(windows)
    return 1.0 if split is None else float(split[0][0] @ split[0][1])


def _eer(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    ts = np.linspace(0, 1, 1001)
    far = np.array([np.mean(impostor >= t) for t in ts])
    frr = np.array([np.mean(genuine < t) for t in ts])
    i = int(np.argmin(np.abs(far - frr)))
    return {"eer": round(float((far[i] + frr[i]) / 2), 4), "threshold": round(float(ts[i]), 3)}


# --------------------------------------------------------------------------- benchmarks


def _calibration(model_id: str) -> Calibration:
    from diarize.voiceprints.calibration import load_calibration

    return load_calibration(model_id)


def identify_benchmark(c: Corpus, cal: Calibration) -> dict:
    """Enroll each test-other reader from its first 2 utterances; identify the other 8 and 200 impostors."""
    tmp = Path(tempfile.mkdtemp())
    try:
        with EmbeddedStore(tmp) as store:
            reg = SpeakerRegistry(store.collection(c.model_id, c.dimension))
            for r in c.readers:
                utts = c.utts(r)[:2]
                reg.enroll(TENANT, f"reader {r}", [
                    EnrollmentSample(c.vectors[i].astype(np.float32), float(c.speech[i]), c.names[i], c.names[i])
                    for i in utts])
            probes = [i for r in c.readers for i in c.utts(r)[2:]]
            top1 = named = 0
            for i in probes:
                m = identify_vectors(["probe"], [c.vectors[i]], reg, TENANT, cal, threshold=-1.0)[0]
                top1 += m.name == f"reader {c.reader[i]}"
                m = identify_vectors(["probe"], [c.vectors[i]], reg, TENANT, cal)[0]
                named += m.name == f"reader {c.reader[i]}"
            fa = sum(identify_vectors(["x"], [c.vectors[i]], reg, TENANT, cal)[0].name is not None
                     for i in c.impostors)
            per_reader = {r: sum(identify_vectors(["p"], [c.vectors[i]], reg, TENANT, cal)[0].name == f"reader {r}"
                                 for i in c.utts(r)[2:]) / len(c.utts(r)[2:]) for r in c.readers}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"enrolled": len(c.readers), "probes": len(probes), "closed_set_top1": top1 / len(probes),
           "open_set_named": named / len(probes), "impostors": len(c.impostors),
           "open_set_false_accepts": fa / len(c.impostors), "threshold": cal.identify,
           "named_per_reader": per_reader}
    print(json.dumps(out, indent=1))
    return out


def fingerprint_benchmark(c: Corpus, cal: Calibration, n_calls: int = 40, pipeline: bool = False) -> dict:
    """Observe simulated calls in order; score agents' voice-id consistency and customers' false merges."""
    calls = simulate_calls(c, n_calls, seed=0)
    if pipeline:
        cached = CACHE / f"voiceprints-calls-{c.model_id}-{n_calls}.pkl"
        if cached.exists():
            results = pickle.loads(cached.read_bytes())
        else:
            results = _pipeline_results(calls)
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
            n_apps = sum(a["linked_appearances"] for a in agents.values())
            n_calls_agents = sum(a["calls"] for a in agents.values())
            out = {"calls": n_calls, "agents": len(agents), "customer_observations": len(customers),
                   "diarization": "pipeline" if pipeline else "oracle",
                   "agent_appearances_in_own_voice": round(sum(a["linked_appearances"] * a["in_main_voice"]
                                                               for a in agents.values()) / max(n_apps, 1), 4),
                   "agent_calls_with_own_voice": round(sum(a["calls"] * a["calls_with_main_voice"]
                                                           for a in agents.values()) / max(n_calls_agents, 1), 4),
                   "agent_main_voices_pure": all(a["main_voice_pure"] for a in agents.values()),
                   "customers_wrongly_merged": round(merged / max(len(customers), 1), 4),
                   "customer_observations_unlinked": sum(1 for _, link in customers if link.voice_id is None),
                   "voices": len(linker.voices(TENANT)), "per_agent": agents,
                   "link": cal.link, "link_member": cal.link_member}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=1))
    return out


def _pipeline_results(calls: list[dict]) -> list[tuple[Result, dict[str, str]]]:
    """Render each call as audio (agent and customer turns) and diarize it with the real pipeline.

    Each diarized label is attributed to the person who spoke most of its utterances.
    """
    import soundfile as sf

    from diarize.audio import Audio
    from diarize.pipeline import DiarizationPipeline

    pipe = DiarizationPipeline()
    paths = {p.stem: p for p in _files()}
    out = []
    for k, call in enumerate(calls):
        rng = np.random.default_rng(1000 + k)
        agent = [sf.read(paths[n], dtype="float32")[0] for n in call["agent_utts"]]
        customer = sf.read(next(p for n, p in paths.items() if n.startswith(call["customer"] + "-")),
                           dtype="float32")[0]
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
    ap.add_argument("command", choices=["embed", "calibrate", "identify", "fingerprint", "store", "all"])
    ap.add_argument("--backend", default="resemblyzer", help="embedding backend (resemblyzer, ecapa)")
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--pipeline", action="store_true", help="fingerprint: diarize rendered calls with the pipeline")
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000, 200000])
    ap.add_argument("--engine", choices=["edge", "client-local"], default="edge", help="store: engine to measure")
    args = ap.parse_args(argv)
    model_id = {"resemblyzer": "resemblyzer-ge2e"}.get(args.backend, args.backend)
    cmd = args.command
    if cmd in ("embed", "all") and (cmd == "embed" or not (CACHE / f"voiceprints-{model_id}.npz").exists()):
        embed(args.backend)
    if cmd in ("calibrate", "all"):
        _save(model_id, "calibration", calibrate(Corpus(model_id))["at_threshold"])
    if cmd in ("identify", "all"):
        _save(model_id, "identify", identify_benchmark(Corpus(model_id), _calibration(model_id)))
    if cmd in ("fingerprint", "all"):
        key = f"fingerprint_{'pipeline' if args.pipeline else 'oracle'}_{args.calls}_calls"
        _save(model_id, key, fingerprint_benchmark(Corpus(model_id), _calibration(model_id), args.calls, args.pipeline))
    if cmd in ("store", "all"):
        key = "store" if args.engine == "edge" else f"store_{args.engine}"
        _save(model_id, key, store_benchmark(args.sizes, engine=args.engine))


if __name__ == "__main__":
    main()
