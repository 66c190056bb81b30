"""Field-by-field encryption of personal values at rest (AES-256-GCM by default).

Each value is encrypted on its own with a fresh 96-bit nonce, so that equal values give different
ciphertexts: equality (shared phones, bank accounts, ...) is kept through keyed tokens
(riskgraph/server_keys.py `Tokens`), never through the ciphertext. The key is the "field-encryption"
key derived from the installation's master secret (a key file or an environment variable, never
the data folder).

A ciphertext is `version byte | nonce | ciphertext+tag` in binary columns (Parquet), or the same
bytes in URL-safe base64 after the `enc1:` prefix where text is stored (JSON, SQL text columns).
The associated data binds a value to its column name: a ciphertext moved to another column does
not decrypt.

Algorithms: "aes-gcm" (the `cryptography` package). "sm4-gcm" (national cryptography) needs the
`gmssl` package and is not built yet: asking for it is refused at start, never silently downgraded.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from riskgraph.errors import RiskGraphError
from riskgraph.server_keys import derived_key

TEXT_PREFIX = "enc1:"
AES_GCM = b"\x01"
NONCE = 12
ALGORITHMS = ("aes-gcm",)


class CannotDecrypt(RiskGraphError):
    status_code = 500
    code = "cannot_decrypt"


class FieldCipher:
    """Encrypts and decrypts single values under one key."""

    def __init__(self, key: bytes, algorithm: str = "aes-gcm") -> None:
        if algorithm not in ALGORITHMS:
            raise RiskGraphError(f"field encryption {algorithm!r} is not available; use one of {', '.join(ALGORITHMS)}")
        self.algorithm = algorithm
        self._aead = AESGCM(key)

    @staticmethod
    def of(home: Path, key_file: Path | None = None, algorithm: str = "aes-gcm") -> FieldCipher:
        return FieldCipher(derived_key(home, "field-encryption", key_file), algorithm)

    # -- single values ---------------------------------------------------------------------
    def encrypt(self, value: str, column: str = "") -> bytes:
        nonce = os.urandom(NONCE)
        return AES_GCM + nonce + self._aead.encrypt(nonce, value.encode("utf-8", "surrogatepass"), column.encode())

    def decrypt(self, blob: bytes, column: str = "") -> str:
        if blob[:1] != AES_GCM:
            raise CannotDecrypt("unknown ciphertext version")
        try:
            plain = self._aead.decrypt(blob[1 : 1 + NONCE], blob[1 + NONCE :], column.encode())
        except Exception as exc:  # InvalidTag: another key, another column, or altered bytes
            raise CannotDecrypt(f"a value of {column or 'a column'} does not decrypt under this key") from exc
        return plain.decode("utf-8", "surrogatepass")

    def encrypt_text(self, value: str, column: str = "") -> str:
        return TEXT_PREFIX + base64.urlsafe_b64encode(self.encrypt(value, column)).decode("ascii")

    def decrypt_text(self, value: str, column: str = "") -> str:
        """The plain value of `encrypt_text`'s output; any other text is returned unchanged."""
        if not isinstance(value, str) or not value.startswith(TEXT_PREFIX):
            return value
        return self.decrypt(base64.urlsafe_b64decode(value[len(TEXT_PREFIX) :]), column)

    # -- columns ---------------------------------------------------------------------------
    def encrypt_strings(self, values: Iterable[str | None], column: str = "") -> list[bytes | None]:
        return [None if v is None else self.encrypt(v, column) for v in values]

    def encrypt_array(self, arr: pa.Array | pa.ChunkedArray, column: str) -> pa.Array:
        """A binary array of the values' ciphertexts (nulls stay null); any type, as its text."""
        text = arr if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) else pc.cast(arr, pa.string())
        return pa.array(self.encrypt_strings(text.to_pylist(), column), type=pa.binary())

    def decrypt_array(self, arr: pa.Array | pa.ChunkedArray, column: str, to: pa.DataType) -> pa.Array:
        """The values of `encrypt_array`'s output, cast back to their type `to`."""
        plain = pa.array([None if b is None else self.decrypt(b, column) for b in arr.to_pylist()], type=pa.string())
        return plain if pa.types.is_string(to) else pc.cast(plain, to)


def encrypted_columns(schema: pa.Schema) -> dict[str, str]:
    """{column: original Arrow type} recorded in a table's metadata by `encrypt_table`."""
    meta = (schema.metadata or {}).get(b"riskgraph.encrypted")
    return dict(json.loads(meta)) if meta else {}


def encrypt_table(table: pa.Table, columns: Sequence[str], cipher: FieldCipher) -> pa.Table:
    """The table with `columns` (those present) encrypted value by value; their original types
    in the schema metadata, so that `decrypt_table` restores the table exactly."""
    import json

    present = [c for c in columns if c in table.column_names]
    if not present:
        return table
    types = {c: str(table.schema.field(c).type) for c in present}
    for c in present:
        i = table.column_names.index(c)
        table = table.set_column(i, pa.field(c, pa.binary()), cipher.encrypt_array(table.column(c), c))
    meta = dict(table.schema.metadata or {})
    meta[b"riskgraph.encrypted"] = json.dumps(types).encode()
    if b"pandas" in meta:  # kept aside: a plain reader would take the ciphertexts for text
        meta[b"riskgraph.pandas"] = meta.pop(b"pandas")
    return table.replace_schema_metadata(meta)


def decrypt_table(table: pa.Table, cipher: FieldCipher | None) -> pa.Table:
    """The table `encrypt_table` encrypted, in plain (unchanged when nothing is encrypted)."""
    types = encrypted_columns(table.schema)
    if not types:
        return table
    if cipher is None:
        raise CannotDecrypt("the table holds encrypted columns and no key was given")
    for c, type_name in types.items():
        i = table.column_names.index(c)
        to = _arrow_type(type_name)
        table = table.set_column(i, pa.field(c, to), cipher.decrypt_array(table.column(c), c, to))
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != b"riskgraph.encrypted"}
    if b"riskgraph.pandas" in meta:
        meta[b"pandas"] = meta.pop(b"riskgraph.pandas")
    return table.replace_schema_metadata(meta)


def _arrow_type(name: str) -> pa.DataType:
    simple = {
        "string": pa.string(),
        "large_string": pa.large_string(),
        "double": pa.float64(),
        "float": pa.float32(),
        "int64": pa.int64(),
        "int32": pa.int32(),
        "bool": pa.bool_(),
        "date32[day]": pa.date32(),
    }
    if name in simple:
        return simple[name]
    if name.startswith("timestamp["):
        unit, _, tz = name[len("timestamp[") : -1].partition(", tz=")
        return pa.timestamp(unit, tz or None)
    raise CannotDecrypt(f"cannot restore a column of type {name}")
