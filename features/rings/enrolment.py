"""Fake-enrolment rings: agency -> employers (agency_links or employment.agency_id) -> persons,
where most of an employer's enrolees have short contribution spells or claim benefits soon after
enrolling ("shell" employers), and the agency runs several shells."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.rings.common import SEP, Found
from features.rings.grouping import group_nodes
from graph.codes import MONTH_NA, month_numbers, parse_months
from graph.dataset import Dataset
from riskgraph.settings import RingSettings


def enrolment_rings(dataset: Dataset, s: RingSettings) -> Found | None:
    emp = dataset.table("employment")
    links = dataset.table("agency_links")
    contrib = dataset.table("contributions")
    if emp.empty and contrib.empty:
        return None
    agency_employer = pd.concat(
        [
            links.loc[links["entity_type"] == "employer", ["agency_id", "entity_id"]].rename(
                columns={"entity_id": "employer_id"}
            ),
            emp.loc[emp["agency_id"].notna(), ["agency_id", "employer_id"]],
        ],
        ignore_index=True,
    ).drop_duplicates()
    if agency_employer.empty:
        return None
    # Spells per (employer, person): months of contributions, else employment duration.
    spells = pd.concat(
        [emp[["employer_id", "person_id"]], contrib[["employer_id", "person_id"]]], ignore_index=True
    ).drop_duplicates()
    cm = contrib.assign(mi=parse_months(contrib["month"]))
    cstat = cm.groupby(["employer_id", "person_id"]).agg(first=("mi", "min"), last=("mi", "max"))
    est = emp.assign(s=month_numbers(emp["start_date"]), e=month_numbers(emp["end_date"]))
    est = est.assign(e=est["e"].where(emp["end_date"].notna(), np.iinfo(np.int64).max))
    est = est.groupby(["employer_id", "person_id"]).agg(start=("s", "min"), end=("e", "max"))
    spells = spells.join(cstat, on=["employer_id", "person_id"]).join(est, on=["employer_id", "person_id"])
    # Spell start and end: employment dates when known, else the contribution months. A spell
    # still running (no end date, or contributions up to the last month on file) is not short.
    last_month = int(cm["mi"].max()) if len(cm) else MONTH_NA
    start = spells["start"].where(spells["start"] > MONTH_NA, spells["first"]).where(lambda x: x > MONTH_NA)
    end = spells["end"].where(spells["end"].notna() & (spells["start"] > MONTH_NA), spells["last"])
    ended = end.notna() & (end < np.iinfo(np.int64).max) & ~(spells["end"].isna() & (spells["last"] >= last_month))
    length = end.where(ended) - start + 1
    short = (ended & (length <= s.short_spell_months)).fillna(False)
    ben = dataset.table("benefits")
    first_claim = pd.Series(parse_months(ben["month"]), index=ben.index).groupby(ben["person_id"].to_numpy()).min()
    claim = spells["person_id"].map(first_claim)
    early = ((claim - start) <= s.early_claim_months) & ((claim - start) >= 0)
    spells["suspicious"] = (short | early.fillna(False)).to_numpy()
    spells["early"] = early.fillna(False).to_numpy()
    spells["short"] = short.to_numpy()
    per_emp = spells.groupby("employer_id").agg(enrolees=("person_id", "nunique"), suspicious=("suspicious", "sum"))
    shell = per_emp[
        (per_emp["suspicious"] >= s.shell_min_enrolees)
        & (per_emp["suspicious"] / per_emp["enrolees"] >= s.shell_min_share)
    ]
    ae = agency_employer[agency_employer["employer_id"].isin(shell.index)]
    n_shells = ae.groupby("agency_id")["employer_id"].nunique()
    agencies = n_shells[n_shells >= s.enrolment_min_shells].index
    ae = ae[ae["agency_id"].isin(agencies)]
    if ae.empty:
        return None
    # An employer tied to several qualifying agencies goes to the one with the most shells.
    ae = ae.assign(n=ae["agency_id"].map(n_shells)).sort_values(
        ["employer_id", "n", "agency_id"], ascending=[True, False, True], kind="mergesort"
    )
    ae = ae.drop_duplicates("employer_id")[["agency_id", "employer_id"]]
    sus = spells[spells["suspicious"] & spells["employer_id"].isin(ae["employer_id"])]
    ep = sus.merge(ae, on="employer_id")[["agency_id", "employer_id", "person_id", "early", "short"]]
    # Graph over agency, employer and person nodes; grouped like every other ring type.
    keys = pd.concat(
        [
            ("agency" + SEP + ae["agency_id"]),
            ("employer" + SEP + ae["employer_id"]),
            ("person" + SEP + ep["person_id"]),
        ],
        ignore_index=True,
    )
    names = pd.Index(np.unique(keys.to_numpy().astype(str)))
    src = np.concatenate(
        [names.get_indexer("agency" + SEP + ae["agency_id"]), names.get_indexer("employer" + SEP + ep["employer_id"])]
    )
    dst = np.concatenate(
        [names.get_indexer("employer" + SEP + ae["employer_id"]), names.get_indexer("person" + SEP + ep["person_id"])]
    )
    # Star-shaped rings are sparse by nature: only the size cap triggers a split here.
    star = s.model_copy(update={"min_density": 0.0})
    labels = group_nodes(len(names), src, dst, np.ones(len(src)), star)
    nodes = pd.Series(names).str.split(SEP, n=1, expand=True)
    in_ring = np.flatnonzero(labels >= 0)
    if not len(in_ring):
        return None
    members = pd.DataFrame(
        {
            "ring": labels[in_ring],
            "ring_type": "enrolment",
            "entity_type": nodes[0].to_numpy()[in_ring],
            "entity_id": nodes[1].to_numpy()[in_ring],
        }
    )
    ring_of = pd.Series(labels, index=names)
    e1 = pd.DataFrame(
        {
            "ring": ring_of.reindex("agency" + SEP + ae["agency_id"]).to_numpy(),
            "source_type": "agency",
            "source_id": ae["agency_id"].to_numpy(),
            "target_type": "employer",
            "target_id": ae["employer_id"].to_numpy(),
            "relation": "agency_employer",
            "count": 1.0,
            "weight": 1.0,
        }
    )
    e2 = pd.DataFrame(
        {
            "ring": ring_of.reindex("person" + SEP + ep["person_id"]).to_numpy(),
            "source_type": "employer",
            "source_id": ep["employer_id"].to_numpy(),
            "target_type": "person",
            "target_id": ep["person_id"].to_numpy(),
            "relation": np.where(ep["early"], "early_claim", "short_spell"),
            "count": 1.0,
            "weight": 1.0,
        }
    )
    edges = pd.concat([e1, e2], ignore_index=True)
    edges = edges[edges["ring"] >= 0]
    # Money at stake: benefits drawn by ring persons.
    pm = members[members["entity_type"] == "person"]
    money = ben.merge(pm.rename(columns={"entity_id": "person_id"}), on="person_id").groupby("ring")["amount"].sum()
    size = members.groupby("ring").size()
    counts = members.groupby(["ring", "entity_type"]).size().unstack(fill_value=0)
    n_emp = counts.get("employer", pd.Series(0, index=counts.index)).reindex(size.index).fillna(0)
    n_per = counts.get("person", pd.Series(0, index=counts.index)).reindex(size.index).fillna(0)
    early_share = (
        edges[edges["relation"] != "agency_employer"]
        .assign(e=lambda x: x["relation"] == "early_claim")
        .groupby("ring")["e"]
        .mean()
    )
    info = pd.DataFrame({"ring": size.index, "ring_type": "enrolment"})
    info["strength"] = np.clip(n_emp.to_numpy() / (2.0 * s.enrolment_min_shells), 0, 1) * 0.5 + 0.5
    info["money_at_stake"] = money.reindex(size.index).fillna(0.0).to_numpy()
    info["why"] = [
        f"one agency placed {int(p)} persons into {int(e)} employers where most enrolees "
        f"have short contribution spells or claim benefits soon after enrolling "
        f"({es:.0%} claimed early)"
        for p, e, es in zip(n_per.to_numpy(), n_emp.to_numpy(), early_share.reindex(size.index).fillna(0).to_numpy())
    ]
    return Found(members, info, edges)
