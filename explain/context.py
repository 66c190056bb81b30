"""Per-entity context for reason texts: the ring an entity belongs to described in words (its
type, size and the facilities in it) and its top same-day partners (a clinic's pharmacy, ...)."""

from __future__ import annotations

import pandas as pd

from explain.catalogue import built_in
from features.build import same_day_partners
from graph.dataset import Dataset
from graph.projection import Projection

# Ring types from the most to the least specific: an entity's reasons name its most specific ring.
RING_PREFERENCE = ("collusion", "enrolment", "facility", "broker", "identity")
ENTITY_WORDS = {
    "person": ("person", "persons", "人员"),
    "employer": ("employer", "employers", "单位"),
    "clinic": ("clinic", "clinics", "医疗机构"),
    "pharmacy": ("pharmacy", "pharmacies", "药店"),
    "agency": ("agency", "agencies", "中介机构"),
}


def _ring_descriptions(members: pd.DataFrame, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Per entity: its most specific ring (type order RING_PREFERENCE, then score) described in
    words, naming the ring's other non-person members (the clinic and pharmacy of a collusion)."""
    m = members[(members["entity_type"] == entity_type) & members["entity_id"].isin(ids)]
    if len(m) == 0:
        return pd.DataFrame(index=ids, columns=["ring", "ring_type"])
    rank = {t: i for i, t in enumerate(RING_PREFERENCE)}
    m = m.assign(rank=m["ring_type"].map(rank).fillna(len(rank)))
    best = m.sort_values(
        ["entity_id", "rank", "ring_score", "ring_id"], ascending=[True, True, False, True], kind="mergesort"
    ).drop_duplicates("entity_id")
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
    facilities = rings[rings["entity_type"] != "person"].sort_values(
        ["ring_id", "entity_type", "entity_id"], kind="mergesort"
    )
    facilities = facilities[facilities.groupby("ring_id").cumcount() < 4]
    named: dict[str, list[tuple[str, str]]] = {}
    for rid, t, i in zip(facilities["ring_id"], facilities["entity_type"], facilities["entity_id"]):
        named.setdefault(rid, []).append((t, i))
    texts_en, texts_zh = [], []
    for eid, rid, rtype in zip(best["entity_id"], best["ring_id"], best["ring_type"]):
        words = built_in().ring_types.get(rtype, {"en": f"a suspected {rtype} ring", "zh": f"疑似{rtype}团伙"})
        en, zh = words["en"], words["zh"]
        size, parts_en, parts_zh = summary[rid]
        others = [(t, i) for t, i in named.get(rid, []) if i != eid][:3]
        named_en = " and ".join(f"{ENTITY_WORDS[t][0]} {i}" for t, i in others)
        named_zh = "、".join(f"{ENTITY_WORDS[t][2]} {i}" for t, i in others)
        texts_en.append(f"{en}{' with ' + named_en if named_en else ''} (ring {rid}, {size} members: {parts_en})")
        texts_zh.append(
            f"{zh}{'（涉及' + named_zh + '）' if named_zh else ''}（团伙 {rid}，成员 {size} 个：{parts_zh}）"
        )
    out = pd.DataFrame(
        {"ring": list(zip(texts_en, texts_zh)), "ring_type": best["ring_type"].to_numpy()},
        index=best["entity_id"].to_numpy(),
    )
    return out.reindex(ids)


def _partner_context(dataset: Dataset, proj: Projection, entity_type: str, ids: pd.Index) -> pd.DataFrame:
    """Same-day partners: a clinic's top pharmacy, a pharmacy's top clinic, a person's top pair."""
    if entity_type not in ("person", "clinic", "pharmacy"):
        return pd.DataFrame(index=ids)
    top = same_day_partners(dataset, proj, entity_type)
    top = top[ids.get_indexer(top.index) >= 0]
    if entity_type == "person":
        return pd.DataFrame(
            {
                "pair_clinic": [(f"clinic {c}", f"医疗机构 {c}") for c in top["clinic"]],
                "pair_pharmacy": [(f"pharmacy {h}", f"药店 {h}") for h in top["pharmacy"]],
                "pair_days": top["days"].astype(float),
            },
            index=top.index,
        ).reindex(ids)
    word = ("pharmacy", "药店") if entity_type == "clinic" else ("clinic", "医疗机构")
    field = "top_pharmacy" if entity_type == "clinic" else "top_clinic"
    return pd.DataFrame(
        {field: [(f"{word[0]} {p}", f"{word[1]} {p}") for p in top["partner"]]}, index=top.index
    ).reindex(ids)


def reason_context(
    dataset: Dataset, proj: Projection, entity_type: str, ids: pd.Index, members: pd.DataFrame
) -> pd.DataFrame:
    """Context fields of the reason templates (explain/reasons.py) for the explained entities."""
    return _ring_descriptions(members, entity_type, ids).join(_partner_context(dataset, proj, entity_type, ids))
