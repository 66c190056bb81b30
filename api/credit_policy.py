"""The credit answers' supervision part: each entity's scheme grades and list statuses (from the
served run) and the treatments of the policy in force, encoded ahead of the requests.

Per entity type the scheme items are encoded once when the book is built (one JSON fragment per
row; `[]` for types no scheme grades). Treatments depend only on (policy version, final grade,
entity type, scheme statuses): each combination is encoded on first use and kept in this
object, which lives as long as its book (a policy change rebuilds it, api/policies.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from composer.supervision import POLICY_ID, stored_policies
from riskgraph.results import ResultsDB
from rules.policy import Policy, in_force
from rules.schemes import DEFAULT_SCHEME_DIR, load_schemes

EMPTY = orjson.Fragment(b"[]")
NO_POLICY = orjson.Fragment(b"null")
GRADE_RANK = {g: i for i, g in enumerate("ABCD")}


@dataclass
class SchemeColumns:
    """One entity type's scheme items (encoded) and statuses, aligned with its ids."""

    items: np.ndarray  # orjson.Fragment per row
    statuses: np.ndarray  # tuple of (scheme, status) pairs per row


def scheme_columns(
    outcomes: pd.DataFrame,
    entity_type: str,
    ids: pd.Index,
    grade: np.ndarray,
    score_grade: np.ndarray,
    policy: Policy | None,
) -> SchemeColumns | None:
    """The scheme items of one type's rows: each scheme's grade or status, clause, criteria and
    list dates, the cap the policy sets and whether it binds (the stricter of it and the model's
    grade is the final grade)."""
    part = outcomes[outcomes["entity_type"] == entity_type] if len(outcomes) else outcomes
    if part.empty:
        return None
    meta = {s.name: s for s in load_schemes(DEFAULT_SCHEME_DIR)}
    rows: list[list[dict[str, Any]]] = [[] for _ in range(len(ids))]
    statuses: list[list[tuple[str, str]]] = [[] for _ in range(len(ids))]
    at = ids.get_indexer(part["entity_id"].astype(str))
    for i, o in zip(at, part.itertuples(index=False)):
        if i < 0:
            continue
        scheme = meta.get(o.scheme)
        cap = policy.cap(o.scheme, o.status) if policy else None
        binds = cap is not None and GRADE_RANK[cap] > GRADE_RANK[str(score_grade[i])] and cap == str(grade[i])
        rows[i].append(
            {
                "scheme": o.scheme,
                "version": o.scheme_version,
                "title": scheme.title_en if scheme else o.scheme,
                "title_zh": scheme.title_zh if scheme else o.scheme,
                "legal_basis": scheme.legal_basis if scheme else "",
                "status": o.status,
                "clause": o.clause,
                "criteria": json.loads(o.criteria),
                "listed_date": o.listed_date or None,
                "expires_date": o.expires_date or None,
                "removed_date": o.removed_date or None,
                "removal": o.removal or None,
                "source": o.source,
                "cap": cap,
                "binds": binds,
            }
        )
        statuses[i].append((o.scheme, o.status))
    items = np.empty(len(ids), dtype=object)
    keys = np.empty(len(ids), dtype=object)
    for i, (r, s) in enumerate(zip(rows, statuses)):
        items[i] = orjson.Fragment(orjson.dumps(r)) if r else EMPTY
        keys[i] = tuple(s)
    return SchemeColumns(items, keys)


@dataclass
class PolicyBook:
    """The stored versions of the credit policy and the encoded treatments of each combination."""

    versions: list[Policy] = field(default_factory=list)
    _encoded: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], orjson.Fragment] = field(default_factory=dict)
    _info: dict[str, orjson.Fragment] = field(default_factory=dict)

    _today: tuple[dt.date, Policy | None] | None = None  # the version in force, found once a day

    def in_force(self, on: dt.date | None = None) -> Policy | None:
        day = on or dt.datetime.now(dt.UTC).date()
        if self._today is None or self._today[0] != day:
            self._today = (day, in_force(self.versions, day))
        return self._today[1]

    def version_key(self) -> str:
        """`id version` of the version in force today ("" when there is none)."""
        policy = self.in_force()
        return f"{policy.id} {policy.version}" if policy else ""

    def treatments(
        self, grade: str, entity_type: str, statuses: tuple[tuple[str, str], ...]
    ) -> tuple[orjson.Fragment, orjson.Fragment]:
        """(treatments, policy id/version/effective date) of the version in force today."""
        policy = self.in_force()
        if policy is None:
            return NO_POLICY, NO_POLICY
        key = (policy.version, grade, entity_type, statuses)
        hit = self._encoded.get(key)
        if hit is None:
            hit = orjson.Fragment(orjson.dumps(policy.treatments(grade, entity_type, dict(statuses))))
            self._encoded[key] = hit
        info = self._info.get(policy.version)
        if info is None:
            info = orjson.Fragment(
                orjson.dumps({"id": policy.id, "version": policy.version, "effective_date": str(policy.effective_date)})
            )
            self._info[policy.version] = info
        return hit, info


def policies_changed(current: PolicyBook, db: ResultsDB) -> PolicyBook | None:
    """A new PolicyBook when versions were added since `current` was read (by another server
    process or the CLI), else None; one small query of the `policies` table."""
    rows = db.policy_versions(POLICY_ID)
    if len(rows) == len(current.versions):
        return None
    return PolicyBook(stored_policies(db))
