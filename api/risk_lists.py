"""The inspectors' risk lists: filters, sorting with keyset cursors, the regions of a type, the CSV
export, and ONE audit row per list view or export (keyword-only arguments, no web framework).

Sorting: any of `SORTS`, each with its own default order (`DEFAULT_ORDER`); ties go by entity id
(ascending) and rows with no value (NaN, None, empty) come last in both orders. A cursor carries
the sort it was made for and the sort key of the last row shown, so it continues exactly after that
row even when the served results were reloaded in between; a cursor used with another sort is a 422.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import io
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
import orjson
import pandas as pd

from api.audit import new_decision_id
from api.book import ResultsBook
from api.cursors import decode_cursor, encode_cursor
from api.errors import InvalidParameter, ResultsNotLoaded
from api.security import Principal
from api.state import AppState

DEFAULT_ORDER: dict[str, str] = {
    "priority": "asc",  # 1 = work first (the documented triage order)
    "risk_score": "desc",  # riskiest first
    "credit_points": "asc",  # fewest points (least trustworthy) first
    "amount_at_stake": "desc",  # most money first
    "grade": "desc",  # D first
    "region": "asc",
    "entity_id": "asc",
}
SORTS: tuple[str, ...] = tuple(DEFAULT_ORDER)
DEFAULT_SORT = "priority"
NUMERIC_SORTS = frozenset({"priority", "risk_score", "credit_points", "amount_at_stake"})
TOP_REASONS_IN_LIST = 3
EXPORT_CHUNK = 5000
BOM = "\ufeff"
EMPTY_COLUMNS = [
    "entity_id",
    "rank",
    "risk_score",
    "credit_points",
    "grade",
    "grade_cap",
    "region",
    "rule_list",
    "ring_list",
    "model_version",
    "reasons",
]
CSV_COLUMNS = [
    "rank",
    "entity_type",
    "entity_id",
    "risk_score",
    "credit_points",
    "grade",
    "grade_cap",
    "region",
    "rule_hits",  # rule titles in the chosen language, "; "-joined
    "rings",
    "model_version",
    "priority",
    "amount_at_stake",
    "reasons",  # the top reasons' text in the chosen language, "; "-joined
    "rule_ids",  # the same rule hits as ids, ";"-joined (for filtering again)
]


@dataclass(frozen=True)
class RiskQuery:
    """One list request: the type, its filters and its sort."""

    entity_type: str
    region: str | None = None
    grades: tuple[str, ...] = ()
    rule: str | None = None
    ring: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    sort: str = DEFAULT_SORT
    order: str | None = None  # None: the sort's default order
    scope: str | None = None  # the key's region scope: only entities of this region (None: all)

    def __post_init__(self) -> None:
        if self.sort not in DEFAULT_ORDER:
            raise InvalidParameter(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}")
        if self.order not in (None, "asc", "desc"):
            raise InvalidParameter(f"order must be asc or desc, got {self.order!r}")
        if self.min_score is not None and self.max_score is not None and self.min_score > self.max_score:
            raise InvalidParameter("min_score is greater than max_score")

    @property
    def direction(self) -> str:
        return self.order or DEFAULT_ORDER[self.sort]

    def filters(self) -> dict[str, Any]:
        """The filters in force (for the audit row)."""
        given = {
            "region": self.region,
            "grade": list(self.grades) or None,
            "rule": self.rule,
            "ring": self.ring,
            "min_score": self.min_score,
            "max_score": self.max_score,
            "scope_region": self.scope,
        }
        return {k: v for k, v in given.items() if v is not None}


# -- selecting and ordering -----------------------------------------------------------------------


def _book(state: AppState) -> ResultsBook:
    if not state.book.loaded:
        raise ResultsNotLoaded("no scores yet: run `riskgraph pipeline` (or the nightly-rescore job) first")
    return state.book


def _frame(book: ResultsBook, entity_type: str) -> pd.DataFrame:
    """The type's risk frame, with `priority` and `amount_at_stake` even from a book without them
    (then priority is the stored rank and the amount unknown)."""
    frame = book.risk.get(entity_type)
    if frame is None:
        frame = pd.DataFrame(columns=EMPTY_COLUMNS)
    missing = {}
    if "priority" not in frame:
        missing["priority"] = frame["rank"] if "rank" in frame else np.arange(1, len(frame) + 1)
    if "amount_at_stake" not in frame:
        missing["amount_at_stake"] = np.full(len(frame), np.nan)
    return frame.assign(**missing) if missing else frame


def _mask(frame: pd.DataFrame, q: RiskQuery) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    if q.scope is not None:  # a region-scoped key: no entity of another region, nor one without a region
        mask &= _one_of(frame, "region", (q.scope,))
    if q.region is not None:
        mask &= _one_of(frame, "region", (q.region,))
    if q.grades:
        mask &= _one_of(frame, "grade", q.grades)
    if q.rule is not None:
        mask &= np.fromiter((q.rule in hits for hits in frame["rule_list"]), dtype=bool, count=len(frame))
    if q.ring is not None:
        mask &= np.fromiter((q.ring in rings for rings in frame["ring_list"]), dtype=bool, count=len(frame))
    if q.min_score is not None:
        mask &= (frame["risk_score"] >= q.min_score).to_numpy()
    if q.max_score is not None:
        mask &= (frame["risk_score"] <= q.max_score).to_numpy()
    return mask


def _coded(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, dict[Any, int]]:
    """`column` factorised, once per frame: each row's code (-1: missing) and each value's code."""
    index = _index(frame)
    if column not in index.codes:
        codes, uniques = pd.factorize(frame[column].to_numpy(dtype=object))
        index.codes[column] = (codes, {u: i for i, u in enumerate(uniques)})
    return index.codes[column]


def _one_of(frame: pd.DataFrame, column: str, values: tuple[str, ...]) -> np.ndarray:
    """Rows whose `column` equals one of `values`: small integer codes compared, not 1M strings."""
    codes, code_of = _coded(frame, column)
    wanted = [code_of[v] for v in values if v in code_of]
    return np.isin(codes, wanted) if wanted else np.zeros(len(codes), dtype=bool)


@dataclass
class SortKey:
    """A column's sort values over the whole frame: `values` (float, or str with "" where missing),
    `missing`, the entity ids (the tie-break) and their ranks, and the orders made so far."""

    values: np.ndarray
    missing: np.ndarray
    ids: np.ndarray
    id_codes: np.ndarray
    orders: dict[str, np.ndarray] = field(default_factory=dict)  # direction -> permutation


@dataclass
class FrameIndex:
    """What sorting one served frame needs, computed once per frame (dropped with it)."""

    ids: np.ndarray
    id_codes: np.ndarray  # rank of each id in ascending order
    keys: dict[str, SortKey] = field(default_factory=dict)
    codes: dict[str, tuple[np.ndarray, dict[Any, int]]] = field(default_factory=dict)  # _one_of's columns


_indexes: dict[int, FrameIndex] = {}


def _index(frame: pd.DataFrame) -> FrameIndex:
    index = _indexes.get(id(frame))
    if index is None:
        ids = frame["entity_id"].astype(str).to_numpy(dtype=object)
        index = FrameIndex(ids, np.unique(ids.astype(str), return_inverse=True)[1])
        if len(_indexes) > 64:  # frames of books long gone (their finalizers normally clear these)
            _indexes.clear()
        _indexes[id(frame)] = index
        weakref.finalize(frame, _indexes.pop, id(frame), None)
    return index


def _sort_key(frame: pd.DataFrame, sort: str) -> SortKey:
    """The sort key of `frame` by `sort` (kept with the frame's index)."""
    index = _index(frame)
    key = index.keys.get(sort)
    if key is not None:
        return key
    column = frame[sort]
    if sort == "entity_id":
        values, missing = index.ids, np.zeros(len(frame), dtype=bool)
    elif sort in NUMERIC_SORTS:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(values)
    else:
        raw = column.astype(object).to_numpy(dtype=object)
        missing = np.fromiter((not isinstance(v, str) or v == "" for v in raw), dtype=bool, count=len(raw))
        values = np.where(missing, "", raw).astype(object)
    key = SortKey(values, missing, index.ids, index.id_codes)
    index.keys[sort] = key
    return key


def _permutation(key: SortKey, direction: str) -> np.ndarray:
    """Positions of the frame's rows in sort order: present values first, then by value in
    `direction`, then by entity id ascending."""
    perm = key.orders.get(direction)
    if perm is not None:
        return perm
    if key.values is key.ids:
        ranked = key.id_codes.astype(float)
    elif key.values.dtype != object:
        ranked = np.where(key.missing, 0.0, key.values)
    else:
        ranked = np.unique(key.values.astype(str), return_inverse=True)[1].astype(float)
    signed = ranked if direction == "asc" else -ranked
    perm = np.lexsort((key.id_codes, signed, key.missing))
    key.orders[direction] = perm
    return perm


def _encode(q: RiskQuery, key: SortKey, pos: int) -> str:
    """A cursor naming the row at `pos`: the sort, its direction, and the row's sort key."""
    value: Any = None
    if not key.missing[pos]:
        value = str(key.values[pos]) if key.values.dtype == object else float(key.values[pos])
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
    return encode_cursor([q.sort, q.direction, int(key.missing[pos]), value, str(key.ids[pos])])


def _after_cursor(q: RiskQuery, key: SortKey, cursor: str, positions: np.ndarray) -> int:
    """How many of `positions` (rows in the query's sort order) come up to and including the row
    the cursor names: the list continues after them. A binary search, as the order is monotone."""
    sort, direction, missing, value, last_id = decode_cursor(cursor, 5)
    if not isinstance(sort, str) or not isinstance(direction, str) or not isinstance(last_id, str):
        raise InvalidParameter("cursor is not one this API returned")
    if (sort, direction) != (q.sort, q.direction):
        raise InvalidParameter(
            f"this cursor continues the list sorted by {sort} {direction}, not by {q.sort} {q.direction}: "
            "drop the cursor to start the list again with the new sort"
        )
    numeric = key.values.dtype != object
    if missing not in (0, 1) or (
        not missing
        and (
            (numeric and (isinstance(value, bool) or not isinstance(value, (int, float))))
            or (not numeric and not isinstance(value, str))
        )
    ):
        raise InvalidParameter("cursor is not one this API returned")
    asc = direction == "asc"

    def after(i: int) -> bool:
        pos = positions[i]
        row_missing = bool(key.missing[pos])
        if row_missing != bool(missing):
            return row_missing  # rows without a value come after every row with one
        if not row_missing:
            v = key.values[pos]
            if v != value:
                return bool(v > value) if asc else bool(v < value)
        return str(key.ids[pos]) > last_id

    return bisect.bisect_left(range(len(positions)), True, key=after)


@dataclass
class Selection:
    """The rows of one request, in order: `positions` into the frame, `total` matching rows,
    `offset` rows before the first position."""

    frame: pd.DataFrame
    key: SortKey
    positions: np.ndarray
    total: int
    offset: int


def select(*, book: ResultsBook, q: RiskQuery, cursor: str | None = None) -> Selection:
    frame = _frame(book, q.entity_type)
    key = _sort_key(frame, q.sort)
    mask = _mask(frame, q)
    perm = _permutation(key, q.direction)
    positions = perm[mask[perm]]
    total = len(positions)
    if cursor:
        positions = positions[_after_cursor(q, key, cursor, positions) :]
    return Selection(frame, key, positions, total, total - len(positions))


# -- answers --------------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return None if math.isnan(v) else v


def _reasons(raw: Any) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        items = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except orjson.JSONDecodeError:
        return []
    return [r for r in items if isinstance(r, dict)][:TOP_REASONS_IN_LIST] if isinstance(items, list) else []


def _risk_item(row: dict[str, Any], entity_type: str) -> dict[str, Any]:
    return {
        "entity_type": entity_type,
        "entity_id": str(row["entity_id"]),
        "rank": int(row["rank"]),
        "priority": int(row["priority"]),
        "risk_score": float(row["risk_score"]),
        "credit_points": float(row["credit_points"]),
        "amount_at_stake": _num(row.get("amount_at_stake")),
        "grade": row["grade"],
        "grade_cap": row["grade_cap"] or None,
        "region": row["region"] if isinstance(row["region"], str) and row["region"] else None,
        "rule_hits": list(row["rule_list"]),
        "rings": list(row["ring_list"]),
        "model_version": row["model_version"],
        "top_reasons": _reasons(row.get("reasons")),
    }


def _audit_row(
    *, state: AppState, principal: Principal, action: str, q: RiskQuery, run_id: str, detail: dict[str, Any]
) -> dict[str, Any]:
    body = {"filters": q.filters(), "sort": q.sort, "order": q.direction, **detail}
    return state.audit.row(
        actor=principal.actor,
        role=principal.role,
        action=action,
        entity_type=q.entity_type,
        detail=orjson.dumps(body).decode(),
        decision_id=new_decision_id(),
        run_id=run_id,
    )


async def risk_page(
    *, state: AppState, principal: Principal, q: RiskQuery, limit: int, cursor: str | None = None
) -> dict[str, Any]:
    """One page of the sorted, filtered list, sent once its one `risk_list` audit row (the filters
    and the ids shown) is durable."""
    book = _book(state)
    q = _scoped(q, principal)

    def build() -> tuple[Selection, list[dict[str, Any]]]:
        sel = select(book=book, q=q, cursor=cursor)
        page = sel.frame.iloc[sel.positions[:limit]]
        return sel, [_risk_item(r, q.entity_type) for r in page.to_dict("records")]

    sel, items = await anyio.to_thread.run_sync(build)
    more = len(sel.positions) > limit
    nxt = _encode(q, sel.key, int(sel.positions[limit - 1])) if more and items else None
    ids = [i["entity_id"] for i in items]
    await state.audit.decide(
        [
            _audit_row(
                state=state,
                principal=principal,
                action="risk_list",
                q=q,
                run_id=book.run_id,
                detail={"cursor": bool(cursor), "offset": sel.offset, "total": sel.total, "ids": ids},
            )
        ]
    )
    return {
        "items": items,
        "total": sel.total,
        "offset": sel.offset,
        "sort": q.sort,
        "order": q.direction,
        "next_cursor": nxt,
        "as_of": book.as_of,
        "run_id": book.run_id,
    }


def rule_titles(state: AppState, lang: str) -> dict[str, str]:
    """Rule id -> title in `lang` (the other language when one is blank), from the rule packs."""
    rules = state.rules
    if rules is None or rules.empty:
        return {}
    first, second = ("title_zh", "title_en") if lang == "zh" else ("title_en", "title_zh")
    return {str(r["rule_id"]): str(r.get(first) or r.get(second) or r["rule_id"]) for r in rules.to_dict("records")}


def _reason_text(reason: dict[str, Any], lang: str) -> str:
    text = reason.get("text_zh") if lang == "zh" else None
    return str(text or reason.get("text") or "")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with `=`, `+`, `-` or `@` (or a tab or
    carriage return) gets a leading `'`. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_cell(value: Any) -> Any:
    v = _num(value) if isinstance(value, (float, np.floating)) else value
    return "" if v is None else safe_text(v)


def _scoped(q: RiskQuery, principal: Principal) -> RiskQuery:
    """The query limited to the key's region scope (a scoped key sees only its region's entities)."""
    return q if principal.region is None else dataclasses.replace(q, scope=principal.region)


def _csv_lines(frame: pd.DataFrame, entity_type: str, titles: dict[str, str], lang: str) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    buf.write(BOM)
    w.writerow(CSV_COLUMNS)
    for start in range(0, max(len(frame), 1), EXPORT_CHUNK):
        for r in frame.iloc[start : start + EXPORT_CHUNK].to_dict("records"):
            rules = list(r["rule_list"])
            w.writerow(
                [
                    _csv_cell(v)
                    for v in (
                        r["rank"],
                        entity_type,
                        r["entity_id"],
                        r["risk_score"],
                        r["credit_points"],
                        r["grade"],
                        r["grade_cap"] or "",
                        r["region"] if isinstance(r["region"], str) else "",
                        "; ".join(titles.get(x, x) for x in rules),
                        ";".join(r["ring_list"]),
                        r["model_version"],
                        r["priority"],
                        _csv_cell(r.get("amount_at_stake")),
                        "; ".join(t for t in (_reason_text(x, lang) for x in _reasons(r.get("reasons"))) if t),
                        ";".join(rules),
                    )
                ]
            )
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


async def risk_export(*, state: AppState, principal: Principal, q: RiskQuery, lang: str) -> tuple[int, Iterator[str]]:
    """The number of rows and the whole filtered list (at most `api_export_max_rows`) as CSV text
    chunks: a UTF-8 BOM, rule titles and top reasons in `lang`. Its one `risk_export` audit row
    (filters, count and ids) is durable before this returns, so before the first byte is sent."""
    book = _book(state)
    q = _scoped(q, principal)

    def build() -> pd.DataFrame:
        sel = select(book=book, q=q)
        return sel.frame.iloc[sel.positions[: state.settings.api_export_max_rows]]

    rows = await anyio.to_thread.run_sync(build)
    ids = rows["entity_id"].astype(str).tolist()
    await state.audit.decide(
        [
            _audit_row(
                state=state,
                principal=principal,
                action="risk_export",
                q=q,
                run_id=book.run_id,
                detail={"lang": lang, "count": len(ids), "ids": ids},
            )
        ]
    )
    return len(ids), _csv_lines(rows, q.entity_type, rule_titles(state, lang), lang)


def regions(*, state: AppState, entity_type: str, principal: Principal | None = None) -> list[str]:
    """The distinct non-empty regions of a type's scored entities, sorted (a scoped key: its own)."""
    frame = _book(state).risk.get(entity_type)
    if frame is None or frame.empty or "region" not in frame:
        return []
    found = {r for r in _coded(frame, "region")[1] if isinstance(r, str) and r}
    if principal is not None and principal.region is not None:
        found &= {principal.region}
    return sorted(found)
