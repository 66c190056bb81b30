"""Ring detection: identity, medical-collusion, facility, fake-enrolment and card-broker rings.

`detect_rings(dataset)` is a pure function of the dataset: the same tables give the same rings
and ring ids whatever the input row order. Every ring has a type, members, a 0..1 score and an
evidence subgraph (`RingResult.evidence(ring_id)`).

How each ring type is found (all vectorised over sparse matrices; loops run over rings or over
oversized components, never over events):

- identity: persons and employers sharing a phone, address or bank account. Identifier values
  shared by more than `identifier_max_degree` entities (a hospital's address, a call-centre
  phone) are dropped as too common; two entities are linked when the weights of the identifiers
  they share reach `identity_min_link` (an address alone is weaker than a phone or bank account).
- collusion: same-day (person, clinic, pharmacy, date) co-occurrences from visits and purchases
  (a purchase naming its prescribing clinic counts too). A person is kept for a clinic-pharmacy
  pair when they co-visit it on >= `min_covisit_days` days; two such persons are linked when they
  co-visit it on the same >= `min_covisit_days` days and these are at least `min_covisit_overlap`
  of the smaller one's co-visit days there. Patients of a busy hospital and the pharmacy next door
  co-visit often but on scattered days, so they are not linked: volume alone never makes a ring.
- enrolment: agency -> employers (agency_links or employment.agency_id) -> persons, where most
  of an employer's enrolees have short contribution spells or claim benefits soon after
  enrolling ("shell" employers), and the agency runs several shells.
- broker: many cards (persons) tied to one phone or bank account, or buying together at the same
  pharmacies on the same days, whose purchases are spread over many pharmacies.
- facility: a clinic or pharmacy plus its patients whose rule hits concentrate there: split
  admissions (same-diagnosis readmission within `readmit_days`), visits or purchases during an
  inpatient stay, overlapping long supplies of one drug. Per facility and kind of hit, the count
  of persons is tested against the population rate over the facility's base (its inpatients or
  customers, leaving the facility out of the rate): a big hospital with a few legitimate
  readmissions has a large expected count and is not a ring; regular 14/28-day refills never
  overlap and never count; a person's hits must mostly be at that facility.

Linked entities are grouped by connected components; components above `max_ring_size` or too
sparse are split by seeded Leiden (deterministic), and pieces still above the cap are dropped.

Scores. ring_score is a weighted mean of 0..1 components: density, size, money at stake,
type-specific evidence strength (for collusion a FRAUDAR-like camouflage-resistant density whose
event weights are 1/log(event size + c)) and the share of members with label 1. The label share
only ranks rings for investigators; models must not use ring_score as a feature for the entity's
own label (it would see that label). Use `ring_score_without_labels` for model features: it is
the same score with the label weight removed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from graph.contract import IDENTIFIER_TYPES
from graph.dataset import Dataset

MEMBER_COLUMNS = ["ring_id", "ring_type", "ring_score", "entity_type", "entity_id"]
RING_COLUMNS = ["ring_id", "ring_type", "ring_score", "ring_score_without_labels", "size",
                "density", "strength", "money_at_stake", "n_persons", "n_employers", "n_clinics",
                "n_pharmacies", "n_agencies", "label_share", "why"]
EDGE_COLUMNS = ["ring_id", "source_type", "source_id", "target_type", "target_id", "relation",
                "count", "weight"]
_SEP = "\x1f"


@dataclass(frozen=True)
class RingSettings:
    """Named thresholds of ring detection; defaults follow docs in DOMAIN.md."""

    # Any ring type
    max_ring_size: int = 250          # no ring is larger; bigger groups are split, else dropped
    min_ring_size: int = 3            # smaller groups are not reported
    min_density: float = 0.25         # groups of >= split_check_size sparser than this are split
    split_check_size: int = 8         # density check applies from this group size up
    leiden_resolution: float = 1.0    # RBConfiguration resolution for splitting groups
    leiden_retries: int = 4           # resolution doubles on each retry while a piece is too big
    seed: int = 42                    # Leiden seed: same input, same rings
    # Identity rings
    identifier_max_degree: int = 50   # identifier values shared by more entities are too common
    identity_min_size: int = 2        # two strangers sharing a phone and a bank account is a ring
    phone_weight: float = 1.0         # link weight of a shared phone
    bank_account_weight: float = 1.0  # link weight of a shared bank account
    address_weight: float = 0.0       # an address alone never links (families share them)
    identity_min_link: float = 1.0    # two entities are linked from this shared weight up
    # Collusion rings
    min_covisit_days: int = 3         # k: same-day clinic+pharmacy days to count as repeated
    min_covisit_overlap: float = 0.5  # shared days / smaller member's days at the pair
    min_pair_lift: float = 2.0        # clinic-pharmacy same-day patients vs. their sizes
    prescription_is_visit: bool = False  # a purchase naming a clinic counts as a visit there
    #                                   (off: regular refills would look like repeated co-visits)
    max_event_persons: int = 1000     # (clinic, pharmacy, day) events larger are skipped (cost)
    pair_share: float = 0.25          # clinic-pharmacy pairs with this share of a ring's links join it
    fraudar_c: float = 5.0            # event weight 1/log(event size + c): big days count less
    # Enrolment rings
    short_spell_months: int = 12      # contribution spells this short are suspicious
    early_claim_months: int = 12      # benefit claimed within this many months of enrolling
    shell_min_share: float = 0.6      # share of an employer's enrolees that are suspicious
    shell_min_enrolees: int = 2       # a shell employer carries at least this many suspicious
    enrolment_min_shells: int = 2     # an agency runs at least this many shells
    # Broker rings
    broker_min_cards: int = 3         # broker + cards tied by phones / bank accounts
    broker_min_pharmacies: int = 4    # distinct pharmacies the group buys at
    broker_min_codays: int = 3        # pharmacy-days with several of the group's cards buying
    # Facility rings (split admissions, phantom stays, over-prescribing at one clinic/pharmacy)
    readmit_days: int = 15            # same-diagnosis readmission within this many days of discharge
    oversupply_min_days: float = 7.0  # a supply above this many days, overlapping the next refill
    oversupply_min_hits: int = 2      # overlapping refills of a person at one pharmacy (one alone
    #                                   is a slip, or a card of a broker buying around)
    facility_min_persons: int = 3     # persons with such events at one facility
    facility_min_lift: float = 5.0    # their share of the facility's base vs. the population's
    facility_alpha: float = 0.25      # Poisson tail of the count at the population rate must be
    #                                   <= alpha / facilities of the type (Bonferroni: about alpha
    #                                   false facility rings per kind of hit, whatever the scale)
    facility_min_concentration: float = 0.8  # share of a person's hits of the kind at the facility
    duplicate_share: float = 0.5      # a ring with this share of its members inside a ring of a
    #                                   more specific type (collusion > enrolment > facility >
    #                                   broker > identity) repeats it and is dropped
    # Scoring
    money_scale: float = 50_000.0     # money at stake where its component reaches 1 - 1/e
    weight_density: float = 0.25
    weight_size: float = 0.1
    weight_money: float = 0.2
    weight_strength: float = 0.3
    weight_labels: float = 0.15       # label share: ranking only, never a model feature


@dataclass
class RingResult:
    """Detected rings: one row per member, one row per ring, and evidence edges."""

    members: pd.DataFrame
    rings: pd.DataFrame
    edges: pd.DataFrame = field(repr=False)

    def evidence(self, ring_id: str) -> dict[str, Any]:
        """The ring's evidence subgraph: nodes (members and identifiers) and counted edges."""
        row = self.rings[self.rings["ring_id"] == ring_id]
        if row.empty:
            raise KeyError(f"no ring {ring_id!r}")
        r = row.iloc[0]
        mem = self.members[self.members["ring_id"] == ring_id]
        edges = self.edges[self.edges["ring_id"] == ring_id]
        nodes = [{"entity_type": t, "entity_id": i, "member": True}
                 for t, i in zip(mem["entity_type"], mem["entity_id"])]
        member_keys = {(n["entity_type"], n["entity_id"]) for n in nodes}
        extra = pd.concat([edges[["source_type", "source_id"]].set_axis(["t", "i"], axis=1),
                           edges[["target_type", "target_id"]].set_axis(["t", "i"], axis=1)])
        extra = extra.drop_duplicates().sort_values(["t", "i"])
        nodes += [{"entity_type": t, "entity_id": i, "member": False}
                  for t, i in zip(extra["t"], extra["i"]) if (t, i) not in member_keys]
        return {
            "ring_id": ring_id, "ring_type": r["ring_type"], "ring_score": float(r["ring_score"]),
            "why": r["why"], "nodes": nodes,
            "edges": edges.drop(columns="ring_id").to_dict("records"),
        }


# ---------------------------------------------------------------------------------------------
# Entry point


def detect_rings(dataset: Dataset, settings: RingSettings | None = None) -> RingResult:
    """Find, score and explain every ring in the dataset."""
    s = settings or RingSettings()
    found = [
        _identity_rings(dataset, s),
        _collusion_rings(dataset, s),
        _enrolment_rings(dataset, s),
        _broker_rings(dataset, s),
        _facility_rings(dataset, s),
    ]
    found = [f for f in found if f is not None and len(f.members)]
    if not found:
        return _empty_result()
    members = pd.concat([f.members for f in found], ignore_index=True)
    info = pd.concat([f.info for f in found], ignore_index=True)
    edges = pd.concat([f.edges.assign(ring_type=f.info["ring_type"].iloc[0]) for f in found],
                      ignore_index=True)
    return _finish(dataset, members, info, edges, s)


@dataclass
class _Found:
    """Rings of one type before scoring: local ring keys, members, facts and evidence edges."""

    members: pd.DataFrame   # ring (local int), ring_type, entity_type, entity_id
    info: pd.DataFrame      # ring, ring_type, strength, money_at_stake, why
    edges: pd.DataFrame     # ring, source_type, source_id, target_type, target_id, relation, count, weight


def _empty_result() -> RingResult:
    members = pd.DataFrame({c: pd.Series([], dtype="float64" if c == "ring_score" else "str")
                            for c in MEMBER_COLUMNS})
    rings = pd.DataFrame({c: pd.Series([], dtype="str" if c in ("ring_id", "ring_type", "why")
                                       else "float64") for c in RING_COLUMNS})
    edges = pd.DataFrame({c: pd.Series([], dtype="float64" if c in ("count", "weight") else "str")
                          for c in EDGE_COLUMNS})
    return RingResult(members, rings, edges)


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _days(s: pd.Series) -> np.ndarray:
    return (s.to_numpy(dtype="datetime64[D]").astype("int64"))


def _month_index(s: pd.Series) -> np.ndarray:
    """'YYYY-MM' -> months since year 0 (NaN-safe: missing gives -1)."""
    text = s.fillna("0000-00").astype("str")
    y = pd.to_numeric(text.str.slice(0, 4), errors="coerce").fillna(0).to_numpy("int64")
    m = pd.to_numeric(text.str.slice(5, 7), errors="coerce").fillna(0).to_numpy("int64")
    out = y * 12 + m - 1
    return np.where(s.isna().to_numpy(), -1, out)


def _date_month(s: pd.Series) -> np.ndarray:
    """datetime -> months since year 0 (missing gives -1)."""
    per = s.dt.year.to_numpy(dtype="float64") * 12 + s.dt.month.to_numpy(dtype="float64") - 1
    return np.where(np.isnan(per), -1, per).astype("int64")


def _money(df: pd.DataFrame) -> np.ndarray:
    """Claimed amount, falling back to the amount when no claim is recorded."""
    claimed = df["claimed"] if "claimed" in df else pd.Series(np.nan, index=df.index)
    amount = df["amount"] if "amount" in df else pd.Series(np.nan, index=df.index)
    return claimed.fillna(amount).fillna(0.0).to_numpy("float64")


def _symmetric(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> sp.csr_matrix:
    a = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([src, dst]),
                                                np.concatenate([dst, src]))), shape=(n, n))
    return a.tocsr()


def _group(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, s: RingSettings,
           min_size: int | None = None) -> np.ndarray:
    """Group linked nodes: components, Leiden-split when too big or too sparse; -1 = no group."""
    min_size = s.min_ring_size if min_size is None else min_size
    labels = np.full(n, -1, dtype=np.int64)
    if len(src) == 0:
        return labels
    _, comp = connected_components(_symmetric(n, src, dst, w), directed=False)
    sizes = np.bincount(comp)
    n_edges = np.bincount(comp[src], minlength=len(sizes))
    possible = np.maximum(sizes * (sizes - 1) / 2, 1)
    density = n_edges / possible
    split = (sizes > s.max_ring_size) | ((sizes >= s.split_check_size) & (density < s.min_density))
    keep = ~split & (sizes >= min_size)
    labels = np.where(keep[comp], comp, -1)
    next_label = len(sizes)
    for c in np.flatnonzero(split):  # loops over oversized components only
        nodes = np.flatnonzero(comp == c)
        m = comp[src] == c
        pieces = _leiden(len(nodes), np.searchsorted(nodes, src[m]), np.searchsorted(nodes, dst[m]),
                         w[m], s)
        ok = pieces >= 0
        labels[nodes[ok]] = pieces[ok] + next_label
        next_label += int(pieces.max()) + 1 if len(pieces) else 0
    # Drop groups below the minimum size after splitting.
    valid = labels >= 0
    if valid.any():
        counts = np.bincount(labels[valid])
        small = counts[labels[valid]] < min_size
        idx = np.flatnonzero(valid)
        labels[idx[small]] = -1
    return labels


def _leiden(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, s: RingSettings) -> np.ndarray:
    """Seeded Leiden communities of one component; pieces above the cap are re-split or dropped."""
    import igraph as ig
    import leidenalg

    out = np.full(n, -1, dtype=np.int64)
    todo = [(np.arange(n), src, dst, w, s.leiden_resolution, 0)]
    label = 0
    while todo:
        nodes, a, b, ww, res, depth = todo.pop()
        g = ig.Graph(n=len(nodes), edges=np.column_stack([a, b]).tolist())
        part = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition,
                                        weights=ww.astype(float).tolist(),
                                        resolution_parameter=res, seed=s.seed)
        memb = np.asarray(part.membership, dtype=np.int64)
        for k in range(int(memb.max()) + 1 if len(memb) else 0):
            inside = np.flatnonzero(memb == k)
            if len(inside) <= s.max_ring_size:
                out[nodes[inside]] = label
                label += 1
            elif depth < s.leiden_retries and len(inside) < len(nodes):
                m = (memb[a] == k) & (memb[b] == k)
                todo.append((nodes[inside], np.searchsorted(inside, a[m]),
                             np.searchsorted(inside, b[m]), ww[m], res * 2, depth + 1))
            elif depth < s.leiden_retries:
                todo.append((nodes, a, b, ww, res * 2, depth + 1))
    return out


def _ring_keys(members: pd.DataFrame) -> pd.Series:
    """Deterministic ring id per local ring: type + hash of the sorted member list."""
    keyed = members.assign(key=members["entity_type"] + ":" + members["entity_id"])
    keyed = keyed.sort_values(["ring", "key"], kind="mergesort")
    joined = keyed.groupby("ring", sort=True)["key"].agg("\n".join)
    rtype = members.groupby("ring", sort=True)["ring_type"].first()
    digests = [hashlib.sha1(text.encode()).hexdigest()[:12] for text in joined.to_numpy()]
    return pd.Series([f"{t}-{d}" for t, d in zip(rtype.to_numpy(), digests)], index=joined.index)


# ---------------------------------------------------------------------------------------------
# Identity rings


def _identifier_rows(dataset: Dataset, types: tuple[str, ...]) -> pd.DataFrame:
    """(entity_type, entity_id, id_type, value) for every shared identifier of persons/employers."""
    frames = []
    for etype, table in (("person", "persons"), ("employer", "employers")):
        df = dataset.table(table)
        for col in types:
            if col not in df.columns:
                continue
            sub = df[[f"{etype}_id", col]].dropna()
            value = sub[col].astype("str").str.strip().str.casefold()
            frames.append(pd.DataFrame({
                "entity_type": etype, "entity_id": sub[f"{etype}_id"].astype("str").to_numpy(),
                "id_type": col, "value": value.to_numpy()}))
    if not frames:
        return pd.DataFrame(columns=["entity_type", "entity_id", "id_type", "value"], dtype="str")
    out = pd.concat(frames, ignore_index=True)
    return out[out["value"] != ""].drop_duplicates()


def _identifier_label(id_type: pd.Series, value: pd.Series) -> pd.Series:
    """A stable pseudonym for an identifier value, so evidence carries no personal data."""
    text = (id_type + _SEP + value).to_numpy()
    return pd.Series([f"{t}#{hashlib.sha1(x.encode()).hexdigest()[:10]}"
                      for t, x in zip(id_type.to_numpy(), text)], index=id_type.index)


def _identity_links(dataset: Dataset, s: RingSettings) -> tuple[pd.DataFrame, pd.Index, np.ndarray,
                                                             np.ndarray, np.ndarray] | None:
    """Entity pairs linked by shared phones / bank accounts, households excepted.

    Returns the identifier rows used, the node names ("type<SEP>id"), and link arrays
    (src, dst, weight) over node codes. Identifier values held by more than
    `identifier_max_degree` entities are too common to link anyone. Entities that also share an
    address are a household (an elder using a relative's phone, a couple's joint account) and are
    not linked; an address alone never links.
    """
    rows = _identifier_rows(dataset, IDENTIFIER_TYPES)
    if rows.empty:
        return None
    weights = {"phone": s.phone_weight, "bank_account": s.bank_account_weight,
               "address": s.address_weight}
    node, node_names = pd.factorize(rows["entity_type"] + _SEP + rows["entity_id"], sort=True)
    ident, _ = pd.factorize(rows["id_type"] + _SEP + rows["value"], sort=True)
    degree = np.bincount(ident)
    ok = (degree[ident] >= 2) & (degree[ident] <= s.identifier_max_degree)
    is_addr = (rows["id_type"] == "address").to_numpy()
    strong = ok & ~is_addr
    if not strong.any():
        return None
    shape = (len(node_names), degree.size)
    w = rows["id_type"].map(weights).fillna(0.0).to_numpy("float64")
    b = sp.csr_matrix((np.ones(strong.sum()), (node[strong], ident[strong])), shape=shape)
    bw = sp.csr_matrix((w[strong], (node[strong], ident[strong])), shape=shape)
    shared = sp.triu(bw @ b.T, k=1).tocoo()
    addr = is_addr & (degree[ident] >= 2)
    ba = sp.csr_matrix((np.ones(addr.sum()), (node[addr], ident[addr])), shape=shape)
    same_home = np.asarray((ba[shared.row].multiply(ba[shared.col])).sum(axis=1)).ravel() > 0
    link = (shared.data >= s.identity_min_link) & ~same_home
    return rows[strong], pd.Index(node_names), shared.row[link], shared.col[link], shared.data[link]


def _identity_rings(dataset: Dataset, s: RingSettings) -> _Found | None:
    got = _identity_links(dataset, s)
    if got is None:
        return None
    rows, node_names, src, dst, lw = got
    labels = _group(len(node_names), src, dst, lw, s, min_size=s.identity_min_size)
    if (labels < 0).all():
        return None
    nodes = pd.Series(node_names).str.split(_SEP, n=1, expand=True)
    in_ring = np.flatnonzero(labels >= 0)
    members = pd.DataFrame({"ring": labels[in_ring], "ring_type": "identity",
                            "entity_type": nodes[0].to_numpy()[in_ring],
                            "entity_id": nodes[1].to_numpy()[in_ring]})
    # Evidence: member -> identifier edges of identifiers shared inside the ring.
    er = rows.assign(ring=labels[node_names.get_indexer(rows["entity_type"] + _SEP + rows["entity_id"])])
    er = er[er["ring"] >= 0]
    per = er.groupby(["ring", "id_type", "value"])["entity_id"].transform("size")
    er = er[per >= 2]
    weights = {"phone": s.phone_weight, "bank_account": s.bank_account_weight}
    edges = pd.DataFrame({
        "ring": er["ring"].to_numpy(), "source_type": er["entity_type"].to_numpy(),
        "source_id": er["entity_id"].to_numpy(), "target_type": er["id_type"].to_numpy(),
        "target_id": _identifier_label(er["id_type"], er["value"]).to_numpy(),
        "relation": ("has_" + er["id_type"]).to_numpy(), "count": 1.0,
        "weight": er["id_type"].map(weights).to_numpy()})
    link_ring = labels[src]
    same = (link_ring >= 0) & (link_ring == labels[dst])
    strength = pd.Series(lw[same]).groupby(link_ring[same]).mean()
    kinds = er.groupby("ring")["id_type"].agg(lambda x: ", ".join(sorted(set(x))))
    counts = edges.groupby("ring")["target_id"].nunique()
    size = members.groupby("ring").size()
    # Money at stake: benefits drawn by ring members.
    ben = dataset.table("benefits")
    pm = members[members["entity_type"] == "person"].rename(columns={"entity_id": "person_id"})
    money = ben.merge(pm[["ring", "person_id"]], on="person_id").groupby("ring")["amount"].sum()
    info = pd.DataFrame({"ring": size.index, "ring_type": "identity"})
    info["strength"] = np.clip(strength.reindex(size.index).fillna(0).to_numpy() / 2.0, 0, 1)
    info["money_at_stake"] = money.reindex(size.index).fillna(0.0).to_numpy()
    info["why"] = [f"{n} persons/employers at different addresses share {c} phone or bank "
                   f"account value(s) ({k})"
                   for n, c, k in zip(size.to_numpy(), counts.reindex(size.index).fillna(0).astype(int),
                                      kinds.reindex(size.index).fillna(""))]
    return _Found(members, info, edges)


# ---------------------------------------------------------------------------------------------
# Collusion rings


def _covisits(dataset: Dataset, prescriptions: bool) -> tuple[pd.DataFrame, dict[str, pd.Index]] | None:
    """Distinct same-day (person, clinic, pharmacy, day) co-occurrences as integer codes."""
    visits = dataset.table("visits")
    purchases = dataset.table("purchases")
    if visits.empty and purchases["clinic_id"].isna().all():
        return None
    persons = pd.Index(dataset.entity_ids("person"))
    clinics = pd.Index(dataset.entity_ids("clinic"))
    pharmacies = pd.Index(dataset.entity_ids("pharmacy"))
    v = visits[visits["date"].notna()]
    p = purchases[purchases["date"].notna()]
    if p.empty:
        return None
    vp, vc, vd = persons.get_indexer(v["person_id"]), clinics.get_indexer(v["clinic_id"]), _days(v["date"])
    pp, pf, pd_ = persons.get_indexer(p["person_id"]), pharmacies.get_indexer(p["pharmacy_id"]), _days(p["date"])
    day0 = min(vd.min() if len(vd) else pd_.min(), pd_.min())
    span = int(max(vd.max() if len(vd) else pd_.max(), pd_.max()) - day0 + 1)
    vk = vp.astype("int64") * span + (vd - day0)
    pk = pp.astype("int64") * span + (pd_ - day0)
    left = pd.DataFrame({"k": vk, "c": vc}).drop_duplicates()
    right = pd.DataFrame({"k": pk, "f": pf}).drop_duplicates()
    same_day = left.merge(right, on="k")
    frames = [same_day]
    rx = p["clinic_id"].notna().to_numpy() & prescriptions
    if rx.any():
        frames.append(pd.DataFrame({"k": pk[rx], "c": clinics.get_indexer(p["clinic_id"][rx]),
                                    "f": pf[rx]}))
    t = pd.concat(frames, ignore_index=True).drop_duplicates()
    t = pd.DataFrame({"p": t["k"].to_numpy() // span, "c": t["c"].to_numpy(),
                      "f": t["f"].to_numpy(), "d": t["k"].to_numpy() % span + day0})
    # Marginals for lift: distinct person-days at each clinic / pharmacy, and overall.
    marg = {"clinic_days": np.bincount(left["c"].to_numpy(), minlength=len(clinics)),
            "pharmacy_days": np.bincount(right["f"].to_numpy(), minlength=len(pharmacies)),
            "person_days": len(np.union1d(vk, pk))}
    return t, {"persons": persons, "clinics": clinics, "pharmacies": pharmacies, **marg}


def _collusion_rings(dataset: Dataset, s: RingSettings) -> _Found | None:
    got = _covisits(dataset, s.prescription_is_visit)
    if got is None:
        return None
    t, ctx = got
    if t.empty:
        return None
    nf = len(ctx["pharmacies"])
    cf = t["c"].to_numpy().astype("int64") * nf + t["f"].to_numpy()
    # Lift of each clinic-pharmacy pair: same-day patient-days vs. independence.
    pair_codes, pair_keys = pd.factorize(cf, sort=True)
    pair_days = np.bincount(pair_codes)
    pc, pf = pair_keys // nf, pair_keys % nf
    expected = (ctx["clinic_days"][pc].astype(float) * ctx["pharmacy_days"][pf]
                / max(ctx["person_days"], 1))
    lift = pair_days / np.maximum(expected, 1e-9)
    # Slots: (person, pair) seen on >= k days at a pair with enough lift.
    slot_key = t["p"].to_numpy().astype("int64") * len(pair_keys) + pair_codes
    slot, slot_keys = pd.factorize(slot_key, sort=True)
    slot_days = np.bincount(slot)
    keep = (slot_days[slot] >= s.min_covisit_days) & (lift[pair_codes] >= s.min_pair_lift)
    if not keep.any():
        return None
    d = t["d"].to_numpy()
    event_key = pair_codes[keep].astype("int64") * (int(d.max() - d.min()) + 1) + (d[keep] - d.min())
    event, _ = pd.factorize(event_key, sort=True)
    event_size = np.bincount(event)
    ok = event_size[event] <= s.max_event_persons
    slot_k, slot_ids = pd.factorize(slot[keep][ok], sort=True)
    ev = event[ok]
    b = sp.csr_matrix((np.ones(len(ev), dtype=np.float32), (slot_k, ev)),
                      shape=(len(slot_ids), event_size.size))
    co = sp.triu(b @ b.T, k=1).tocoo()
    days_at = slot_days[slot_ids]
    same_pair = (slot_keys[slot_ids[co.row]] % len(pair_keys)) == (slot_keys[slot_ids[co.col]] % len(pair_keys))
    smaller = np.minimum(days_at[co.row], days_at[co.col])
    link = same_pair & (co.data >= s.min_covisit_days) & (co.data >= s.min_covisit_overlap * smaller)
    if not link.any():
        return None
    a_person = slot_keys[slot_ids[co.row[link]]] // len(pair_keys)
    b_person = slot_keys[slot_ids[co.col[link]]] // len(pair_keys)
    link_pair = slot_keys[slot_ids[co.row[link]]] % len(pair_keys)
    shared = co.data[link].astype("float64")
    # Group persons on the weighted projection (summed over pairs).
    proj = pd.DataFrame({"a": a_person, "b": b_person, "w": shared}).groupby(["a", "b"], as_index=False)["w"].sum()
    nodes = np.union1d(proj["a"], proj["b"])
    labels_local = _group(len(nodes), np.searchsorted(nodes, proj["a"]), np.searchsorted(nodes, proj["b"]),
                          proj["w"].to_numpy(), s)
    ring_of = pd.Series(labels_local, index=nodes)
    ra = ring_of.reindex(a_person).to_numpy()
    rb = ring_of.reindex(b_person).to_numpy()
    inside = (ra >= 0) & (ra == rb)
    if not inside.any():
        return None
    # Pairs (clinic, pharmacy) that carry a real share of each ring's links.
    pw = pd.DataFrame({"ring": ra[inside], "pair": link_pair[inside], "w": shared[inside]})
    pw = pw.groupby(["ring", "pair"], as_index=False)["w"].sum()
    pw["share"] = pw["w"] / pw.groupby("ring")["w"].transform("sum")
    pw = pw[pw["share"] >= s.pair_share]
    persons, clinics, pharmacies = ctx["persons"], ctx["clinics"], ctx["pharmacies"]
    in_ring = ring_of[ring_of >= 0]
    person_members = pd.DataFrame({"ring": in_ring.to_numpy(), "entity_type": "person",
                                   "entity_id": persons[in_ring.index].to_numpy()})
    pk = pair_keys[pw["pair"].to_numpy()]
    clinic_members = pd.DataFrame({"ring": pw["ring"].to_numpy(), "entity_type": "clinic",
                                   "entity_id": clinics[pk // nf].to_numpy()})
    pharmacy_members = pd.DataFrame({"ring": pw["ring"].to_numpy(), "entity_type": "pharmacy",
                                     "entity_id": pharmacies[pk % nf].to_numpy()})
    members = pd.concat([person_members, clinic_members, pharmacy_members], ignore_index=True)
    members = members.drop_duplicates().assign(ring_type="collusion")
    # Evidence: person -> clinic and person -> pharmacy edges counted in co-visit days, plus
    # person -> person edges counted in shared co-visit days.
    t_pair = pair_codes
    tr = pd.DataFrame({"p": t["p"].to_numpy(), "pair": t_pair, "d": d})
    tr = tr.merge(pd.DataFrame({"p": in_ring.index.to_numpy(), "ring": in_ring.to_numpy()}), on="p")
    tr = tr.merge(pw[["ring", "pair"]], on=["ring", "pair"])
    per = tr.groupby(["ring", "p", "pair"], as_index=False).size()
    ppk = pair_keys[per["pair"].to_numpy()]
    pid = persons[per["p"].to_numpy()].to_numpy()
    e1 = pd.DataFrame({"ring": per["ring"].to_numpy(), "source_type": "person", "source_id": pid,
                       "target_type": "clinic", "target_id": clinics[ppk // nf].to_numpy(),
                       "relation": "covisit_days", "count": per["size"].to_numpy(float), "weight": 1.0})
    e2 = e1.assign(target_type="pharmacy", target_id=pharmacies[ppk % nf].to_numpy())
    pp = pd.DataFrame({"ring": ra[inside], "a": a_person[inside], "b": b_person[inside], "w": shared[inside]})
    pp = pp.groupby(["ring", "a", "b"], as_index=False)["w"].sum()
    e3 = pd.DataFrame({"ring": pp["ring"].to_numpy(), "source_type": "person",
                       "source_id": persons[pp["a"].to_numpy()].to_numpy(), "target_type": "person",
                       "target_id": persons[pp["b"].to_numpy()].to_numpy(),
                       "relation": "same_day_covisits", "count": pp["w"].to_numpy(), "weight": 1.0})
    edges = pd.concat([e1, e2, e3], ignore_index=True)
    # FRAUDAR-like strength: weighted person x event density with weights 1/log(size + c).
    all_event_size = tr.groupby(["pair", "d"])["p"].transform("size") if len(tr) else pd.Series([], dtype=float)
    tr = tr.assign(w=1.0 / np.log(all_event_size.to_numpy(float) + s.fraudar_c))
    g = tr.groupby("ring")
    fraudar = g["w"].sum() / (g["p"].nunique() + g[["pair", "d"]].value_counts().groupby("ring").size())
    # Money at stake: ring persons' claims at the ring clinics and pharmacies on co-visit days.
    money = _collusion_money(dataset, tr, ctx, pair_keys, nf)
    ring_lift = pw.assign(lift=lift[pw["pair"].to_numpy()]).groupby("ring")["lift"].max()
    covisit = per.groupby("ring")["size"].median()
    size = members.groupby("ring").size()
    n_p = person_members.groupby("ring").size().reindex(size.index).fillna(0).astype(int)
    info = pd.DataFrame({"ring": size.index, "ring_type": "collusion"})
    info["strength"] = (1 - np.exp(-fraudar.reindex(size.index).fillna(0).to_numpy())).clip(0, 1)
    info["money_at_stake"] = money.reindex(size.index).fillna(0.0).to_numpy()
    info["why"] = [f"{n} persons repeatedly visit the same clinic and buy at the same pharmacy on "
                   f"the same days (median {c:.0f} shared days each; the clinic-pharmacy pair has "
                   f"{lf:.0f}x the same-day patients its sizes predict)"
                   for n, c, lf in zip(n_p.to_numpy(), covisit.reindex(size.index).fillna(0).to_numpy(),
                                       ring_lift.reindex(size.index).fillna(0).to_numpy())]
    return _Found(members, info, edges)


def _collusion_money(dataset: Dataset, tr: pd.DataFrame, ctx: dict, pair_keys: np.ndarray,
                     nf: int) -> pd.Series:
    """Claims of ring persons at ring clinics / pharmacies on their co-visit days."""
    if tr.empty:
        return pd.Series(dtype=float)
    days = tr.drop_duplicates(["ring", "p", "pair", "d"])
    pk = pair_keys[days["pair"].to_numpy()]
    key_c = pd.DataFrame({"ring": days["ring"].to_numpy(), "p": days["p"].to_numpy(),
                          "x": pk // nf, "d": days["d"].to_numpy()}).drop_duplicates()
    key_f = key_c.assign(x=pk % nf).drop_duplicates()
    total = pd.Series(dtype=float)
    for table, col, idx, keys in (("visits", "clinic_id", ctx["clinics"], key_c),
                                  ("purchases", "pharmacy_id", ctx["pharmacies"], key_f)):
        df = dataset.table(table)
        df = df[df["date"].notna()]
        ev = pd.DataFrame({"p": ctx["persons"].get_indexer(df["person_id"]),
                           "x": idx.get_indexer(df[col]), "d": _days(df["date"]), "m": _money(df)})
        got = ev.merge(keys, on=["p", "x", "d"]).groupby("ring")["m"].sum()
        total = total.add(got, fill_value=0.0)
    return total


# ---------------------------------------------------------------------------------------------
# Fake-enrolment rings


def _enrolment_rings(dataset: Dataset, s: RingSettings) -> _Found | None:
    emp = dataset.table("employment")
    links = dataset.table("agency_links")
    contrib = dataset.table("contributions")
    if emp.empty and contrib.empty:
        return None
    agency_employer = pd.concat([
        links.loc[links["entity_type"] == "employer", ["agency_id", "entity_id"]]
        .rename(columns={"entity_id": "employer_id"}),
        emp.loc[emp["agency_id"].notna(), ["agency_id", "employer_id"]],
    ], ignore_index=True).drop_duplicates()
    if agency_employer.empty:
        return None
    # Spells per (employer, person): months of contributions, else employment duration.
    spells = pd.concat([emp[["employer_id", "person_id"]], contrib[["employer_id", "person_id"]]],
                       ignore_index=True).drop_duplicates()
    cm = contrib.assign(mi=_month_index(contrib["month"]))
    cstat = cm.groupby(["employer_id", "person_id"]).agg(first=("mi", "min"), last=("mi", "max"))
    est = emp.assign(s=_date_month(emp["start_date"]), e=_date_month(emp["end_date"]))
    est = est.assign(e=est["e"].where(emp["end_date"].notna(), np.iinfo(np.int64).max))
    est = est.groupby(["employer_id", "person_id"]).agg(start=("s", "min"), end=("e", "max"))
    spells = spells.join(cstat, on=["employer_id", "person_id"]).join(est, on=["employer_id", "person_id"])
    # Spell start and end: employment dates when known, else the contribution months. A spell
    # still running (no end date, or contributions up to the last month on file) is not short.
    last_month = int(cm["mi"].max()) if len(cm) else -1
    start = spells["start"].where(spells["start"] >= 0, spells["first"]).where(lambda x: x >= 0)
    end = spells["end"].where(spells["end"].notna() & (spells["start"] >= 0), spells["last"])
    ended = end.notna() & (end < np.iinfo(np.int64).max) & ~(spells["end"].isna() & (spells["last"] >= last_month))
    length = end.where(ended) - start + 1
    short = (ended & (length <= s.short_spell_months)).fillna(False)
    ben = dataset.table("benefits")
    first_claim = pd.Series(_month_index(ben["month"]), index=ben.index).groupby(ben["person_id"].to_numpy()).min()
    claim = spells["person_id"].map(first_claim)
    early = ((claim - start) <= s.early_claim_months) & ((claim - start) >= 0)
    spells["suspicious"] = (short | early.fillna(False)).to_numpy()
    spells["early"] = early.fillna(False).to_numpy()
    spells["short"] = short.to_numpy()
    per_emp = spells.groupby("employer_id").agg(enrolees=("person_id", "nunique"),
                                                suspicious=("suspicious", "sum"))
    shell = per_emp[(per_emp["suspicious"] >= s.shell_min_enrolees)
                    & (per_emp["suspicious"] / per_emp["enrolees"] >= s.shell_min_share)]
    ae = agency_employer[agency_employer["employer_id"].isin(shell.index)]
    n_shells = ae.groupby("agency_id")["employer_id"].nunique()
    agencies = n_shells[n_shells >= s.enrolment_min_shells].index
    ae = ae[ae["agency_id"].isin(agencies)]
    if ae.empty:
        return None
    # An employer tied to several qualifying agencies goes to the one with the most shells.
    ae = ae.assign(n=ae["agency_id"].map(n_shells)).sort_values(
        ["employer_id", "n", "agency_id"], ascending=[True, False, True], kind="mergesort")
    ae = ae.drop_duplicates("employer_id")[["agency_id", "employer_id"]]
    sus = spells[spells["suspicious"] & spells["employer_id"].isin(ae["employer_id"])]
    ep = sus.merge(ae, on="employer_id")[["agency_id", "employer_id", "person_id", "early", "short"]]
    # Graph over agency, employer and person nodes; grouped like every other ring type.
    keys = pd.concat([("agency" + _SEP + ae["agency_id"]), ("employer" + _SEP + ae["employer_id"]),
                      ("person" + _SEP + ep["person_id"])], ignore_index=True)
    names = pd.Index(np.unique(keys.to_numpy().astype(str)))
    src = np.concatenate([names.get_indexer("agency" + _SEP + ae["agency_id"]),
                          names.get_indexer("employer" + _SEP + ep["employer_id"])])
    dst = np.concatenate([names.get_indexer("employer" + _SEP + ae["employer_id"]),
                          names.get_indexer("person" + _SEP + ep["person_id"])])
    # Star-shaped rings are sparse by nature: only the size cap triggers a split here.
    star = RingSettings(**{**s.__dict__, "min_density": 0.0})
    labels = _group(len(names), src, dst, np.ones(len(src)), star)
    nodes = pd.Series(names).str.split(_SEP, n=1, expand=True)
    in_ring = np.flatnonzero(labels >= 0)
    if not len(in_ring):
        return None
    members = pd.DataFrame({"ring": labels[in_ring], "ring_type": "enrolment",
                            "entity_type": nodes[0].to_numpy()[in_ring],
                            "entity_id": nodes[1].to_numpy()[in_ring]})
    ring_of = pd.Series(labels, index=names)
    e1 = pd.DataFrame({"ring": ring_of.reindex("agency" + _SEP + ae["agency_id"]).to_numpy(),
                       "source_type": "agency", "source_id": ae["agency_id"].to_numpy(),
                       "target_type": "employer", "target_id": ae["employer_id"].to_numpy(),
                       "relation": "agency_employer", "count": 1.0, "weight": 1.0})
    e2 = pd.DataFrame({"ring": ring_of.reindex("person" + _SEP + ep["person_id"]).to_numpy(),
                       "source_type": "employer", "source_id": ep["employer_id"].to_numpy(),
                       "target_type": "person", "target_id": ep["person_id"].to_numpy(),
                       "relation": np.where(ep["early"], "early_claim", "short_spell"),
                       "count": 1.0, "weight": 1.0})
    edges = pd.concat([e1, e2], ignore_index=True)
    edges = edges[edges["ring"] >= 0]
    # Money at stake: benefits drawn by ring persons.
    pm = members[members["entity_type"] == "person"]
    money = ben.merge(pm.rename(columns={"entity_id": "person_id"}), on="person_id").groupby("ring")["amount"].sum()
    size = members.groupby("ring").size()
    counts = members.groupby(["ring", "entity_type"]).size().unstack(fill_value=0)
    n_emp = counts.get("employer", pd.Series(0, index=counts.index)).reindex(size.index).fillna(0)
    n_per = counts.get("person", pd.Series(0, index=counts.index)).reindex(size.index).fillna(0)
    early_share = edges[edges["relation"] != "agency_employer"].assign(
        e=lambda x: x["relation"] == "early_claim").groupby("ring")["e"].mean()
    info = pd.DataFrame({"ring": size.index, "ring_type": "enrolment"})
    info["strength"] = np.clip(n_emp.to_numpy() / (2.0 * s.enrolment_min_shells), 0, 1) * 0.5 + 0.5
    info["money_at_stake"] = money.reindex(size.index).fillna(0.0).to_numpy()
    info["why"] = [f"one agency placed {int(p)} persons into {int(e)} employers where most enrolees "
                   f"have short contribution spells or claim benefits soon after enrolling "
                   f"({es:.0%} claimed early)"
                   for p, e, es in zip(n_per.to_numpy(), n_emp.to_numpy(),
                                       early_share.reindex(size.index).fillna(0).to_numpy())]
    return _Found(members, info, edges)


# ---------------------------------------------------------------------------------------------
# Broker rings


def _broker_rings(dataset: Dataset, s: RingSettings) -> _Found | None:
    purchases = dataset.table("purchases")
    got = _identity_links(dataset, s)
    if purchases.empty or got is None:
        return None
    rows, node_names, src, dst, lw = got
    person_nodes = node_names.str.startswith("person" + _SEP)
    keep_link = person_nodes[src] & person_nodes[dst]
    src, dst, lw = src[keep_link], dst[keep_link], lw[keep_link]
    labels = _group(len(node_names), src, dst, lw, s, min_size=s.broker_min_cards)
    if (labels < 0).all():
        return None
    in_ring = np.flatnonzero(labels >= 0)
    ring_of = pd.DataFrame({"person_id": node_names[in_ring].str.slice(len("person" + _SEP)),
                            "ring": labels[in_ring]})
    pur = purchases.assign(m=_money(purchases)).merge(ring_of, on="person_id")
    # Cards of one group buying at one pharmacy on one day ("several cards on one day").
    together = pur[pur["date"].notna()].groupby(["ring", "pharmacy_id", "date"])["person_id"].nunique()
    together = together[together >= 2].groupby("ring").size()
    spread = pur.groupby("ring")["pharmacy_id"].nunique()
    stats = pd.DataFrame({"together": together, "spread": spread}).fillna(0)
    good = stats[(stats["together"] >= s.broker_min_codays)
                 & (stats["spread"] >= s.broker_min_pharmacies)].index.to_numpy()
    if not len(good):
        return None
    ring_of = ring_of[ring_of["ring"].isin(good)]
    members = pd.DataFrame({"ring": ring_of["ring"].to_numpy(), "ring_type": "broker",
                            "entity_type": "person", "entity_id": ring_of["person_id"].to_numpy()})
    er = rows.merge(ring_of.rename(columns={"person_id": "entity_id"}), on="entity_id")
    er = er[er["entity_type"] == "person"]
    er = er[er.groupby(["ring", "id_type", "value"])["entity_id"].transform("size") >= 2]
    e1 = pd.DataFrame({"ring": er["ring"].to_numpy(), "source_type": "person",
                       "source_id": er["entity_id"].to_numpy(), "target_type": er["id_type"].to_numpy(),
                       "target_id": _identifier_label(er["id_type"], er["value"]).to_numpy(),
                       "relation": ("has_" + er["id_type"]).to_numpy(), "count": 1.0, "weight": 1.0})
    bought = pur[pur["ring"].isin(good)].groupby(["ring", "person_id", "pharmacy_id"], as_index=False).size()
    e2 = pd.DataFrame({"ring": bought["ring"].to_numpy(), "source_type": "person",
                       "source_id": bought["person_id"].to_numpy(), "target_type": "pharmacy",
                       "target_id": bought["pharmacy_id"].to_numpy(), "relation": "purchases",
                       "count": bought["size"].to_numpy(float), "weight": 1.0})
    edges = pd.concat([e1, e2], ignore_index=True)
    money = pur[pur["ring"].isin(good)].groupby("ring")["m"].sum()
    size = members.groupby("ring").size()
    st = stats.reindex(size.index)
    info = pd.DataFrame({"ring": size.index, "ring_type": "broker"})
    info["strength"] = np.clip(st["spread"].to_numpy() / (2.0 * s.broker_min_pharmacies), 0, 1)
    info["money_at_stake"] = money.reindex(size.index).fillna(0.0).to_numpy()
    info["why"] = [f"{n} cards tied to one phone or bank account buy across {int(k)} pharmacies, "
                   f"several cards together on {int(t)} pharmacy-days"
                   for n, k, t in zip(size.to_numpy(), st["spread"].to_numpy(), st["together"].to_numpy())]
    return _Found(members, info, edges)


# ---------------------------------------------------------------------------------------------
# Facility rings


_FACILITY_KINDS = {"split_admission": "clinic", "phantom_stay": "clinic", "over_prescribing": "pharmacy"}


def _facility_events(dataset: Dataset, s: RingSettings) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """Rule hits tied to one facility: (kind, f, p, money) rows over integer codes.

    - split_admission: an inpatient readmission at the same clinic with the same diagnosis
      within `readmit_days` of the previous discharge (facility: that clinic);
    - phantom_stay: an outpatient visit or a pharmacy purchase strictly between admission and
      discharge of an inpatient stay (facility: the clinic of the stay);
    - over_prescribing: a purchase of a drug while an earlier purchase of the same drug by the
      same person, of more than `oversupply_min_days` days' supply, still covers that day
      (facility: the pharmacy that sold it). Regular 14- or 28-day refills that do not overlap
      never count.

    Also returns the facility bases for the population rate: distinct inpatients per clinic and
    distinct customers per pharmacy.
    """
    persons = pd.Index(dataset.entity_ids("person"))
    clinics = pd.Index(dataset.entity_ids("clinic"))
    pharmacies = pd.Index(dataset.entity_ids("pharmacy"))
    visits = dataset.table("visits")
    purchases = dataset.table("purchases")
    frames = []
    v = visits[visits["date"].notna()]
    vp = persons.get_indexer(v["person_id"])
    vc = clinics.get_indexer(v["clinic_id"])
    vd = _days(v["date"])
    out = np.where(v["discharge_date"].notna().to_numpy(),
                   _days(v["discharge_date"].fillna(v["date"])), vd)
    kind = v["kind"].fillna("").astype("str").str.strip().str.lower().to_numpy()
    inpatient = (kind == "inpatient") | (v["discharge_date"].notna().to_numpy() & (kind != "outpatient"))
    inpatient &= (vp >= 0) & (vc >= 0)
    vm = _money(v)
    stays = pd.DataFrame({"p": vp[inpatient], "f": vc[inpatient], "a": vd[inpatient],
                          "o": np.maximum(out[inpatient], vd[inpatient]),
                          "dx": v["diagnosis"].fillna("").astype("str").to_numpy()[inpatient],
                          "m": vm[inpatient]})
    # Split admissions: previous stay of the same person, clinic and diagnosis.
    if len(stays):
        st = stays[stays["dx"] != ""].sort_values(["p", "f", "dx", "a", "o", "m"], kind="mergesort")
        same = ((st["p"].to_numpy()[1:] == st["p"].to_numpy()[:-1])
                & (st["f"].to_numpy()[1:] == st["f"].to_numpy()[:-1])
                & (st["dx"].to_numpy()[1:] == st["dx"].to_numpy()[:-1]))
        gap = st["a"].to_numpy()[1:] - st["o"].to_numpy()[:-1]
        later = st["a"].to_numpy()[1:] > st["a"].to_numpy()[:-1]
        hit = np.zeros(len(st), dtype=bool)   # st may be empty: every stay without diagnosis
        hit[1:] = same & (gap <= s.readmit_days) & later
        frames.append(pd.DataFrame({"kind": "split_admission", "f": st["f"].to_numpy()[hit],
                                    "p": st["p"].to_numpy()[hit], "m": st["m"].to_numpy()[hit]}))
        # Phantom stays: other activity of the person strictly inside the stay.
        who = np.unique(stays["p"].to_numpy())
        ok_v = ~inpatient & (vp >= 0) & np.isin(vp, who)
        p = purchases[purchases["date"].notna()]
        pp = persons.get_indexer(p["person_id"])
        ok_p = (pp >= 0) & np.isin(pp, who)
        ev = pd.DataFrame({"p": np.r_[vp[ok_v], pp[ok_p]], "d": np.r_[vd[ok_v], _days(p["date"])[ok_p]]})
        ev = ev.drop_duplicates()
        hit = ev.merge(stays[["p", "f", "a", "o", "m"]], on="p")
        hit = hit[(hit["d"] > hit["a"]) & (hit["d"] < hit["o"])]
        hit = hit.sort_values(["p", "f", "a", "o", "m"], kind="mergesort").drop_duplicates(["p", "f", "a"])
        frames.append(pd.DataFrame({"kind": "phantom_stay", "f": hit["f"].to_numpy(),
                                    "p": hit["p"].to_numpy(), "m": hit["m"].to_numpy()}))
    # Over-prescribing: overlapping long supplies of one drug.
    pu = purchases[purchases["date"].notna() & purchases["drug_code"].notna()
                   & purchases["days_supply"].notna()]
    if len(pu):
        q = pd.DataFrame({"p": persons.get_indexer(pu["person_id"]),
                          "f": pharmacies.get_indexer(pu["pharmacy_id"]),
                          "drug": pu["drug_code"].astype("str").to_numpy(), "d": _days(pu["date"]),
                          "sup": pu["days_supply"].to_numpy("float64"), "m": _money(pu)})
        q = q[(q["p"] >= 0) & (q["f"] >= 0)]
        # Only persons with some long supply can overlap one.
        q = q[q["p"].isin(q.loc[q["sup"] > s.oversupply_min_days, "p"].unique())]
        q = q.sort_values(["p", "drug", "d", "f", "sup", "m"], kind="mergesort")
        qp, qdrug = q["p"].to_numpy(), q["drug"].to_numpy()
        same = (qp[1:] == qp[:-1]) & (qdrug[1:] == qdrug[:-1])
        prev_sup = q["sup"].to_numpy()[:-1]
        covers = q["d"].to_numpy()[:-1] + prev_sup > q["d"].to_numpy()[1:]
        hit = np.zeros(len(q), dtype=bool)   # q may be empty: no long supply
        hit[1:] = same & (prev_sup > s.oversupply_min_days) & covers
        frames.append(pd.DataFrame({"kind": "over_prescribing", "f": q["f"].to_numpy()[hit],
                                    "p": q["p"].to_numpy()[hit], "m": q["m"].to_numpy()[hit]}))
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    events = pd.concat(frames, ignore_index=True)
    events["ftype"] = events["kind"].map(_FACILITY_KINDS)
    # Bases: distinct inpatients per clinic; distinct customers per pharmacy.
    inp = pd.DataFrame({"p": stays["p"], "f": stays["f"]}).drop_duplicates()
    cust = pd.DataFrame({"p": persons.get_indexer(purchases["person_id"]),
                         "f": pharmacies.get_indexer(purchases["pharmacy_id"])}).drop_duplicates()
    cust = cust[(cust["p"] >= 0) & (cust["f"] >= 0)]
    ctx = {"person": persons, "clinic": clinics, "pharmacy": pharmacies,
           "base": {"clinic": np.bincount(inp["f"].to_numpy(), minlength=len(clinics)),
                    "pharmacy": np.bincount(cust["f"].to_numpy(), minlength=len(pharmacies))}}
    return events, ctx


def _facility_rings(dataset: Dataset, s: RingSettings) -> _Found | None:
    """A clinic or pharmacy plus the persons whose rule hits concentrate there.

    Per facility and kind of hit, the persons with such hits there (and at least
    `facility_min_concentration` of their hits of that kind there, so a lone over-supplied
    customer shopping around is not pinned on one pharmacy; for over-prescribing at least
    `oversupply_min_hits` overlapping refills there) are compared with the population
    rate of the same kind over the same base (inpatients of a clinic, customers of a pharmacy),
    leaving the facility itself out of the rate. A facility is a ring when the count reaches
    `facility_min_persons`, is `facility_min_lift` times the expected count, and its Poisson
    tail is at most `facility_alpha` / (facilities of its type): a big hospital with a few
    legitimate readmissions has a large base and so a large expected count, and is not a ring.
    """
    from scipy.stats import poisson

    got = _facility_events(dataset, s)
    if got is None:
        return None
    ev, ctx = got
    per = ev.groupby(["kind", "ftype", "f", "p"], as_index=False).agg(n=("m", "size"), m=("m", "sum"))
    per["conc"] = per["n"] / per.groupby(["kind", "p"])["n"].transform("sum")
    per = per[(per["conc"] >= s.facility_min_concentration)
              & ((per["kind"] != "over_prescribing") | (per["n"] >= s.oversupply_min_hits))]
    obs = per.groupby(["kind", "ftype", "f"], as_index=False).agg(obs=("p", "size"))
    total = obs.groupby("kind")["obs"].transform("sum").to_numpy(float)
    base = np.zeros(len(obs))
    base_total = np.zeros(len(obs))
    for ft in ("clinic", "pharmacy"):
        sel = (obs["ftype"] == ft).to_numpy()
        base[sel] = ctx["base"][ft][obs.loc[sel, "f"].to_numpy()]
        base_total[sel] = ctx["base"][ft].sum()
    base = np.maximum(base, obs["obs"].to_numpy(float))   # a base never below its own hits
    n_tested = obs["ftype"].map({t: max(len(ctx[t]), 1) for t in ("clinic", "pharmacy")}).to_numpy()
    kind_code, _ = pd.factorize(obs["kind"])
    count = obs["obs"].to_numpy(float)
    # Population rate of each kind, leaving out the facility itself and the facilities already
    # found to be rings (rings must not raise their own yardstick); repeated until stable.
    ring = np.zeros(len(obs), dtype=bool)
    for _ in range(5):
        out_obs = np.bincount(kind_code, weights=count * ring)[kind_code]
        out_base = np.bincount(kind_code, weights=base * ring)[kind_code]
        num = total - out_obs - np.where(ring, 0.0, count)
        den = base_total - out_base - np.where(ring, 0.0, base)
        rate = np.maximum(num, 0.0) / np.maximum(den, 1.0)
        rate = np.maximum(rate, 1.0 / np.maximum(base_total, 1.0))
        lam = rate * base
        pvalue = poisson.sf(count - 1, lam)
        lift = count / np.maximum(lam, 1e-12)
        new = ((count >= s.facility_min_persons) & (lift >= s.facility_min_lift)
               & (pvalue <= s.facility_alpha / n_tested))
        if (new == ring).all():
            break
        ring = new
    obs["expected"] = lam
    obs["lift"] = lift
    obs["pvalue"] = pvalue
    obs["share"] = obs["obs"] / base
    ring_kinds = obs[new]
    if ring_kinds.empty:
        return None
    fac = ring_kinds[["ftype", "f"]].drop_duplicates().sort_values(["ftype", "f"], kind="mergesort")
    fac = fac.reset_index(drop=True).assign(ring=lambda x: np.arange(len(x)))
    # Members: the facility and the persons with hits of any kind concentrated there.
    mp = per.merge(fac, on=["ftype", "f"])
    mp = mp.groupby(["ring", "ftype", "f", "p"], as_index=False).agg(n=("n", "sum"), m=("m", "sum"))
    # Above the cap, keep the persons with the most hits (ties by person code: deterministic).
    mp = mp.sort_values(["ring", "n", "p"], ascending=[True, False, True], kind="mergesort")
    mp = mp[mp.groupby("ring").cumcount() < s.max_ring_size - 1]
    fac_ids = np.array([ctx[t][f] for t, f in zip(fac["ftype"], fac["f"])], dtype=object)  # per ring
    fac = fac.assign(fid=fac_ids)
    mp = mp.merge(fac[["ring", "fid"]], on="ring")
    pid = ctx["person"][mp["p"].to_numpy()].to_numpy()
    members = pd.concat([
        pd.DataFrame({"ring": fac["ring"].to_numpy(), "entity_type": fac["ftype"].to_numpy(),
                      "entity_id": fac["fid"].to_numpy()}),
        pd.DataFrame({"ring": mp["ring"].to_numpy(), "entity_type": "person", "entity_id": pid}),
    ], ignore_index=True).drop_duplicates().assign(ring_type="facility")
    # Evidence: person -> facility edges, one per kind of hit, counted in hits.
    ek = per.merge(fac, on=["ftype", "f"])
    ek = ek.merge(mp[["ring", "p"]], on=["ring", "p"])
    edges = pd.DataFrame({"ring": ek["ring"].to_numpy(), "source_type": "person",
                          "source_id": ctx["person"][ek["p"].to_numpy()].to_numpy(),
                          "target_type": ek["ftype"].to_numpy(), "target_id": ek["fid"].to_numpy(),
                          "relation": ek["kind"].to_numpy(), "count": ek["n"].to_numpy(float),
                          "weight": 1.0})
    rk = ring_kinds.merge(fac, on=["ftype", "f"])
    best = rk.sort_values(["ring", "pvalue"], kind="mergesort").drop_duplicates("ring").set_index("ring")
    money = mp.groupby("ring")["m"].sum()
    n_p = mp.groupby("ring").size()
    what = {"split_admission": "same-diagnosis readmissions within {d} days",
            "phantom_stay": "visits or purchases during their inpatient stay",
            "over_prescribing": "overlapping supplies of one drug above {o:g} days"}
    info = pd.DataFrame({"ring": fac["ring"].to_numpy(), "ring_type": "facility"})
    pv = best["pvalue"].reindex(info["ring"]).to_numpy()
    info["strength"] = np.clip(-np.log10(np.maximum(pv, 1e-300)) / 10.0, 0, 1)
    info["money_at_stake"] = money.reindex(info["ring"]).fillna(0.0).to_numpy()
    info["why"] = [
        f"{int(n)} of the {ft}'s {'inpatients' if ft == 'clinic' else 'customers'} have "
        f"{what[k].format(d=s.readmit_days, o=s.oversupply_min_days)} there "
        f"({sh:.1%} of {int(b)}; {lf:.0f}x the {ex:.2f} expected at the population rate)"
        for n, ft, k, sh, b, lf, ex in zip(
            n_p.reindex(info["ring"]).fillna(0).to_numpy(), fac["ftype"], best["kind"].reindex(info["ring"]),
            best["share"].reindex(info["ring"]), (best["obs"] / best["share"]).reindex(info["ring"]),
            best["lift"].reindex(info["ring"]), best["expected"].reindex(info["ring"]))]
    return _Found(members, info, edges)


# ---------------------------------------------------------------------------------------------
# Scoring and assembly


_TYPE_PRIORITY = {"collusion": 0, "enrolment": 1, "facility": 2, "broker": 3, "identity": 4}  # as scoring.RING_PREFERENCE


def _duplicates(members: pd.DataFrame, s: RingSettings) -> np.ndarray:
    """Rings that mostly repeat a ring of a more specific type (e.g. a broker's cards sharing a
    phone are also an identity group): the more specific one is kept."""
    key, _ = pd.factorize(members["entity_type"] + ":" + members["entity_id"])
    ring, ring_ids = pd.factorize(members["ring"], sort=True)
    m = sp.csr_matrix((np.ones(len(key)), (ring, key)), shape=(len(ring_ids), int(key.max()) + 1))
    size = np.asarray(m.sum(axis=1)).ravel()
    inter = sp.triu(m @ m.T, k=1).tocoo()
    rtype = members.groupby("ring")["ring_type"].first().reindex(ring_ids).map(_TYPE_PRIORITY).to_numpy()
    a, b = inter.row, inter.col
    loser = np.where(rtype[a] <= rtype[b], b, a)
    close = inter.data / size[loser] >= s.duplicate_share
    loser = loser[close & (rtype[a] != rtype[b])]
    return ring_ids[np.unique(loser)].to_numpy()


def _finish(dataset: Dataset, members: pd.DataFrame, info: pd.DataFrame, edges: pd.DataFrame,
            s: RingSettings) -> RingResult:
    # Local ring keys are per type: make them global, then give deterministic ids.
    members = members.copy()
    types = sorted(members["ring_type"].unique())
    offset = {}
    base = 0
    for t in types:
        offset[t] = base
        base += int(members.loc[members["ring_type"] == t, "ring"].max()) + 1
    members["ring"] = members["ring"] + members["ring_type"].map(offset)
    info = info.assign(ring=info["ring"] + info["ring_type"].map(offset))
    edges = edges.assign(ring=edges["ring"] + edges["ring_type"].map(offset))
    dropped = _duplicates(members, s)
    members = members[~members["ring"].isin(dropped)]
    info = info[~info["ring"].isin(dropped)]
    ids = _ring_keys(members)
    members["ring_id"] = members["ring"].map(ids)
    info["ring_id"] = info["ring"].map(ids)
    edges = edges.assign(ring_id=edges["ring"].map(ids))
    edges = edges[edges["ring_id"].notna()]
    labels = dataset.table("labels")
    pos = labels.loc[labels["label"] == 1, ["entity_type", "entity_id"]].assign(pos=1.0)
    m = members.merge(pos, on=["entity_type", "entity_id"], how="left")
    label_share = m.groupby("ring_id")["pos"].apply(lambda x: x.fillna(0).mean())
    size = members.groupby("ring_id").size()
    counts = members.groupby(["ring_id", "entity_type"]).size().unstack(fill_value=0)
    inner = edges[edges["source_type"].isin(["person", "employer", "clinic", "pharmacy", "agency"])
                  & edges["target_type"].isin(["person", "employer", "clinic", "pharmacy", "agency"])]
    pairs = inner.assign(a=inner["source_type"] + ":" + inner["source_id"],
                         b=inner["target_type"] + ":" + inner["target_id"])
    lo, hi = np.minimum(pairs["a"].to_numpy(object), pairs["b"].to_numpy(object)), \
        np.maximum(pairs["a"].to_numpy(object), pairs["b"].to_numpy(object))
    n_links = pd.DataFrame({"ring_id": pairs["ring_id"].to_numpy(), "lo": lo, "hi": hi}) \
        .drop_duplicates().groupby("ring_id").size()
    rings = info.set_index("ring_id")[["ring_type", "strength", "money_at_stake", "why"]]
    rings["size"] = size
    possible = np.maximum(rings["size"] * (rings["size"] - 1) / 2, 1)
    # Identity rings link through identifier nodes: their density is the link strength proxy.
    rings["density"] = (n_links.reindex(rings.index).fillna(0) / possible).clip(0, 1)
    ident = rings["ring_type"] == "identity"
    rings.loc[ident, "density"] = rings.loc[ident, "strength"]
    for t, name in (("person", "n_persons"), ("employer", "n_employers"), ("clinic", "n_clinics"),
                    ("pharmacy", "n_pharmacies"), ("agency", "n_agencies")):
        col = counts[t] if t in counts else pd.Series(0, index=counts.index)
        rings[name] = col.reindex(rings.index).fillna(0).astype(int)
    rings["label_share"] = label_share.reindex(rings.index).fillna(0.0)
    size_c = np.log1p(rings["size"]) / np.log1p(s.max_ring_size)
    money_c = 1 - np.exp(-rings["money_at_stake"] / s.money_scale)
    parts = (s.weight_density * rings["density"] + s.weight_size * size_c.clip(0, 1)
             + s.weight_money * money_c + s.weight_strength * rings["strength"])
    no_label_w = s.weight_density + s.weight_size + s.weight_money + s.weight_strength
    rings["ring_score_without_labels"] = (parts / max(no_label_w, 1e-9)).round(6)
    rings["ring_score"] = ((parts + s.weight_labels * rings["label_share"])
                           / max(no_label_w + s.weight_labels, 1e-9)).round(6)
    rings = rings.reset_index().sort_values(["ring_score", "ring_id"], ascending=[False, True],
                                            kind="mergesort").reset_index(drop=True)
    rings = rings[RING_COLUMNS]
    members = members.merge(rings[["ring_id", "ring_score"]], on="ring_id")
    members = members[MEMBER_COLUMNS].sort_values(["ring_id", "entity_type", "entity_id"],
                                                  kind="mergesort").reset_index(drop=True)
    edges = edges[EDGE_COLUMNS].sort_values(EDGE_COLUMNS[:6], kind="mergesort").reset_index(drop=True)
    return RingResult(members, rings, edges)


# ---------------------------------------------------------------------------------------------
# Evaluation and baseline


RING_PATTERNS = ("collusion", "fake_enrolment", "card_broker", "identity_ring")
FACILITY_PATTERNS = ("split_admission", "phantom_stay", "over_prescribing")  # ring type "facility"


def evaluate_rings(members: pd.DataFrame, truth: pd.DataFrame, min_jaccard: float = 0.5,
                   patterns: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Ring recall and precision against planted rings (a match is Jaccard >= `min_jaccard`).

    `patterns` limits the planted rings to those patterns (e.g. RING_PATTERNS); precision is
    always over every detected ring.
    """
    if patterns is not None:
        truth = truth[truth["pattern"].isin(patterns)]
    rid = truth["ring_id"].astype("str").str.strip()
    t = truth[truth["ring_id"].notna() & (rid != "") & (rid.str.lower() != "nan")]
    t = t.assign(ring_id=t["ring_id"].astype("str").str.strip())
    keys = pd.concat([t["entity_type"] + ":" + t["entity_id"],
                      members["entity_type"] + ":" + members["entity_id"]], ignore_index=True)
    codes, _ = pd.factorize(keys, sort=True)
    tc, mc = codes[: len(t)], codes[len(t):]
    planted, planted_ids = pd.factorize(t["ring_id"], sort=True)
    detected, detected_ids = pd.factorize(members["ring_id"].astype("str"), sort=True)
    n_ent = int(codes.max()) + 1 if len(codes) else 0
    tm = sp.csr_matrix((np.ones(len(tc)), (planted, tc)), shape=(len(planted_ids), n_ent))
    dm = sp.csr_matrix((np.ones(len(mc)), (detected, mc)), shape=(len(detected_ids), n_ent))
    tm.data[:] = 1.0
    dm.sum_duplicates()
    dm.data[:] = 1.0
    inter = (dm @ tm.T).tocoo()
    dsize = np.asarray(dm.sum(axis=1)).ravel()
    tsize = np.asarray(tm.sum(axis=1)).ravel()
    jac = inter.data / (dsize[inter.row] + tsize[inter.col] - inter.data)
    best_t = np.zeros(len(planted_ids))
    best_d = np.zeros(len(detected_ids))
    np.maximum.at(best_t, inter.col, jac)
    np.maximum.at(best_d, inter.row, jac)
    found = best_t >= min_jaccard
    pattern = t.groupby("ring_id")["pattern"].agg(lambda x: x.mode().iloc[0]).reindex(planted_ids)
    by_pattern = pd.Series(found, index=planted_ids).groupby(pattern.to_numpy()).mean()
    return {
        "recall": float(found.mean()) if len(found) else float("nan"),
        "precision": float((best_d >= min_jaccard).mean()) if len(best_d) else float("nan"),
        "n_planted": int(len(planted_ids)), "n_detected": int(len(detected_ids)),
        "n_found": int(found.sum()), "n_correct": int((best_d >= min_jaccard).sum()),
        "mean_best_jaccard": float(best_t.mean()) if len(best_t) else float("nan"),
        "recall_by_pattern": {str(k): float(v) for k, v in by_pattern.items()},
    }


def louvain_baseline(dataset: Dataset, settings: RingSettings | None = None) -> pd.DataFrame:
    """Plain baseline: modularity communities of the whole unweighted entity graph, no guards."""
    import igraph as ig
    import leidenalg

    s = settings or RingSettings()
    pairs = []

    def add(a_type: str, a: pd.Series, b_type: str, b: pd.Series) -> None:
        ok = a.notna().to_numpy() & b.notna().to_numpy()
        pairs.append(pd.DataFrame({"a": (a_type + ":" + a[ok].astype("str")).to_numpy(),
                                   "b": (b_type + ":" + b[ok].astype("str")).to_numpy()}))

    ids = _identifier_rows(dataset, IDENTIFIER_TYPES)
    add("x", ids["entity_type"] + ":" + ids["entity_id"], "id", ids["id_type"] + _SEP + ids["value"])
    for table, a, b in (("visits", "person", "clinic"), ("purchases", "person", "pharmacy"),
                        ("employment", "person", "employer"), ("contributions", "person", "employer"),
                        ("employment", "agency", "employer"), ("employment", "agency", "person")):
        df = dataset.table(table)
        add(a, df[f"{a}_id"], b, df[f"{b}_id"])
    links = dataset.table("agency_links")
    add("agency", links["agency_id"], "x", links["entity_type"] + ":" + links["entity_id"])
    e = pd.concat(pairs, ignore_index=True)
    e["a"] = e["a"].str.removeprefix("x:")
    e["b"] = e["b"].str.removeprefix("x:")
    e = e.drop_duplicates()
    codes, names = pd.factorize(pd.concat([e["a"], e["b"]], ignore_index=True), sort=True)
    n = len(e)
    g = ig.Graph(n=len(names), edges=np.column_stack([codes[:n], codes[n:]]))
    part = leidenalg.find_partition(g, leidenalg.ModularityVertexPartition, seed=s.seed)
    memb = np.asarray(part.membership)
    name = pd.Series(names)
    entity = ~name.str.startswith("id:").to_numpy()
    split = name[entity].str.split(":", n=1, expand=True)
    out = pd.DataFrame({"ring": memb[entity], "ring_type": "louvain",
                        "entity_type": split[0].to_numpy(), "entity_id": split[1].to_numpy()})
    sizes = out.groupby("ring")["ring"].transform("size")
    out = out[sizes >= s.min_ring_size]
    out = out.assign(ring_id="louvain-" + out["ring"].astype("str"), ring_score=np.nan)
    return out[MEMBER_COLUMNS].sort_values(["ring_id", "entity_type", "entity_id"]).reset_index(drop=True)
