"""The server's secret, and the keys derived from it for each purpose.

One master secret per installation: the `RISKGRAPH_SECRET_KEY` environment variable (64 hex
characters), else the key file named by the `secret_key_file` setting, else `HOME/secret.key`,
generated once with mode 0600. It never comes from a dataset folder. Each use gets its own key,
derived with HKDF-SHA256 (RFC 5869) under a purpose name, so that no two uses share a key:

- "masking": keyed tokens of personal identifiers (HMAC-SHA256);
- "audit-seal": the audit log's hash chain seal and its head file;
- "api-key-pepper": hashing stored API keys;
- "field-encryption": personal columns encrypted at rest.

Rotating the master secret changes every derived key: masked tokens made before no longer
match, and the audit chain records which key sealed each row (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from riskgraph.errors import RiskGraphError

ENV_VAR = "RISKGRAPH_SECRET_KEY"
KEY_FILE = "secret.key"
PURPOSES = ("masking", "audit-seal", "api-key-pepper", "field-encryption")


class BadSecret(RiskGraphError):
    status_code = 500
    code = "bad_secret"


def _hkdf(master: bytes, purpose: str, length: int = 32) -> bytes:
    prk = hmac.new(b"riskgraph", master, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + purpose.encode() + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def master_secret(home: Path, key_file: Path | None = None) -> bytes:
    """The installation's master secret (see the module doc for where it comes from)."""
    given = os.environ.get(ENV_VAR, "").strip()
    if given:
        try:
            value = bytes.fromhex(given)
        except ValueError as exc:
            raise BadSecret(f"{ENV_VAR} must be 64 hex characters") from exc
        if len(value) < 32:
            raise BadSecret(f"{ENV_VAR} must hold at least 32 bytes (64 hex characters)")
        return value
    path = key_file or home / KEY_FILE
    if path.exists():
        value = bytes.fromhex(path.read_text().strip())
        if len(value) < 32:
            raise BadSecret(f"{path}: the secret must hold at least 32 bytes")
        return value
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_bytes(32)
    # Written whole under a temporary name, then linked into place: another process never reads
    # a half-written secret, and if two race, both end up with the one that was linked first.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(value.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process made it first: use theirs
            return master_secret(home, key_file)
    finally:
        tmp.unlink(missing_ok=True)
    return value


def derived_key(home: Path, purpose: str, key_file: Path | None = None) -> bytes:
    """The 32-byte key of one purpose (PURPOSES)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}; purposes are {', '.join(PURPOSES)}")
    return _hkdf(master_secret(home, key_file), purpose)


def key_id(key: bytes) -> str:
    """A short public name of a key (which key sealed or masked something), not the key."""
    return hashlib.sha256(b"key-id" + key).hexdigest()[:12]


class Tokens:
    """Keyed tokens of personal identifiers: one token per value everywhere (API masking, the
    stores' identifier nodes), unlinkable without the key (HMAC-SHA256, 80 bits shown)."""

    PREFIX = "tok-"

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.key_id = key_id(key)

    @staticmethod
    def of(home: Path, key_file: Path | None = None) -> Tokens:
        return Tokens(derived_key(home, "masking", key_file))

    def __call__(self, value: str) -> str:
        digest = hmac.new(self.key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return self.PREFIX + digest[:20]
