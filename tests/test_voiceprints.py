"""Enrollment gates, speaker management, identification and fingerprinting on deterministic tone voices."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from diarize.errors import (
    EnrollmentError,
    MetadataError,
    ModelMismatchError,
    SpeakerExistsError,
    SpeakerNotFoundError,
    VoiceNotFoundError,
)
from diarize.result import Utterance
from diarize.voiceprints import VoiceLinker, Voiceprints, apply_names, assign, default_data_dir, default_tenant
from diarize.voiceprints.calibration import Calibration
from diarize.voiceprints.enrollment import SEGMENT_SECONDS, voice_frames
from diarize.voiceprints.store import EmbeddedStore, ServerStore

from ._voiceprint_fakes import (
    CALIBRATION,
    FakeDiarizer,
    FrameToneBackend,
    ToneBackend,
    energy_vad,
    result,
    speaker,
    tone,
    traces,
    voice_vector,
)

pytest.importorskip("qdrant_edge", reason="qdrant-edge-py is not installed")

A, B, C = 200.0, 330.0, 470.0  # three tone "voices"


@pytest.fixture
def vp(tmp_path):
    v = Voiceprints(EmbeddedStore(tmp_path), ToneBackend(), vad=energy_vad, calibration=CALIBRATION)
    yield v
    v.close()


# --------------------------------------------------------------------------- enrollment


def test_enroll_list_rename_delete(vp):
    report = vp.enroll("t", "Alice", [tone(A, 6), tone(A, 7)], role="agent", metadata={"team": "blue"})
    assert report.created and report.samples_added == 2
    assert report.speaker.speech_seconds == pytest.approx(13, abs=0.1)
    assert [s.name for s in vp.list_speakers("t")] == ["Alice"]
    assert vp.list_speakers("t")[0].role == "agent" and vp.list_speakers("t")[0].metadata == {"team": "blue"}

    vp.enroll("t", "Bob", tone(B, 12))
    with pytest.raises(SpeakerExistsError):
        vp.rename_speaker("t", "alice", "BOB")
    assert vp.rename_speaker("t", "alice", "Alice Smith").name == "Alice Smith"
    assert [s.name for s in vp.list_speakers("t")] == ["Alice Smith", "Bob"]

    speaker_id = vp.speakers.get("t", "Alice Smith").speaker_id
    vp.delete_speaker("t", "alice smith")
    assert [s.name for s in vp.list_speakers("t")] == ["Bob"]
    assert vp.collection.count("t", None, {"speaker_id": speaker_id}) == 0
    with pytest.raises(SpeakerNotFoundError):
        vp.delete_speaker("t", "Alice Smith")


def test_adding_samples_updates_the_voiceprint(vp):
    vp.enroll("t", "Alice", tone(A, 5))
    before = vp.speakers.nearest("t", voice_vector(A), 1)[0]
    report = vp.enroll("t", "alice", tone(A + 2, 8), metadata={"k": 1})
    after = vp.speakers.nearest("t", voice_vector(A), 1)[0]
    assert not report.created and report.speaker.n_samples == 2
    assert report.speaker.speech_seconds == pytest.approx(13, abs=0.1)
    assert not np.allclose(before[1], after[1])
    assert vp.collection.count("t", "sample") == 2


def test_enrolling_the_same_sample_twice_adds_nothing(vp):
    vp.enroll("t", "Alice", tone(A, 5))
    report = vp.enroll("t", "Alice", tone(A, 5))
    assert report.samples_added == 0 and report.speaker.n_samples == 1


def test_short_enrollment_warns_and_too_short_is_refused(vp):
    assert any("10 s" in w for w in vp.enroll("t", "Alice", tone(A, 4)).warnings)
    assert not vp.enroll("t", "Bob", tone(B, 11)).warnings
    with pytest.raises(EnrollmentError, match="at least 3 s"):
        vp.enroll("t", "Carol", tone(C, 2))
    with pytest.raises(EnrollmentError):
        vp.enroll("t", "Carol", tone(C, 0.5))
    assert [s.name for s in vp.list_speakers("t")] == ["Alice", "Bob"]


def test_silence_and_no_speech_are_refused(vp):
    with pytest.raises(EnrollmentError, match="silent"):
        vp.enroll("t", "Alice", np.zeros(16000 * 5, np.float32))
    with pytest.raises(EnrollmentError, match="no speech"):
        vp.enroll("t", "Alice", (0.001 * np.random.default_rng(0).normal(size=16000 * 5)).astype(np.float32))
    assert vp.list_speakers("t") == []


def test_two_voices_in_one_sample_are_refused_without_diarizer(vp):
    with pytest.raises(EnrollmentError, match="several voices"):
        vp.enroll("t", "Alice", np.concatenate([tone(A, 5), tone(B, 5)]))
    report = vp.enroll("t", "Alice", np.concatenate([tone(A, 12), tone(B, 2)]))
    assert any("another voice" in w for w in report.warnings)
    assert vp.speakers.nearest("t", voice_vector(A), 1)[0][1] @ voice_vector(A) > 0.99


def test_frame_backends_embed_the_main_voice_speech_in_long_pieces(tmp_path):
    """CAM++-like backends: the gates still run on 1.5 s windows, then the voice vector comes from the main
    voice's frames joined in pieces of at most SEGMENT_SECONDS, without the other voice's windows."""
    backend = FrameToneBackend()
    with Voiceprints(EmbeddedStore(tmp_path), backend, vad=energy_vad, calibration=CALIBRATION) as vp:
        long = vp.prepare(tone(A, 70))
        pieces = backend.calls[-1]
        assert len(pieces) == 3 and max(len(p) for p in pieces) <= SEGMENT_SECONDS * 100
        assert sum(len(p) for p in pieces) > 0.99 * 70 * 100
        assert long.vector @ voice_vector(A) > 0.999

        mixed = vp.prepare(np.concatenate([tone(A, 12), tone(B, 2)]))
        assert any("another voice" in w for w in mixed.warnings)
        (frames,) = backend.calls[-1]
        assert 10 * 100 < len(frames) <= 12 * 100 and np.mean(frames == 200) > 0.99
        assert mixed.vector @ voice_vector(A) > 0.999
        with pytest.raises(EnrollmentError, match="several voices"):
            vp.prepare(np.concatenate([tone(A, 5), tone(B, 5)]))


def test_voice_frames_leave_out_frames_of_other_voices():
    first, count = np.array([0, 75, 150, 225]), np.array([150, 150, 150, 150])
    mine = np.array([True, True, False, False])
    assert np.array_equal(voice_frames(first, count, mine, 400), np.arange(0, 150))
    assert np.array_equal(voice_frames(first, count, np.ones(4, bool), 400), np.arange(0, 375))
    # every frame of the voice is also another voice's: keep them rather than nothing
    assert np.array_equal(voice_frames(np.array([0, 0]), np.array([100, 100]), np.array([True, False]), 100),
                          np.arange(100))


def test_a_sample_of_another_voice_is_refused_for_an_existing_speaker(vp):
    vp.enroll("t", "Alice", tone(A, 10))
    with pytest.raises(EnrollmentError, match="does not sound like"):
        vp.enroll("t", "Alice", tone(B, 10))
    assert vp.speakers.get("t", "Alice").n_samples == 1


def test_diarizer_gate_keeps_a_dominant_speaker_with_a_warning(tmp_path):
    two = result(speaker("S1", A, talk_time=9.0), speaker("S2", B, talk_time=1.0))
    with Voiceprints(EmbeddedStore(tmp_path), ToneBackend(), diarizer=FakeDiarizer(two),
                     calibration=CALIBRATION) as vp:
        report = vp.enroll("t", "Alice", tone(A, 10))
        assert any("2 voices" in w for w in report.warnings)
        assert report.speaker.speech_seconds == pytest.approx(9.0)
        assert vp.speakers.nearest("t", voice_vector(A), 1)[0][0].name == "Alice"
        assert vp.speakers.nearest("t", voice_vector(A), 1)[0][1] @ voice_vector(A) > 0.99


def test_diarizer_gate_joins_pieces_of_one_split_voice(tmp_path):
    split = result(speaker("S1", A, talk_time=6.0, noise=0.1, seed=1),
                   speaker("S2", A, talk_time=5.0, noise=0.1, seed=2))
    with Voiceprints(EmbeddedStore(tmp_path), ToneBackend(), diarizer=FakeDiarizer(split),
                     calibration=CALIBRATION) as vp:
        report = vp.enroll("t", "Alice", tone(A, 10))
        assert report.warnings == [] and report.speaker.speech_seconds == pytest.approx(11.0)


def test_diarizer_gate_refuses_when_no_speaker_dominates(tmp_path):
    even = result(speaker("S1", A, talk_time=5.0), speaker("S2", B, talk_time=4.0))
    with Voiceprints(EmbeddedStore(tmp_path), ToneBackend(), diarizer=FakeDiarizer(even),
                     calibration=CALIBRATION) as vp:
        with pytest.raises(EnrollmentError, match="none dominant"):
            vp.enroll("t", "Alice", tone(A, 10))
        assert vp.list_speakers("t") == []


def test_speaker_ids_follow_the_name_and_skip_ids_of_renamed_speakers(tmp_path):
    ids = []
    for sub in ("one", "two"):
        with Voiceprints(EmbeddedStore(tmp_path / sub), ToneBackend(), vad=energy_vad, calibration=CALIBRATION) as vp:
            ids.append(vp.enroll("t", "Alice", tone(A, 12)).speaker.speaker_id)
    assert ids[0] == ids[1]
    with Voiceprints(EmbeddedStore(tmp_path / "one"), ToneBackend(), vad=energy_vad, calibration=CALIBRATION) as vp:
        vp.rename_speaker("t", "Alice", "Alice Smith")
        fresh = vp.enroll("t", "alice", tone(B, 12)).speaker
        assert fresh.speaker_id != ids[0]
        assert vp.speakers.get("t", "Alice Smith").speaker_id == ids[0]
        assert vp.identify("t", result(speaker("S", A)))[0].name == "Alice Smith"


def test_metadata_must_be_json(vp):
    with pytest.raises(EnrollmentError, match="JSON"):
        vp.enroll("t", "Alice", tone(A, 12), metadata={"when": object()})


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": float("-inf")}, {"x": [[[[[[[[[1]]]]]]]]]},
                                 {"x": "y" * 20000}, {"x": 1 << 64}, ["not", "a", "mapping"]],
                         ids=["nan", "inf", "deep", "large", "huge-int", "list"])
def test_metadata_is_checked_before_it_reaches_the_store(vp, bad):
    vp.enroll("t", "Alice", tone(A, 12), metadata={"team": "blue"})
    with pytest.raises(MetadataError):
        vp.enroll("t", "Bob", tone(B, 12), metadata=bad)
    with pytest.raises(MetadataError):
        vp.speakers.update("t", "Alice", metadata=bad)
    assert [(s.name, s.metadata) for s in vp.list_speakers("t")] == [("Alice", {"team": "blue"})]


def test_merged_metadata_stays_bounded(vp):
    """Each update is small, but merged into the metadata they would pass the limit: the last is refused whole."""
    vp.enroll("t", "Alice", tone(A, 12))
    for i in range(3):
        vp.speakers.update("t", "Alice", metadata={f"k{i}": "v" * 5000})
    with pytest.raises(MetadataError, match="bytes"):
        vp.speakers.update("t", "Alice", metadata={"k3": "v" * 5000}, role="agent")
    speaker = vp.speakers.get("t", "Alice")
    assert sorted(speaker.metadata) == ["k0", "k1", "k2"] and speaker.role is None


def _stored_bytes(vp, tenant: str, **where) -> list[bytes]:
    """The float32 bytes of every vector the tenant's points matching ``where`` hold in the store."""
    return [p.vector.tobytes() for p in vp.collection.scroll(tenant, where=where or None, with_vectors=True)]


def test_deletions_leave_no_vector_or_payload_in_the_store_files(tmp_path):
    """A deleted speaker's voiceprint and samples, and a deleted file's observations, are gone from disk
    (Qdrant only marks deleted points; the store rewrites its files before the delete returns)."""
    with Voiceprints(EmbeddedStore(tmp_path), ToneBackend(), vad=energy_vad, calibration=CALIBRATION) as vp:
        speaker_id = vp.enroll("t", "Alice Secretname", [tone(A, 6), tone(A, 7)]).speaker.speaker_id
        vp.enroll("t", "Bob Keeper", tone(B, 12))
        vp.observe("t", "call-secret", result(speaker("S1", C), speaker("S2", A, noise=0.05, seed=3)))
        vp.observe("t", "call-kept", result(speaker("S1", B, noise=0.05, seed=4)))
        alice = _stored_bytes(vp, "t", speaker_id=speaker_id)
        observed = _stored_bytes(vp, "t", file_id="call-secret")
        kept = _stored_bytes(vp, "t", file_id="call-kept")
        assert len(alice) == 3 and len(observed) == 2 and len(kept) == 1
        assert traces(tmp_path, alice + observed + [b"Alice Secretname", b"call-secret"]) == 7
        vp.delete_speaker("t", "Alice Secretname")
        assert vp.delete_file("t", "call-secret") == 2
        assert traces(tmp_path, alice + observed + [b"Alice Secretname", b"call-secret"]) == 0
        assert traces(tmp_path, kept + [b"Bob Keeper", b"call-kept"]) == 3
        assert [s.name for s in vp.list_speakers("t")] == ["Bob Keeper"]
        vp.delete_tenant("t")
        assert traces(tmp_path, kept + [b"Bob Keeper", b"call-kept"]) == 0


def test_results_of_another_embedding_model_are_refused(vp):
    other = result(speaker("Speaker A", A))
    other.model = "speechbrain/spkrec-ecapa-voxceleb"
    with pytest.raises(ModelMismatchError):
        vp.identify("t", other)
    with pytest.raises(ModelMismatchError):
        vp.observe("t", "call-1", other)


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "x" * 300])
def test_bad_names_are_refused(vp, name):
    with pytest.raises(EnrollmentError):
        vp.enroll("t", name, tone(A, 5))


def test_calibration_of_another_model_is_refused(tmp_path):
    other = Calibration("other-model", 0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 0.0)
    with EmbeddedStore(tmp_path) as store:
        with pytest.raises(ModelMismatchError):
            Voiceprints(store, ToneBackend(), vad=energy_vad, calibration=other)


# --------------------------------------------------------------------------- tenant isolation and persistence


def test_tenant_b_never_matches_tenant_a(vp):
    vp.enroll("tenant-a", "Alice", tone(A, 12))
    assert vp.list_speakers("tenant-b") == []
    matches = vp.identify("tenant-b", result(speaker("Speaker A", A)))
    assert matches[0].name is None and matches[0].score is None
    with pytest.raises(SpeakerNotFoundError):
        vp.delete_speaker("tenant-b", "Alice")
    vp.enroll("tenant-b", "Alice", tone(B, 12))
    assert vp.identify("tenant-b", result(speaker("Speaker A", A)))[0].name is None
    assert vp.identify("tenant-a", result(speaker("Speaker A", A)))[0].name == "Alice"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_everything_works_on_the_qdrant_server_path():
    qdrant_client = pytest.importorskip("qdrant_client", reason="qdrant-client is not installed")
    store = ServerStore(client=qdrant_client.QdrantClient(location=":memory:"))
    with Voiceprints(store, ToneBackend(), vad=energy_vad, calibration=CALIBRATION) as vp:
        vp.enroll("a", "Alice", tone(A, 12))
        vp.enroll("a", "Alice", tone(A + 2, 6))
        assert vp.identify("a", result(speaker("S", A)))[0].name == "Alice"
        assert vp.identify("b", result(speaker("S", A)))[0].name is None
        first = vp.observe("a", "call-1", result(speaker("S", B)))[0]
        assert vp.observe("a", "call-2", result(speaker("S", B, noise=0.05, seed=1)))[0].voice_id == first.voice_id
        vp.delete_speaker("a", "Alice")
        vp.delete_tenant("a")
        assert vp.collection.count("a") == 0


def test_default_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DIARIZE_DATA_DIR", str(tmp_path / "vp"))
    assert default_data_dir() == tmp_path / "vp"
    monkeypatch.delenv("DIARIZE_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "diarize"
    monkeypatch.setenv("DIARIZE_TENANT", "acme")
    assert default_tenant() == "acme"


def test_enrolled_speakers_persist_across_reopen(tmp_path):
    with Voiceprints(EmbeddedStore(tmp_path), ToneBackend(), vad=energy_vad, calibration=CALIBRATION) as vp:
        vp.enroll("t", "Alice", tone(A, 12), role="agent")
        vp.observe("t", "call-1", result(speaker("Speaker A", C)))
    with Voiceprints(EmbeddedStore(tmp_path), ToneBackend(), vad=energy_vad, calibration=CALIBRATION) as vp:
        assert [(s.name, s.role) for s in vp.list_speakers("t")] == [("Alice", "agent")]
        assert vp.identify("t", result(speaker("Speaker A", A)))[0].name == "Alice"
        assert len(vp.voices_in_file("t", "call-1")) == 1


# --------------------------------------------------------------------------- identification


def test_assignment_is_optimal_not_greedy():
    scores = np.array([[0.90, 0.85], [0.88, 0.10]])
    assert assign(scores, 0.5) == [1, 0]
    assert assign(scores, 0.89) == [0, None]
    assert assign(np.zeros((2, 0)), 0.5) == [None, None]


def test_identification_is_open_set_and_one_to_one(vp):
    vp.enroll("t", "Alice", tone(A, 12))
    vp.enroll("t", "Bob", tone(B, 12))
    res = result(speaker("Speaker A", A, noise=0.05, seed=1), speaker("Speaker B", C),
                 speaker("Speaker C", A, noise=0.2, seed=2), speaker("Speaker D", B, noise=0.05, seed=3))
    matches = {m.label: m for m in vp.identify("t", res)}
    assert matches["Speaker A"].name == "Alice" and matches["Speaker D"].name == "Bob"
    assert matches["Speaker B"].name is None and matches["Speaker B"].score < CALIBRATION.identify
    assert matches["Speaker C"].name is None
    assert 0.9 < matches["Speaker A"].confidence <= 1.0
    assert matches["Speaker B"].confidence < 0.01


def test_apply_names_relabels_speakers_and_utterances(vp):
    vp.enroll("t", "Alice", tone(A, 12))
    res = result(speaker("Speaker A", A), speaker("Speaker B", C))
    res.utterances = [Utterance("Speaker A", 0, 1), Utterance("Speaker B", 1, 2)]
    named = apply_names(res, vp.identify("t", res))
    assert [s.label for s in named.speakers] == ["Alice", "Speaker B"]
    assert [u.speaker for u in named.utterances] == ["Alice", "Speaker B"]
    assert res.speakers[0].label == "Speaker A"


def test_speaker_without_centroid_is_left_unnamed(vp):
    vp.enroll("t", "Alice", tone(A, 12))
    res = result(speaker("Speaker A", A))
    res.speakers[0].centroid = None
    assert vp.identify("t", res)[0].name is None


# --------------------------------------------------------------------------- fingerprinting


def test_recurring_voice_gets_one_voice_id(vp):
    first = vp.observe("t", "call-1", result(speaker("Speaker A", A, noise=0.05, seed=1), speaker("Speaker B", B)))
    second = vp.observe("t", "call-2", result(speaker("Speaker A", C), speaker("Speaker B", A, noise=0.05, seed=2)))
    assert first[0].new_voice and first[1].new_voice and second[0].new_voice
    assert second[1].voice_id == first[0].voice_id and not second[1].new_voice
    apps = vp.appearances("t", first[0].voice_id)
    assert [(a.file_id, a.label) for a in apps] == [("call-1", "Speaker A"), ("call-2", "Speaker B")]
    assert {a.label: a.voice_id for a in vp.voices_in_file("t", "call-2")} == {
        "Speaker A": second[0].voice_id, "Speaker B": first[0].voice_id}
    assert vp.voices.voice("t", first[0].voice_id).n_observations == 2
    assert len(vp.list_voices("t")) == 3


def test_observing_a_file_twice_changes_nothing(vp):
    links = vp.observe("t", "call-1", result(speaker("Speaker A", A)))
    again = vp.observe("t", "call-1", result(speaker("Speaker A", A)))
    assert again[0].voice_id == links[0].voice_id
    assert vp.voices.voice("t", links[0].voice_id).n_observations == 1


def test_two_speakers_of_one_file_never_share_a_voice(vp):
    vp.observe("t", "call-1", result(speaker("Speaker A", A)))
    links = vp.observe("t", "call-2", result(speaker("Speaker A", A, noise=0.05, seed=1),
                                             speaker("Speaker B", A, talk_time=4.0, noise=0.06, seed=2)))
    assert links[0].voice_id == vp.voices_in_file("t", "call-1")[0].voice_id
    assert links[1].voice_id is None and links[1].fragment_of == "Speaker A"
    assert vp.voices.voice("t", links[0].voice_id).n_observations == 2
    assert len(vp.list_voices("t")) == 1


def test_a_new_voice_split_by_the_diarizer_starts_one_voice(vp):
    links = vp.observe("t", "call-1", result(speaker("Speaker A", B, talk_time=3.0, noise=0.05, seed=1),
                                             speaker("Speaker B", B, talk_time=9.0, noise=0.05, seed=2),
                                             speaker("Speaker C", C)))
    assert links[1].new_voice and links[2].new_voice
    assert links[0].voice_id is None and links[0].fragment_of == "Speaker B"
    assert len(vp.list_voices("t")) == 2


@pytest.mark.parametrize("guard", [True, False])
def test_member_guard_stops_chaining_two_people_together(vp, guard):
    a, b = voice_vector(A), voice_vector(B)
    b = b - (b @ a) * a
    b /= np.linalg.norm(b)
    loose = dataclasses.replace(CALIBRATION, link=0.6, link_member=0.5 if guard else -1.0)
    linker = VoiceLinker(vp.collection, loose)
    links = []
    for i, angle in enumerate([0.0, 0.9, 1.35]):
        spk = speaker("Speaker A", A)
        spk.centroid = (np.cos(angle) * a + np.sin(angle) * b).astype(np.float32)
        links.append(linker.observe("t", f"call-{i}", [spk])[0])
    # call-1 is close enough to call-0 to join its voice; call-2 reaches that voice's centroid
    # (cos 0.9 = 0.62) but not its first member (cos 1.35 = 0.22): only the guard keeps it out.
    assert links[1].voice_id == links[0].voice_id
    assert (links[2].voice_id != links[0].voice_id) is guard


def test_short_speakers_are_stored_but_not_linked(vp):
    links = vp.observe("t", "call-1", result(speaker("Speaker A", A, talk_time=1.0)))
    assert links[0].voice_id is None
    assert [a.label for a in vp.voices_in_file("t", "call-1")] == ["Speaker A"]
    assert vp.list_voices("t") == []


def test_find_voice_from_a_sample(vp):
    first = vp.observe("t", "call-1", result(speaker("Speaker A", A), speaker("Speaker B", B)))
    found = vp.find_voice("t", tone(B, 8))
    assert found[0].voice.voice_id == first[1].voice_id and found[0].matched
    assert not found[1].matched
    assert vp.find_voice("other-tenant", tone(B, 8)) == []


def test_delete_file_and_voice(vp):
    l1 = vp.observe("t", "call-1", result(speaker("Speaker A", A), speaker("Speaker B", B)))
    vp.observe("t", "call-2", result(speaker("Speaker A", A, noise=0.05, seed=1)))
    assert vp.delete_file("t", "call-1") == 2
    assert vp.voices_in_file("t", "call-1") == []
    assert vp.voices.voice("t", l1[0].voice_id).n_observations == 1
    with pytest.raises(VoiceNotFoundError):
        vp.voices.voice("t", l1[1].voice_id)
    vp.delete_voice("t", l1[0].voice_id)
    assert vp.collection.count("t") == 0
