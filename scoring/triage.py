"""Triage order: which entities an inspector should see first (docs/triage.md).

Per entity type, `priority` 1 is the first row of the default risk list:
1. entities with a hit of a serious-discredit rule (they are capped to D);
2. then the other entities whose grade a rule capped;
3. then everyone else;
within each tier by expected loss, risk x money at stake. An entity whose money at stake is
unknown counts with the type's median known amount, so among such entities the order is by risk
and a known large amount moves an entity up. Ties: higher risk, then entity id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.dataset import Dataset


def amount_at_stake(dataset: Dataset, money: pd.DataFrame, entity_type: str, ids: pd.Index) -> pd.Series:
    """Money at stake per entity (NaN where nothing is known): the amounts in the records of
    its rule hits and of hits on events at it (a clinic's flagged visits), each event counted
    once; for employers also the contributions in arrears (due minus paid, all months)."""
    m = money[money["entity_type"] == entity_type] if len(money) else money
    if entity_type == "employer":
        m = m[~m["record"].str.startswith("month:")]  # arrears months: counted from contributions
    total = m.groupby("entity_id")["amount"].sum() if len(m) else pd.Series(dtype=float)
    out = total.reindex(ids).astype(float)
    if entity_type == "employer" and dataset.has("contributions"):
        c = dataset.table("contributions")
        if "due" in c and "paid" in c:
            short = (c["due"].astype(float) - c["paid"].astype(float)).clip(lower=0)
            arrears = short.groupby(c["employer_id"].astype(str)).sum()
            arrears = arrears[arrears > 0].reindex(ids)
            out = out.add(arrears, fill_value=0) if len(arrears) else out
            out = out.reindex(ids)
    return out.round(2)


def priority(
    table: pd.DataFrame, hits: pd.DataFrame, serious: set[str] | frozenset[str], amount: pd.Series
) -> np.ndarray:
    """1-based triage rank of each row of one type's score table (see module doc)."""
    ids = table["entity_id"].astype(str).to_numpy()
    h = hits[hits["rule_id"].isin(serious)] if len(hits) and serious else hits.iloc[0:0]
    serious_ids = h.loc[h["entity_type"] == table["entity_type"].iloc[0], "entity_id"].astype(str) if len(h) else []
    is_serious = pd.Index(ids).isin(serious_ids)
    capped = (table["grade"].to_numpy() != table["score_grade"].to_numpy()) | (
        table["grade_cap"].fillna("").to_numpy() != ""
    )
    tier = np.where(is_serious, 0, np.where(capped, 1, 2))
    money = amount.reindex(pd.Index(ids)).to_numpy(dtype=float)
    known = money[np.isfinite(money) & (money > 0)]
    typical = float(np.median(known)) if len(known) else 1.0
    exposure = np.where(np.isfinite(money) & (money > 0), money, typical)
    risk = table["risk_score"].to_numpy(dtype=float)
    loss = risk * exposure
    order = np.lexsort((ids, -risk, -loss, tier))  # last key sorts first
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(1, len(ids) + 1)
    return rank
