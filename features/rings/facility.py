"""Facility rings: a clinic or pharmacy plus the persons whose rule hits concentrate there.

Facility rings detect nothing themselves: they read the hits of three rules (named in
`RingSettings`; thresholds live in the rule pack and the settings' rule overrides) and attribute
each hit to one facility:

- split_admission (`split_admission_rule`, default med_split_admission): a readmission whose
  previous stay was at the same clinic (facility: that clinic; readmissions at another clinic are
  attributed to none);
- phantom_stay (`phantom_stay_rule`, med_activity_during_stay): a visit or purchase during an
  inpatient stay (facility: the clinic of the stay; one hit per stay). An admission during
  another stay says that one of the two overlapping stays is false, not which: it is pinned on
  neither clinic (the other activity during either stay still counts);
- over_prescribing (`over_prescribing_rule`, med_overlapping_long_supply): a drug bought again
  while an earlier supply of more than 7 days still lasts (facility: the pharmacy of the refill).
  Regular 14/28-day refills never overlap and never count.

Per facility and kind of hit, the count of persons is tested against the population rate over
the facility's base (its inpatients or customers, leaving the facility out of the rate): a big
hospital with a few legitimate readmissions has a large expected count and is not a ring; a
person's hits of the kind must mostly be at that facility.

The rules' evidence holds the first `evidence_limit` records of each hit (20 by default): a
person with more hits than that is counted from those records (a warning says how many).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from features.rings.common import Found, claimed_money
from graph.codes import positions
from graph.dataset import Dataset
from riskgraph.settings import RingSettings

log = logging.getLogger("features.rings")

FACILITY_KINDS = {"split_admission": "clinic", "phantom_stay": "clinic", "over_prescribing": "pharmacy"}
_RECORD_COLUMNS = {  # evidence columns each kind reads
    "split_admission": ("visit_id", "clinic_id", "prev_clinic_id"),
    "phantom_stay": ("source", "record_id", "stay_visit_id", "stay_clinic_id"),
    "over_prescribing": ("purchase_id", "pharmacy_id"),
}
_WHAT = {
    "split_admission": "split admissions (same-diagnosis readmissions at the same clinic)",
    "phantom_stay": "visits or purchases during their inpatient stay",
    "over_prescribing": "refills of a drug while an earlier long supply still lasts",
}


def _rule_of(kind: str, s: RingSettings) -> str:
    return {
        "split_admission": s.split_admission_rule,
        "phantom_stay": s.phantom_stay_rule,
        "over_prescribing": s.over_prescribing_rule,
    }[kind]


def hit_records(hits: pd.DataFrame, rule_id: str) -> pd.DataFrame:
    """The evidence records of one rule's hits: one row per record, with the hit's `entity_id`.

    Loops over the rule's hits only to unpack their JSON (one parse for all of them).
    """
    h = hits[hits["rule_id"] == rule_id]
    if h.empty:
        return pd.DataFrame({"entity_id": pd.Series([], dtype="str")})
    parsed = json.loads("[" + ",".join(h["evidence"].astype("str")) + "]")
    records = [r for e in parsed for r in e["records"]]
    kept = np.array([len(e["records"]) for e in parsed], dtype=np.int64)
    total = np.array([int(e.get("n_records", len(e["records"]))) for e in parsed], dtype=np.int64)
    if (total > kept).any():
        log.warning(
            "facility rings: %d hit(s) of rule %s list only the first of their evidence records "
            "(%d of %d); the rest are not counted",
            int((total > kept).sum()),
            rule_id,
            int(kept.sum()),
            int(total.sum()),
        )
    out = pd.DataFrame.from_records(records) if records else pd.DataFrame(index=range(0))
    out.insert(0, "entity_id", np.repeat(h["entity_id"].astype("str").to_numpy(), kept))
    return out


def _money_of(table: pd.DataFrame, id_col: str, ids: pd.Series) -> np.ndarray:
    """Claimed money (amount when no claim) of the records with these ids (0 when unknown)."""
    t = table[table[id_col].isin(ids)].drop_duplicates(id_col)
    money = pd.Series(claimed_money(t), index=t[id_col].astype("str").to_numpy())
    return np.asarray(money.reindex(ids.astype("str").to_numpy()).fillna(0.0), dtype=np.float64)


def _facility_events(
    dataset: Dataset, hits: pd.DataFrame, s: RingSettings
) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """Rule hits tied to one facility: (kind, rule, f, p, m) rows over integer codes.

    Also returns the facility bases for the population rate: distinct inpatients per clinic and
    distinct customers per pharmacy.
    """
    persons = pd.Index(dataset.entity_ids("person"))
    clinics = pd.Index(dataset.entity_ids("clinic"))
    pharmacies = pd.Index(dataset.entity_ids("pharmacy"))
    visits = dataset.table("visits")
    purchases = dataset.table("purchases")
    v = visits[visits["date"].notna()]
    vp, vc = positions(persons, v["person_id"]), positions(clinics, v["clinic_id"])
    vkind = v["kind"].fillna("").astype("str").str.strip().str.lower().to_numpy()
    inpatient = (vkind == "inpatient") | (v["discharge_date"].notna().to_numpy() & (vkind != "outpatient"))
    frames = []
    for kind, ftype in FACILITY_KINDS.items():
        rule = _rule_of(kind, s)
        if not rule:
            continue
        r = hit_records(hits, rule)
        if r.empty:
            continue
        missing = [c for c in _RECORD_COLUMNS[kind] if c not in r.columns]
        if missing:
            log.warning("facility rings: the evidence of rule %s lacks %s; no %s rings", rule, ", ".join(missing), kind)
            continue
        if kind == "split_admission":
            r = r[r["clinic_id"].notna() & (r["clinic_id"] == r["prev_clinic_id"])]
            f, m = r["clinic_id"], _money_of(visits, "visit_id", r["visit_id"])
        elif kind == "phantom_stay":
            admission = (r["source"] == "visits").to_numpy() & r["record_id"].isin(v["visit_id"][inpatient]).to_numpy()
            r = r[~admission].drop_duplicates(["entity_id", "stay_visit_id"])
            f, m = r["stay_clinic_id"], _money_of(visits, "visit_id", r["stay_visit_id"])
        else:
            f, m = r["pharmacy_id"], _money_of(purchases, "purchase_id", r["purchase_id"])
        ev = pd.DataFrame(
            {
                "kind": kind,
                "rule": rule,
                "ftype": ftype,
                "f": positions(clinics if ftype == "clinic" else pharmacies, f.astype("str")),
                "p": positions(persons, r["entity_id"]),
                "m": m,
            }
        )
        frames.append(ev[(ev["f"] >= 0) & (ev["p"] >= 0)])
    frames = [f for f in frames if len(f)]
    if not frames:
        return None
    events = pd.concat(frames, ignore_index=True)
    # Bases: distinct inpatients per clinic; distinct customers per pharmacy.
    known = inpatient & (vp >= 0) & (vc >= 0)
    inp = pd.DataFrame({"p": vp[known], "f": vc[known]}).drop_duplicates()
    cust = pd.DataFrame(
        {"p": positions(persons, purchases["person_id"]), "f": positions(pharmacies, purchases["pharmacy_id"])}
    ).drop_duplicates()
    cust = cust[(cust["p"] >= 0) & (cust["f"] >= 0)]
    ctx = {
        "person": persons,
        "clinic": clinics,
        "pharmacy": pharmacies,
        "base": {
            "clinic": np.bincount(inp["f"].to_numpy(), minlength=len(clinics)),
            "pharmacy": np.bincount(cust["f"].to_numpy(), minlength=len(pharmacies)),
        },
    }
    return events, ctx


def facility_rings(dataset: Dataset, hits: pd.DataFrame | None, s: RingSettings) -> Found | None:
    """A clinic or pharmacy plus the persons whose rule hits concentrate there.

    Per facility and kind of hit, the persons with such hits there (and at least
    `facility_min_concentration` of their hits of that kind there, so a lone over-supplied
    customer shopping around is not pinned on one pharmacy; for over-prescribing at least
    `oversupply_min_hits` hits there) are compared with the population rate of the same kind over
    the same base (inpatients of a clinic, customers of a pharmacy), leaving the facility itself
    out of the rate. A facility is a ring when the count reaches `facility_min_persons`, is
    `facility_min_lift` times the expected count, and its Poisson tail is at most
    `facility_alpha` / (facilities of its type): a big hospital with a few legitimate
    readmissions has a large base and so a large expected count, and is not a ring.
    """
    from scipy.stats import poisson

    if hits is None or hits.empty:
        return None
    got = _facility_events(dataset, hits, s)
    if got is None:
        return None
    ev, ctx = got
    per = ev.groupby(["kind", "rule", "ftype", "f", "p"], as_index=False).agg(n=("m", "size"), m=("m", "sum"))
    per["conc"] = per["n"] / per.groupby(["kind", "p"])["n"].transform("sum")
    per = per[
        (per["conc"] >= s.facility_min_concentration)
        & ((per["kind"] != "over_prescribing") | (per["n"] >= s.oversupply_min_hits))
    ]
    obs = per.groupby(["kind", "rule", "ftype", "f"], as_index=False).agg(obs=("p", "size"))
    if obs.empty:
        return None
    total = obs.groupby("kind")["obs"].transform("sum").to_numpy(float)
    base = np.zeros(len(obs))
    base_total = np.zeros(len(obs))
    for ft in ("clinic", "pharmacy"):
        sel = (obs["ftype"] == ft).to_numpy()
        base[sel] = ctx["base"][ft][obs.loc[sel, "f"].to_numpy()]
        base_total[sel] = ctx["base"][ft].sum()
    base = np.maximum(base, obs["obs"].to_numpy(float))  # a base never below its own hits
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
        new = (
            (count >= s.facility_min_persons) & (lift >= s.facility_min_lift) & (pvalue <= s.facility_alpha / n_tested)
        )
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
    members = (
        pd.concat(
            [
                pd.DataFrame(
                    {
                        "ring": fac["ring"].to_numpy(),
                        "entity_type": fac["ftype"].to_numpy(),
                        "entity_id": fac["fid"].to_numpy(),
                    }
                ),
                pd.DataFrame({"ring": mp["ring"].to_numpy(), "entity_type": "person", "entity_id": pid}),
            ],
            ignore_index=True,
        )
        .drop_duplicates()
        .assign(ring_type="facility")
    )
    # Evidence: person -> facility edges, one per kind of hit, counted in hits.
    ek = per.merge(fac, on=["ftype", "f"])
    ek = ek.merge(mp[["ring", "p"]], on=["ring", "p"])
    edges = pd.DataFrame(
        {
            "ring": ek["ring"].to_numpy(),
            "source_type": "person",
            "source_id": ctx["person"][ek["p"].to_numpy()].to_numpy(),
            "target_type": ek["ftype"].to_numpy(),
            "target_id": ek["fid"].to_numpy(),
            "relation": ek["kind"].to_numpy(),
            "count": ek["n"].to_numpy(float),
            "weight": 1.0,
        }
    )
    rk = ring_kinds.merge(fac, on=["ftype", "f"])
    best = rk.sort_values(["ring", "pvalue"], kind="mergesort").drop_duplicates("ring").set_index("ring")
    money = mp.groupby("ring")["m"].sum()
    n_p = mp.groupby("ring").size()
    info = pd.DataFrame({"ring": fac["ring"].to_numpy(), "ring_type": "facility"})
    pv = best["pvalue"].reindex(info["ring"]).to_numpy()
    info["strength"] = np.clip(-np.log10(np.maximum(pv, 1e-300)) / 10.0, 0, 1)
    info["money_at_stake"] = money.reindex(info["ring"]).fillna(0.0).to_numpy()
    info["why"] = [
        f"{int(n)} of the {ft}'s {'inpatients' if ft == 'clinic' else 'customers'} have "
        f"{_WHAT[k]} there (rule {rule}; {sh:.1%} of {int(b)}; {lf:.0f}x the {ex:.2f} expected at "
        f"the population rate)"
        for n, ft, k, rule, sh, b, lf, ex in zip(
            n_p.reindex(info["ring"]).fillna(0).to_numpy(),
            fac["ftype"],
            best["kind"].reindex(info["ring"]),
            best["rule"].reindex(info["ring"]),
            best["share"].reindex(info["ring"]),
            (best["obs"] / best["share"]).reindex(info["ring"]),
            best["lift"].reindex(info["ring"]),
            best["expected"].reindex(info["ring"]),
        )
    ]
    return Found(members, info, edges)
