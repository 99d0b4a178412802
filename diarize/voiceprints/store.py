"""Vector storage for voiceprints on Qdrant: embedded (qdrant-edge) or a server/cluster (qdrant-client).

A :class:`VectorStore` holds one :class:`Collection` per embedding model. Every collection operation
takes the tenant: writes stamp it into the payload and into the point id, reads and deletes filter
on it, so one tenant can never see, match, overwrite or delete another tenant's points.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, MetadataError, ModelMismatchError, StoreError, StoreLockedError

#: Namespace of every point id (uuid5 over tenant, model, kind and the item's natural key).
POINT_NAMESPACE = uuid.UUID("5b0d6a1e-3f0c-4e57-9a52-6f1f2a7c9d10")
#: Payload fields with a keyword index (``tenant`` is the tenant index).
INDEXED_FIELDS = ("kind", "speaker_id", "name_key", "voice_id", "file_id")
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")
_SCROLL_PAGE = 256
#: Deepest nesting and largest JSON size of a point's payload. qdrant-edge cannot read back a payload
#: nested about 128 levels deep: the write fails half-way and its WAL then fails to open for every tenant.
MAX_PAYLOAD_DEPTH = 32
MAX_PAYLOAD_BYTES = 1 << 20
_INT64 = (-(1 << 63), (1 << 63) - 1)

Where = Mapping[str, "str | int | bool | Sequence[str]"]


def check_tenant(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant id (1-128 of ``A-Za-z0-9_.@:-``), else raise ConfigError."""
    if not isinstance(tenant, str) or not _TENANT_RE.match(tenant):
        raise ConfigError(f"invalid tenant {tenant!r}: use 1-128 characters of A-Z a-z 0-9 _ . @ : -")
    return tenant


def check_payload(payload: Any, *, max_depth: int = MAX_PAYLOAD_DEPTH, max_bytes: int = MAX_PAYLOAD_BYTES,
                  what: str = "payload") -> dict[str, Any]:
    """Return ``payload`` as a dict if it is plain JSON the store can read back, else raise MetadataError.

    Plain JSON: a mapping with string keys, at most ``max_depth`` containers deep, of strings, booleans,
    None, 64-bit integers and finite floats, at most ``max_bytes`` as compact JSON.
    """
    if not isinstance(payload, Mapping):
        raise MetadataError(f"{what} must be a JSON object")
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children: Any = value.values()
            if not all(isinstance(k, str) for k in value):
                raise MetadataError(f"{what}: every key must be a string")
        elif isinstance(value, (list, tuple)):
            children = value
        elif value is None or isinstance(value, (str, bool)):
            continue
        elif isinstance(value, int):
            if not _INT64[0] <= value <= _INT64[1]:
                raise MetadataError(f"{what}: integer {value:.3g} is out of the 64-bit range")
            continue
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise MetadataError(f"{what}: numbers must be finite (no NaN or Infinity)")
            continue
        else:
            raise MetadataError(f"{what}: {type(value).__name__} is not JSON (strings, numbers, lists, objects)")
        if depth > max_depth:
            raise MetadataError(f"{what} is nested more than {max_depth} levels deep")
        stack.extend((child, depth + 1) for child in children)
    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    if size > max_bytes:
        raise MetadataError(f"{what} is {size} bytes as JSON; at most {max_bytes} are allowed")
    return dict(payload)


def point_id(tenant: str, model_id: str, kind: str, key: str) -> str:
    """Deterministic point id: the same item of the same tenant and model always gets the same id."""
    return str(uuid.uuid5(POINT_NAMESPACE, "\x1f".join((tenant, model_id, kind, key))))


def _unit(vector: np.ndarray, dimension: int) -> list[float]:
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape[0] != dimension:
        raise ModelMismatchError(f"vector has {v.shape[0]} dimensions, the collection holds {dimension}")
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm < 1e-12:
        raise StoreError("vector is zero or not finite")
    return (v / norm).astype(np.float32).tolist()


@dataclass(frozen=True)
class NewPoint:
    """A point to write: ``kind`` + ``key`` name it within its tenant and model."""

    kind: str
    key: str
    vector: np.ndarray
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredPoint:
    """A point read back: its id, payload, and (when asked for) unit vector and query score."""

    id: str
    payload: dict[str, Any]
    vector: np.ndarray | None = None
    score: float | None = None


class Collection(ABC):
    """The points of one embedding model; every operation is scoped to one tenant."""

    model_id: str
    dimension: int

    def __init__(self, model_id: str, dimension: int) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self._lock = threading.RLock()

    def id_of(self, tenant: str, kind: str, key: str) -> str:
        return point_id(check_tenant(tenant), self.model_id, kind, key)

    def upsert(self, tenant: str, points: Sequence[NewPoint]) -> list[str]:
        """Write ``points`` in one operation (atomic in the embedded store); returns their ids."""
        check_tenant(tenant)
        rows = []
        for p in points:
            payload = check_payload({**p.payload, "tenant": tenant, "model_id": self.model_id, "kind": p.kind})
            rows.append((self.id_of(tenant, p.kind, p.key), _unit(p.vector, self.dimension), payload))
        if rows:
            with self._lock:
                self._upsert(rows)
        return [r[0] for r in rows]

    def search(self, tenant: str, vector: np.ndarray, kind: str, limit: int = 5,
               where: Where | None = None, with_vectors: bool = False) -> list[StoredPoint]:
        """Exact cosine top-``limit`` among this tenant's points of ``kind``."""
        query = _unit(vector, self.dimension)
        with self._lock:
            return self._search(query, self._conditions(tenant, kind, where), limit, with_vectors)

    def scroll(self, tenant: str, kind: str | None = None, where: Where | None = None,
               with_vectors: bool = False) -> Iterator[StoredPoint]:
        """Every point of this tenant matching ``kind`` and ``where``."""
        conditions = self._conditions(tenant, kind, where)
        offset = None
        while True:
            with self._lock:
                page, offset = self._scroll(conditions, offset, with_vectors)
            yield from page
            if offset is None:
                return

    def retrieve(self, tenant: str, ids: Sequence[str], with_vectors: bool = False) -> list[StoredPoint]:
        """The points among ``ids`` that belong to this tenant (others are silently absent)."""
        if not ids:
            return []
        conditions = self._conditions(tenant, None, None)
        with self._lock:
            return self._retrieve(conditions, [str(i) for i in ids], with_vectors)

    def count(self, tenant: str, kind: str | None = None, where: Where | None = None) -> int:
        with self._lock:
            return self._count(self._conditions(tenant, kind, where))

    def delete(self, tenant: str, kind: str | None = None, where: Where | None = None) -> None:
        """Delete this tenant's points matching ``kind`` and ``where`` in one operation."""
        with self._lock:
            self._delete(self._conditions(tenant, kind, where))

    def delete_ids(self, tenant: str, ids: Sequence[str]) -> None:
        """Delete this tenant's points among ``ids`` in one operation."""
        if ids:
            with self._lock:
                self._delete(self._conditions(tenant, None, None), [str(i) for i in ids])

    def set_payload(self, tenant: str, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        """Merge ``payload`` into this tenant's points among ``ids``; tenant/model/kind cannot change."""
        if {"tenant", "model_id", "kind"} & set(payload):
            raise StoreError("tenant, model_id and kind of a point cannot be changed")
        payload = check_payload(payload)
        if ids:
            with self._lock:
                self._set_payload(self._conditions(tenant, None, None), [str(i) for i in ids], dict(payload))

    def _conditions(self, tenant: str, kind: str | None, where: Where | None) -> list[tuple[str, Any]]:
        conditions: list[tuple[str, Any]] = [("tenant", check_tenant(tenant)), ("model_id", self.model_id)]
        if kind is not None:
            conditions.append(("kind", kind))
        for key, value in (where or {}).items():
            conditions.append((key, list(value) if isinstance(value, (list, tuple, set)) else value))
        return conditions

    @abstractmethod
    def _upsert(self, rows: list[tuple[str, list[float], dict[str, Any]]]) -> None: ...

    @abstractmethod
    def _search(self, query: list[float], conditions: list, limit: int, with_vectors: bool) -> list[StoredPoint]: ...

    @abstractmethod
    def _scroll(self, conditions: list, offset: Any, with_vectors: bool) -> tuple[list[StoredPoint], Any]: ...

    @abstractmethod
    def _retrieve(self, conditions: list, ids: list[str], with_vectors: bool) -> list[StoredPoint]: ...

    @abstractmethod
    def _count(self, conditions: list) -> int: ...

    @abstractmethod
    def _delete(self, conditions: list, ids: list[str] | None = None) -> None: ...

    @abstractmethod
    def _set_payload(self, conditions: list, ids: list[str], payload: dict[str, Any]) -> None: ...

    def flush(self) -> None:
        """Make every acknowledged write durable on disk (no-op where the server does it)."""

    def purge(self) -> bool:
        """Remove deleted points' vectors and payloads from the store's files; whether anything was rewritten.

        Deletes are soft until then. No-op where a Qdrant server owns the files (its optimizer vacuums them).
        """
        return False


class VectorStore(ABC):
    """A Qdrant deployment holding one collection per embedding model."""

    def __init__(self) -> None:
        self._collections: dict[str, Collection] = {}
        self._lock = threading.RLock()

    def collection(self, model_id: str, dimension: int) -> Collection:
        """The collection of ``model_id``, created on first use; refuses a different dimension."""
        if not model_id or not isinstance(model_id, str):
            raise ConfigError("an embedding model_id is required")
        with self._lock:
            coll = self._collections.get(model_id)
            if coll is None:
                coll = self._collections[model_id] = self._open_collection(model_id, int(dimension))
        if coll.dimension != int(dimension):
            raise ModelMismatchError(
                f"collection for {model_id!r} holds {coll.dimension}-d vectors, not {dimension}-d")
        return coll

    def delete_tenant(self, tenant: str) -> None:
        """Delete every point of ``tenant`` in every collection, and purge them from the store's files."""
        check_tenant(tenant)
        for model_id, dimension in self.models().items():
            self.collection(model_id, dimension).delete(tenant)
        self.purge()

    def purge(self) -> bool:
        """:meth:`Collection.purge` for every open collection; whether any was rewritten."""
        with self._lock:
            collections = list(self._collections.values())
        return any([coll.purge() for coll in collections])

    @abstractmethod
    def models(self) -> dict[str, int]:
        """``model_id -> dimension`` of every collection in the store."""

    @abstractmethod
    def _open_collection(self, model_id: str, dimension: int) -> Collection: ...

    def close(self) -> None:
        """Flush and release the store."""

    def __enter__(self) -> "VectorStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _slug(model_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id).strip("._") or "model"
    return f"{slug}-{uuid.uuid5(POINT_NAMESPACE, model_id).hex[:8]}"


# --------------------------------------------------------------------------- embedded: qdrant-edge


class _EdgeCollection(Collection):
    """One qdrant-edge shard, searched exactly (no HNSW graph).

    New points land in an appendable segment; every ``OPTIMIZE_EVERY`` written points, and on close,
    the optimizer folds it into an immutable segment, where exact search is several times faster
    (~1 s per 200k points, blocking).
    """

    OPTIMIZE_EVERY = 20_000
    #: Written (durably) before a delete; removed once :meth:`purge` has rewritten the shard without the deleted
    #: points. Found at open, it means a purge is owed (a crash came between the delete and its purge).
    PURGE_MARK = "PURGE"

    def __init__(self, shard: Any, model_id: str, dimension: int, path: Path) -> None:
        super().__init__(model_id, dimension)
        self._shard = shard
        self._path = path
        self._pending = 0
        import qdrant_edge as qe

        self._qe = qe

    def _filter(self, conditions: list, ids: list[str] | None = None) -> Any:
        qe = self._qe
        must: list[Any] = []
        for key, value in conditions:
            match = qe.MatchAny(value) if isinstance(value, list) else qe.MatchValue(value)
            must.append(qe.FieldCondition(key, match=match))
        if ids is not None:
            must.append(qe.HasIdCondition({uuid.UUID(i) for i in ids}))
        return qe.Filter(must=must)

    @staticmethod
    def _point(p: Any, score: float | None = None) -> StoredPoint:
        vec = p.vector
        return StoredPoint(str(p.id), dict(p.payload or {}),
                           None if vec is None else np.asarray(vec, dtype=np.float32), score)

    def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # the engine raises bare Exception
            raise StoreError(f"embedded Qdrant store failed: {exc}") from exc

    def _upsert(self, rows: list) -> None:
        qe = self._qe
        points = [qe.Point(uuid.UUID(pid), vec, payload) for pid, vec, payload in rows]
        self._run(self._shard.update, qe.UpdateOperation.upsert_points(points))
        self._pending += len(points)
        if self._pending >= self.OPTIMIZE_EVERY:
            self.optimize()

    def _search(self, query: list[float], conditions: list, limit: int, with_vectors: bool) -> list[StoredPoint]:
        qe = self._qe
        request = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(query), filter=self._filter(conditions),
                                  with_payload=True, with_vector=with_vectors, params=qe.SearchParams(exact=True))
        return [self._point(p, float(p.score)) for p in self._run(self._shard.query, request)]

    def _scroll(self, conditions: list, offset: Any, with_vectors: bool) -> tuple[list[StoredPoint], Any]:
        qe = self._qe
        request = qe.ScrollRequest(offset=offset, limit=_SCROLL_PAGE, filter=self._filter(conditions),
                                   with_payload=True, with_vector=with_vectors)
        records, next_offset = self._run(self._shard.scroll, request)
        return [self._point(r) for r in records], next_offset

    def _retrieve(self, conditions: list, ids: list[str], with_vectors: bool) -> list[StoredPoint]:
        qe = self._qe
        request = qe.ScrollRequest(limit=len(ids), filter=self._filter(conditions, ids),
                                   with_payload=True, with_vector=with_vectors)
        records, _ = self._run(self._shard.scroll, request)
        return [self._point(r) for r in records]

    def _count(self, conditions: list) -> int:
        return int(self._run(self._shard.count, self._qe.CountRequest(exact=True, filter=self._filter(conditions))))

    def _delete(self, conditions: list, ids: list[str] | None = None) -> None:
        op = self._qe.UpdateOperation.delete_points_by_filter(self._filter(conditions, ids))
        _durable_touch(self._path / self.PURGE_MARK)
        self._run(self._shard.update, op)

    def purge(self) -> bool:
        """Copy the live points into a fresh shard and swap it in, so that no file keeps a deleted point.

        Qdrant's deletes only mark points: their vectors stay in the segment files and their payloads in
        the WAL until both are rewritten. The copy (about 1 s per 20k points, blocking) starts a new WAL
        holding only live points. Crash-safe: :func:`_recover_purge` finishes or discards an interrupted swap.
        """
        with self._lock:
            if not (self._path / self.PURGE_MARK).exists():
                return False
            qe = self._qe
            self._run(self._shard.flush)
            building = self._path / "shard.purge"
            shutil.rmtree(building, ignore_errors=True)
            fresh = self._run(qe.EdgeShard.create, str(building), _edge_config(qe, self.dimension))
            try:
                _create_indexes(qe, fresh)
                offset = None
                while True:
                    request = qe.ScrollRequest(offset=offset, limit=1024, with_payload=True, with_vector=True)
                    records, offset = self._run(self._shard.scroll, request)
                    if records:
                        points = [qe.Point(r.id, r.vector, r.payload) for r in records]
                        self._run(fresh.update, qe.UpdateOperation.upsert_points(points))
                    if offset is None:
                        break
                self._run(fresh.flush)
                self._run(fresh.optimize)
                self._run(fresh.flush)
            finally:
                fresh.close()
            live, old = self._path / "shard", self._path / "shard.old"
            self._run(self._shard.close)
            try:
                os.replace(live, old)
                os.replace(building, live)
                _fsync_dir(self._path)
                shutil.rmtree(old)
            finally:
                self._shard = self._run(qe.EdgeShard.load, str(live if live.exists() else old))
            self._pending = 0
            (self._path / self.PURGE_MARK).unlink()
            _fsync_dir(self._path)
            return True

    def _set_payload(self, conditions: list, ids: list[str], payload: dict[str, Any]) -> None:
        op = self._qe.UpdateOperation.set_payload_by_filter(self._filter(conditions, ids), payload)
        self._run(self._shard.update, op)

    def flush(self) -> None:
        with self._lock:
            self._run(self._shard.flush)

    def optimize(self) -> None:
        with self._lock:
            self._run(self._shard.flush)
            self._run(self._shard.optimize)
            self._pending = 0

    def close(self) -> None:
        with self._lock:
            if self._pending:
                self.optimize()
            self._run(self._shard.flush)
            self._run(self._shard.close)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _durable_touch(path: Path) -> None:
    """Create ``path`` (empty) and make its existence durable."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(path.parent)


def _edge_config(qe: Any, dimension: int) -> Any:
    """A new shard's settings: cosine vectors searched exactly (no HNSW graph)."""
    return qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine),
                         hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000))


def _create_indexes(qe: Any, shard: Any) -> None:
    shard.update(qe.UpdateOperation.create_field_index("tenant", qe.KeywordIndexParams(is_tenant=True)))
    shard.update(qe.UpdateOperation.create_field_index("model_id", qe.PayloadSchemaType.Keyword))
    for name in INDEXED_FIELDS:
        shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
    shard.flush()


def _recover_purge(path: Path) -> None:
    """Finish a purge a crash interrupted: a complete copy whose swap began is moved in, anything else dropped."""
    live, building, old = path / "shard", path / "shard.purge", path / "shard.old"
    if not live.exists() and building.exists() and old.exists():
        os.replace(building, live)  # the copy was flushed and closed before the old shard moved aside
    if live.exists():
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(building, ignore_errors=True)


class EmbeddedStore(VectorStore):
    """Qdrant's engine in-process (qdrant-edge): one shard per model under ``<data_dir>/voiceprints``.

    One process owns the directory: it holds an exclusive lock until :meth:`close`.
    """

    META = "collection.json"

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        super().__init__()
        try:
            import qdrant_edge  # noqa: F401
        except ImportError as exc:
            raise StoreError("the embedded voiceprint store needs `pip install qdrant-edge-py`") from exc
        self.root = Path(data_dir).expanduser() / "voiceprints"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.root / "LOCK", "a+")
        except OSError as exc:
            raise StoreError(f"cannot open voiceprint store at {self.root}: {exc}") from exc
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.seek(0)
            owner = self._lock_file.read().strip() or "another process"
            self._lock_file.close()
            raise StoreLockedError(
                f"voiceprint store {self.root} is open in {owner}; the embedded store has one owner process "
                "(run the command through that process, or use a Qdrant server via --qdrant-url)") from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"pid {os.getpid()}\n")
        self._lock_file.flush()
        self._closed = False

    def models(self) -> dict[str, int]:
        found = {}
        for meta in sorted((self.root / "collections").glob(f"*/{self.META}")):
            data = json.loads(meta.read_text())
            found[data["model_id"]] = int(data["dimension"])
        return found

    def _open_collection(self, model_id: str, dimension: int) -> Collection:
        import qdrant_edge as qe

        if self._closed:
            raise StoreError("the voiceprint store is closed")
        path = self.root / "collections" / _slug(model_id)
        meta = path / self.META
        try:
            _recover_purge(path)
            if meta.exists():
                stored = json.loads(meta.read_text())
                if stored["model_id"] != model_id or int(stored["dimension"]) != dimension:
                    raise ModelMismatchError(
                        f"{path} holds {stored['dimension']}-d vectors of {stored['model_id']!r}, "
                        f"not {dimension}-d vectors of {model_id!r}")
                shard = qe.EdgeShard.load(str(path / "shard"))
            else:
                config = _edge_config(qe, dimension)
                if (path / "shard").exists():  # a crash between creating the shard and writing its meta
                    shard = qe.EdgeShard.load(str(path / "shard"), config)
                else:
                    shard = qe.EdgeShard.create(str(path / "shard"), config)
                _create_indexes(qe, shard)
                tmp = meta.with_suffix(".tmp")
                tmp.write_text(json.dumps({"model_id": model_id, "dimension": dimension}))
                os.replace(tmp, meta)
        except ModelMismatchError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open collection {model_id!r} at {path}: {exc}") from exc
        collection = _EdgeCollection(shard, model_id, dimension, path)
        collection.purge()  # owed by a delete that a crash interrupted
        return collection

    def optimize(self) -> None:
        """Fold recent writes into immutable segments and drop deleted points (blocking; ~1 s per 200k points)."""
        for coll in list(self._collections.values()):
            coll.optimize()  # type: ignore[attr-defined]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for coll in self._collections.values():
                    coll.close()  # type: ignore[attr-defined]
            finally:
                self._collections.clear()
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._lock_file.close()


# --------------------------------------------------------------------------- server: qdrant-client


class _ServerCollection(Collection):
    def __init__(self, client: Any, name: str, model_id: str, dimension: int) -> None:
        super().__init__(model_id, dimension)
        from qdrant_client import models

        self._client, self._name, self._m = client, name, models

    def _filter(self, conditions: list, ids: list[str] | None = None) -> Any:
        m = self._m
        must: list[Any] = []
        for key, value in conditions:
            match = m.MatchAny(any=value) if isinstance(value, list) else m.MatchValue(value=value)
            must.append(m.FieldCondition(key=key, match=match))
        if ids is not None:
            must.append(m.HasIdCondition(has_id=ids))
        return m.Filter(must=must)

    @staticmethod
    def _point(p: Any, score: float | None = None) -> StoredPoint:
        vec = p.vector
        return StoredPoint(str(p.id), dict(p.payload or {}),
                           None if vec is None else np.asarray(vec, dtype=np.float32), score)

    def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise StoreError(f"Qdrant request failed: {exc}") from exc

    def _upsert(self, rows: list) -> None:
        points = [self._m.PointStruct(id=pid, vector=vec, payload=payload) for pid, vec, payload in rows]
        self._run(self._client.upsert, self._name, points=points, wait=True)

    def _search(self, query: list[float], conditions: list, limit: int, with_vectors: bool) -> list[StoredPoint]:
        response = self._run(self._client.query_points, self._name, query=query,
                             query_filter=self._filter(conditions), limit=limit, with_payload=True,
                             with_vectors=with_vectors, search_params=self._m.SearchParams(exact=True))
        return [self._point(p, float(p.score)) for p in response.points]

    def _scroll(self, conditions: list, offset: Any, with_vectors: bool) -> tuple[list[StoredPoint], Any]:
        records, next_offset = self._run(self._client.scroll, self._name, scroll_filter=self._filter(conditions),
                                         limit=_SCROLL_PAGE, offset=offset, with_payload=True,
                                         with_vectors=with_vectors)
        return [self._point(r) for r in records], next_offset

    def _retrieve(self, conditions: list, ids: list[str], with_vectors: bool) -> list[StoredPoint]:
        records, _ = self._run(self._client.scroll, self._name, scroll_filter=self._filter(conditions, ids),
                               limit=len(ids), with_payload=True, with_vectors=with_vectors)
        return [self._point(r) for r in records]

    def _count(self, conditions: list) -> int:
        return int(self._run(self._client.count, self._name, count_filter=self._filter(conditions), exact=True).count)

    def _delete(self, conditions: list, ids: list[str] | None = None) -> None:
        selector = self._m.FilterSelector(filter=self._filter(conditions, ids))
        self._run(self._client.delete, self._name, points_selector=selector, wait=True)

    def _set_payload(self, conditions: list, ids: list[str], payload: dict[str, Any]) -> None:
        self._run(self._client.set_payload, self._name, payload=payload,
                  points=self._filter(conditions, ids), wait=True)


class ServerStore(VectorStore):
    """A Qdrant server or cluster through qdrant-client: collection ``<prefix><model>`` per embedding model.

    Any number of processes may share it. Pass ``client`` to reuse a configured ``QdrantClient``.
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, *, prefix: str = "diarize_voiceprints_",
                 client: Any = None, timeout: int | None = 30) -> None:
        super().__init__()
        if client is None:
            if not url:
                raise ConfigError("a Qdrant server store needs a url")
            try:
                from qdrant_client import QdrantClient
            except ImportError as exc:
                raise StoreError("the Qdrant server store needs `pip install qdrant-client`") from exc
            try:
                client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
            except Exception as exc:
                raise StoreError(f"cannot connect to Qdrant at {url}: {exc}") from exc
        self._client = client
        self.prefix = prefix

    def models(self) -> dict[str, int]:
        found = {}
        try:
            for c in self._client.get_collections().collections:
                if c.name.startswith(self.prefix):
                    info = self._client.get_collection(c.name)
                    meta = info.config.metadata or {}
                    if "model_id" in meta:
                        found[meta["model_id"]] = int(info.config.params.vectors.size)
        except Exception as exc:
            raise StoreError(f"cannot list Qdrant collections: {exc}") from exc
        return found

    def _open_collection(self, model_id: str, dimension: int) -> Collection:
        from qdrant_client import models as m

        name = self.prefix + _slug(model_id)
        try:
            if self._client.collection_exists(name):
                info = self._client.get_collection(name)
                size = int(info.config.params.vectors.size)
                stored = (info.config.metadata or {}).get("model_id", model_id)
                if size != dimension or stored != model_id:
                    raise ModelMismatchError(f"Qdrant collection {name} holds {size}-d vectors of {stored!r}")
            else:
                self._client.create_collection(
                    name, vectors_config=m.VectorParams(size=dimension, distance=m.Distance.COSINE),
                    metadata={"model_id": model_id})
                self._client.create_payload_index(
                    name, "tenant", m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True))
                for key in ("model_id", *INDEXED_FIELDS):
                    self._client.create_payload_index(name, key, m.PayloadSchemaType.KEYWORD)
        except ModelMismatchError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open Qdrant collection {name}: {exc}") from exc
        return _ServerCollection(self._client, name, model_id, dimension)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing is best effort
            pass


def default_data_dir() -> Path:
    """``$DIARIZE_DATA_DIR``, else ``$XDG_DATA_HOME/diarize`` or ``~/.local/share/diarize`` (as the service)."""
    env = os.environ.get("DIARIZE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "diarize"


def open_store(data_dir: str | os.PathLike[str] | None = None, *, url: str | None = None,
               api_key: str | None = None) -> VectorStore:
    """A Qdrant server store when ``url`` (or ``$DIARIZE_QDRANT_URL``) is set, else the embedded store."""
    url = url or os.environ.get("DIARIZE_QDRANT_URL") or None
    if url:
        return ServerStore(url, api_key or os.environ.get("DIARIZE_QDRANT_API_KEY") or None)
    return EmbeddedStore(data_dir if data_dir is not None else default_data_dir())
