"""Person resolution: which person records are one human, and that human's golden id.

1. Deterministic first: records whose ID numbers pass GB 11643-1999 and are equal in their
   18-digit form (a 15-digit number converted) are one person (`matched_on` = id_number); two
   valid numbers with different check characters were issued apart: two people, never linked.
2. Then the probabilistic model (graph/resolve/model.py), fitted by EM on the data: pairs at or
   above `review_high` merge (`model`); pairs from `review_low` up to it go to the clerical-review
   list, unless an investigator already decided them (`review`: accepted; a rejected pair never
   links, and splits a merge that other links would make: its second record leaves the cluster).
3. Clusters are the connected components of the kept links. A cluster's golden id is its oldest
   member record: the record that was the golden id in the previous run, else one seen in the
   previous run, else the smallest person_id; so golden ids stay put while clusters persist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from graph.codes import positions
from graph.resolve.idnumber import Checked
from graph.resolve.model import PersonModel, prepare

RESOLVED_COLUMNS = ["person_id", "golden_id", "match_probability", "matched_on"]
REVIEW_COLUMNS = ["left", "right", "match_probability"]
DECISIONS = ("accept", "reject")
_KIND_RANK = {"id_number": 0, "review": 1, "model": 2}


@dataclass
class Resolution:
    """The outcome of one resolution."""

    records: pd.DataFrame  # RESOLVED_COLUMNS, one row per person record, sorted by person_id
    links: pd.DataFrame  # left, right, match_probability, matched_on: the links the clusters are made of
    review: pd.DataFrame  # REVIEW_COLUMNS: undecided pairs between the review thresholds
    model_json: dict[str, Any] = field(default_factory=dict)
    prepared: pd.DataFrame | None = None  # the records in the model's form (for registry matching)
    tf_tables: dict[str, pd.DataFrame] | None = None  # the term frequencies the pairs were scored with

    @property
    def golden(self) -> pd.Series:
        """golden_id per person_id."""
        return pd.Series(self.records["golden_id"].to_numpy(), index=self.records["person_id"].to_numpy())

    def counts(self) -> dict[str, int]:
        r = self.records
        return {
            "records": int(len(r)),
            "golden_persons": int(r["golden_id"].nunique()),
            "merged_records": int((r["person_id"] != r["golden_id"]).sum()),
            "links_id_number": int((self.links["matched_on"] == "id_number").sum()),
            "links_model": int((self.links["matched_on"] == "model").sum()),
            "links_review": int((self.links["matched_on"] == "review").sum()),
            "review_pairs": int(len(self.review)),
        }


def prepare_persons(persons: pd.DataFrame, checked: Checked | None = None) -> pd.DataFrame:
    """The persons table in the model's comparable form (`checked`: its ID numbers, checked
    with its birth dates, if the caller already did)."""

    def c(name: str) -> pd.Series | None:
        return persons[name] if name in persons.columns else None

    return prepare(
        persons["person_id"],
        name=c("name"),
        id_number=c("id_number"),
        birth_date=c("birth_date"),
        gender=c("gender"),
        phone=c("phone"),
        address=c("address"),
        checked=checked,
    )


def deterministic_links(recs: pd.DataFrame) -> pd.DataFrame:
    """Links between records sharing a valid 18-digit ID number (each to the group's first)."""
    ok = recs.loc[(recs["id_ok"] == 1) & recs["id18"].notna(), ["unique_id", "id18"]]
    # only numbers held more than once make links: found by hashing in Arrow, then only their
    # records sorted (sorting every record's Python strings took 3.7 s at 1M)
    numbers = pa.array(ok["id18"].to_numpy(dtype=object), pa.string())
    counted = pc.value_counts(numbers)
    repeated = counted.field("values").filter(pc.greater(counted.field("counts"), 1))
    ok = ok[pc.is_in(numbers, value_set=repeated).to_numpy(zero_copy_only=False)]
    ok = ok.sort_values(["id18", "unique_id"], kind="mergesort")
    number, uid = ok["id18"].to_numpy(dtype=object), ok["unique_id"].to_numpy(dtype=object)
    starts = np.ones(len(ok), dtype=bool)
    starts[1:] = number[1:] != number[:-1]
    first = uid[np.maximum.accumulate(np.where(starts, np.arange(len(ok)), 0))]  # each group's first id
    keep = ~starts
    return pd.DataFrame(
        {
            "left": first[keep],
            "right": uid[keep],
            "match_probability": 1.0,
            "matched_on": "id_number",
        }
    )


def issued_apart(recs: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """Pairs whose two ID numbers both pass GB 11643-1999 and differ in their check character.

    No typo of the first 17 digits keeps a number valid and changes its check character, and a
    typo of the check character fails the number: the two were issued apart, so the records are
    two people (twins, a parent and a child) whatever else they share. Such pairs never link."""
    if pairs.empty:
        return np.zeros(0, dtype=bool)
    info = recs.set_index("unique_id")
    ok = info["id_ok"].reindex(pairs["left"]).to_numpy() == 1
    ok &= info["id_ok"].reindex(pairs["right"]).to_numpy() == 1
    left = info["id18"].reindex(pairs["left"]).fillna("").str.slice(-1).to_numpy()
    right = info["id18"].reindex(pairs["right"]).fillna("").str.slice(-1).to_numpy()
    return np.asarray(ok & (left != right), dtype=bool)


def _pair_index(df: pd.DataFrame) -> pd.MultiIndex:
    a, b = df["left"].astype("str").to_numpy(), df["right"].astype("str").to_numpy()
    return pd.MultiIndex.from_arrays([np.minimum(a, b), np.maximum(a, b)])


def resolve_persons(
    persons: pd.DataFrame,
    *,
    temp_dir: Path,
    review_low: float = 0.5,
    review_high: float = 0.95,
    previous: pd.Series | None = None,
    decisions: pd.DataFrame | None = None,
    frozen: dict[str, Any] | None = None,
    frozen_tf: dict[str, pd.DataFrame] | None = None,
    prior_from_data: bool = False,
    keep_tf: bool = True,
    checked: Checked | None = None,
    threads: int = 2,
    memory_limit: str = "4GB",
) -> Resolution:
    """Resolve the persons table (see the module docstring). `previous`: golden_id per person_id of
    the previous run; `decisions`: left, right, decision (accept | reject) from clerical review;
    `frozen` / `frozen_tf`: a fitted model's JSON and term frequencies to reuse instead of fitting
    (without `frozen_tf` the term frequencies are the data's own); `prior_from_data`: with
    `frozen`, estimate the prior on these records (PersonModel); `keep_tf`: return the term
    frequencies (`tf_tables`, for `resolve_incremental`; computing them again costs time);
    `checked`: the persons' ID numbers already checked with their birth dates."""
    if not 0 <= review_low <= review_high <= 1:
        raise ValueError("resolve_review_low must not exceed resolve_review_high (both within 0..1)")
    recs = prepare_persons(persons, checked)
    tf: dict[str, pd.DataFrame] | None = frozen_tf
    if len(recs) >= 2:
        kw: dict[str, Any] = dict(
            threads=threads,
            memory_limit=memory_limit,
            frozen=frozen,
            tf_tables=frozen_tf,
            prior_from_data=prior_from_data,
        )
        with PersonModel(temp_dir=temp_dir, **kw) as model:
            model.fit(recs)
            pred = model.predict(recs, review_low)
            model_json = model.model_json_
            tf = model.term_frequencies(recs) if keep_tf else frozen_tf
    else:
        pred, model_json = pd.DataFrame(columns=REVIEW_COLUMNS), frozen or {}
    out = _conclude(recs, pred, review_low, review_high, previous, decisions)
    out.model_json, out.tf_tables = model_json, tf
    return out


def resolve_incremental(
    base: Resolution,
    new_persons: pd.DataFrame,
    *,
    temp_dir: Path,
    review_low: float = 0.5,
    review_high: float = 0.95,
    decisions: pd.DataFrame | None = None,
    threads: int = 2,
    memory_limit: str = "4GB",
) -> Resolution:
    """Add `new_persons` to an already resolved `base` with its frozen model and term
    frequencies: only pairs with a new record are scored (new against base, new among
    themselves); the base's own pairs are kept. The clusters are those of a full re-run with the
    same frozen parameters (`resolve_persons(..., frozen=, frozen_tf=)`)."""
    if base.prepared is None or base.tf_tables is None:
        raise ValueError("the base resolution has no prepared records or term frequencies to build on")
    new = prepare_persons(new_persons)
    recs = pd.concat([base.prepared, new], ignore_index=True)
    kw: dict[str, Any] = dict(
        threads=threads, memory_limit=memory_limit, frozen=base.model_json, tf_tables=base.tf_tables
    )
    with PersonModel(temp_dir=temp_dir, **kw) as model:
        model.fit(recs)
        pred = pd.concat(
            [model.predict_between(base.prepared, new, review_low), model.predict_within(new, review_low)],
            ignore_index=True,
        )
    kept = base.links[base.links["matched_on"] != "id_number"][["left", "right", "match_probability"]]
    on_review = base.review[["left", "right", "match_probability"]]
    pred = pd.concat([kept, on_review, pred], ignore_index=True).drop_duplicates(["left", "right"])
    out = _conclude(recs, pred, review_low, review_high, base.golden, decisions)
    out.model_json, out.tf_tables = base.model_json, base.tf_tables
    return out


def _conclude(
    recs: pd.DataFrame,
    pred: pd.DataFrame,
    review_low: float,
    review_high: float,
    previous: pd.Series | None,
    decisions: pd.DataFrame | None,
) -> Resolution:
    """Links, review list, clusters and golden ids from the scored pairs."""
    det = deterministic_links(recs)
    pred = pred[~issued_apart(recs, pred)].assign(matched_on="model")
    auto = pred[pred["match_probability"] >= review_high]
    middle = pred[pred["match_probability"] < review_high]
    accepted, rejected = _decisions(decisions)
    middle_idx = _pair_index(middle)
    acc = middle[middle_idx.isin(accepted)].assign(matched_on="review")
    links = pd.concat([det, auto, acc], ignore_index=True)
    links = links[~_pair_index(links).isin(rejected)] if len(links) else links
    decided = accepted.union(rejected)
    review = middle[~middle_idx.isin(decided)][REVIEW_COLUMNS]
    ids = recs["unique_id"].to_numpy(dtype=object)
    labels = _components(ids, links)
    labels = _split_rejected(ids, labels, links, rejected)
    records = _golden(ids, labels, links, previous)
    same = records.set_index("person_id")["golden_id"]
    if len(review):
        review = review[same.reindex(review["left"]).to_numpy() != same.reindex(review["right"]).to_numpy()]
    return Resolution(
        records=records,
        links=links.reset_index(drop=True),
        review=review.sort_values(
            ["match_probability", "left", "right"], ascending=[False, True, True], kind="mergesort"
        ).reset_index(drop=True),
        prepared=recs,
    )


def _decisions(decisions: pd.DataFrame | None) -> tuple[pd.MultiIndex, pd.MultiIndex]:
    empty = pd.MultiIndex.from_arrays([[], []])
    if decisions is None or decisions.empty:
        return empty, empty
    d = decisions.drop_duplicates(["left", "right"], keep="last")
    acc, rej = d[d["decision"] == "accept"], d[d["decision"] == "reject"]
    return (_pair_index(acc) if len(acc) else empty), (_pair_index(rej) if len(rej) else empty)


def _components(ids: np.ndarray, links: pd.DataFrame) -> np.ndarray:
    n = len(ids)
    code = pd.Index(ids)
    a = code.get_indexer(links["left"].to_numpy(dtype=object))
    b = code.get_indexer(links["right"].to_numpy(dtype=object))
    ok = (a >= 0) & (b >= 0)
    g = coo_matrix((np.ones(int(ok.sum())), (a[ok], b[ok])), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    return np.asarray(labels)


def _split_rejected(ids: np.ndarray, labels: np.ndarray, links: pd.DataFrame, rejected: pd.MultiIndex) -> np.ndarray:
    """A rejected pair that other links still join: its second record leaves the cluster."""
    if not len(rejected):
        return labels
    code = pd.Index(ids)
    left = code.get_indexer(rejected.get_level_values(0))
    right = code.get_indexer(rejected.get_level_values(1))
    ok = (left >= 0) & (right >= 0)
    joined = ok & (labels[np.where(ok, left, 0)] == labels[np.where(ok, right, 0)])
    if not joined.any():
        return labels
    out = labels.copy()
    leave = right[joined]
    out[leave] = labels.max() + 1 + np.arange(len(leave))
    return out


def _members(values: pa.Array, of: np.ndarray) -> np.ndarray:
    """Whether each of `values` is one of `of`, by Arrow's hash set: Series.isin on Arrow strings
    boxes every one of `of` in Python (8-9 s per lookup of a million previous ids)."""
    return pc.is_in(values, value_set=pa.array(of, type=values.type)).to_numpy(zero_copy_only=False)


def _golden(ids: np.ndarray, labels: np.ndarray, links: pd.DataFrame, previous: pd.Series | None) -> pd.DataFrame:
    """Golden id per record (the cluster's oldest member), its best link and the link's kind.

    Worked on integer positions: `rank` orders the record ids as text (Arrow's stable sort), so
    every sort below is an integer lexsort; ties keep the input order, as stable sorts would."""
    names = np.asarray(ids, dtype=object)
    text = pa.array(names, type=pa.large_string())
    by_id = pc.sort_indices(text).to_numpy()
    rank = np.empty(len(names), dtype=np.int64)
    rank[by_id] = np.arange(len(names))
    if previous is not None and len(previous):
        was_golden = _members(text, previous.to_numpy(dtype=object))
        seen = _members(text, previous.index.to_numpy(dtype=object))
        age = np.where(was_golden, 0, np.where(seen, 1, 2))
    else:
        age = np.full(len(names), 2)
    # the oldest member of each cluster: the first by (cluster, age, id)
    by_cluster = np.lexsort((rank, age, labels))
    first = np.ones(len(by_cluster), dtype=bool)
    first[1:] = labels[by_cluster[1:]] != labels[by_cluster[:-1]]
    cluster_codes, cluster_of = np.unique(labels, return_inverse=True)
    oldest = np.empty(len(cluster_codes), dtype=np.int64)
    oldest[cluster_of[by_cluster[first]]] = by_cluster[first]
    # each record's strongest incident link that stayed inside its cluster: the first by kind,
    # then by probability (highest first; an unknown kind or a missing probability last)
    at = pd.Index(names)
    left, right = positions(at, links["left"]), positions(at, links["right"])
    end, other = np.concatenate([left, right]), np.concatenate([right, left])
    prob = np.tile(links["match_probability"].to_numpy(dtype=np.float64), 2)
    kind = np.tile(links["matched_on"].to_numpy(dtype=object), 2)
    kind_rank = pd.Series(kind, dtype=object).map(_KIND_RANK).to_numpy(dtype=np.float64)
    inside = np.flatnonzero((end >= 0) & (other >= 0) & (labels[end] == labels[np.maximum(other, 0)]))
    order = inside[
        np.lexsort(
            (
                np.where(np.isnan(prob[inside]), np.inf, -prob[inside]),
                np.where(np.isnan(kind_rank[inside]), np.inf, kind_rank[inside]),
                end[inside],
            )
        )
    ]
    best = order[np.r_[True, end[order[1:]] != end[order[:-1]]]] if len(order) else order
    match_probability = np.full(len(names), np.nan)
    matched_on = np.full(len(names), "", dtype=object)
    match_probability[end[best]] = prob[best]
    matched_on[end[best]] = kind[best]
    return pd.DataFrame(
        {
            "person_id": pd.array(text.take(by_id), dtype="str"),
            "golden_id": pd.array(text.take(oldest[cluster_of][by_id]), dtype="str"),
            "match_probability": match_probability[by_id],
            "matched_on": matched_on[by_id],
        }
    )[RESOLVED_COLUMNS]
