"""Identity rings: persons and employers sharing a phone or bank account (not a household).

Identifier values shared by more than `identifier_max_degree` entities (a hospital's address, a
call-centre phone) are dropped as too common; two entities are linked when the weights of the
identifiers they share reach `identity_min_link` (an address alone is weaker than a phone or bank
account).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.rings.common import SEP, Found
from features.rings.grouping import group_nodes
from graph.contract import IDENTIFIER_TYPES
from graph.dataset import Dataset
from riskgraph.server_keys import Tokens
from riskgraph.settings import RingSettings


def identifier_rows(dataset: Dataset, types: tuple[str, ...]) -> pd.DataFrame:
    """(entity_type, entity_id, id_type, value) for every shared identifier of persons/employers."""
    frames = []
    for etype, table in (("person", "persons"), ("employer", "employers")):
        df = dataset.table(table)
        for col in types:
            if col not in df.columns:
                continue
            sub = df[[f"{etype}_id", col]].dropna()
            value = sub[col].astype("str").str.strip().str.casefold()
            frames.append(
                pd.DataFrame(
                    {
                        "entity_type": etype,
                        "entity_id": sub[f"{etype}_id"].astype("str").to_numpy(),
                        "id_type": col,
                        "value": value.to_numpy(),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["entity_type", "entity_id", "id_type", "value"], dtype="str")
    out = pd.concat(frames, ignore_index=True)
    return out[out["value"] != ""].drop_duplicates()


def identifier_label(id_type: pd.Series, value: pd.Series, tokens: Tokens | None = None) -> pd.Series:
    """A stable pseudonym for an identifier value, so evidence carries no personal data:
    `phone#tok-<keyed token of the value>` (riskgraph.server_keys.Tokens, the installation's masking
    key: the API's token of the same value). Without `tokens` (tests, notebooks) an unkeyed digest
    of the type and value, `phone#<sha1 prefix>`, which is guessable: never written by a run."""
    if tokens is not None:
        return pd.Series(
            [f"{t}#{tokens(x)}" for t, x in zip(id_type.to_numpy(), value.to_numpy())],
            index=id_type.index,
        )
    text = (id_type + SEP + value).to_numpy()
    return pd.Series(
        [f"{t}#{hashlib.sha1(x.encode()).hexdigest()[:10]}" for t, x in zip(id_type.to_numpy(), text)],
        index=id_type.index,
    )


def identity_links(
    dataset: Dataset, s: RingSettings
) -> tuple[pd.DataFrame, pd.Index, np.ndarray, np.ndarray, np.ndarray] | None:
    """Entity pairs linked by shared phones / bank accounts, households excepted.

    Returns the identifier rows used, the node names ("type<SEP>id"), and link arrays
    (src, dst, weight) over node codes. Identifier values held by more than
    `identifier_max_degree` entities are too common to link anyone. Entities that also share an
    address are a household (an elder using a relative's phone, a couple's joint account) and are
    not linked; an address alone never links.
    """
    rows = identifier_rows(dataset, IDENTIFIER_TYPES)
    if rows.empty:
        return None
    weights = {"phone": s.phone_weight, "bank_account": s.bank_account_weight, "address": s.address_weight}
    node, node_names = pd.factorize(rows["entity_type"] + SEP + rows["entity_id"], sort=True)
    ident, _ = pd.factorize(rows["id_type"] + SEP + rows["value"], sort=True)
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


def identity_rings(dataset: Dataset, s: RingSettings, tokens: Tokens | None = None) -> Found | None:
    got = identity_links(dataset, s)
    if got is None:
        return None
    rows, node_names, src, dst, lw = got
    labels = group_nodes(len(node_names), src, dst, lw, s, min_size=s.identity_min_size)
    if (labels < 0).all():
        return None
    in_ring = np.flatnonzero(labels >= 0)
    nodes = pd.Series(node_names.to_numpy()[in_ring], dtype="str").str.split(SEP, n=1, expand=True)
    members = pd.DataFrame(
        {
            "ring": labels[in_ring],
            "ring_type": "identity",
            "entity_type": nodes[0].to_numpy(),
            "entity_id": nodes[1].to_numpy(),
        }
    )
    # Evidence: member -> identifier edges of identifiers shared inside the ring.
    er = rows.assign(ring=labels[node_names.get_indexer(rows["entity_type"] + SEP + rows["entity_id"])])
    er = er[er["ring"] >= 0]
    per = er.groupby(["ring", "id_type", "value"])["entity_id"].transform("size")
    er = er[per >= 2]
    weights = {"phone": s.phone_weight, "bank_account": s.bank_account_weight}
    edges = pd.DataFrame(
        {
            "ring": er["ring"].to_numpy(),
            "source_type": er["entity_type"].to_numpy(),
            "source_id": er["entity_id"].to_numpy(),
            "target_type": er["id_type"].to_numpy(),
            "target_id": identifier_label(er["id_type"], er["value"], tokens).to_numpy(),
            "relation": ("has_" + er["id_type"]).to_numpy(),
            "count": 1.0,
            "weight": er["id_type"].map(weights).to_numpy(),
        }
    )
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
    info["why"] = [
        f"{n} persons/employers at different addresses share {c} phone or bank account value(s) ({k})"
        for n, c, k in zip(
            size.to_numpy(), counts.reindex(size.index).fillna(0).astype(int), kinds.reindex(size.index).fillna("")
        )
    ]
    return Found(members, info, edges)
