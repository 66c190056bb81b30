"""Training labels from two sources, and the one point-in-time mechanism: a label's `as_of`.

- `merge_labels`: the dataset's labels.csv and the decided cases (composer/cases.py
  `case_labels`: confirmed 1, dismissed 0, as_of the decision's date). Where both speak of one
  entity, the later-dated wins (a case wins a tie: it is the newer record); where they disagree,
  the conflict is listed.
- `cut_at`: the dataset as it stood on a day: events dated after it removed, spells still open
  then, deaths not yet known. A label's training row is built from the dataset cut at its
  `as_of`, so nothing after the decision leaks into what the model learns from it
  (`training_rows`). A label whose as_of is on or after the data's last day needs no cut.
  The governance work (out-of-time validation) reuses the same `as_of` and `cut_at`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from features.attributes import reference_date
from graph.dataset import Dataset
from riskgraph.forked import Forked, timed

log = logging.getLogger("composer.labels")

LABEL_COLUMNS = ["entity_type", "entity_id", "label", "as_of"]
PROVENANCE_COLUMNS = LABEL_COLUMNS + ["source", "case_id", "decided_by"]
CONFLICT_COLUMNS = [
    "entity_type",
    "entity_id",
    "file_label",
    "file_as_of",
    "case_label",
    "case_as_of",
    "case_id",
    "kept",
]
# (table, date column, how a later value is cut): "drop" the row, or "clear" the value
DATED = (
    ("visits", "date", "drop"),
    ("purchases", "date", "drop"),
    ("employment", "start_date", "drop"),
    ("employment", "end_date", "clear"),
    ("agency_links", "start_date", "drop"),
    ("persons", "death_date", "clear"),
    ("deaths", "death_date", "drop"),
    ("custody", "start_date", "drop"),
    ("custody", "end_date", "clear"),
    ("visits", "discharge_date", "clear"),
)
MONTHLY = ("contributions", "benefits")  # month YYYY-MM: months after the day's month go


def merge_labels(file_labels: pd.DataFrame, case_labels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(labels with provenance, conflicts): every entity labelled once, the later-dated source
    winning (PROVENANCE_COLUMNS, CONFLICT_COLUMNS)."""
    f = file_labels[LABEL_COLUMNS].copy() if len(file_labels) else pd.DataFrame(columns=LABEL_COLUMNS)
    f = f.assign(
        entity_id=f["entity_id"].astype(str),
        as_of=pd.to_datetime(f["as_of"], errors="coerce"),
        source="labels.csv",
        case_id=None,
        decided_by=None,
    )
    f = f.drop_duplicates(["entity_type", "entity_id"], keep="last")
    c = case_labels.copy() if len(case_labels) else pd.DataFrame(columns=PROVENANCE_COLUMNS)
    c = c.assign(entity_id=c["entity_id"].astype(str), as_of=pd.to_datetime(c["as_of"], errors="coerce"))[
        PROVENANCE_COLUMNS
    ]
    key = ["entity_type", "entity_id"]
    both = f.merge(c, on=key, how="inner", suffixes=("_f", "_c"))
    case_wins = both["as_of_f"].isna() | (both["as_of_c"] >= both["as_of_f"])
    conflicts = both[both["label_f"].astype(int) != both["label_c"].astype(int)]
    conflicts = pd.DataFrame(
        {
            "entity_type": conflicts["entity_type"],
            "entity_id": conflicts["entity_id"],
            "file_label": conflicts["label_f"].astype(int),
            "file_as_of": conflicts["as_of_f"].dt.strftime("%Y-%m-%d"),
            "case_label": conflicts["label_c"].astype(int),
            "case_as_of": conflicts["as_of_c"].dt.strftime("%Y-%m-%d"),
            "case_id": conflicts["case_id_c"],
            "kept": np.where(case_wins[conflicts.index], "case", "labels.csv"),
        }
    ).reset_index(drop=True)
    lose_file = both.loc[case_wins, key]
    lose_case = both.loc[~case_wins, key]
    f = f.merge(lose_file.assign(_x=1), on=key, how="left")
    c = c.merge(lose_case.assign(_x=1), on=key, how="left")
    merged = pd.concat([f[f["_x"].isna()], c[c["_x"].isna()]], ignore_index=True).drop(columns="_x")
    merged = merged.assign(label=merged["label"].astype(int)).sort_values(key, kind="mergesort")
    return merged[PROVENANCE_COLUMNS].reset_index(drop=True), conflicts[CONFLICT_COLUMNS]


def with_labels(dataset: Dataset, labels: pd.DataFrame) -> Dataset:
    """The dataset with its labels table replaced (contract columns). A label dated after the
    data's last day holds for that day: the dataset's 'today' (features/attributes.py
    `reference_date`) never moves because an investigator decided a case later."""
    without = Dataset({k: v for k, v in dataset.tables.items() if k != "labels"})
    end = reference_date(without)
    table = labels[LABEL_COLUMNS].copy()
    table["as_of"] = pd.to_datetime(table["as_of"], errors="coerce")
    if end is not None:
        table["as_of"] = table["as_of"].where(table["as_of"].isna() | (table["as_of"] <= end), end)
    table["label"] = table["label"].astype("int64")
    loaded = dataset.tables.get("labels")
    if loaded is not None:  # the loaded table's column types (e.g. Arrow strings) stay
        table = table.astype({c: loaded[c].dtype for c in LABEL_COLUMNS if c in loaded and c != "as_of"})
    return Dataset(
        {**dataset.tables, "labels": table.reset_index(drop=True)}, dataset.content_hash, list(dataset.skipped)
    )


def cut_at(dataset: Dataset, day: pd.Timestamp) -> Dataset:
    """The dataset as it stood at the end of `day`: later events removed, later end dates and
    death dates not yet known, later labels left out (and, as in `with_labels`, none dated
    after the cut data's last event)."""
    tables = dict(dataset.tables)
    for name, col, how in DATED:
        df = tables.get(name)
        if df is None or col not in df:
            continue
        after = pd.to_datetime(df[col], errors="coerce") > day
        if not after.any():
            continue
        if how == "drop":
            tables[name] = df[~after.to_numpy()].reset_index(drop=True)
        else:
            df = df.copy()
            df.loc[after, col] = pd.NaT
            tables[name] = df
    month = f"{day:%Y-%m}"
    for name in MONTHLY:
        df = tables.get(name)
        if df is not None and "month" in df:
            tables[name] = df[(df["month"].astype(str) <= month).to_numpy()].reset_index(drop=True)
    labels = tables.pop("labels", None)
    cut = Dataset(tables, f"{dataset.content_hash}@{day:%Y-%m-%d}", list(dataset.skipped))
    if labels is None or not len(labels):
        return cut
    as_of = pd.to_datetime(labels["as_of"], errors="coerce")
    return with_labels(cut, labels[(as_of.isna() | (as_of <= day)).to_numpy()])


def cut_days(labels: pd.DataFrame, end: pd.Timestamp | None, max_cuts: int) -> pd.Series:
    """Per label row: the day its training row is cut at (NaT: no cut, its as_of is on or after
    the data's last day, or unknown). Beyond `max_cuts` distinct days, days go back to the end
    of the month before (never later than the as_of: still nothing after the decision)."""
    as_of = pd.to_datetime(labels["as_of"], errors="coerce")
    if end is None:
        return pd.Series(pd.NaT, index=labels.index)
    day = as_of.where(as_of < end)
    if day.nunique() > max_cuts:
        day = day.dt.to_period("M").dt.start_time - pd.Timedelta(days=1)
    return day


def training_rows(
    dataset: Dataset,
    labels: pd.DataFrame,
    matrices_at: Callable[[Dataset], dict[str, pd.DataFrame]],
    max_cuts: int,
    lanes: int = 1,
    worker_seconds: dict[str, float] | None = None,
) -> dict[str, pd.DataFrame]:
    """Per entity type: the model-matrix rows of the labelled entities whose as_of comes before
    the data's last day, each built by `matrices_at` from the dataset cut at its day.

    With `lanes` > 1 the cut days are shared out (every lanes-th day) between this process and
    forked workers, each returning only its labelled rows; the result is the same, in day order.
    The workers' wall seconds go to `worker_seconds["cuts"]` (what ran beside the stages)."""
    end = reference_date(Dataset({k: v for k, v in dataset.tables.items() if k != "labels"}))
    days = cut_days(labels, end, max_cuts)
    ordered = [pd.Timestamp(d) for d in sorted(days.dropna().unique())]
    shares = [ordered[k::lanes] for k in range(min(max(lanes, 1), len(ordered)))]
    workers = [
        Forked(timed(_rows_on_days), dataset, labels, days, share, matrices_at, name="training cuts")
        for share in shares[1:]
    ]
    try:
        by_day = _rows_on_days(dataset, labels, days, shares[0] if shares else [], matrices_at, len(ordered))
        for worker in workers:
            rows, seconds = worker.result()
            by_day |= rows
            log.info("training rows: %d cut days built by a worker in %.1fs", len(rows), seconds)
            if worker_seconds is not None:
                worker_seconds["cuts"] = worker_seconds.get("cuts", 0.0) + seconds
    finally:
        for worker in workers:
            worker.cancel()
    out: dict[str, list[pd.DataFrame]] = {}
    for day in ordered:
        for t, rows in by_day[day].items():
            out.setdefault(t, []).append(rows)
    return {t: pd.concat(parts) for t, parts in out.items()}


def _rows_on_days(
    dataset: Dataset,
    labels: pd.DataFrame,
    days: pd.Series,
    share: list[pd.Timestamp],
    matrices_at: Callable[[Dataset], dict[str, pd.DataFrame]],
    of: int | None = None,
) -> dict[pd.Timestamp, dict[str, pd.DataFrame]]:
    """Per cut day of `share`: per type, the matrix rows of the labels cut at that day. With `of`
    (all the run's cut days), each day is logged as it is built (workers log nothing: a forked
    child must not wait on a logging lock another thread of its parent held)."""
    out: dict[pd.Timestamp, dict[str, pd.DataFrame]] = {}
    for n, day in enumerate(share, 1):
        t0 = time.perf_counter()
        mine = labels[(days == day).to_numpy()]
        matrices = matrices_at(cut_at(dataset, day))
        out[day] = {}
        for t, ids in mine.groupby("entity_type")["entity_id"]:
            X = matrices.get(str(t))
            if X is None:
                continue
            out[day][str(t)] = X.loc[X.index[X.index.isin(ids.astype(str))]]
        if of is not None:
            log.info(
                "training rows: %d labels cut at %s in %.1fs (%d of this lane's %d days; %d in all)",
                len(mine),
                f"{day:%Y-%m-%d}",
                time.perf_counter() - t0,
                n,
                len(share),
                of,
            )
    return out
