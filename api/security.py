"""API keys, roles, scopes and masking.

A key (header X-API-Key) stands for one principal: a role, the key's public id (the audit's actor),
and for institution keys (`riskgraph keys create`) an institution, an optional region scope, an
expiry and a rate limit. Keys are held only as HMAC-SHA256 digests under the server's
"api-key-pepper" key and never logged; checking one is an HMAC, a dict lookup and a few
comparisons. With no keys configured the server generates one development key per role into
`home/api_keys.json`, and only serves loopback clients with them.

Masking: personal identifiers shown to roles without personal data become keyed tokens
(riskgraph.server_keys.Tokens: HMAC-SHA256 under the "masking" key), one token per value on
every endpoint."""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.errors import Forbidden, NotAuthenticated
from graph.contract import PERSONAL_COLUMNS
from riskgraph.api_keys import ROLES, KeyConfigError, KeyStore, Pepper, StoredKey, check_key
from riskgraph.errors import RiskGraphError
from riskgraph.server_keys import Tokens
from riskgraph.settings import Settings

__all__ = ["ROLES", "KeyRing", "Principal", "Tokens", "load_keyring", "mask_value"]

log = logging.getLogger("riskgraph.api.security")

PERSONAL_DATA_ROLES = frozenset({"investigator", "admin"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
DEV_KEYS_FILE = "api_keys.json"
MASK = "***"


class RateLimited(RiskGraphError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, the actor id the audit records (`role:key id`, never the key or
    an unkeyed digest of it), the institution and the region scope (None: every region)."""

    actor: str
    role: str
    key_id: str = ""
    institution: str | None = None
    region: str | None = None

    @property
    def sees_personal_data(self) -> bool:
        return self.role in PERSONAL_DATA_ROLES

    def in_scope(self, region: str | None) -> bool:
        """Whether an entity of `region` is visible to this key (a scoped key sees no entity without one)."""
        return self.region is None or region == self.region


# The principal of the request being served (set by api.deps.authenticate): graph calls read it
# for their per-key concurrency limit.
current_principal: ContextVar[Principal | None] = ContextVar("riskgraph_principal", default=None)


@dataclass
class KeyEntry:
    """One accepted key: who it stands for, and what may still refuse it."""

    principal: Principal
    loopback_only: bool = False
    expires: float | None = None  # epoch seconds
    revoked: bool = False
    rate: float | None = None  # requests per second
    burst: float = 1.0
    tokens: float = 1.0  # token bucket
    stamp: float = field(default_factory=time.monotonic)


@dataclass
class KeyRing:
    entries: dict[str, KeyEntry]  # pepper digest of the key -> entry
    pepper: Pepper
    dev_mode: bool  # generated development keys: loopback clients only
    source: str  # "settings", the dev key file's path, or "store"
    store: KeyStore | None = None
    configured: dict[str, KeyEntry] = field(default_factory=dict)
    version: Any = None

    def authenticate(self, key: str | None, client_host: str | None) -> Principal:
        """The principal a key stands for: 401 when missing, unknown, revoked or expired, 403 for a
        development key from another host, 429 beyond its rate."""
        if not key:
            raise NotAuthenticated("missing API key: send it in the X-API-Key header")
        entry = self.entries.get(self.pepper.digest(key))
        if entry is None:
            raise NotAuthenticated("invalid API key")
        if entry.revoked:
            raise NotAuthenticated("API key revoked")
        if entry.expires is not None and time.time() >= entry.expires:
            raise NotAuthenticated("API key expired")
        if entry.loopback_only and client_host not in LOOPBACK_HOSTS:
            raise Forbidden("development keys are accepted from 127.0.0.1 only; configure RISKGRAPH_API_KEYS")
        if entry.rate is not None:
            now = time.monotonic()
            tokens = min(entry.burst, entry.tokens + (now - entry.stamp) * entry.rate)
            entry.stamp = now
            if tokens < 1.0:
                entry.tokens = tokens
                wait = max(1, math.ceil((1.0 - tokens) / entry.rate))
                raise RateLimited(f"over this key's rate of {entry.rate:g} requests per second", wait)
            entry.tokens = tokens - 1.0
        return entry.principal

    def refresh(self) -> bool:
        """Re-read the stored institution keys when one was created or revoked (another process:
        `riskgraph keys`). Rate buckets of unchanged keys carry over."""
        if self.store is None:
            return False
        version = self.store.version()
        if version == self.version:
            return False
        stored = self.store.list()
        entries = dict(self.configured)
        for k in stored:
            entry = _stored_entry(k)
            old = self.entries.get(k.digest)
            if old is not None and old.rate == entry.rate:
                entry.tokens, entry.stamp = old.tokens, old.stamp
            entries[k.digest] = entry
        self.entries, self.version = entries, version
        return True


def _stored_entry(k: StoredKey) -> KeyEntry:
    burst = float(k.burst or max(1, math.ceil(k.rate or 1)))
    return KeyEntry(
        principal=Principal(
            actor=f"{k.role}:{k.key_id}", role=k.role, key_id=k.key_id, institution=k.institution, region=k.region
        ),
        expires=k.expires_epoch(),
        revoked=k.revoked_at is not None,
        rate=k.rate,
        burst=burst,
        tokens=burst,
    )


def authorize(principal: Principal, allowed: frozenset[str]) -> None:
    """403 unless the principal's role is one of `allowed`."""
    if principal.role not in allowed:
        raise Forbidden(f"role {principal.role!r} may not use this endpoint; allowed: {', '.join(sorted(allowed))}")


def load_keyring(settings: Settings, store: KeyStore) -> KeyRing:
    """Keys from settings (else development keys, generated once, when bound to loopback) plus the
    institution keys of the key store. Every configured key must pass the strength rule."""
    pepper = store.pepper
    if settings.api_keys:
        bad = sorted({r for r in settings.api_keys.values() if r not in ROLES})
        if bad:
            raise KeyConfigError(f"api_keys: unknown role(s) {bad}; roles are {', '.join(ROLES)}")
        for key, role in settings.api_keys.items():
            check_key(key, f"api_keys: the key of role {role!r}")
        ring = KeyRing({}, pepper, False, "settings", store)
        configured, loopback = settings.api_keys, False
    elif settings.host in LOOPBACK_HOSTS:
        path = settings.home / DEV_KEYS_FILE
        configured, loopback = _read_or_create_dev_keys(path), True
        for key, role in configured.items():
            check_key(key, f"{path}: the development key of role {role!r}")
        ring = KeyRing({}, pepper, True, str(path), store)
    else:
        ring = KeyRing({}, pepper, False, "store", store)
        configured, loopback = {}, False
    for key, role in configured.items():
        key_id = pepper.configured_id(key)
        ring.configured[pepper.digest(key)] = KeyEntry(
            Principal(actor=f"{role}:{key_id}", role=role, key_id=key_id), loopback_only=loopback
        )
    ring.entries = dict(ring.configured)
    ring.refresh()
    if not ring.entries or all(e.revoked for e in ring.entries.values()):
        raise KeyConfigError(
            f"no API keys configured and host is {settings.host}: set RISKGRAPH_API_KEYS or create keys with "
            "`riskgraph keys create` (development keys are only generated for 127.0.0.1)"
        )
    return ring


def _read_or_create_dev_keys(path: Path) -> dict[str, str]:
    if path.exists():
        keys = json.loads(path.read_text())
        return {k: r for k, r in keys.items() if r in ROLES}
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {f"dev-{role}-{secrets.token_urlsafe(24)}": role for role in ROLES}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(keys, fh, indent=2)
    print(
        f"riskgraph: no API keys configured; development keys (one per role, loopback only) written to {path}",
        file=sys.stderr,
    )
    return keys


# -- masking --------------------------------------------------------------------------------------


def mask_attributes(attrs: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """Attributes with personal data replaced by '***' unless the role may see it."""
    if principal.sees_personal_data:
        return attrs
    return {k: (MASK if k in PERSONAL_COLUMNS and v is not None else v) for k, v in attrs.items()}


def mask_value(value: str, tokens: Tokens) -> str:
    """The keyed token of a personal identifier: equal values give equal tokens on every endpoint,
    unlinkable without the server's masking key. A value that already is a token (identifier nodes
    a store keeps as tokens) stays as it is."""
    return value if value.startswith(Tokens.PREFIX) else tokens(value)


def mask_entity(entity_type: str, entity_id: str, tokens: Tokens) -> str:
    """The token an out-of-scope entity is shown as (its type is part of the value)."""
    return tokens(f"{entity_type}:{entity_id}")


def mask_evidence(value: object, principal: Principal) -> object:
    """Rule or ring evidence with personal fields masked, recursively."""
    if principal.sees_personal_data:
        return value
    if isinstance(value, dict):
        return {
            k: (MASK if k in PERSONAL_COLUMNS and v is not None else mask_evidence(v, principal))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_evidence(v, principal) for v in value]
    return value
