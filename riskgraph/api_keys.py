"""Institution API keys: the roles, the strength rule every key must pass, and the key store.

A stored key has an id (public: the audit's actor and `riskgraph keys list` name it), a role, an
institution, an optional region scope, an optional expiry and an optional rate limit (requests per
second and a burst). The key itself is never stored: only its HMAC-SHA256 under the server's
"api-key-pepper" key (riskgraph/server_keys.py), so a copy of the database gives no usable key and
no offline guessing without the pepper. The table lives in the results database (`ResultsDB.engine`)
and is created on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from riskgraph.errors import RiskGraphError
from riskgraph.server_keys import derived_key

ROLES: tuple[str, ...] = ("inspector", "approval_system", "investigator", "model_owner", "admin")
MIN_KEY_LENGTH = 32
MIN_BITS_PER_CHAR = 3.0  # Shannon entropy of the key's characters: "aaaa…" is 0, "abab…" is 1
MIN_DISTINCT_CHARS = 10
KEY_PREFIX = "rgk_"

_metadata = sa.MetaData()
api_keys_table = sa.Table(
    "api_keys",
    _metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("institution", sa.String(200), nullable=False),
    sa.Column("region", sa.String(128), nullable=True),
    sa.Column("expires_at", sa.String(40), nullable=True),  # ISO 8601, UTC
    sa.Column("rate", sa.Float, nullable=True),  # requests per second (None: unlimited)
    sa.Column("burst", sa.Integer, nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("revoked_at", sa.String(40), nullable=True),
)


class KeyConfigError(RiskGraphError, ValueError):
    """The configured keys cannot be served (unknown role, weak key, none at all)."""

    status_code = 500
    code = "api_key_config"


class WeakKey(KeyConfigError):
    code = "weak_api_key"


class UnknownKey(RiskGraphError):
    status_code = 404
    code = "api_key_not_found"


def key_weakness(key: str) -> str | None:
    """Why `key` is too weak to accept (None when it is strong enough). Never names the key."""
    if len(key) < MIN_KEY_LENGTH:
        return f"{len(key)} characters; at least {MIN_KEY_LENGTH} are required"
    counts = Counter(key)
    if len(counts) < MIN_DISTINCT_CHARS:
        return f"only {len(counts)} distinct characters; at least {MIN_DISTINCT_CHARS} are required"
    bits = -sum(c / len(key) * math.log2(c / len(key)) for c in counts.values())
    if bits < MIN_BITS_PER_CHAR:
        return f"too little entropy ({bits:.1f} bits per character; at least {MIN_BITS_PER_CHAR} are required)"
    return None


def check_key(key: str, what: str) -> None:
    """Raise WeakKey (naming `what`, never the key) unless the key passes the strength rule."""
    why = key_weakness(key)
    if why is not None:
        raise WeakKey(f"{what} is too weak: {why}. Generate one with `riskgraph keys create` or `openssl rand -hex 32`")


def new_key() -> str:
    """A fresh key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class Pepper:
    """HMAC-SHA256 of keys under the server's "api-key-pepper" key."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    @staticmethod
    def of(home: Path, key_file: Path | None = None) -> Pepper:
        return Pepper(derived_key(home, "api-key-pepper", key_file))

    def digest(self, key: str) -> str:
        return hmac.digest(self.key, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hex()

    def configured_id(self, key: str) -> str:
        """The public id of a key given in the settings (or a development key): keyed, so it says
        nothing about the key to whoever reads the audit."""
        return (
            "cfg-" + hmac.digest(self.key, b"key-id:" + key.encode("utf-8", "surrogatepass"), hashlib.sha256).hex()[:12]
        )


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    digest: str
    role: str
    institution: str
    region: str | None
    expires_at: str | None
    rate: float | None
    burst: int | None
    created_at: str
    revoked_at: str | None

    def expires_epoch(self) -> float | None:
        return None if self.expires_at is None else datetime.fromisoformat(self.expires_at).timestamp()


def parse_expiry(text: str) -> str:
    """An expiry given as a date (valid until that day begins, UTC) or an ISO date-time, as ISO UTC."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            at = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            at = datetime.fromisoformat(text)
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except ValueError as exc:
        raise ValueError(f"expiry {text!r} is not a date (2027-01-01) or an ISO date-time") from exc
    return at.isoformat(timespec="seconds")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """The institution keys in the results database (created on first use)."""

    def __init__(self, engine: sa.Engine, pepper: Pepper) -> None:
        self.engine = engine
        self.pepper = pepper
        _metadata.create_all(engine, checkfirst=True)

    def create(
        self,
        *,
        role: str,
        institution: str,
        region: str | None = None,
        expires_at: str | None = None,
        rate: float | None = None,
        burst: int | None = None,
        key: str | None = None,
    ) -> tuple[str, StoredKey]:
        """A new key (returned once, never stored) and its stored record."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        if not institution.strip():
            raise ValueError("institution must not be empty")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be a positive number of requests per second")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        key = key or new_key()
        check_key(key, "the API key")
        record = StoredKey(
            key_id="k-" + secrets.token_hex(5),
            digest=self.pepper.digest(key),
            role=role,
            institution=institution.strip(),
            region=region or None,
            expires_at=parse_expiry(expires_at) if expires_at else None,
            rate=rate,
            burst=burst if burst is not None else (max(1, math.ceil(rate)) if rate is not None else None),
            created_at=_now(),
            revoked_at=None,
        )
        with self.engine.begin() as conn:
            conn.execute(api_keys_table.insert().values(**record.__dict__))
        return key, record

    def list(self) -> list[StoredKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(api_keys_table.select().order_by(api_keys_table.c.created_at)).mappings().all()
        return [StoredKey(**dict(r)) for r in rows]

    def revoke(self, key_id: str) -> StoredKey:
        with self.engine.begin() as conn:
            done = conn.execute(
                api_keys_table.update()
                .where(api_keys_table.c.key_id == key_id, api_keys_table.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        found = [k for k in self.list() if k.key_id == key_id]
        if not found:
            raise UnknownKey(f"no API key {key_id!r}")
        if done.rowcount == 0 and found[0].revoked_at is None:  # pragma: no cover - racing writers
            raise UnknownKey(f"API key {key_id!r} could not be revoked")
        return found[0]

    def version(self) -> tuple[int, str]:
        """Changes whenever a key is created or revoked (cheap: polled by the server)."""
        t = api_keys_table.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    sa.func.count(), sa.func.count(t.revoked_at), sa.func.max(t.created_at), sa.func.max(t.revoked_at)
                )
            ).one()
        return int(row[0]), f"{row[1]}|{row[2]}|{row[3]}"
