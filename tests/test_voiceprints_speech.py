"""Voiceprints on real speech (LibriSpeech in ../shared/data): gates, identification, fingerprinting."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from diarize.errors import EnrollmentError
from diarize.voiceprints import Voiceprints, apply_names, identify_vectors
from diarize.voiceprints.enrollment import prepare_sample
from diarize.voiceprints.store import EmbeddedStore

from .speech import build_conversation, reader_utterances

pytest.importorskip("qdrant_edge", reason="qdrant-edge-py is not installed")

MALE, FEMALE, OTHER = "1688", "367", "2609"


@pytest.fixture(scope="module")
def backend():
    from diarize.embeddings import load_backend

    return load_backend()


@pytest.fixture
def vp(tmp_path, backend):
    v = Voiceprints(EmbeddedStore(tmp_path), backend)
    yield v
    v.close()


def _impostor(data_dir) -> np.ndarray:
    path = sorted((data_dir / "librispeech" / "train-clean-100").glob("*.flac"))[0]
    return sf.read(path, dtype="float32")[0]


def test_readers_are_identified_and_an_unknown_reader_is_not(vp, data_dir):
    for reader in (MALE, FEMALE):
        report = vp.enroll("t", f"reader {reader}", reader_utterances(data_dir, reader, 2))
        assert report.created and report.speaker.n_samples == 2
    probes = {f"P{i}": (reader, utt) for reader in (MALE, FEMALE)
              for i, utt in enumerate(reader_utterances(data_dir, reader, 5)[2:], start=len(reader) * 10)}
    probes["X"] = ("nobody", _impostor(data_dir))
    vectors = {label: vp.prepare(utt).vector for label, (_, utt) in probes.items()}
    named = 0
    for label, vector in vectors.items():  # each probe is its own file: one person per file at most
        closed = identify_vectors([label], [vector], vp.speakers, "t", vp.calibration, threshold=-1.0)[0]
        m = identify_vectors([label], [vector], vp.speakers, "t", vp.calibration)[0]
        reader = probes[label][0]
        if reader == "nobody":
            assert m.name is None and m.confidence < 0.5
        else:
            assert closed.name == f"reader {reader}"
            named += m.name == f"reader {reader}"
    assert named >= 5  # of 6 probes; the open-set threshold trades a few misses for few false accepts
    assert identify_vectors(["X"], [vectors["P40"]], vp.speakers, "other-tenant", vp.calibration)[0].name is None


def test_noise_silence_and_short_speech_are_refused(vp, data_dir):
    rng = np.random.default_rng(0)
    with pytest.raises(EnrollmentError, match="silent"):
        vp.enroll("t", "Nobody", np.zeros(16000 * 6, np.float32))
    with pytest.raises(EnrollmentError, match="no speech"):
        vp.enroll("t", "Nobody", (0.05 * rng.normal(size=16000 * 6)).astype(np.float32))
    with pytest.raises(EnrollmentError):
        vp.enroll("t", "Nobody", reader_utterances(data_dir, MALE, 1)[0][: 16000 * 2])
    assert vp.list_speakers("t") == []


def test_two_readers_in_one_sample_are_refused_without_diarizer(vp, data_dir):
    a = np.concatenate(reader_utterances(data_dir, MALE, 2))[: 16000 * 8]
    b = np.concatenate(reader_utterances(data_dir, FEMALE, 3))[: 16000 * 8]
    with pytest.raises(EnrollmentError, match="several voices"):
        vp.enroll("t", "Mixed", np.concatenate([a, b]))


def test_pipeline_names_enrolled_speakers_and_links_voices_across_calls(tmp_path, data_dir):
    from diarize.audio import Audio
    from diarize.pipeline import DiarizationPipeline

    pipe = DiarizationPipeline()
    with Voiceprints(EmbeddedStore(tmp_path), pipe.embedding_backend, diarizer=pipe) as vp:
        enrolled = reader_utterances(data_dir, MALE, 2)
        sample = prepare_sample(np.concatenate(enrolled), vp.backend)  # VAD gate only: one pipeline run less
        vp.speakers.enroll("t", "Agent Smith", [sample], consistency=vp.calibration.consistency)
        male, other = reader_utterances(data_dir, MALE, 6)[2:], reader_utterances(data_dir, OTHER, 4)
        audio, reference = build_conversation([("A", male[0]), ("B", other[0]), ("A", male[1]), ("B", other[1])],
                                              seed=1)
        result = pipe(Audio(np.ascontiguousarray(audio[None, :]), 16000))
        matches = vp.identify("t", result)
        assert [m.name for m in matches if m.name] == ["Agent Smith"]
        named = apply_names(result, matches).to_annotation()
        spoken = {who: reference.label_timeline(who) for who in ("A", "B")}
        agent = named.label_timeline("Agent Smith")
        assert agent.crop(spoken["A"]).duration() > 3 * agent.crop(spoken["B"]).duration()

        first = {link.label: link for link in vp.observe("t", "call-1", result)}
        audio2, _ = build_conversation([("A", male[2]), ("C", other[2]), ("A", male[3]), ("C", other[3])], seed=2)
        second = {link.label: link for link in vp.observe("t", "call-2", pipe(Audio(audio2[None, :].copy(), 16000)))}
        agent_label = next(m.label for m in matches if m.name == "Agent Smith")
        agent_voice = first[agent_label].voice_id
        assert agent_voice in {link.voice_id for link in second.values()}
        assert {a.file_id for a in vp.appearances("t", agent_voice)} == {"call-1", "call-2"}
        assert vp.find_voice("t", np.concatenate(male[:2]))[0].voice.voice_id == agent_voice
