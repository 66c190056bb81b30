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

Algorithms (the `field_encryption` setting):
- "aes-gcm" (default, the `cryptography` package): AES-256-GCM, 96-bit nonce, 128-bit tag;
- "sm4" (national cryptography, GB/T 32907 via the `gmssl` package): SM4 in CTR mode with a
  128-bit random initial counter, then HMAC-SM3 over version, counter, column and ciphertext
  (encrypt-then-MAC, tag cut to 128 bits). The first 16 bytes of the field key are the SM4 key,
  the last 16 the MAC key. gmssl is pure Python: expect it to be slower than AES.
The version byte names the algorithm, so a store written under one setting stays readable after
the setting changes (same master secret).

Whole Parquet files (the embedded store's snapshots) use Parquet modular encryption instead
under "aes-gcm" (`parquet_encryption`): pyarrow encrypts the personal columns' pages and the
footer with AES-GCM (AES_GCM_V1, a fresh data key per file), about 15x faster than value by
value. The data keys are wrapped with a key derived from the field key (`_FieldKeyWrapping`),
so the same master secret opens them; without it neither the columns nor the schema read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet.encryption as pqe
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from riskgraph.errors import RiskGraphError
from riskgraph.server_keys import derived_key

TEXT_PREFIX = "enc1:"
AES_GCM = b"\x01"
SM4_CTR_HMAC = b"\x02"
NONCE = 12
SM4_BLOCK = 16
SM4_TAG = 16
ALGORITHMS = ("aes-gcm", "sm4")


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big") if a else b""


class CannotDecrypt(RiskGraphError):
    status_code = 500
    code = "cannot_decrypt"


class _FieldKeyWrapping(pqe.KmsClient):  # type: ignore[misc]
    """Parquet encryption's key store, in process: a file's data keys are sealed (AES-GCM, the
    master key's name as associated data) under a key derived from the field key."""

    def __init__(self, wrapping_key: bytes) -> None:
        super().__init__()
        self._aead = AESGCM(wrapping_key)

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        nonce = os.urandom(NONCE)
        sealed = self._aead.encrypt(nonce, key_bytes, master_key_identifier.encode())
        return base64.b64encode(nonce + sealed).decode("ascii")

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        blob = base64.b64decode(wrapped_key)
        try:
            return self._aead.decrypt(blob[:NONCE], blob[NONCE:], master_key_identifier.encode())
        except Exception as exc:  # InvalidTag: written under another master secret
            raise CannotDecrypt("an encrypted Parquet file does not open under this key") from exc


class FieldCipher:
    """Encrypts and decrypts single values under one key."""

    def __init__(self, key: bytes, algorithm: str = "aes-gcm") -> None:
        if algorithm not in ALGORITHMS:
            raise RiskGraphError(f"field encryption {algorithm!r} is not available; use one of {', '.join(ALGORITHMS)}")
        self.algorithm = algorithm
        self._aead = AESGCM(key)
        self._sm4_key, self._mac_key = key[:16], key[16:32]
        self._wrapping_key = hmac.new(key, b"riskgraph parquet key wrapping", hashlib.sha256).digest()

    # -- whole Parquet files ---------------------------------------------------------------
    @property
    def encrypts_parquet(self) -> bool:
        """Whether whole Parquet files are encrypted natively (AES-GCM; SM4 stays value by value)."""
        return self.algorithm == "aes-gcm"

    def _crypto_factory(self) -> pqe.CryptoFactory:
        # a fresh factory per file: no key cache shared with a forked writer
        return pqe.CryptoFactory(lambda _config: _FieldKeyWrapping(self._wrapping_key))

    def parquet_encryption(self, columns: Sequence[str]) -> pqe.FileEncryptionProperties:
        """Properties for `pq.write_table` that encrypt `columns` (non-empty) and the footer."""
        config = pqe.EncryptionConfiguration(
            footer_key="riskgraph-footer",
            column_keys={"riskgraph-personal": list(columns)},
            encryption_algorithm="AES_GCM_V1",
            plaintext_footer=False,
        )
        return self._crypto_factory().file_encryption_properties(pqe.KmsConnectionConfig(), config)

    def parquet_decryption(self) -> pqe.FileDecryptionProperties:
        """Properties for `pq.read_table` that open files `parquet_encryption` wrote (plain
        files read as they are)."""
        return self._crypto_factory().file_decryption_properties(
            pqe.KmsConnectionConfig(), pqe.DecryptionConfiguration()
        )

    @staticmethod
    def of(home: Path, key_file: Path | None = None, algorithm: str = "aes-gcm") -> FieldCipher:
        return FieldCipher(derived_key(home, "field-encryption", key_file), algorithm)

    # -- single values ---------------------------------------------------------------------
    def encrypt(self, value: str, column: str = "") -> bytes:
        plain = value.encode("utf-8", "surrogatepass")
        if self.algorithm == "sm4":
            counter = os.urandom(SM4_BLOCK)
            body = _xor(plain, self._sm4_keystream(counter, len(plain)))
            return SM4_CTR_HMAC + counter + body + self._sm4_tag(counter, body, column)
        nonce = os.urandom(NONCE)
        return AES_GCM + nonce + self._aead.encrypt(nonce, plain, column.encode())

    def _sm4_keystream(self, counter: bytes, n: int) -> bytes:
        from gmssl.sm4 import SM4_ENCRYPT, CryptSM4  # optional dependency: only for "sm4"

        start = int.from_bytes(counter, "big")
        blocks = b"".join(((start + i) % (1 << 128)).to_bytes(SM4_BLOCK, "big") for i in range(-(-n // SM4_BLOCK) or 1))
        sm4 = CryptSM4()
        sm4.set_key(self._sm4_key, SM4_ENCRYPT)
        return bytes(sm4.crypt_ecb(blocks))[:n]  # ECB over counter blocks = CTR keystream

    def _sm4_tag(self, counter: bytes, body: bytes, column: str) -> bytes:
        message = SM4_CTR_HMAC + counter + len(column).to_bytes(4, "big") + column.encode() + body
        return hmac.new(self._mac_key, message, "sm3").digest()[:SM4_TAG]

    def decrypt(self, blob: bytes, column: str = "") -> str:
        if blob[:1] == SM4_CTR_HMAC:
            counter, body, tag = blob[1 : 1 + SM4_BLOCK], blob[1 + SM4_BLOCK : -SM4_TAG], blob[-SM4_TAG:]
            if len(blob) < 1 + SM4_BLOCK + SM4_TAG or not hmac.compare_digest(
                tag, self._sm4_tag(counter, body, column)
            ):
                raise CannotDecrypt(f"a value of {column or 'a column'} does not decrypt under this key")
            return _xor(body, self._sm4_keystream(counter, len(body))).decode("utf-8", "surrogatepass")
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
        """Many values of one column. AES-GCM nonces here are a fresh random 8-byte prefix for the
        batch and a 4-byte counter: unique under the key without a system call per value."""
        if self.algorithm != "aes-gcm":
            return [None if v is None else self.encrypt(v, column) for v in values]
        prefix, aad, seal = os.urandom(NONCE - 4), column.encode(), self._aead.encrypt
        out: list[bytes | None] = []
        append = out.append
        for i, v in enumerate(values):
            if v is None:
                append(None)
                continue
            nonce = prefix + (i & 0xFFFFFFFF).to_bytes(4, "big")
            append(AES_GCM + nonce + seal(nonce, v.encode("utf-8", "surrogatepass"), aad))
            if i and i & 0xFFFFFFFF == 0:  # 2^32 values: a new prefix before the counter repeats
                prefix = os.urandom(NONCE - 4)
        return out

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
