"""Collusion rings: persons who repeatedly visit the same clinic and buy at the same pharmacy on
the same days.

Same-day (person, clinic, pharmacy, date) co-occurrences come from visits and purchases (a
purchase naming its prescribing clinic counts too when `prescription_is_visit`). A person is kept
for a clinic-pharmacy pair when they co-visit it on >= `min_covisit_days` days; two such persons
are linked when they co-visit it on the same >= `min_covisit_days` days and these are at least
`min_covisit_overlap` of the smaller one's co-visit days there. Patients of a busy hospital and the
pharmacy next door co-visit often but on scattered days, so they are not linked: volume alone
never makes a ring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.rings.common import Found, claimed_money
from features.rings.grouping import group_nodes
from graph.codes import ColumnCodes, unique_sorted
from graph.dataset import Dataset
from riskgraph.settings import RingSettings


def _dated(codes: ColumnCodes, table: str, columns: tuple[tuple[str, str], ...]) -> tuple[np.ndarray, ...]:
    """Per dated row of `table`: the codes of (column, kind) pairs, then the day number."""
    dated = codes.notna(table, "date")
    return (*(codes.codes(table, c, kind)[dated] for c, kind in columns), codes.days(table, "date")[dated])


def _covisits(dataset: Dataset, prescriptions: bool, codes: ColumnCodes) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """Distinct same-day (person, clinic, pharmacy, day) co-occurrences as integer codes."""
    visits = dataset.table("visits")
    purchases = dataset.table("purchases")
    if visits.empty and purchases["clinic_id"].isna().all():
        return None
    persons = pd.Index(codes.names("person"))
    clinics = pd.Index(codes.names("clinic"))
    pharmacies = pd.Index(codes.names("pharmacy"))
    dated = purchases["date"].notna().to_numpy()
    if not dated.any():
        return None
    if visits.empty:
        vp = vc = vd = np.zeros(0, dtype=np.int64)
    else:
        vp, vc, vd = _dated(codes, "visits", (("person_id", "person"), ("clinic_id", "clinic")))
    pp, pf, pd_ = _dated(codes, "purchases", (("person_id", "person"), ("pharmacy_id", "pharmacy")))
    day0 = min(vd.min() if len(vd) else pd_.min(), pd_.min())
    span = int(max(vd.max() if len(vd) else pd_.max(), pd_.max()) - day0 + 1)
    vk = vp.astype("int64") * span + (vd - day0)
    pk = pp.astype("int64") * span + (pd_ - day0)
    left = pd.DataFrame({"k": vk, "c": vc}).drop_duplicates()
    right = pd.DataFrame({"k": pk, "f": pf}).drop_duplicates()
    same_day = left.merge(right, on="k")
    frames = [same_day]
    rx = purchases["clinic_id"].notna().to_numpy()[dated] & prescriptions
    if rx.any():
        frames.append(
            pd.DataFrame({"k": pk[rx], "c": codes.codes("purchases", "clinic_id", "clinic")[dated][rx], "f": pf[rx]})
        )
    t = pd.concat(frames, ignore_index=True).drop_duplicates()
    t = pd.DataFrame(
        {
            "p": t["k"].to_numpy() // span,
            "c": t["c"].to_numpy(),
            "f": t["f"].to_numpy(),
            "d": t["k"].to_numpy() % span + day0,
        }
    )
    # Marginals for lift: distinct person-days at each clinic / pharmacy, and overall.
    marg = {
        "clinic_days": np.bincount(left["c"].to_numpy(), minlength=len(clinics)),
        "pharmacy_days": np.bincount(right["f"].to_numpy(), minlength=len(pharmacies)),
        "person_days": len(unique_sorted(np.concatenate([vk, pk]))),
    }
    return t, {"persons": persons, "clinics": clinics, "pharmacies": pharmacies, "codes": codes, **marg}


def collusion_rings(dataset: Dataset, s: RingSettings, codes: ColumnCodes) -> Found | None:
    got = _covisits(dataset, s.prescription_is_visit, codes)
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
    expected = ctx["clinic_days"][pc].astype(float) * ctx["pharmacy_days"][pf] / max(ctx["person_days"], 1)
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
    b = sp.csr_matrix((np.ones(len(ev), dtype=np.float32), (slot_k, ev)), shape=(len(slot_ids), event_size.size))
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
    nodes = unique_sorted(np.concatenate([proj["a"].to_numpy(), proj["b"].to_numpy()]))
    labels_local = group_nodes(
        len(nodes), np.searchsorted(nodes, proj["a"]), np.searchsorted(nodes, proj["b"]), proj["w"].to_numpy(), s
    )
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
    person_members = pd.DataFrame(
        {"ring": in_ring.to_numpy(), "entity_type": "person", "entity_id": persons[in_ring.index].to_numpy()}
    )
    pk = pair_keys[pw["pair"].to_numpy()]
    clinic_members = pd.DataFrame(
        {"ring": pw["ring"].to_numpy(), "entity_type": "clinic", "entity_id": clinics[pk // nf].to_numpy()}
    )
    pharmacy_members = pd.DataFrame(
        {"ring": pw["ring"].to_numpy(), "entity_type": "pharmacy", "entity_id": pharmacies[pk % nf].to_numpy()}
    )
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
    e1 = pd.DataFrame(
        {
            "ring": per["ring"].to_numpy(),
            "source_type": "person",
            "source_id": pid,
            "target_type": "clinic",
            "target_id": clinics[ppk // nf].to_numpy(),
            "relation": "covisit_days",
            "count": per["size"].to_numpy(float),
            "weight": 1.0,
        }
    )
    e2 = e1.assign(target_type="pharmacy", target_id=pharmacies[ppk % nf].to_numpy())
    pp = pd.DataFrame({"ring": ra[inside], "a": a_person[inside], "b": b_person[inside], "w": shared[inside]})
    pp = pp.groupby(["ring", "a", "b"], as_index=False)["w"].sum()
    e3 = pd.DataFrame(
        {
            "ring": pp["ring"].to_numpy(),
            "source_type": "person",
            "source_id": persons[pp["a"].to_numpy()].to_numpy(),
            "target_type": "person",
            "target_id": persons[pp["b"].to_numpy()].to_numpy(),
            "relation": "same_day_covisits",
            "count": pp["w"].to_numpy(),
            "weight": 1.0,
        }
    )
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
    info["why"] = [
        f"{n} persons repeatedly visit the same clinic and buy at the same pharmacy on "
        f"the same days (median {c:.0f} shared days each; the clinic-pharmacy pair has "
        f"{lf:.0f}x the same-day patients its sizes predict)"
        for n, c, lf in zip(
            n_p.to_numpy(),
            covisit.reindex(size.index).fillna(0).to_numpy(),
            ring_lift.reindex(size.index).fillna(0).to_numpy(),
        )
    ]
    return Found(members, info, edges)


def _collusion_money(
    dataset: Dataset, tr: pd.DataFrame, ctx: dict[str, Any], pair_keys: np.ndarray, nf: int
) -> pd.Series:
    """Claims of ring persons at ring clinics / pharmacies on their co-visit days."""
    if tr.empty:
        return pd.Series(dtype=float)
    days = tr.drop_duplicates(["ring", "p", "pair", "d"])
    pk = pair_keys[days["pair"].to_numpy()]
    key_c = pd.DataFrame(
        {"ring": days["ring"].to_numpy(), "p": days["p"].to_numpy(), "x": pk // nf, "d": days["d"].to_numpy()}
    ).drop_duplicates()
    key_f = key_c.assign(x=pk % nf).drop_duplicates()
    total = pd.Series(dtype=float)
    for table, col, kind, keys in (
        ("visits", "clinic_id", "clinic", key_c),
        ("purchases", "pharmacy_id", "pharmacy", key_f),
    ):
        df = dataset.table(table)
        if df.empty:
            continue
        p, x, d = _dated(ctx["codes"], table, (("person_id", "person"), (col, kind)))
        ev = pd.DataFrame({"p": p, "x": x, "d": d, "m": claimed_money(df[df["date"].notna()])})
        got = ev.merge(keys, on=["p", "x", "d"]).groupby("ring")["m"].sum()
        total = total.add(got, fill_value=0.0)
    return total
