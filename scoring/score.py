"""Scoring one entity type: assemble the model matrix, train where labels allow (else the
unsupervised score), turn probabilities into points and grades, apply rule caps, explain."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from explain.reasons import RING_TYPES, deviation_contributions, reasons_from_contributions
from features.build import same_day_partners
from features.rings import RingSettings
from graph.dataset import Dataset
from graph.projection import Projection
from riskgraph.settings import ModelSettings, Settings
from rules.pack import DEFAULT_PACK_DIR, load_packs
from scoring.grades import apply_caps, credit_points, grades
from scoring.model import CrossFittedRiskModel, classification_metrics
from scoring.registry import ModelRegistry
from scoring.unsupervised import unsupervised_risk

log = logging.getLogger("riskgraph.scoring")
SCORE_COLUMNS = ["entity_type", "entity_id", "risk_score", "credit_points", "grade", "model_version",
                 "reasons", "rule_hits"]


@dataclass
class EntityScores:
    entity_type: str
    kind: str                                   # supervised | unsupervised | empty
    model_version: str
    table: pd.DataFrame                         # SCORE_COLUMNS + grade_cap, score_grade
    metrics: dict[str, Any] = field(default_factory=dict)
    importance: pd.Series | None = None
    contributions: pd.DataFrame | None = None   # for the explained top rows
    explained_X: pd.DataFrame | None = None
    model: CrossFittedRiskModel | None = None
    oof: pd.DataFrame | None = None             # labelled rows: label, oof probability
    matrix: pd.DataFrame | None = None          # the model matrix of every entity (for on-demand reasons)
    fitted: bool = True                         # False: scored by the existing champion

    def public_metrics(self) -> dict[str, Any]:
        return {k: v for k, v in self.metrics.items() if k != "calibration"}


def rule_features(hits: pd.DataFrame, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Per entity: hit count, severity sum and max, and one count column per rule."""
    h = hits[hits["entity_type"] == entity_type] if len(hits) else hits
    out = pd.DataFrame(index=ids)
    if len(h) == 0:
        out["rule_hits"] = 0.0
        out["rule_severity_max"] = 0.0
        out["rule_severity_sum"] = 0.0
        return out
    g = h.groupby("entity_id")["severity"]
    out["rule_hits"] = g.size().reindex(ids).fillna(0).to_numpy(dtype=float)
    out["rule_severity_max"] = g.max().reindex(ids).fillna(0).to_numpy(dtype=float)
    out["rule_severity_sum"] = g.sum().reindex(ids).fillna(0).to_numpy(dtype=float)
    per_rule = h.groupby(["entity_id", "rule_id"]).size().unstack(fill_value=0)
    per_rule.columns = [f"rule_{c}" for c in per_rule.columns]
    return out.join(per_rule.reindex(ids).fillna(0).astype(float))


def ring_features(members: pd.DataFrame, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Label-free ring features: how many rings, the largest, and per ring type."""
    out = pd.DataFrame(index=ids)
    m = members[members["entity_type"] == entity_type] if len(members) else members
    out["rings"] = 0.0
    if len(m) == 0:
        return out
    out["rings"] = m.groupby("entity_id").size().reindex(ids).fillna(0).to_numpy(dtype=float)
    size = members.groupby("ring_id").size()
    out["ring_size_max"] = m.assign(size=m["ring_id"].map(size)).groupby("entity_id")["size"].max().reindex(ids).fillna(0).to_numpy(dtype=float)
    for rtype, part in m.groupby("ring_type"):
        out[f"ring_{rtype}"] = part.groupby("entity_id").size().reindex(ids).fillna(0).to_numpy(dtype=float)
    return out


IDENTIFIER_HOLDERS = ("person", "employer")
IDENTIFIER_RELATIONS = (("phone", "HAS_PHONE"), ("bank_account", "HAS_BANK_ACCOUNT"), ("address", "HAS_ADDRESS"))
# Ring types from the most to the least specific: an entity's reasons name its most specific ring.
RING_PREFERENCE = ("collusion", "enrolment", "facility", "broker", "identity")
ENTITY_WORDS = {"person": ("person", "persons", "人员"), "employer": ("employer", "employers", "单位"),
                "clinic": ("clinic", "clinics", "医疗机构"), "pharmacy": ("pharmacy", "pharmacies", "药店"),
                "agency": ("agency", "agencies", "中介机构")}


def labelled_neighbour_features(proj: Projection, entity_type: str, label_vec: np.ndarray,
                                known_vec: np.ndarray) -> pd.DataFrame:
    """Share of an entity's labelled neighbours (1 hop, and 2 hops through shared counterparts
    weighted 1/degree) that are confirmed bad. Callers mask out labels that must not be seen."""
    views = _LabelPropagation(proj, entity_type).views(label_vec[:, None], known_vec[:, None])
    return pd.DataFrame({name: v[:, 0] for name, v in views.items()}, index=proj.ids[entity_type])


class _LabelPropagation:
    """The label-free parts of labelled_neighbour_features (adjacency, degrees, identifier
    matrices), built once per entity type and applied to any number of label views."""

    def __init__(self, proj: Projection, entity_type: str) -> None:
        adj = proj.adjacency().astype(np.float64)
        self.lo = proj.offsets[entity_type]
        self.hi = self.lo + len(proj.ids[entity_type])
        self.adj = adj
        self.rows = adj[self.lo:self.hi]
        deg = np.asarray(adj.sum(axis=1)).ravel()
        self.inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
        self.back = self.rows @ self.inv   # 2-hop walks that return to the entity itself
        self.identifiers = []
        if entity_type in IDENTIFIER_HOLDERS:
            for ident, rel in IDENTIFIER_RELATIONS:
                own = proj.matrix(rel, entity_type, ident)
                if own.nnz == 0:
                    continue
                holders = [(proj.matrix(rel, h, ident).T.tocsr(), proj.offsets[h], proj.offsets[h] + len(proj.ids[h]))
                           for h in IDENTIFIER_HOLDERS]
                self.identifiers.append((ident, own, np.asarray(own.sum(axis=1)).ravel(), holders))

    def views(self, lab: np.ndarray, kno: np.ndarray) -> dict[str, np.ndarray]:
        """Feature name -> (entities, k) values, for k label views (columns of `lab` / `kno`,
        node-indexed) at the cost of one pass over the graph."""
        k = lab.shape[1]
        both = np.hstack([lab, kno])
        hop1 = self.rows @ both
        hop2 = self.rows @ (self.inv[:, None] * (self.adj @ both))
        # 2-hop sums include the walk back to the entity itself: remove it so no label leaks.
        hop2 -= self.back[:, None] * both[self.lo:self.hi]
        bad1, known1, bad2, known2 = hop1[:, :k], hop1[:, k:], hop2[:, :k], hop2[:, k:]
        out: dict[str, np.ndarray] = {
            "labelled_neighbours": known1,
            "labelled_neighbour_share": np.divide(bad1, known1, out=np.zeros_like(bad1), where=known1 > 0),
            "labelled_2hop_share": np.divide(bad2, known2, out=np.zeros_like(bad2), where=known2 > 1e-9),
        }
        self_bad = lab[self.lo:self.hi]
        for ident, own, own_count, holders in self.identifiers:
            bad_per_value = sum(m @ lab[a:b] for m, a, b in holders)
            out[f"confirmed_fraud_sharing_{ident}"] = np.maximum(own @ bad_per_value - self_bad * own_count[:, None], 0)
        return out


def _label_vectors(proj: Projection, labels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global node index, label, for every labelled entity."""
    idx = np.full(len(labels), -1, dtype=np.int64)
    for t, part in labels.groupby("entity_type"):
        local = proj.ids[t].get_indexer(part["entity_id"].to_numpy(dtype=object))
        idx[np.flatnonzero(labels["entity_type"].to_numpy() == t)] = np.where(local >= 0, local + proj.offsets[t], -1)
    keep = idx >= 0
    return idx[keep], labels["label"].to_numpy()[keep].astype(np.float64), np.flatnonzero(keep)


def _all_label_vectors(proj: Projection, labels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Node-indexed label and known vectors holding every label (scoring with a fitted champion)."""
    node, y, _ = _label_vectors(proj, labels)
    lab, known = np.zeros(proj.n_nodes), np.zeros(proj.n_nodes)
    lab[node], known[node] = y, 1.0
    return lab, known


def _out_of_fold_label_features(proj: Projection, entity_type: str, labels: pd.DataFrame,
                                fold_of: pd.Series) -> pd.DataFrame:
    """Label features where an entity in fold k only sees labels from the other folds."""
    node, y, rows = _label_vectors(proj, labels)
    n = proj.n_nodes
    label_fold = np.full(len(node), -1)
    own = labels["entity_type"].to_numpy()[rows] == entity_type
    ids = labels["entity_id"].to_numpy(dtype=object)[rows]
    label_fold[own] = fold_of.reindex(ids[own]).fillna(-1).to_numpy(dtype=int)

    # One label view per fold (its own fold's labels hidden) plus one with every label, for the
    # entities outside training; all views go through the graph in one sparse pass.
    folds = sorted(set(fold_of.to_numpy()))
    lab = np.zeros((n, len(folds) + 1))
    known = np.zeros((n, len(folds) + 1))
    for j, hidden in enumerate([None, *folds]):
        visible = np.ones(len(node), dtype=bool) if hidden is None else label_fold != hidden
        lab[node[visible], j] = y[visible]
        known[node[visible], j] = 1.0
    views = _LabelPropagation(proj, entity_type).views(lab, known)
    # each entity takes view 0 (every label) unless it is in a fold: then its fold's view
    view_of = np.zeros(len(proj.ids[entity_type]), dtype=np.int64)
    view_of[proj.ids[entity_type].get_indexer(fold_of.index)] = 1 + np.searchsorted(folds, fold_of.to_numpy())
    rows = np.arange(len(view_of))
    return pd.DataFrame({name: v[rows, view_of] for name, v in views.items()}, index=proj.ids[entity_type])


def labels_of(dataset: Dataset, entity_type: str, ids: pd.Index) -> pd.Series:
    """Label (0/1) of each labelled entity of the type, in `ids` order."""
    labels = dataset.table("labels")
    own = labels[labels["entity_type"] == entity_type].set_index("entity_id")["label"]
    return own.reindex(ids).dropna().astype(int)


def assign_folds(y: pd.Series, ms: ModelSettings) -> pd.Series:
    """Stratified fold number of each labelled entity (fixed seed)."""
    n_folds = int(max(2, min(ms.folds, y.sum(), len(y) - y.sum())))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=ms.seed)
    fold_of = pd.Series(-1, index=y.index)
    for k, (_, test) in enumerate(folds.split(np.zeros(len(y)), y.to_numpy())):
        fold_of.iloc[test] = k
    return fold_of


def score_entity_type(entity_type: str, *, dataset: Dataset, proj: Projection, features: pd.DataFrame,
                      rule_result: Any, rings: pd.DataFrame, settings: Settings,
                      registry: ModelRegistry, run_id: str | None = None,
                      use_champion: bool = False) -> EntityScores:
    """Score every entity of one type. A newly fitted model is registered (staged under
    `run_id` when given); with `use_champion` the type's champion scores instead, and a type
    without one is fitted. `EntityScores.fitted` says which happened."""
    ids = proj.ids[entity_type]
    if len(ids) == 0:
        return EntityScores(entity_type, "empty", "", pd.DataFrame(columns=SCORE_COLUMNS + ["grade_cap", "score_grade"]))
    ms = settings.model
    hits = rule_result.hits
    X = features.join(rule_features(hits, entity_type, ids)).join(ring_features(rings, entity_type, ids))
    labels = dataset.table("labels")
    own = labels[labels["entity_type"] == entity_type].set_index("entity_id")["label"]
    own = own[ids.get_indexer(own.index) >= 0]   # Index.isin on Arrow strings is ~30x slower
    supervised = min(int(own.sum()), int((own == 0).sum())) >= ms.min_positives
    importance = contributions = explained_X = model = oof_frame = None
    metrics: dict[str, Any] = {}
    champion = registry.champion(entity_type) if use_champion else None
    if champion is not None:
        supervised = champion.kind == "supervised"
    if champion is not None and supervised:
        X = X.join(labelled_neighbour_features(proj, entity_type, *_all_label_vectors(proj, labels)))
        X = X.reindex(columns=champion.features)
        model = registry.load(champion.version)
        risk = pd.Series(model.predict_proba(X), index=ids)
        metrics, kind = champion.metrics, "supervised"
    elif supervised:
        y = own.reindex(ids).dropna().astype(int)
        fold_of = assign_folds(y, ms)
        X = X.join(_out_of_fold_label_features(proj, entity_type, labels, fold_of))
        model = CrossFittedRiskModel(ms)
        model.fit(X.loc[y.index], y.to_numpy(), folds=fold_of.to_numpy())
        risk = pd.Series(model.predict_proba(X), index=ids)
        risk.loc[y.index] = model.oof_   # labelled entities keep their honest out-of-fold score
        metrics = model.metrics_
        importance = model.importance()
        oof_frame = pd.DataFrame({"label": y.to_numpy(), "oof": model.oof_}, index=y.index)
        kind = "supervised"
    else:
        sev = X["rule_severity_sum"].to_numpy()
        ring_score = ring_scores_without_own_label(rings, labels, entity_type, ids)
        parts = unsupervised_risk(X, sev, ring_score, ms.seed)
        risk = parts["risk"]
        if len(own) and 0 < own.sum() < len(own):
            metrics = classification_metrics(own.to_numpy(), risk.reindex(own.index).to_numpy())
            metrics["note"] = "unsupervised score checked against the few labels available"
        kind = "unsupervised"
    if champion is not None:
        version = champion.version
    else:
        version = registry.register(
            entity_type=entity_type, kind=kind, data_hash=dataset.content_hash, features=list(X.columns),
            params=ms.model_dump() if supervised else {"method": "rules+rings+isolation_forest"},
            metrics=metrics, model=model, promote=run_id is None, run_id=run_id).version

    points = credit_points(risk.to_numpy(), settings.scorecard)
    score_grade = pd.Series(grades(points, settings.bands), index=ids)
    cap, cap_rule = _caps(hits, entity_type, ids)
    final = apply_caps(score_grade, cap)

    # Reasons for the riskiest entities (any other entity is explained on demand by the API).
    top = risk.sort_values(ascending=False, kind="mergesort").index[: ms.explain_top]
    if supervised:
        contributions = model.contributions(X.loc[top])
    else:
        contributions = deviation_contributions(X.loc[top])
        contributions["rule_severity_sum"] = parts.loc[top, "rules"] * 2
        if "rings" in X:
            contributions["rings"] = parts.loc[top, "rings"] * 2
    explained_X = X.loc[top]
    reasons = pd.Series("[]", index=ids)
    reasons.loc[top] = reasons_from_contributions(
        contributions, explained_X.reindex(columns=contributions.columns), ms.reasons_per_entity,
        context=reason_context(dataset, proj, entity_type, top, rings), rule_titles=rule_titles(settings))
    capped = final != score_grade
    if capped.any():
        reasons.loc[capped] = [
            json.dumps(json.loads(r) + [{"feature": "grade_cap", "value": c, "contribution": None,
                                          "text": f"grade capped at {c} by rule {rid}",
                                          "text_zh": f"规则 {rid} 将等级限定为 {c}"}], ensure_ascii=False)
            for r, c, rid in zip(reasons[capped], cap[capped], cap_rule[capped])]
    hit_lists = _rule_lists(hits, entity_type)
    table = pd.DataFrame({
        "entity_type": entity_type, "entity_id": ids.to_numpy(), "risk_score": risk.to_numpy().round(6),
        "credit_points": points.round(1), "grade": final.to_numpy(), "model_version": version,
        "reasons": reasons.to_numpy(), "rule_hits": hit_lists.reindex(ids).fillna("[]").to_numpy(),
        "grade_cap": cap.fillna("").to_numpy(), "score_grade": score_grade.to_numpy(),
    })
    return EntityScores(entity_type, kind, version, table, metrics, importance, contributions,
                        explained_X, model, oof_frame, X, fitted=champion is None)


def _rule_lists(hits: pd.DataFrame, entity_type: str) -> pd.Series:
    """Per entity with hits: JSON list of its distinct rule ids, sorted."""
    if len(hits) == 0:
        return pd.Series(dtype=str)
    h = hits.loc[hits["entity_type"] == entity_type, ["entity_id", "rule_id"]].drop_duplicates()
    h = h.sort_values(["entity_id", "rule_id"], kind="mergesort")
    # json.dumps of each id (rule ids are validated names, but quoting stays exact for any text)
    quoted = pd.Series([json.dumps(r) for r in h["rule_id"].unique()], index=h["rule_id"].unique())
    h = h.assign(q=h["rule_id"].map(quoted))
    return "[" + h.groupby("entity_id", sort=False)["q"].agg(", ".join) + "]"


def ring_scores_without_own_label(members: pd.DataFrame, labels: pd.DataFrame, entity_type: str,
                                  ids: pd.Index) -> np.ndarray:
    """Each entity's best ring score with its own label taken out of the ring's label share.

    ring_score weighs in the share of members labelled 1 (features/rings.py, default weights);
    an entity's own label must not raise its own score, so its 1/size part of that share is
    removed. Other members' labels stay: they are evidence about the entity, not its label.
    """
    m = members[members["entity_type"] == entity_type] if len(members) else members
    if len(m) == 0:
        return np.zeros(len(ids))
    rs = RingSettings()
    w_labels = rs.weight_labels / (rs.weight_density + rs.weight_size + rs.weight_money
                                   + rs.weight_strength + rs.weight_labels)
    size = members.groupby("ring_id").size()
    pos = labels.loc[(labels["entity_type"] == entity_type) & (labels["label"] == 1), "entity_id"]
    own_pos = m["entity_id"].isin(pos).to_numpy(dtype=float)
    score = m["ring_score"].to_numpy() - w_labels * own_pos / m["ring_id"].map(size).to_numpy(dtype=float)
    best = pd.Series(np.clip(score, 0, 1), index=m["entity_id"].to_numpy()).groupby(level=0).max()
    return best.reindex(ids).fillna(0).to_numpy()


def rule_titles(settings: Settings) -> dict[str, tuple[str, str]]:
    """Rule id -> (English, Chinese) title, from the configured rule packs."""
    packs = load_packs(settings.rule_packs or DEFAULT_PACK_DIR)
    return {r.id: (r.title_en, r.title_zh) for p in packs for r in p.rules}


def _ring_descriptions(members: pd.DataFrame, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Per entity: its most specific ring (type order RING_PREFERENCE, then score) described in
    words, naming the ring's other non-person members (the clinic and pharmacy of a collusion)."""
    m = members[(members["entity_type"] == entity_type) & members["entity_id"].isin(ids)]
    if len(m) == 0:
        return pd.DataFrame(index=ids, columns=["ring", "ring_type"])
    rank = {t: i for i, t in enumerate(RING_PREFERENCE)}
    m = m.assign(rank=m["ring_type"].map(rank).fillna(len(rank)))
    best = m.sort_values(["entity_id", "rank", "ring_score", "ring_id"], ascending=[True, True, False, True],
                         kind="mergesort").drop_duplicates("entity_id")
    rings = members[members["ring_id"].isin(best["ring_id"].unique())]
    # Per ring, once: member counts by type, and its first 4 non-person members (the entity
    # itself may be one of them; the 3 others are named).
    per_ring: dict[str, dict[str, int]] = {}
    for (rid, t), n in rings.groupby(["ring_id", "entity_type"]).size().items():
        per_ring.setdefault(rid, {})[t] = int(n)
    summary: dict[str, tuple[int, str, str]] = {}
    for rid, c in per_ring.items():
        present = [t for t in ENTITY_WORDS if c.get(t, 0) > 0]
        parts_en = ", ".join(f"{c[t]} {ENTITY_WORDS[t][0] if c[t] == 1 else ENTITY_WORDS[t][1]}" for t in present)
        parts_zh = "、".join(f"{ENTITY_WORDS[t][2]} {c[t]} 个" for t in present)
        summary[rid] = (sum(c.values()), parts_en, parts_zh)
    facilities = (rings[rings["entity_type"] != "person"]
                  .sort_values(["ring_id", "entity_type", "entity_id"], kind="mergesort"))
    facilities = facilities[facilities.groupby("ring_id").cumcount() < 4]
    named: dict[str, list[tuple[str, str]]] = {}
    for rid, t, i in zip(facilities["ring_id"], facilities["entity_type"], facilities["entity_id"]):
        named.setdefault(rid, []).append((t, i))
    texts_en, texts_zh = [], []
    for eid, rid, rtype in zip(best["entity_id"], best["ring_id"], best["ring_type"]):
        en, zh = RING_TYPES.get(rtype, (f"a suspected {rtype} ring", f"疑似{rtype}团伙"))
        size, parts_en, parts_zh = summary[rid]
        others = [(t, i) for t, i in named.get(rid, []) if i != eid][:3]
        named_en = " and ".join(f"{ENTITY_WORDS[t][0]} {i}" for t, i in others)
        named_zh = "、".join(f"{ENTITY_WORDS[t][2]} {i}" for t, i in others)
        texts_en.append(f"{en}{' with ' + named_en if named_en else ''} (ring {rid}, {size} members: {parts_en})")
        texts_zh.append(f"{zh}{'（涉及' + named_zh + '）' if named_zh else ''}（团伙 {rid}，成员 {size} 个：{parts_zh}）")
    out = pd.DataFrame({"ring": list(zip(texts_en, texts_zh)), "ring_type": best["ring_type"].to_numpy()},
                       index=best["entity_id"].to_numpy())
    return out.reindex(ids)


def _partner_context(dataset: Dataset, proj: Projection, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Same-day partners: a clinic's top pharmacy, a pharmacy's top clinic, a person's top pair."""
    if entity_type not in ("person", "clinic", "pharmacy"):
        return pd.DataFrame(index=ids)
    top = same_day_partners(dataset, proj, entity_type)
    top = top[ids.get_indexer(top.index) >= 0]
    if entity_type == "person":
        return pd.DataFrame({
            "pair_clinic": [(f"clinic {c}", f"医疗机构 {c}") for c in top["clinic"]],
            "pair_pharmacy": [(f"pharmacy {h}", f"药店 {h}") for h in top["pharmacy"]],
            "pair_days": top["days"].astype(float),
        }, index=top.index).reindex(ids)
    word = ("pharmacy", "药店") if entity_type == "clinic" else ("clinic", "医疗机构")
    field = "top_pharmacy" if entity_type == "clinic" else "top_clinic"
    return pd.DataFrame({field: [(f"{word[0]} {p}", f"{word[1]} {p}") for p in top["partner"]]},
                        index=top.index).reindex(ids)


def reason_context(dataset: Dataset, proj: Projection, entity_type: str, ids: pd.Index,
                   members: pd.DataFrame) -> pd.DataFrame:
    """Context fields of the reason templates (explain/reasons.py) for the explained entities."""
    return _ring_descriptions(members, entity_type, ids).join(_partner_context(dataset, proj, entity_type, ids))


def _caps(hits: pd.DataFrame, entity_type: str, ids: pd.Index) -> tuple[pd.Series, pd.Series]:
    """The strictest grade cap any rule imposes on each entity, and the rule that set it."""
    none = pd.Series(np.nan, index=ids, dtype=object)
    if len(hits) == 0 or "grade_cap" not in hits:
        return none, none
    h = hits[(hits["entity_type"] == entity_type) & hits["grade_cap"].fillna("").ne("")]
    if len(h) == 0:
        return none, none
    h = h.sort_values(["entity_id", "grade_cap", "rule_id"], ascending=[True, False, True], kind="mergesort")
    first = h.drop_duplicates("entity_id").set_index("entity_id")
    return first["grade_cap"].reindex(ids), first["rule_id"].reindex(ids)

