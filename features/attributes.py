"""The entity tables' own columns as features, the dataset's reference date, and the naming
rule that keeps input columns and derived features apart."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from graph.codes import ColumnCodes
from graph.contract import ENTITY_TABLE, ID_COLUMN, TABLES, Kind, Level
from graph.dataset import Dataset

MAX_CATEGORIES = 50  # categorical attributes with more levels are dropped (ids in disguise)

# Feature names that later stages add to every entity type's model matrix (graph features in
# features/graph_features.py; rule, ring and label features in scoring/score.py), and the
# prefixes of their families. An input column of such a name is renamed (INPUT_PREFIX), never
# overwritten by, nor overwriting, the derived feature; nor read as one in reasons.
LATER_FEATURE_NAMES = frozenset(
    {
        "entity_id",
        "pagerank",
        "degree",
        "two_hop_paths",
        "rule_hits",
        "rule_severity_max",
        "rule_severity_sum",
        "rings",
        "ring_size_max",
        "labelled_neighbours",
        "labelled_neighbour_share",
        "labelled_2hop_share",
    }
)
LATER_FEATURE_PREFIXES = ("nb_", "rule_", "ring_", "labelled_", "confirmed_fraud_sharing_")
INPUT_PREFIX = "input_"


def reference_date(dataset: Dataset) -> pd.Timestamp | None:
    """The dataset's 'today': its latest event date, so features never depend on the wall clock."""
    dates = []
    for table, col in (("visits", "date"), ("purchases", "date"), ("employment", "start_date"), ("labels", "as_of")):
        if dataset.has(table):
            dates.append(dataset.tables[table][col].max())
    for table in ("contributions", "benefits"):
        if dataset.has(table):
            m = dataset.tables[table]["month"].max()
            if isinstance(m, str):
                dates.append(pd.Timestamp(m + "-01") + pd.offsets.MonthEnd(0))
    dates = [d for d in dates if isinstance(d, pd.Timestamp) and not pd.isna(d)]
    return max(dates) if dates else None


def input_feature_names(columns: list[str], derived: Iterable[str]) -> dict[str, str]:
    """Feature name of each extra input column: its own name, unless a derived feature (`derived`,
    LATER_FEATURE_NAMES) has it or it starts like a derived family (LATER_FEATURE_PREFIXES);
    then INPUT_PREFIX in front, as often as it takes to be free."""
    derived = set(derived)
    taken = derived | LATER_FEATURE_NAMES | set(columns)
    out = {}
    for col in columns:
        name = col
        if name in LATER_FEATURE_NAMES or name in derived or name.startswith(LATER_FEATURE_PREFIXES):
            name = INPUT_PREFIX + name
            while name in taken:
                name = INPUT_PREFIX + name
            taken.add(name)
        out[col] = name
    return out


def attributes(
    dataset: Dataset,
    entity_type: str,
    ref: pd.Timestamp | None,
    index: pd.Index | None = None,
    derived: Iterable[str] = (),
) -> pd.DataFrame:
    """The entity table's own columns as features (personal-level columns and ids excluded).
    `index`, when given, must be the table's id column as an Index (e.g. the projection's ids).
    Extra (non-contract) columns keep their names unless a derived feature has the name: the
    type's other features (`derived`) or those of later stages (see input_feature_names)."""
    table = TABLES[ENTITY_TABLE[entity_type]]
    df = dataset.table(table.name)
    idcol = ID_COLUMN[entity_type]
    if index is None:
        index = pd.Index(df[idcol].to_numpy(dtype=object), name="entity_id")
    out = pd.DataFrame(index=index.rename("entity_id"))
    own = {f"{c.name}_years_ago" for c in table.columns if c.kind == Kind.DATE}
    own |= {"is_dead"} if entity_type == "person" else set()
    extras = [str(c) for c in df.columns if table.column(c) is None]
    names = input_feature_names(extras, set(derived) | own | set(table.column_names))
    for col in df.columns:
        if col == idcol:
            continue
        spec = table.column(col)
        s = df[col].reset_index(drop=True)
        s.index = out.index
        # personal columns (names, id numbers, contact details) are never features; sensitive
        # ones are left out by the caller (`exclude`) unless a setting opts them in
        if spec is not None and (spec.level is Level.PERSONAL or spec.kind == Kind.ID):
            continue
        if pd.api.types.is_datetime64_any_dtype(s):
            if ref is not None and s.notna().any():
                out[f"{col}_years_ago"] = (ref - s).dt.days / 365.25
            continue
        name = col if spec is not None else names[col]
        if pd.api.types.is_numeric_dtype(s):
            out[name] = s.astype(np.float64)
        elif s.nunique() <= MAX_CATEGORIES and s.notna().any():
            out[name] = s.astype("category")
    if entity_type == "person" and "death_date" in df.columns:
        out["is_dead"] = df["death_date"].notna().to_numpy(dtype=np.float64)
        out = out.drop(columns=["death_date_years_ago"], errors="ignore")
    return out


def with_attributes(
    dataset: Dataset, entity_type: str, ref: pd.Timestamp | None, derived: pd.DataFrame, cols: ColumnCodes
) -> pd.DataFrame:
    """The entity table's attributes (first), then the derived features (indexed by the
    projection's ids, i.e. in code order)."""
    if cols.in_id_order(entity_type):
        attrs = attributes(dataset, entity_type, ref, derived.index, derived=derived.columns)
    else:  # a table not sorted by id (never in a Dataset): its rows in code order
        attrs = attributes(dataset, entity_type, ref, derived=derived.columns)
        attrs = attrs.iloc[cols.entity_rows(entity_type)].set_axis(derived.index)
    return pd.concat([attrs, derived], axis=1)


def in_code_order(cols: ColumnCodes, entity_type: str, values: np.ndarray) -> np.ndarray:
    """Values of the entity table's rows (table order) per code of its type (code order)."""
    return values if cols.in_id_order(entity_type) else values[cols.entity_rows(entity_type)]
