"""Reasons: the features that moved an entity's score, in the catalogue's words and schema
(explain/catalogue.py), at most `top` per entity and ordered by impact, whichever way they push.

A template may name the entity's context (`{top_pharmacy}`, `{ring}`, ...): per-entity text the
scorer knows (the pharmacy a clinic's patients buy at, the ring an entity belongs to). Without
it the catalogue's generic wording is used.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from explain.catalogue import Catalogue

if TYPE_CHECKING:
    from scoring.score import EntityScores

MAX_REASONS = 4  # per answer, the grade cap included


def reasons_from_contributions(
    contrib: pd.DataFrame,
    X: pd.DataFrame,
    catalogue: Catalogue,
    top: int = MAX_REASONS,
    *,
    context: pd.DataFrame | None = None,
) -> pd.Series:
    """JSON list of each row's `top` reasons by absolute contribution (raising or lowering risk).

    Features the catalogue will not put in words (protected attributes, missing values) are
    passed over; reasons whose text repeats an earlier one of the same row (two ring features
    naming the same ring) are merged into the first, their contributions added."""
    values = contrib.to_numpy(dtype=float)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, : 3 * top + 4]
    cols = np.asarray(contrib.columns)
    ctx = (
        context.reindex(contrib.index).to_dict("records")
        if context is not None and len(context.columns)
        else [{}] * len(contrib)
    )
    xcols: dict[str, np.ndarray | None] = {}  # a feature's values, taken out of X when first needed

    def value(f: str, i: int) -> object:
        if f not in xcols:
            xcols[f] = X[f].to_numpy(dtype=object) if f in X.columns else None
        column = xcols[f]
        return None if column is None else column[i]

    out = []
    for i, row in enumerate(order):
        items: list[dict[str, Any]] = []
        seen: dict[str, dict[str, Any]] = {}
        for j in row:
            c = float(values[i, j])
            if c == 0 or not np.isfinite(c) or len(items) >= top:
                break
            item = catalogue.reason(str(cols[j]), value(str(cols[j]), i), c, ctx[i])
            if item is None:
                continue
            same = seen.get(item["text"])
            if same is not None and same["direction"] == item["direction"]:
                same["contribution"] = round(same["contribution"] + item["contribution"], 4)
                continue
            seen[item["text"]] = item
            items.append(item)
        out.append(json.dumps(items, ensure_ascii=False))
    return pd.Series(out, index=contrib.index)


def entity_reasons(
    scores: EntityScores, context: pd.DataFrame | None, catalogue: Catalogue, per_entity: int = MAX_REASONS
) -> pd.Series:
    """The reasons column of one type's scores: the explained (riskiest) rows' contributions in
    words, "[]" for the rest; a capped row's first reason is the cap and the rule that set it."""
    table = scores.table
    ids = pd.Index(table["entity_id"])
    per_entity = min(per_entity, MAX_REASONS)
    reasons = pd.Series("[]", index=ids)
    final = pd.Series(table["grade"].to_numpy(), index=ids)
    capped = final != pd.Series(table["score_grade"].to_numpy(), index=ids)
    if scores.contributions is not None and scores.explained_X is not None and len(scores.contributions):
        contrib = scores.contributions
        X = scores.explained_X.reindex(columns=contrib.columns)
        reasons.loc[contrib.index] = reasons_from_contributions(contrib, X, catalogue, per_entity, context=context)
    if capped.any():
        cap = pd.Series(table["grade_cap"].to_numpy(), index=ids)
        cap_rule = scores.cap_rule if scores.cap_rule is not None else pd.Series("", index=ids)
        reasons.loc[capped] = [
            with_cap(r, catalogue.cap_reason(c, rid if isinstance(rid, str) else None))
            for r, c, rid in zip(reasons[capped], cap[capped], cap_rule.reindex(ids)[capped])
        ]
    return reasons


def with_cap(reasons_json: str, cap: dict[str, Any]) -> str:
    """The cap first, then the other reasons (at most MAX_REASONS in all)."""
    items = [r for r in json.loads(reasons_json) if r.get("code") != cap["code"]]
    return json.dumps([cap, *items][:MAX_REASONS], ensure_ascii=False)
