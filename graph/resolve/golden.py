"""The golden dataset: the same tables with one person row per human.

Features, rules, rings and scoring run on it, so a human with two records is one node with both
histories. Every table's person reference becomes the golden id (its records' own ids are kept in
`source_person_id` of the event tables, so the rules can tell two pensions of one human apart);
labels naming either record count for the golden person (1 wins over 0). The golden person row is
its oldest record's row, its empty fields filled from the other records; its death_date is the
earliest of the records' death dates and of the deaths registry rows matched to any of them, so
the after-death rules see a registry death once per golden person. Registry rows gain the golden
`person_id` they matched (empty when none) and their `match_probability`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graph.codes import positions
from graph.contract import REGISTRY_TABLES
from graph.dataset import Dataset

# event tables whose person_id is remapped (their records' ids kept in SOURCE_COLUMN)
PERSON_TABLES = ("employment", "contributions", "benefits", "visits", "purchases")
SOURCE_COLUMN = "source_person_id"


def golden_dataset(dataset: Dataset, golden: pd.Series, matches: pd.DataFrame | None = None) -> Dataset:
    """`dataset` with persons resolved: `golden` maps every person_id to its golden_id; `matches`
    (graph/resolve/registry.py) links registry rows to person records."""
    tables = dict(dataset.tables)
    alone = bool((golden.index.to_numpy() == golden.to_numpy()).all())
    if "persons" not in tables or golden.empty or (alone and (matches is None or matches.empty)):
        return dataset  # every record its own person and no registry match: nothing to resolve
    persons = tables["persons"]
    keys, values = golden.index.to_numpy(dtype=object), golden.to_numpy(dtype=object)
    moved = values != keys  # only merged records change their id
    mapping = pd.Series(values[moved], index=pd.Index(keys[moved], dtype=object))
    when = None
    if matches is not None and not matches.empty and dataset.has("deaths"):
        d = matches[matches["table"] == "deaths"]
        reg = dataset.table("deaths").set_index("registry_id")["death_date"]
        when = pd.Series(reg.reindex(d["registry_id"]).to_numpy(), index=golden.reindex(d["person_id"]).to_numpy())
        when = when.groupby(level=0).min()
    tables["persons"] = _golden_persons(persons, _remap(persons["person_id"], mapping), when)
    for name in PERSON_TABLES:
        if name in tables and len(tables[name]):
            df = tables[name]
            tables[name] = df.assign(**{SOURCE_COLUMN: df["person_id"], "person_id": _remap(df["person_id"], mapping)})
    if "agency_links" in tables:
        df = tables["agency_links"]
        person = df["entity_type"] == "person"
        ids = df["entity_id"].where(~person, _remap(df["entity_id"], mapping))
        tables["agency_links"] = df.assign(entity_id=ids).drop_duplicates(ignore_index=True)
    if "labels" in tables:
        df = tables["labels"]
        person = df["entity_type"] == "person"
        ids = df["entity_id"].where(~person, _remap(df["entity_id"], mapping))
        df = df.assign(entity_id=ids).sort_values(["entity_type", "entity_id", "label"], ascending=[True, True, False])
        tables["labels"] = df.drop_duplicates(["entity_type", "entity_id"]).reset_index(drop=True)
    for name in REGISTRY_TABLES:
        if name in tables:
            tables[name] = with_matches(tables[name], name, matches, golden)
    return Dataset(tables, dataset.content_hash, list(dataset.skipped))


def _golden_persons(persons: pd.DataFrame, gid: pd.Series, when: pd.Series | None) -> pd.DataFrame:
    """One row per golden id (`gid`: each record's), sorted by it: the golden record's row with
    its empty fields filled from the group's other records, the earliest death date of the group
    and of `when` (registry deaths by golden id). Persons sorted by id (as loaded) take a short
    cut: only the groups of two or more records are merged, the other rows are kept as they are."""
    pid = persons["person_id"]
    if not (pid.is_monotonic_increasing and pid.is_unique):
        return _merged_records(persons, gid, when)
    merged_away = (gid.to_numpy(dtype=object) != pid.to_numpy(dtype=object)) & gid.notna().to_numpy()
    groups = pd.Index(gid[merged_away].unique())
    touched = positions(groups, gid) >= 0
    rows = np.flatnonzero(~merged_away)  # golden rows and records alone, in id order = golden id order
    group_rows = _merged_records(persons[touched], gid[touched], None)  # sorted by golden id
    golden_row = touched[rows]  # each group's golden record, in the same order as its merged row
    if int(golden_row.sum()) != len(group_rows):  # a golden id no record has: the long way
        return _merged_records(persons, gid, when)
    rows[golden_row] = len(persons) + np.arange(len(group_rows))
    kept = pd.concat([persons, group_rows], ignore_index=True).take(rows)
    if when is not None and "death_date" in kept.columns:
        registry = when.reindex(kept["person_id"].to_numpy()).astype("datetime64[ns]").to_numpy()
        own = kept["death_date"].astype("datetime64[ns]").to_numpy()
        earliest = np.where(np.isnat(own) | (registry < own), registry, own)
        kept = kept.assign(death_date=pd.Series(earliest, index=kept.index).astype(persons["death_date"].dtype))
    return kept.reset_index(drop=True)


def _merged_records(persons: pd.DataFrame, gid: pd.Series, when: pd.Series | None) -> pd.DataFrame:
    """`_golden_persons` the long way: every group through a sort and a groupby."""
    is_golden = (gid.to_numpy() == persons["person_id"].to_numpy()).astype(np.int8)
    ordered = persons.assign(_g=gid.to_numpy(), _first=-is_golden).sort_values(["_g", "_first"], kind="mergesort")
    merged = ordered.groupby("_g", sort=True).first()
    death = ordered.groupby("_g", sort=True)["death_date"].min() if "death_date" in persons.columns else None
    if when is not None:
        death = when if death is None else pd.concat([death, when]).groupby(level=0).min()
    if death is not None:
        merged["death_date"] = death.reindex(merged.index).astype("datetime64[ns]")
    merged = merged.drop(columns=["person_id", "_first"]).rename_axis("person_id").reset_index()
    return merged[list(persons.columns)].astype(persons.dtypes.to_dict()).reset_index(drop=True)


def with_matches(df: pd.DataFrame, table: str, matches: pd.DataFrame | None, golden: pd.Series) -> pd.DataFrame:
    """A registry table with the golden `person_id` each row matched (None when unmatched)."""
    m = matches[matches["table"] == table] if matches is not None and not matches.empty else None
    if m is None or m.empty:
        return df.assign(person_id=pd.Series([None] * len(df), dtype="object"), match_probability=np.nan)
    by_id = m.set_index("registry_id")
    person = golden.reindex(by_id["person_id"].reindex(df["registry_id"]).to_numpy()).to_numpy()
    prob = by_id["match_probability"].reindex(df["registry_id"]).to_numpy(dtype=np.float64)
    return df.assign(person_id=person, match_probability=prob)


def _remap(ids: pd.Series, mapping: pd.Series) -> pd.Series:
    """`ids` with every merged record's id replaced by its golden id. Arrow-backed text stays
    Arrow (a lookup in C++, no Python string per row: the event tables hold millions of rows)."""
    if isinstance(ids.array, pd.arrays.ArrowStringArray):
        arr = pa.array(ids)
        at = pc.index_in(arr, value_set=pa.array(mapping.index.to_numpy(dtype=object), type=arr.type))
        golden = pc.take(pa.array(mapping.to_numpy(dtype=object), type=arr.type), at)
        out = pc.if_else(pc.is_valid(at), golden, arr)
        return pd.Series(out.to_pandas(types_mapper={arr.type: ids.dtype}.get), index=ids.index)
    values = ids.to_numpy(dtype=object).copy()
    pos = mapping.index.get_indexer(values)
    hit = pos >= 0
    values[hit] = mapping.to_numpy(dtype=object)[pos[hit]]
    return pd.Series(values, index=ids.index, dtype=object)
