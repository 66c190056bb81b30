"""Card-broker rings: many cards (persons) tied to one phone or bank account, buying together at
the same pharmacies on the same days, their purchases spread over many pharmacies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.rings.common import SEP, Found, claimed_money
from features.rings.grouping import group_nodes
from features.rings.identity import identifier_label, identity_links
from graph.dataset import Dataset
from riskgraph.server_keys import Tokens
from riskgraph.settings import RingSettings


def broker_rings(dataset: Dataset, s: RingSettings, tokens: Tokens | None = None) -> Found | None:
    purchases = dataset.table("purchases")
    got = identity_links(dataset, s)
    if purchases.empty or got is None:
        return None
    rows, node_names, src, dst, lw, _ = got
    person_nodes = node_names.str.startswith("person" + SEP)
    keep_link = person_nodes[src] & person_nodes[dst]
    src, dst, lw = src[keep_link], dst[keep_link], lw[keep_link]
    labels = group_nodes(len(node_names), src, dst, lw, s, min_size=s.broker_min_cards)
    if (labels < 0).all():
        return None
    in_ring = np.flatnonzero(labels >= 0)
    ring_of = pd.DataFrame({"person_id": node_names[in_ring].str.slice(len("person" + SEP)), "ring": labels[in_ring]})
    pur = purchases.assign(m=claimed_money(purchases)).merge(ring_of, on="person_id")
    # Cards of one group buying at one pharmacy on one day ("several cards on one day").
    together = pur[pur["date"].notna()].groupby(["ring", "pharmacy_id", "date"])["person_id"].nunique()
    together = together[together >= 2].groupby("ring").size()
    spread = pur.groupby("ring")["pharmacy_id"].nunique()
    stats = pd.DataFrame({"together": together, "spread": spread}).fillna(0)
    good = stats[
        (stats["together"] >= s.broker_min_codays) & (stats["spread"] >= s.broker_min_pharmacies)
    ].index.to_numpy()
    if not len(good):
        return None
    ring_of = ring_of[ring_of["ring"].isin(good)]
    members = pd.DataFrame(
        {
            "ring": ring_of["ring"].to_numpy(),
            "ring_type": "broker",
            "entity_type": "person",
            "entity_id": ring_of["person_id"].to_numpy(),
        }
    )
    er = rows.merge(ring_of.rename(columns={"person_id": "entity_id"}), on="entity_id")
    er = er[er["entity_type"] == "person"]
    er = er[er.groupby(["ring", "id_type", "value"])["entity_id"].transform("size") >= 2]
    e1 = pd.DataFrame(
        {
            "ring": er["ring"].to_numpy(),
            "source_type": "person",
            "source_id": er["entity_id"].to_numpy(),
            "target_type": er["id_type"].to_numpy(),
            "target_id": identifier_label(er["id_type"], er["value"], tokens).to_numpy(),
            "relation": ("has_" + er["id_type"]).to_numpy(),
            "count": 1.0,
            "weight": 1.0,
        }
    )
    bought = pur[pur["ring"].isin(good)].groupby(["ring", "person_id", "pharmacy_id"], as_index=False).size()
    e2 = pd.DataFrame(
        {
            "ring": bought["ring"].to_numpy(),
            "source_type": "person",
            "source_id": bought["person_id"].to_numpy(),
            "target_type": "pharmacy",
            "target_id": bought["pharmacy_id"].to_numpy(),
            "relation": "purchases",
            "count": bought["size"].to_numpy(float),
            "weight": 1.0,
        }
    )
    edges = pd.concat([e1, e2], ignore_index=True)
    money = pur[pur["ring"].isin(good)].groupby("ring")["m"].sum()
    size = members.groupby("ring").size()
    st = stats.reindex(size.index)
    info = pd.DataFrame({"ring": size.index, "ring_type": "broker"})
    info["strength"] = np.clip(st["spread"].to_numpy() / (2.0 * s.broker_min_pharmacies), 0, 1)
    info["money_at_stake"] = money.reindex(size.index).fillna(0.0).to_numpy()
    info["why"] = [
        f"{n} cards tied to one phone or bank account buy across {int(k)} pharmacies, "
        f"several cards together on {int(t)} pharmacy-days"
        for n, k, t in zip(size.to_numpy(), st["spread"].to_numpy(), st["together"].to_numpy())
    ]
    return Found(members, info, edges)
