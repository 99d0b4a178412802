"""API keys: a JSON file of SHA-256 hashes (never the keys), managed by ``diarize keys``, plus development keys."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")


class KeyFileError(ValueError):
    """The keys file or a development key list is malformed."""


@dataclass(frozen=True)
class KeyRecord:
    """One key as stored: its public id, tenant, hash and creation time."""

    key_id: str
    tenant: str
    sha256: str
    created_at: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def check_tenant(tenant: str) -> str:
    if not TENANT_RE.match(tenant or ""):
        raise KeyFileError(f"invalid tenant {tenant!r}: use 1-128 characters of A-Z a-z 0-9 _ . @ : -")
    return tenant


def parse_dev_keys(spec: str | None) -> dict[str, str]:
    """``'tenant:key,tenant2:key2'`` as {sha256(key): tenant}; the key is what follows the last colon."""
    out: dict[str, str] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        tenant, sep, key = item.rpartition(":")
        if not sep or not key:
            raise KeyFileError(f"DIARIZE_API_KEYS entry {item.split(':')[0]!r}...: expected tenant:key")
        out[hash_key(key)] = check_tenant(tenant)
    return out


class KeyFile:
    """The keys file: read on demand (re-read when it changes), written atomically under a lock."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, KeyRecord] = {}

    def records(self) -> list[KeyRecord]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text())
            return [KeyRecord(**r) for r in data["keys"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"{self.path}: not a keys file: {exc}") from exc

    def lookup(self, key: str) -> str | None:
        """The tenant of ``key``, or None."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._by_hash = {r.sha256: r for r in self.records()}
            self._stamp = stamp
        digest = hash_key(key)
        record = self._by_hash.get(digest)
        return record.tenant if record and hmac.compare_digest(record.sha256, digest) else None

    def add(self, tenant: str) -> tuple[KeyRecord, str]:
        """Create a key for ``tenant``; returns its record and the key itself (shown once, never stored)."""
        check_tenant(tenant)
        key_id = secrets.token_hex(4)
        key = f"dk_{key_id}_{secrets.token_urlsafe(32)}"
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        record = KeyRecord(key_id, tenant, hash_key(key), created)
        with self._locked():
            self._write([*self.records(), record])
        return record, key

    def revoke(self, key_id: str) -> KeyRecord | None:
        with self._locked():
            records = self.records()
            gone = [r for r in records if r.key_id == key_id]
            if gone:
                self._write([r for r in records if r.key_id != key_id])
        return gone[0] if gone else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, records: list[KeyRecord]) -> None:
        data = {"version": 1, "keys": [r.__dict__ for r in records]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
