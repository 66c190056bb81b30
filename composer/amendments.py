"""Data amendments: corrections decided on an objection (composer/objections.py), addressed by
a row's key and applied on top of every later load, before any stage reads the data.

A row is addressed by its id where the table has one (visits: visit_id, purchases: purchase_id,
the entity tables by their entity id) and by its natural key where it has none (benefits:
person_id, month, benefit_type; contributions: employer_id, person_id, month; employment:
person_id, employer_id, start_date; agency_links: agency_id, entity_type, entity_id). An
amendment either deletes the row or sets some of its columns (never a key column). The store's
snapshots stay as loaded: the amendments live in the results database (table `amendments`) and
every run applies all of them, in the order they were made. An amendment whose row a later load
no longer has changes nothing, and the run's manifest says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from graph.contract import TABLES, Kind
from graph.dataset import Dataset
from riskgraph.errors import RiskGraphError
from riskgraph.results import ResultsDB
from riskgraph.results_schema import amendments_table

ROW_KEYS: dict[str, tuple[str, ...]] = {
    "visits": ("visit_id",),
    "purchases": ("purchase_id",),
    "benefits": ("person_id", "month", "benefit_type"),
    "contributions": ("employer_id", "person_id", "month"),
    "employment": ("person_id", "employer_id", "start_date"),
    "agency_links": ("agency_id", "entity_type", "entity_id"),
    "persons": ("person_id",),
    "employers": ("employer_id",),
    "clinics": ("clinic_id",),
    "pharmacies": ("pharmacy_id",),
    "agencies": ("agency_id",),
}
ACTIONS = ("update", "delete")


class InvalidAmendment(RiskGraphError):
    status_code = 422
    code = "invalid_amendment"


@dataclass(frozen=True)
class Amendment:
    """One row's correction: its table, its key (column -> value), and what to do."""

    table: str
    key: dict[str, str]
    action: str = "update"
    changes: dict[str, Any] | None = None

    def check(self, where: str = "amendment") -> None:
        """Refuse an amendment that names no table, no whole key, a key column or an unknown action."""
        if self.table not in ROW_KEYS:
            raise InvalidAmendment(f"{where}: table {self.table!r} cannot be amended; tables: {', '.join(ROW_KEYS)}")
        want = ROW_KEYS[self.table]
        if set(self.key) != set(want) or any(v is None or str(v) == "" for v in self.key.values()):
            raise InvalidAmendment(f"{where}: a {self.table} row is addressed by {', '.join(want)} (all of them)")
        if self.action not in ACTIONS:
            raise InvalidAmendment(f"{where}: action {self.action!r} is not update or delete")
        if self.action == "update":
            if not self.changes:
                raise InvalidAmendment(f"{where}: an update needs changes (column -> new value)")
            keyed = sorted(set(self.changes) & set(want))
            if keyed:
                raise InvalidAmendment(f"{where}: key column(s) {', '.join(keyed)} cannot be changed; delete the row")
            for column, value in self.changes.items():
                _check_value(self.table, column, value, where)


def _check_value(table: str, column: str, value: Any, where: str) -> None:
    """A new value must parse as its column's kind (a date, a month, a non-negative amount ...)."""
    col = TABLES[table].column(column)
    if col is None or value is None:
        return
    bad = f"{where}: {table}.{column} = {value!r} is not "
    try:
        if col.kind is Kind.DATE:
            pd.Timestamp(str(value)).strftime("%Y-%m-%d")
        elif col.kind is Kind.MONTH and not pd.Series([str(value)]).str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])").all():
            raise ValueError
        elif col.kind in (Kind.AMOUNT, Kind.NUMBER, Kind.LABEL):
            number = float(value)
            if col.kind is Kind.AMOUNT and number < 0:
                raise InvalidAmendment(bad + "a non-negative amount")
    except (ValueError, TypeError):
        raise InvalidAmendment(bad + f"a valid {col.kind.value}") from None


def _key_text(df: pd.DataFrame, cols: tuple[str, ...]) -> pd.Series:
    """The key of each row as one string (dates as YYYY-MM-DD), comparable with an amendment's."""
    parts = []
    for c in cols:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            parts.append(s.dt.strftime("%Y-%m-%d").fillna(""))
        else:
            parts.append(s.astype(str).where(s.notna(), ""))
    out = parts[0]
    for p in parts[1:]:
        out = out + "\x1f" + p
    return out


def _typed(table: str, column: str, values: pd.Series, like: pd.Series | None) -> pd.Series:
    col = TABLES[table].column(column)
    kind = col.kind if col is not None else None
    if kind is Kind.DATE or (like is not None and pd.api.types.is_datetime64_any_dtype(like)):
        return pd.to_datetime(values, errors="coerce")
    if kind in (Kind.AMOUNT, Kind.NUMBER, Kind.LABEL) or (like is not None and pd.api.types.is_numeric_dtype(like)):
        return pd.to_numeric(values, errors="coerce")
    return values.astype(object).where(values.notna(), None)


def apply_amendments(dataset: Dataset, amendments: list[Amendment]) -> tuple[Dataset, list[str]]:
    """The dataset with every amendment applied in order, and notes on those whose row is gone."""
    if not amendments:
        return dataset, []
    tables = dict(dataset.tables)
    notes: list[str] = []
    for name in dict.fromkeys(a.table for a in amendments):
        df = tables.get(name)
        mine = [a for a in amendments if a.table == name]
        cols = ROW_KEYS[name]
        if df is None:
            notes.append(f"{len(mine)} amendment(s) of {name}: the table is not in this load")
            continue
        df = df.copy()
        keys = _key_text(df, cols)
        for a in mine:
            want = "\x1f".join(str(a.key[c]) for c in cols)
            hit = (keys == want).to_numpy()
            if not hit.any():
                notes.append(f"amendment of {name} row {json.dumps(a.key, sort_keys=True)}: no such row in this load")
                continue
            if a.action == "delete":
                df, keys = df[~hit], keys[~hit]
                continue
            for column, value in (a.changes or {}).items():
                like = df.get(column)
                new = _typed(name, column, pd.Series([value]), like).iloc[0]
                if like is None:
                    df[column] = pd.Series(None, index=df.index, dtype=object)
                elif pd.api.types.is_integer_dtype(like) or pd.api.types.is_bool_dtype(like):
                    df[column] = like.astype("float64")
                df.loc[hit, column] = new
        tables[name] = df.reset_index(drop=True)
    return Dataset(tables, dataset.content_hash, list(dataset.skipped) + notes), notes


def stored_amendments(db: ResultsDB) -> list[Amendment]:
    """Every amendment made, oldest first."""
    q = sa.select(amendments_table).order_by(amendments_table.c.id)
    with db.engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        Amendment(r.table_name, json.loads(r.row_key), r.action, json.loads(r.changes) if r.changes else None)
        for r in rows
    ]
