"""Alerts that persist across runs and re-open only on new material risk (docs/cases.md).

Two kinds of alert subject, each keyed so the key survives a re-run:
- a ring: its ring id, carried by lineage (features/rings/lineage.py) even when the ring changes
  type (the typology column shows its current type);
- an entity: (entity_type, entity_id, typology), the typology being its rule hits' family (the
  rule id's prefix: med, ben, emp, agency, any).

Each alert has items: a ring's members and the rules its members hit, an entity's rules. This
run's alerts are compared with the served run's alerts and items (set differences as anti-joins,
no per-alert loops): what changed (new and departed members, new rules, new serious rules, the
score's rise) and whether it is material (`AlertSettings`). The event says what happened:

    new        first seen in this run (raised)
    reopened   seen before, and changed materially, or back after being gone (raised)
    changed    seen before, changed, but nothing material (not raised)
    unchanged  seen before, nothing changed (not raised)
    gone       seen before, absent now (kept so a return re-opens it with its history)

The tables (`alerts`, `alert_items`, `ring_lineage`) are staged with the run's other result
tables and become visible at its one commit.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from features.rings import RingResult
from features.rings.lineage import apply_lineage, inherit_ids
from riskgraph.settings import AlertSettings

ALERT_COLUMNS = [
    "alert_id",
    "subject_type",
    "subject_id",
    "typology",
    "event",
    "raised",
    "score",
    "previous_score",
    "score_rise",
    "n_members",
    "n_rules",
    "new_members",
    "left_members",
    "new_rules",
    "new_serious_rules",
    "first_seen",
    "last_seen",
    "raised_at",
    "first_run",
    "last_run",
]
ITEM_COLUMNS = ["alert_id", "kind", "item", "serious"]
RAISED_EVENTS = ("new", "reopened")
EVENTS = ("new", "reopened", "changed", "unchanged", "gone")


def alert_id(subject_type: str, subject_id: str, typology: str) -> str:
    """The stable id of an alert key."""
    return "AL-" + hashlib.sha1(f"{subject_type}\x1f{subject_id}\x1f{typology}".encode()).hexdigest()[:16]


def _alert_ids(subject_type: pd.Series, subject_id: pd.Series, typology: pd.Series) -> np.ndarray:
    keys = (subject_type.astype(str) + "\x1f" + subject_id.astype(str) + "\x1f" + typology.astype(str)).tolist()
    return np.array(["AL-" + hashlib.sha1(k.encode()).hexdigest()[:16] for k in keys], dtype=object)


def rule_typology(rule_id: pd.Series) -> pd.Series:
    """An entity alert's typology: the rule family, the rule id's prefix (med_..., ben_...)."""
    return rule_id.astype(str).str.split("_", n=1).str[0]


def carry_ring_ids(
    result: RingResult, previous_members: pd.DataFrame | None, s: AlertSettings
) -> tuple[RingResult, pd.DataFrame]:
    """The rings with the ids they inherit from the earlier run's rings, and the lineage table."""
    lineage = inherit_ids(result.members, previous_members, s.lineage_min_jaccard)
    return apply_lineage(result, lineage), lineage


def current_subjects(
    rings: RingResult, hits: pd.DataFrame, scores: pd.DataFrame, serious_rules: set[str], s: AlertSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This run's alert subjects (alert_id, subject_type, subject_id, typology, score) and their
    items (ITEM_COLUMNS)."""
    h = hits[hits["severity"].astype(int) >= s.min_severity][["rule_id", "entity_type", "entity_id", "severity"]]
    h = h.assign(
        serious=h["rule_id"].isin(serious_rules) | (h["severity"].astype(int) >= s.serious_min_severity),
        entity_id=h["entity_id"].astype(str),
    )
    # entity alerts
    ent = h.assign(typology=rule_typology(h["rule_id"]))
    ent_keys = ent[["entity_type", "entity_id", "typology"]].drop_duplicates()
    ent_keys = ent_keys.assign(
        alert_id=_alert_ids(ent_keys["entity_type"], ent_keys["entity_id"], ent_keys["typology"])
    )
    risk = scores[["entity_type", "entity_id", "risk_score"]].assign(entity_id=scores["entity_id"].astype(str))
    ent_keys = ent_keys.merge(risk, on=["entity_type", "entity_id"], how="left")
    ent_subjects = pd.DataFrame(
        {
            "alert_id": ent_keys["alert_id"],
            "subject_type": ent_keys["entity_type"],
            "subject_id": ent_keys["entity_id"],
            "typology": ent_keys["typology"],
            "score": ent_keys["risk_score"].astype("float64").fillna(0.0),
        }
    )
    ent_items = ent.merge(
        ent_keys[["entity_type", "entity_id", "typology", "alert_id"]], on=["entity_type", "entity_id", "typology"]
    )
    ent_items = ent_items.groupby(["alert_id", "rule_id"], as_index=False)["serious"].max()
    ent_items = ent_items.rename(columns={"rule_id": "item"}).assign(kind="rule")
    # ring alerts
    r = rings.rings[["ring_id", "ring_type", "ring_score"]]
    ring_subjects = pd.DataFrame(
        {
            "alert_id": _alert_ids(pd.Series("ring", index=r.index), r["ring_id"], pd.Series("ring", index=r.index)),
            "subject_type": "ring",
            "subject_id": r["ring_id"].astype(str),
            "typology": r["ring_type"].astype(str),
            "score": r["ring_score"].astype("float64"),
        }
    )
    ids = ring_subjects.set_index("subject_id")["alert_id"]
    m = rings.members
    member_items = pd.DataFrame(
        {
            "alert_id": m["ring_id"].map(ids).to_numpy(),
            "kind": "member",
            "item": (m["entity_type"] + ":" + m["entity_id"].astype(str)).to_numpy(),
            "serious": False,
        }
    )
    ring_rules = m[["ring_id", "entity_type", "entity_id"]].merge(h, on=["entity_type", "entity_id"])
    ring_rules = ring_rules.groupby(["ring_id", "rule_id"], as_index=False)["serious"].max()
    rule_items = pd.DataFrame(
        {
            "alert_id": ring_rules["ring_id"].map(ids).to_numpy(),
            "kind": "rule",
            "item": ring_rules["rule_id"].to_numpy(),
            "serious": ring_rules["serious"].to_numpy(),
        }
    )
    subjects = pd.concat([ring_subjects, ent_subjects], ignore_index=True)
    items = pd.concat([member_items, rule_items, ent_items[ITEM_COLUMNS]], ignore_index=True)
    items = items.assign(serious=items["serious"].astype(bool))
    return subjects, items[ITEM_COLUMNS]


def _json_lists(items: pd.DataFrame, index: pd.Index) -> pd.Series:
    """Per alert id in `index`: a JSON list of its items, sorted ('[]' when none)."""
    if items.empty:
        return pd.Series("[]", index=index)
    lists = items.sort_values("item").groupby("alert_id")["item"].agg(lambda x: json.dumps(list(x)))
    return lists.reindex(index).fillna("[]")


def _anti(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Rows of `a` whose (alert_id, kind, item) is not in `b`."""
    key = ["alert_id", "kind", "item"]
    m = a.merge(b[key].drop_duplicates(), on=key, how="left", indicator=True)
    return m[m["_merge"] == "left_only"].drop(columns="_merge")


def build_alerts(
    subjects: pd.DataFrame,
    items: pd.DataFrame,
    previous: pd.DataFrame | None,
    previous_items: pd.DataFrame | None,
    s: AlertSettings,
    *,
    run_id: str,
    now: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This run's alerts (ALERT_COLUMNS) and items, compared with the previous run's."""
    prev = previous if previous is not None and not previous.empty else pd.DataFrame(columns=ALERT_COLUMNS)
    prev_items = (
        previous_items
        if previous_items is not None and not previous_items.empty
        else pd.DataFrame(columns=ITEM_COLUMNS)
    )
    prev_items = prev_items.assign(serious=prev_items["serious"].astype(bool))
    cur = subjects.drop_duplicates("alert_id").set_index("alert_id")
    p = prev.set_index("alert_id")
    seen = cur.index.isin(p.index)
    was_gone = pd.Series(False, index=cur.index)
    was_gone[seen] = (p.loc[cur.index[seen], "event"] == "gone").to_numpy()

    new_items = _anti(items, prev_items)
    new_items = new_items[new_items["alert_id"].isin(cur.index[seen])]
    left = _anti(prev_items[prev_items["alert_id"].isin(cur.index)], items)
    new_m = new_items[new_items["kind"] == "member"]
    new_r = new_items[new_items["kind"] == "rule"]
    new_sr = new_r[new_r["serious"]]
    left_m = left[left["kind"] == "member"]

    prev_score = pd.Series(np.nan, index=cur.index)
    prev_score[seen] = pd.to_numeric(p.loc[cur.index[seen], "score"], errors="coerce").to_numpy()
    rise = (cur["score"] - prev_score).round(6)
    n_new_m = new_m.groupby("alert_id").size().reindex(cur.index).fillna(0)
    n_new_sr = new_sr.groupby("alert_id").size().reindex(cur.index).fillna(0)
    n_changes = (
        n_new_m
        + new_r.groupby("alert_id").size().reindex(cur.index).fillna(0)
        + left.groupby("alert_id").size().reindex(cur.index).fillna(0)
    )
    material = (
        ((n_new_m > 0) & s.reopen_on_new_member)
        | ((n_new_sr > 0) & s.reopen_on_serious_rule)
        | (rise.fillna(0) > s.reopen_score_rise)
        | was_gone
    )
    event = np.select(
        [~seen, material.to_numpy(), (n_changes > 0).to_numpy() | (rise.fillna(0).abs() > 1e-9).to_numpy()],
        ["new", "reopened", "changed"],
        default="unchanged",
    )
    raised = np.isin(event, RAISED_EVENTS)
    counts = items.groupby(["alert_id", "kind"]).size().unstack(fill_value=0)

    def carried(col: str, fresh: str) -> np.ndarray:
        out = np.full(len(cur), fresh, dtype=object)
        out[seen] = p.loc[cur.index[seen], col].to_numpy()
        return out

    raised_at = carried("raised_at", now)
    raised_at[raised] = now
    alerts = pd.DataFrame(
        {
            "alert_id": cur.index.to_numpy(),
            "subject_type": cur["subject_type"].to_numpy(),
            "subject_id": cur["subject_id"].to_numpy(),
            "typology": cur["typology"].to_numpy(),
            "event": event,
            "raised": raised,
            "score": cur["score"].to_numpy(),
            "previous_score": prev_score.to_numpy(),
            "score_rise": rise.to_numpy(),
            "n_members": (counts["member"] if "member" in counts else pd.Series(dtype=int))
            .reindex(cur.index)
            .fillna(0)
            .astype(int)
            .to_numpy(),
            "n_rules": (counts["rule"] if "rule" in counts else pd.Series(dtype=int))
            .reindex(cur.index)
            .fillna(0)
            .astype(int)
            .to_numpy(),
            "new_members": _json_lists(new_m, cur.index).to_numpy(),
            "left_members": _json_lists(left_m, cur.index).to_numpy(),
            "new_rules": _json_lists(new_r, cur.index).to_numpy(),
            "new_serious_rules": _json_lists(new_sr, cur.index).to_numpy(),
            "first_seen": carried("first_seen", now),
            "last_seen": np.full(len(cur), now, dtype=object),
            "raised_at": raised_at,
            "first_run": carried("first_run", run_id),
            "last_run": np.full(len(cur), run_id, dtype=object),
        }
    )
    # alerts of the previous run absent now: kept as gone (their items too, to compare on a return)
    gone = prev[~prev["alert_id"].isin(cur.index)].copy()
    if len(gone):
        gone["event"] = "gone"
        gone["raised"] = False
        gone["previous_score"] = gone["score"]
        gone["score_rise"] = np.nan
        for c in ("new_members", "left_members", "new_rules", "new_serious_rules"):
            gone[c] = "[]"
    out = pd.concat([alerts, gone[ALERT_COLUMNS]], ignore_index=True) if len(gone) else alerts
    out = out.assign(raised=out["raised"].astype(bool))
    out = out.sort_values(["raised", "score", "alert_id"], ascending=[False, False, True], kind="mergesort")
    kept_items = pd.concat([items, prev_items[prev_items["alert_id"].isin(gone["alert_id"])]], ignore_index=True)
    kept_items = kept_items.sort_values(["alert_id", "kind", "item"], kind="mergesort").reset_index(drop=True)
    return out.reset_index(drop=True)[ALERT_COLUMNS], kept_items[ITEM_COLUMNS]
