"""The audit log's hash chain, its seals, its head file, its verification and signed extracts.

Every audit row holds its place in the chain (`seq`, 1 for the first row ever written), the hash
of the row before it (`prev_hash`, 64 zeros for the first), its own hash and a seal:

    row_hash = SHA-256(prev_hash + "\\n" + canonical(row))   canonical: JSON of CHAIN_FIELDS, in order
    seal     = HMAC-SHA256(audit-seal key, row_hash)

`key_id` names the key that sealed the row (riskgraph/server_keys.py), so a key rotation shows.
Rows written before the chain existed (an older home) have no hash: they are chained implicitly
(their seq is their position), and the first sealed row links to the last of them, so they are
covered too. After each committed write the writer also seals the head (last row id, seq = row
count, row_hash) into `HOME/audit.head`, so that deleting the tail of the table is detected.

A head behind the table (a crash between the commit and the head write) is accepted when the
rows after it chain correctly from it; a head naming a row the table no longer has, or a row
with another hash, fails. See docs/security.md, "Audit log".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from riskgraph.server_keys import derived_key, key_id

GENESIS = "0" * 64
HEAD_FILE = "audit.head"
PURPOSE = "audit-seal"
# what a row's hash covers, in this order (id is the database's; seq is the row's place in the chain)
CONTENT_FIELDS = (
    "at",
    "actor",
    "role",
    "action",
    "entity_type",
    "entity_id",
    "model_version",
    "grade",
    "detail",
    "decision_id",
    "run_id",
)
CHAIN_FIELDS = ("seq", *CONTENT_FIELDS, "key_id")
STORED_FIELDS = (*CHAIN_FIELDS, "prev_hash", "row_hash", "seal")


class AuditHead(NamedTuple):
    """The last row of a committed write: its database id, the rows up to it, its hash."""

    id: int
    rows: int
    row_hash: str


def canonical(row: dict[str, Any]) -> bytes:
    """The row's content as hashed: a compact JSON list of CHAIN_FIELDS in UTF-8 (no ASCII
    escaping, null for None, seq an integer, every other value text)."""
    return _json_list([row.get(f) for f in CHAIN_FIELDS])


def _json_list(values: list[Any]) -> bytes:
    return orjson.dumps([v if v is None or isinstance(v, int) else str(v) for v in values])


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(row)).hexdigest()


def _mac(key: bytes, text: str) -> str:
    return hmac.digest(key, text.encode(), "sha256").hex()


@dataclass
class AuditSeal:
    """The audit-seal key of one home and where that home keeps its head file."""

    home: Path
    key: bytes
    key_id: str = field(init=False)
    _written: int = field(init=False, default=-1)  # rows in the newest head this process wrote
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.key_id = key_id(self.key)

    @staticmethod
    def of(home: Path, key_file: Path | None = None) -> AuditSeal:
        return AuditSeal(home, derived_key(home, PURPOSE, key_file))

    @property
    def head_path(self) -> Path:
        return self.home / HEAD_FILE

    def seal(self, hash_: str) -> str:
        return _mac(self.key, hash_)

    def chain(self, rows: list[dict[str, Any]], prev_hash: str, last_seq: int) -> list[dict[str, Any]]:
        """`rows` (AuditWriter.row dicts) as stored: values as text, chained after
        (`last_seq`, `prev_hash`), hashed and sealed under this key."""
        out = []
        kid, sha256 = self.key_id, hashlib.sha256
        for i, r in enumerate(rows, start=1):
            values = [None if (v := r.get(f)) is None else str(v) for f in CONTENT_FIELDS]
            seq = last_seq + i
            hash_ = sha256(prev_hash.encode() + b"\n" + _json_list([seq, *values, kid])).hexdigest()
            row: dict[str, Any] = dict(zip(CONTENT_FIELDS, values))
            row.update(seq=seq, key_id=kid, prev_hash=prev_hash, row_hash=hash_, seal=self.seal(hash_))
            out.append(row)
            prev_hash = hash_
        return out

    # -- the head file ----------------------------------------------------------------------------
    def write_head(self, head: AuditHead) -> None:
        """Seal `head` into HOME/audit.head atomically (temp file, fsync, rename); a head older
        than one this process already wrote is skipped."""
        with self._lock:
            if head.rows <= self._written:
                return
            body = {"id": head.id, "rows": head.rows, "row_hash": head.row_hash, "key_id": self.key_id}
            body["seal"] = _mac(self.key, json.dumps(body, sort_keys=True))
            path = self.head_path
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(f".{HEAD_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, (json.dumps(body, sort_keys=True) + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)  # no fsync of the folder: a rename lost in a crash leaves the
            self._written = head.rows  # previous head, behind the table, which verify accepts

    def read_head(self) -> dict[str, Any] | None:
        """The head file's fields (None when there is none); `valid` says whether its seal holds
        under this key."""
        try:
            head: dict[str, Any] = json.loads(self.head_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"valid": False, "unreadable": True}
        body = {k: v for k, v in head.items() if k != "seal"}
        expected = _mac(self.key, json.dumps(body, sort_keys=True))
        head["valid"] = hmac.compare_digest(str(head.get("seal", "")), expected)
        return head


# -- verification ---------------------------------------------------------------------------------
@dataclass
class Verdict:
    ok: bool
    rows: int = 0  # rows checked
    sealed: int = 0
    legacy: int = 0  # rows from before the chain, covered by the first sealed row's link
    earlier_keys: dict[str, int] = field(default_factory=dict)  # key id -> rows sealed under it
    after_head: int = 0  # rows committed after the last head write (a crash in between)
    broken_id: int | None = None  # the first broken row (database id), if any
    broken_seq: int | None = None
    reason: str = ""
    head: dict[str, Any] | None = None

    def summary(self) -> str:
        if not self.ok:
            where = f"row id {self.broken_id} (seq {self.broken_seq}): " if self.broken_id is not None else ""
            return f"audit log BROKEN: {where}{self.reason}"
        parts = [f"audit log intact: {self.rows} rows, chain and seals verified"]
        if self.legacy:
            parts.append(f"{self.legacy} rows from before the chain (covered by the first sealed row's link)")
        for kid, n in self.earlier_keys.items():
            parts.append(f"{n} rows sealed under earlier key {kid} (links checked, seals need that key)")
        if self.head is not None:
            parts.append(f"head: row id {self.head.get('id')}, {self.head.get('rows')} rows")
        if self.after_head:
            parts.append(
                f"{self.after_head} rows after the head (written after the last head update; they chain from it)"
            )
        return "; ".join(parts)


def verify(rows: Iterable[dict[str, Any]], seal: AuditSeal, head: dict[str, Any] | None) -> Verdict:
    """Check every row (in id order) and the head. Fails at the first altered, deleted, inserted,
    reordered or badly sealed row, and on a head the table does not reach."""
    v = Verdict(ok=True, head=head)

    def broken(r: dict[str, Any] | None, reason: str) -> Verdict:
        v.ok, v.reason = False, reason
        if r is not None:
            v.broken_id, v.broken_seq = r.get("id"), r.get("seq")
        return v

    if head is not None and not head.get("valid"):
        if head.get("unreadable"):
            return broken(None, f"the head file {seal.head_path} is unreadable")
        if head.get("key_id") != seal.key_id:
            return broken(
                None,
                f"the head file is sealed under key {head.get('key_id')}, not the current key {seal.key_id} "
                "(after a key rotation the head is resealed at the next audit write)",
            )
        return broken(None, f"the head file {seal.head_path} has a bad seal (altered)")
    prev, pos, current_seen, last_id = GENESIS, 0, False, -1
    head_row: dict[str, Any] | None = None
    for r in rows:
        pos += 1
        v.rows = pos
        if r["id"] <= last_id:
            return broken(r, f"row ids out of order after id {last_id}")
        last_id = r["id"]
        if r.get("row_hash") is None:
            if v.sealed:
                return broken(r, "row is not sealed: written outside the audit chain (inserted)")
            prev = row_hash(prev, {**r, "seq": pos, "key_id": None})
            v.legacy += 1
            continue
        v.sealed += 1
        if r.get("seq") != pos:
            what = (
                "a row before it is missing (deleted) or rows were reordered"
                if (r.get("seq") or 0) > pos
                else "rows reordered or inserted"
            )
            return broken(r, f"sequence {r.get('seq')} where {pos} was expected: {what}")
        if r.get("prev_hash") != prev:
            return broken(r, "does not link to the row before it (a row was deleted, inserted or reordered)")
        if row_hash(prev, r) != r["row_hash"]:
            return broken(r, "content does not match its hash (altered)")
        if r.get("key_id") == seal.key_id:
            current_seen = True
            if not hmac.compare_digest(seal.seal(r["row_hash"]), str(r.get("seal"))):
                return broken(r, "bad seal: the row's HMAC does not hold under the audit-seal key")
        elif current_seen:
            return broken(r, f"sealed under key {r.get('key_id')} after rows under the current key {seal.key_id}")
        else:
            kid = str(r.get("key_id"))
            v.earlier_keys[kid] = v.earlier_keys.get(kid, 0) + 1
        prev = r["row_hash"]
        if head is not None and pos == head.get("rows"):
            head_row = r
    if head is None:
        if v.sealed:
            return broken(None, f"the head file {seal.head_path} is missing (the table's tail cannot be checked)")
        return v
    want = int(head.get("rows") or 0)
    if want > pos:
        return broken(
            None,
            f"rows deleted at the tail: the head names row id {head.get('id')} (row {want}), "
            f"the table ends at row {pos} (id {last_id if pos else 'none'})",
        )
    if head_row is None or head_row.get("row_hash") != head.get("row_hash") or head_row.get("id") != head.get("id"):
        return broken(head_row, f"the head names row id {head.get('id')} with another hash: rows altered or replaced")
    v.after_head = pos - want
    return v


# -- signed extracts --------------------------------------------------------------------------------
def extract_lines(rows: Iterable[dict[str, Any]], seal: AuditSeal, meta: dict[str, Any]) -> Iterator[str]:
    """A signed extract: a header line, one JSON line per row (with its chain hashes and seal), and
    a last `signature` line: HMAC-SHA256 under the audit-seal key over every line before it."""
    mac = hmac.new(seal.key, digestmod=hashlib.sha256)
    digest = hashlib.sha256()
    header = json.dumps({"type": "header", "key_id": seal.key_id, "genesis": GENESIS, **meta}, ensure_ascii=False)
    count = 0
    for line in (header, *(json.dumps({"type": "row", **_plain(r)}, ensure_ascii=False) for r in rows)):
        data = (line + "\n").encode("utf-8", "surrogatepass")
        mac.update(data)
        digest.update(data)
        count += 1
        yield line
    yield json.dumps(
        {
            "type": "signature",
            "alg": "HMAC-SHA256",
            "key_id": seal.key_id,
            "lines": count,
            "sha256": digest.hexdigest(),
            "hmac": mac.hexdigest(),
        }
    )


def _plain(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r.get(k) for k in ("id", *STORED_FIELDS)}


def check_extract(lines: list[str], seal: AuditSeal) -> str:
    """An extract's problem ('' when its signature holds and its rows chain one to the next)."""
    if not lines:
        return "empty extract"
    try:
        sig = json.loads(lines[-1])
    except ValueError:
        return "last line is not a signature"
    if sig.get("type") != "signature":
        return "last line is not a signature"
    mac = hmac.new(seal.key, digestmod=hashlib.sha256)
    for line in lines[:-1]:
        mac.update((line + "\n").encode("utf-8", "surrogatepass"))
    if not hmac.compare_digest(mac.hexdigest(), str(sig.get("hmac"))):
        return "signature does not hold (the extract was altered or signed under another key)"
    prev: str | None = None
    for line in lines[1:-1]:
        r = json.loads(line)
        if r.get("row_hash") is None:
            continue
        if prev is not None and r["prev_hash"] != prev:
            return f"row id {r['id']} does not link to the row before it"
        if row_hash(r["prev_hash"], r) != r["row_hash"]:
            return f"row id {r['id']} does not match its hash"
        prev = r["row_hash"]
    return ""
