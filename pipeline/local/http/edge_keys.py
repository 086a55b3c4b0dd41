"""API keys of the local edge, stored hashed in the plane's folder.

A secret is 40 URL-safe characters (``secrets.token_urlsafe(30)``, like an API Gateway
key). The plane never stores it: ``edge-keys.json`` (mode 0600, in the plane's 0700
folder) holds for each key its name, id, plan, times, the secret's first four characters
and ``HMAC-SHA256(edge.secret, secret)``, where ``edge.secret`` is 32 random bytes made
once per plane folder (also 0600). Checking a presented key is one HMAC and one dict
lookup, whatever the number of keys; a leaked ``edge-keys.json`` alone reveals no key.

The pipeline's own evidence traffic (synthetic requests during an analysis) carries a
key derived from the same secret (``synthetic_secret``): never stored, only handed to
holders of the control API's token.

Thread-safety: the routers look keys up on the data plane's thread while the control API
creates and revokes them on its own loop; one lock guards the maps. A revocation takes
effect on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.core.edge import ApiKey, hint_of, valid_key_name
from pipeline.local.private_files import private_dir, write_private

KEYS_FILE = "edge-keys.json"
SECRET_FILE = "edge.secret"
SYNTHETIC = "pipeline-synthetic"
"""The name the edge gives the pipeline's own evidence traffic in its counters."""


class KeyRefused(Exception):
    """A key operation the store refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What the plane keeps of a key: the listed fields and the secret's HMAC."""

    key: ApiKey
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.key.to_dict(), "digest": self.digest}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredKey:
        return cls(ApiKey.from_dict(data), str(data["digest"]))


class EdgeKeyStore:
    """Keys of every (environment, service) of one plane folder."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = Path(state_dir)
        self._file = self._dir / KEYS_FILE
        self._lock = threading.Lock()
        self._secret = self._load_secret()
        self._keys: dict[tuple[str, str], dict[str, StoredKey]] = {}
        self._by_digest: dict[str, tuple[str, str, str]] = {}
        self._load()

    # --- lookups (data plane) --------------------------------------------------------------

    def lookup(self, env: str, service: str, secret: str) -> ApiKey | None:
        """The key of ``service`` in ``env`` whose secret is ``secret`` (revoked or not), else None."""
        digest = self._digest(secret)
        with self._lock:
            where = self._by_digest.get(digest)
            if where is None or where[:2] != (env, service):
                return None
            return self._keys[(env, service)][where[2]].key

    def is_synthetic(self, env: str, service: str, secret: str) -> bool:
        return hmac.compare_digest(secret, self.synthetic_secret(env, service))

    def synthetic_secret(self, env: str, service: str) -> str:
        """The key the pipeline's own evidence traffic sends to ``service`` in ``env``."""
        mac = hmac.new(self._secret, f"synthetic\0{env}\0{service}".encode(), hashlib.sha256)
        return "syn" + mac.hexdigest()[:37]

    # --- management (control API) ----------------------------------------------------------

    def create(self, env: str, service: str, name: str, plan: str | None) -> tuple[ApiKey, str]:
        """A new key and its secret (returned here only). 409 when ``name`` is taken."""
        if not valid_key_name(name):
            raise KeyRefused(400, f"key name {name!r} is not valid",
                             "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        secret = secrets.token_urlsafe(30)
        key = ApiKey(name=name, id=secrets.token_hex(5), plan=plan, created=time.time(), revoked=None,
                     hint=hint_of(secret))
        with self._lock:
            keys = self._keys.setdefault((env, service), {})
            if name in keys:
                raise KeyRefused(409, f"{service} in {env} already has a key named {name}",
                                 "choose another --name, or revoke and list keys with `pipeline keys`")
            stored = StoredKey(key, self._digest(secret))
            keys[name] = stored
            self._by_digest[stored.digest] = (env, service, name)
            self._save()
        return key, secret

    def list(self, env: str, service: str) -> list[ApiKey]:
        with self._lock:
            keys = [stored.key for stored in self._keys.get((env, service), {}).values()]
        return sorted(keys, key=lambda k: (k.created, k.name))

    def revoke(self, env: str, service: str, name: str) -> ApiKey:
        """Refuse ``name`` from the next request on; idempotent. 404 for an unknown name."""
        with self._lock:
            stored = self._keys.get((env, service), {}).get(name)
            if stored is None:
                raise KeyRefused(404, f"{service} in {env} has no key named {name}",
                                 f"list its keys: pipeline keys list {service} --env {env}")
            if stored.key.revoked is None:
                stored = replace(stored, key=replace(stored.key, revoked=time.time()))
                self._keys[(env, service)][name] = stored
                self._save()
        return stored.key

    # --- internals -------------------------------------------------------------------------

    def _digest(self, secret: str) -> str:
        return hmac.new(self._secret, secret.encode(), hashlib.sha256).hexdigest()

    def _load_secret(self) -> bytes:
        path = self._dir / SECRET_FILE
        try:
            data = path.read_bytes()
            if len(data) >= 32:
                return data
        except FileNotFoundError:
            pass
        data = secrets.token_bytes(32)
        write_private(private_dir(self._dir) / SECRET_FILE, data)
        return data

    def _load(self) -> None:
        try:
            doc = json.loads(self._file.read_text())
        except FileNotFoundError:
            return
        for entry in doc.get("keys", []):
            stored = StoredKey.from_dict(entry)
            env, service = str(entry["env"]), str(entry["service"])
            self._keys.setdefault((env, service), {})[stored.key.name] = stored
            self._by_digest[stored.digest] = (env, service, stored.key.name)

    def _save(self) -> None:
        entries = [{"env": env, "service": service, **stored.to_dict()}
                   for (env, service), keys in sorted(self._keys.items()) for stored in keys.values()]
        write_private(private_dir(self._dir) / KEYS_FILE, json.dumps({"keys": entries}, indent=1).encode())
