"""API keys and roles. A key (header X-API-Key) maps to one role; keys are kept only as SHA-256
digests in memory and never logged. With no keys configured the server generates one development
key per role into `home/api_keys.json`, and only serves loopback clients with them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.errors import Forbidden, NotAuthenticated
from graph.contract import PERSONAL_COLUMNS
from riskgraph.settings import Settings

log = logging.getLogger("riskgraph.api.security")

ROLES: tuple[str, ...] = ("inspector", "approval_system", "investigator", "model_owner", "admin")
PERSONAL_DATA_ROLES = frozenset({"investigator", "admin"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
DEV_KEYS_FILE = "api_keys.json"
MASK = "***"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role and a stable actor id derived from the key (not the key)."""

    actor: str
    role: str

    @property
    def sees_personal_data(self) -> bool:
        return self.role in PERSONAL_DATA_ROLES


@dataclass(frozen=True)
class KeyRing:
    digests: dict[str, str]  # sha256(key) -> role
    dev_mode: bool  # generated development keys: loopback clients only
    source: str  # "settings" or the dev key file's path

    def authenticate(self, key: str | None, client_host: str | None) -> Principal:
        """The principal a key stands for (401 when missing or unknown)."""
        if not key:
            raise NotAuthenticated("missing API key: send it in the X-API-Key header")
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        role = self.digests.get(digest)
        if role is None:
            raise NotAuthenticated("invalid API key")
        if self.dev_mode and client_host not in LOOPBACK_HOSTS:
            raise Forbidden("development keys are accepted from 127.0.0.1 only; configure RISKGRAPH_API_KEYS")
        return Principal(actor=f"{role}:{digest[:10]}", role=role)


def authorize(principal: Principal, allowed: frozenset[str]) -> None:
    """403 unless the principal's role is one of `allowed`."""
    if principal.role not in allowed:
        raise Forbidden(f"role {principal.role!r} may not use this endpoint; allowed: {', '.join(sorted(allowed))}")


def load_keyring(settings: Settings) -> KeyRing:
    """Keys from settings, else development keys (generated once) when bound to loopback."""
    if settings.api_keys:
        bad = sorted({r for r in settings.api_keys.values() if r not in ROLES})
        if bad:
            raise ValueError(f"api_keys: unknown role(s) {bad}; roles are {', '.join(ROLES)}")
        return KeyRing({_digest(k): r for k, r in settings.api_keys.items()}, False, "settings")
    if settings.host not in LOOPBACK_HOSTS:
        raise ValueError(
            f"no API keys configured and host is {settings.host}: set RISKGRAPH_API_KEYS "
            "(development keys are only generated for 127.0.0.1)"
        )
    path = settings.home / DEV_KEYS_FILE
    keys = _read_or_create_dev_keys(path)
    return KeyRing({_digest(k): r for k, r in keys.items()}, True, str(path))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _read_or_create_dev_keys(path: Path) -> dict[str, str]:
    if path.exists():
        keys = json.loads(path.read_text())
        return {k: r for k, r in keys.items() if r in ROLES}
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {f"dev-{role}-{secrets.token_urlsafe(18)}": role for role in ROLES}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(keys, fh, indent=2)
    print(
        f"riskgraph: no API keys configured; development keys (one per role, loopback only) written to {path}",
        file=sys.stderr,
    )
    return keys


def mask_attributes(attrs: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """Attributes with personal data replaced by '***' unless the role may see it."""
    if principal.sees_personal_data:
        return attrs
    return {k: (MASK if k in PERSONAL_COLUMNS and v is not None else v) for k, v in attrs.items()}


def mask_value(value: str) -> str:
    """A stable stand-in for a personal identifier (equal values give equal tokens)."""
    return "masked-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


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
