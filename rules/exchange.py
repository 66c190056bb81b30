"""List exchange with the national credit platform (信用信息互通): serious-discredit lists and
scheme grades as CSV or JSON, validated on import (all or nothing).

One row per entry (docs/credit-policy.md "Exchange layout"):

| column | required | what |
|---|---|---|
| entity_type | yes | person, employer, clinic, pharmacy or agency |
| entity_id | yes | the entity's id in the sending system |
| credit_code | no | unified social credit code (统一社会信用代码), GB 32100-2015 check character verified |
| list | yes | a list or scheme id: wage_arrears, labour_integrity, social_insurance_discredit |
| status | yes | a list: listed, removed or expired; a grade scheme: A, B or C |
| reason | no | why (the criteria met, in words) |
| legal_basis | no | the regulation and clause |
| listed_date | yes | YYYY-MM-DD: listed (a grade: the day it was given) |
| removed_date | no | YYYY-MM-DD: removed or expired; never before listed_date; empty while listed |
| authority | no | who listed it |

JSON: {"format": "riskgraph-list-exchange", "version": 1, "entries": [{column: value}, ...]}.
A row number is the CSV data row (line - 1) or the entry's place in `entries` (from 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from stdnum.cn import uscc
from stdnum.exceptions import ValidationError as NumberInvalid

from graph.contract import ENTITY_TYPES
from riskgraph.errors import Problem, RiskGraphError
from rules.schemes import IntegrityScheme, ListScheme, Scheme, list_ids

FORMAT = "riskgraph-list-exchange"
FORMAT_VERSION = 1
COLUMNS = (
    "entity_type",
    "entity_id",
    "credit_code",
    "list",
    "status",
    "reason",
    "legal_basis",
    "listed_date",
    "removed_date",
    "authority",
)
REQUIRED = ("entity_type", "entity_id", "list", "status", "listed_date")
LIST_STATUSES = ("listed", "removed", "expired")
# National lists exchanged without a scheme here: imported entries become serious hits.
OTHER_LISTS = {"social_insurance_discredit": "社会保险领域严重失信人名单"}
MAX_PROBLEMS = 50


class InvalidExchange(RiskGraphError):
    """An exchange file breaks the layout; nothing was imported."""

    status_code = 422
    code = "invalid_exchange"

    def __init__(self, problems: list[Problem], total: int | None = None) -> None:
        self.problems, self.total = problems, total if total is not None else len(problems)
        lines = [str(p) for p in problems]
        if self.total > len(problems):
            lines.append(f"... and {self.total - len(problems)} more problems")
        super().__init__("invalid list exchange file, nothing was imported:\n  " + "\n  ".join(lines))


def known_lists(schemes: list[Scheme]) -> dict[str, tuple[str, ...]]:
    """List id -> the statuses it takes."""
    out: dict[str, tuple[str, ...]] = {k: LIST_STATUSES for k in OTHER_LISTS}
    for key, s in list_ids(schemes).items():
        out[key] = LIST_STATUSES if isinstance(s, ListScheme) else ("A", "B", "C")
    return out


def valid_credit_code(code: str) -> bool:
    return bool(uscc.is_valid(code))


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(object)


def read_exchange(path: str | Path, lists: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """A validated exchange file (COLUMNS, text, empty cells as ""); raise InvalidExchange naming
    the file, row and column of every problem, importing nothing."""
    path = Path(path)
    name = path.name
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), list):
                raise InvalidExchange([Problem(name, f'not a {FORMAT} document ({{"format", "version", "entries"}})')])
            if doc.get("version") != FORMAT_VERSION:
                raise InvalidExchange(
                    [Problem(name, f"unsupported version {doc.get('version')!r} (this is {FORMAT_VERSION})")]
                )
            bad = [i + 1 for i, e in enumerate(doc["entries"]) if not isinstance(e, dict)]
            if bad:
                raise InvalidExchange([Problem(name, "an entry is an object of columns", bad[0])])
            raw = pd.DataFrame(doc["entries"]).astype(object)
        else:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, pd.errors.ParserError) as exc:
        raise InvalidExchange([Problem(name, f"unreadable: {exc}")]) from None
    return validate_entries(raw, lists, name)


def validate_entries(raw: pd.DataFrame, lists: dict[str, tuple[str, ...]], name: str) -> pd.DataFrame:
    """Check every row (vectorised per column); the typed entries or InvalidExchange."""
    problems: list[Problem] = []
    unknown = [c for c in raw.columns if c not in COLUMNS]
    problems += [Problem(name, f"unknown column (the layout has {', '.join(COLUMNS)})", None, str(c)) for c in unknown]
    missing = [c for c in REQUIRED if c not in raw.columns]
    problems += [Problem(name, "required column is missing", None, c) for c in missing]
    if problems:
        raise InvalidExchange(problems)
    df = pd.DataFrame({c: raw[c] if c in raw.columns else "" for c in COLUMNS}, index=raw.index)
    df = df.fillna("").astype(str).apply(lambda s: s.str.strip())
    df = df.reset_index(drop=True)

    def flag(mask: np.ndarray, column: str, message: str) -> None:
        for i in np.flatnonzero(mask)[:MAX_PROBLEMS]:
            problems.append(Problem(name, f"{message} (got {df.at[i, column]!r})", int(i) + 1, column))

    for c in REQUIRED:
        flag((df[c] == "").to_numpy(), c, "required value is empty")
    flag(
        ((df["entity_type"] != "") & ~df["entity_type"].isin(ENTITY_TYPES)).to_numpy(),
        "entity_type",
        f"entity type must be one of {', '.join(ENTITY_TYPES)}",
    )
    codes = df["credit_code"]
    invalid = {c for c in codes[codes != ""].unique() if not valid_credit_code(c)}  # each distinct code once
    bad_code = codes.isin(invalid).to_numpy()
    for i in np.flatnonzero(bad_code)[:MAX_PROBLEMS]:
        problems.append(
            Problem(
                name,
                f"not a valid unified social credit code (GB 32100-2015): {_why(codes[i])} (got {codes[i]!r})",
                int(i) + 1,
                "credit_code",
            )
        )
    known = df["list"].isin(list(lists))
    flag(((df["list"] != "") & ~known).to_numpy(), "list", f"unknown list (known: {', '.join(sorted(lists))})")
    pairs = pd.MultiIndex.from_tuples([(k, st) for k, sts in lists.items() for st in sts])
    allowed = pd.MultiIndex.from_arrays([df["list"], df["status"]]).isin(pairs)
    flag(
        (known & (df["status"] != "") & ~allowed).to_numpy(),
        "status",
        "status not taken by this list (a list: listed, removed, expired; a grade: A, B, C)",
    )
    listed = pd.to_datetime(df["listed_date"], format="%Y-%m-%d", errors="coerce")
    removed = pd.to_datetime(df["removed_date"], format="%Y-%m-%d", errors="coerce")
    flag(((df["listed_date"] != "") & listed.isna()).to_numpy(), "listed_date", "not a date in YYYY-MM-DD form")
    flag(((df["removed_date"] != "") & removed.isna()).to_numpy(), "removed_date", "not a date in YYYY-MM-DD form")
    flag((removed < listed).to_numpy(), "removed_date", f"removal before listing ({'listed_date'})")
    gone = df["status"].isin(["removed", "expired"])
    flag(
        (gone & (df["removed_date"] == "")).to_numpy(),
        "removed_date",
        "a removed or expired entry needs its removal date",
    )
    flag(
        ((df["status"] == "listed") & (df["removed_date"] != "")).to_numpy(),
        "removed_date",
        "a listed entry has no removal date",
    )
    dup = df.duplicated(["entity_type", "entity_id", "list", "listed_date"], keep="first").to_numpy()
    flag(dup, "entity_id", "duplicate entry (entity, list and listing date appear twice)")
    if problems:
        problems.sort(key=lambda p: p.row or 0)
        raise InvalidExchange(problems[:MAX_PROBLEMS], len(problems))
    return df


def _why(code: str) -> str:
    try:
        uscc.validate(code)
    except NumberInvalid as exc:
        return str(exc).rstrip(".").lower()
    return "invalid"


def write_exchange(entries: pd.DataFrame, path: str | Path) -> int:
    """Write entries (COLUMNS) as CSV, or as JSON when `path` ends in .json; rows written."""
    path = Path(path)
    df = entries[list(COLUMNS)].fillna("").astype(str)
    if path.suffix.lower() == ".json":
        doc = {"format": FORMAT, "version": FORMAT_VERSION, "entries": df.to_dict("records")}
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        df.to_csv(path, index=False, encoding="utf-8")
    return len(df)


def entries_from_outcomes(
    outcomes: pd.DataFrame, credit_codes: pd.Series, schemes: list[Scheme], authority: str
) -> pd.DataFrame:
    """The exchange entries of a run's scheme outcomes: every list entry (listed, removed,
    expired) and every grade; `credit_codes` maps entity id -> code (invalid ones left empty)."""
    by_name = {s.name: s for s in schemes}
    o = outcomes[outcomes["status"] != "not_listed"]
    rows = []
    for r in o.itertuples(index=False):
        s = by_name.get(r.scheme)
        if s is None:
            continue
        key = s.list_id if isinstance(s, ListScheme) else s.name
        crit = json.loads(r.criteria)
        if isinstance(s, IntegrityScheme) and not crit:
            reason = s.grade_text(r.status).text_zh
        else:
            reason = "；".join(c["title_zh"] for c in crit)
        code = str(credit_codes.get(r.entity_id, "") or "")
        rows.append(
            {
                "entity_type": r.entity_type,
                "entity_id": r.entity_id,
                "credit_code": code if code and valid_credit_code(code) else "",
                "list": key,
                "status": r.status,
                "reason": reason,
                "legal_basis": f"{s.legal_basis.split('，')[0]} {r.clause}".strip(),
                "listed_date": r.listed_date or getattr(r, "as_of", ""),
                "removed_date": r.removed_date,
                "authority": authority,
            }
        )
    return _frame(rows)
