"""Personal values in what a run writes to disk (docs/security.md, "Encryption at rest").

The pipeline computes with plain values in memory; before anything is written, values of columns
at the personal levels (graph/contract.py `Level`) that a result carries are encrypted field by
field (riskgraph/field_crypto.py). Today that is rule evidence: a hit's records may quote a
visit's diagnosis, a person's birth date, and so on. Shared identifiers in ring evidence are
pseudonyms already (features/rings/identity.py), never values.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from graph.contract import PERSONAL_COLUMNS
from riskgraph.field_crypto import FieldCipher

# evidence keys worth a parse: a personal column's name in quotes
_NEEDLES = tuple(f'"{c}"' for c in sorted(PERSONAL_COLUMNS))


def protect_evidence(evidence: str, cipher: FieldCipher) -> str:
    """A hit's evidence (JSON) with the values of personal keys encrypted (`enc1:` text)."""
    if not isinstance(evidence, str) or not any(n in evidence for n in _NEEDLES):
        return evidence
    return json.dumps(_protect(json.loads(evidence), cipher), ensure_ascii=False, separators=(",", ":"))


def reveal_evidence(evidence: Any, cipher: FieldCipher) -> Any:
    """The evidence `protect_evidence` wrote (a JSON string or its parsed value), in plain."""
    if isinstance(evidence, str):
        if "enc1:" not in evidence:
            return evidence
        return json.dumps(_reveal(json.loads(evidence), cipher), ensure_ascii=False, separators=(",", ":"))
    return _reveal(evidence, cipher)


def protect_hits(hits: pd.DataFrame, cipher: FieldCipher) -> pd.DataFrame:
    """Rule hits with their evidence's personal values encrypted."""
    if hits.empty or "evidence" not in hits.columns:
        return hits
    return hits.assign(evidence=[protect_evidence(e, cipher) for e in hits["evidence"].tolist()])


def _protect(value: Any, cipher: FieldCipher, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _protect(v, cipher, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_protect(v, cipher, key) for v in value]
    if key in PERSONAL_COLUMNS and value is not None:
        return cipher.encrypt_text(str(value), key)
    return value


def _reveal(value: Any, cipher: FieldCipher, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _reveal(v, cipher, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v, cipher, key) for v in value]
    if isinstance(value, str) and value.startswith("enc1:"):
        return cipher.decrypt_text(value, key)
    return value
