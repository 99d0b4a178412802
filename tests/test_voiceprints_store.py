"""The Qdrant-backed vector store: tenant isolation, persistence, locking, model separation."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from diarize.errors import ConfigError, MetadataError, ModelMismatchError, StoreLockedError
from diarize.voiceprints.store import (
    MAX_PAYLOAD_DEPTH,
    EmbeddedStore,
    NewPoint,
    ServerStore,
    check_payload,
    point_id,
)

from ._voiceprint_fakes import traces

pytest.importorskip("qdrant_edge", reason="qdrant-edge-py is not installed")


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=dim)


@pytest.fixture(params=["embedded", "server"])
def store(request, tmp_path):
    if request.param == "embedded":
        s = EmbeddedStore(tmp_path)
    else:
        qdrant_client = pytest.importorskip("qdrant_client", reason="qdrant-client is not installed")
        s = ServerStore(client=qdrant_client.QdrantClient(location=":memory:"))
    yield s
    s.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_tenant_b_never_sees_or_changes_tenant_a(store):
    coll = store.collection("m", 8)
    ids_a = coll.upsert("a", [NewPoint("speaker", f"k{i}", _vec(i), {"speaker_id": f"k{i}"}) for i in range(4)])
    coll.upsert("b", [NewPoint("speaker", "k0", _vec(100), {"speaker_id": "k0"})])

    hits = coll.search("b", _vec(1), "speaker", limit=10)
    assert [h.payload["tenant"] for h in hits] == ["b"]
    assert coll.retrieve("b", ids_a) == []
    assert coll.count("b") == 1 and coll.count("a") == 4
    coll.delete("b", "speaker", {"speaker_id": "k1"})
    coll.delete_ids("b", ids_a)
    coll.set_payload("b", ids_a, {"name": "stolen"})
    assert coll.count("a") == 4
    assert all("name" not in p.payload for p in coll.scroll("a"))
    best = coll.search("a", _vec(2), "speaker", limit=1)[0]
    assert best.payload["speaker_id"] == "k2" and best.score == pytest.approx(1.0, abs=1e-5)


def test_point_ids_are_deterministic_and_tenant_scoped():
    assert point_id("a", "m", "speaker", "x") == point_id("a", "m", "speaker", "x")
    assert point_id("a", "m", "speaker", "x") != point_id("b", "m", "speaker", "x")
    assert point_id("a", "m", "speaker", "x") != point_id("a", "m2", "speaker", "x")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_same_key_upserted_twice_is_one_point(store):
    coll = store.collection("m", 8)
    coll.upsert("a", [NewPoint("sample", "s", _vec(1))])
    coll.upsert("a", [NewPoint("sample", "s", _vec(2))])
    assert coll.count("a", "sample") == 1


@pytest.mark.parametrize("tenant", ["", "a b", "x" * 129, "../etc", None])
def test_invalid_tenant_is_refused(store, tenant):
    with pytest.raises(ConfigError):
        store.collection("m", 8).count(tenant)


def test_collections_are_per_model_and_refuse_other_dimensions(store):
    a = store.collection("model-a", 8)
    b = store.collection("model-b", 4)
    a.upsert("t", [NewPoint("speaker", "x", _vec(1))])
    assert b.count("t") == 0
    with pytest.raises(ModelMismatchError):
        store.collection("model-a", 16)
    with pytest.raises(ModelMismatchError):
        a.search("t", _vec(1, dim=4), "speaker")
    assert store.models() == {"model-a": 8, "model-b": 4}


def test_delete_tenant_removes_all_its_points_in_every_collection(store):
    for model, dim in (("m1", 8), ("m2", 4)):
        coll = store.collection(model, dim)
        coll.upsert("a", [NewPoint("speaker", "x", _vec(1, dim))])
        coll.upsert("b", [NewPoint("speaker", "x", _vec(2, dim))])
    store.delete_tenant("a")
    assert [store.collection(m, d).count("a") for m, d in (("m1", 8), ("m2", 4))] == [0, 0]
    assert [store.collection(m, d).count("b") for m, d in (("m1", 8), ("m2", 4))] == [1, 1]


def test_embedded_store_persists_across_reopen(tmp_path):
    with EmbeddedStore(tmp_path) as s:
        s.collection("m", 8).upsert("a", [NewPoint("speaker", f"k{i}", _vec(i), {"i": i}) for i in range(50)])
    with EmbeddedStore(tmp_path) as s:
        coll = s.collection("m", 8)
        assert coll.count("a") == 50
        assert coll.search("a", _vec(7), "speaker", 1)[0].payload["i"] == 7


def test_embedded_store_has_one_owner(tmp_path):
    with EmbeddedStore(tmp_path):
        with pytest.raises(StoreLockedError, match="one owner"):
            EmbeddedStore(tmp_path)
        code = textwrap.dedent(f"""
            from diarize.errors import StoreLockedError
            from diarize.voiceprints.store import EmbeddedStore
            try:
                EmbeddedStore({str(tmp_path)!r})
            except StoreLockedError:
                raise SystemExit(3)
        """)
        assert subprocess.run([sys.executable, "-c", code]).returncode == 3
    EmbeddedStore(tmp_path).close()


def test_writes_survive_a_killed_process(tmp_path):
    code = textwrap.dedent(f"""
        import os, signal, numpy as np
        from diarize.voiceprints.store import EmbeddedStore, NewPoint
        s = EmbeddedStore({str(tmp_path)!r})
        s.collection("m", 8).upsert("a", [NewPoint("speaker", str(i), np.ones(8) + i) for i in range(10)])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    with EmbeddedStore(tmp_path) as s:
        assert s.collection("m", 8).count("a") == 10


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("bad", [
    _nested(200),  # qdrant-edge fails to read this back: the tenant's reads and every later open failed
    {"x": float("nan")}, {"x": [1.0, float("inf")]}, {"x": 1 << 70}, {"x": {1: "int key"}}, {"x": object()},
    {"x": "y" * (1 << 20)},
], ids=["deep", "nan", "inf", "huge-int", "int-key", "object", "too-large"])
def test_store_refuses_payloads_it_could_not_read_back(tmp_path, bad):
    store = EmbeddedStore(tmp_path)
    coll = store.collection("m", 8)
    [a] = coll.upsert("a", [NewPoint("speaker", "k", _vec(1), {"speaker_id": "k", "metadata": {}})])
    coll.upsert("b", [NewPoint("speaker", "k", _vec(2), {"speaker_id": "k"})])
    with pytest.raises(MetadataError):
        coll.set_payload("a", [a], {"metadata": bad})
    with pytest.raises(MetadataError):
        coll.upsert("a", [NewPoint("speaker", "k2", _vec(3), {"metadata": bad})])
    assert coll.count("a") == 1 and coll.retrieve("a", [a])[0].payload["metadata"] == {}
    store.close()
    with EmbeddedStore(tmp_path) as reopened:  # the WAL of the refused writes never existed
        coll = reopened.collection("m", 8)
        assert (coll.count("a"), coll.count("b")) == (1, 1)


def test_payload_at_the_depth_limit_survives_a_reopen(tmp_path):
    deepest = _nested(MAX_PAYLOAD_DEPTH - 1)  # the point's payload adds one level
    with EmbeddedStore(tmp_path) as store:
        store.collection("m", 8).upsert("a", [NewPoint("speaker", "k", _vec(1), {"metadata": deepest})])
    with pytest.raises(MetadataError, match="deep"):
        check_payload({"metadata": _nested(MAX_PAYLOAD_DEPTH)})
    with EmbeddedStore(tmp_path) as store:
        [point] = store.collection("m", 8).scroll("a")
        assert point.payload["metadata"] == deepest


def _fill(coll):
    a = [NewPoint("speaker", f"a{i}", _vec(i, 16), {"speaker_id": f"a{i}", "name": f"Secret Name {i}"})
         for i in range(30)]
    b = [NewPoint("speaker", f"b{i}", _vec(100 + i, 16), {"speaker_id": f"b{i}", "name": f"Kept Name {i}"})
         for i in range(5)]
    coll.upsert("a", a)
    coll.upsert("b", b)
    coll.flush()
    stored = {p.payload["speaker_id"]: p.vector.tobytes() for t in "ab" for p in coll.scroll(t, with_vectors=True)}
    return stored


def test_purge_removes_deleted_vectors_and_payloads_from_the_files(tmp_path):
    store = EmbeddedStore(tmp_path)
    coll = store.collection("m", 16)
    stored = _fill(coll)
    gone = [stored[f"a{i}"] for i in range(30)] + [f"Secret Name {i}".encode() for i in range(30)]
    kept = [stored[f"b{i}"] for i in range(5)] + [f"Kept Name {i}".encode() for i in range(5)]
    assert traces(tmp_path, gone) == 60
    coll.delete("a")
    assert coll.count("a") == 0 and traces(tmp_path, gone) == 60  # Qdrant's delete only marks the points
    assert coll.purge() is True and coll.purge() is False
    assert traces(tmp_path, gone) == 0 and traces(tmp_path, kept) == 10
    coll.upsert("a", [NewPoint("speaker", "new", _vec(7, 16), {"speaker_id": "new"})])
    assert len(coll.search("b", _vec(100, 16), "speaker", limit=10)) == 5
    store.close()
    with EmbeddedStore(tmp_path) as reopened:
        coll = reopened.collection("m", 16)
        assert (coll.count("a"), coll.count("b")) == (1, 5)
        assert sorted(p.payload["name"] for p in coll.scroll("b")) == [f"Kept Name {i}" for i in range(5)]


def test_delete_tenant_purges(tmp_path):
    with EmbeddedStore(tmp_path) as store:
        stored = _fill(store.collection("m", 16))
        store.delete_tenant("a")
        assert traces(tmp_path, [stored[f"a{i}"] for i in range(30)]) == 0
        assert traces(tmp_path, [stored[f"b{i}"] for i in range(5)]) == 5


def test_a_purge_owed_at_a_crash_happens_at_the_next_open(tmp_path):
    store = EmbeddedStore(tmp_path)
    coll = store.collection("m", 16)
    stored = _fill(coll)
    coll.delete("a")
    coll.flush()
    store.close()  # as a crash between the delete and its purge: nothing purged yet
    gone = [stored[f"a{i}"] for i in range(30)]
    assert traces(tmp_path, gone) == 30
    with EmbeddedStore(tmp_path) as reopened:
        coll = reopened.collection("m", 16)
        assert traces(tmp_path, gone) == 0 and coll.count("b") == 5


def test_a_purge_interrupted_during_the_swap_is_finished_at_open(tmp_path):
    import shutil

    store = EmbeddedStore(tmp_path)
    coll = store.collection("m", 16)
    _fill(coll)
    coll.delete("a")
    coll.purge()
    store.close()
    [path] = (tmp_path / "voiceprints" / "collections").iterdir()
    shutil.copytree(path / "shard", path / "shard.purge")  # a complete copy ...
    (path / "shard").rename(path / "shard.old")  # ... and the crash between the two renames
    with EmbeddedStore(tmp_path) as reopened:
        coll = reopened.collection("m", 16)
        assert (coll.count("a"), coll.count("b")) == (0, 5)
    assert sorted(p.name for p in path.iterdir()) == ["collection.json", "shard"]
