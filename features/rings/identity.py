"""Identity rings: persons and employers sharing a phone or bank account (not a household).

Identifier values shared by more than `identifier_max_degree` entities (a hospital's address, a
call-centre phone) are dropped as too common; two entities are linked when the weights of the
identifiers they share reach `identity_min_link` (an address alone is weaker than a phone or bank
account).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from features.rings.common import SEP, Found
from features.rings.grouping import group_nodes
from graph.contract import IDENTIFIER_TYPES
from graph.dataset import Dataset
from riskgraph.server_keys import Tokens
from riskgraph.settings import RingSettings


def identifier_rows(dataset: Dataset, types: tuple[str, ...]) -> pd.DataFrame:
    """(entity_type, entity_id, id_type, value) for every shared identifier of persons/employers."""
    return _coded_identifier_rows(dataset, types)[0]


def _coded_identifier_rows(
    dataset: Dataset, types: tuple[str, ...]
) -> tuple[pd.DataFrame, pd.Index, np.ndarray, np.ndarray, int]:
    """`identifier_rows` (values stripped and case-folded, empty ones and repeats dropped), with
    each row's node code into the node names ("type<SEP>id", sorted) and identifier code (by
    type, then value, sorted), and the number of identifiers. Codes are taken per entity type
    and per identifier type, so no "type<SEP>value" text is built for millions of rows."""
    parts = []  # (entity type, column, ids, values, positions kept of the part's non-null rows, its length)
    for etype, table in (("person", "persons"), ("employer", "employers")):
        df = dataset.table(table)
        for col in types:
            if col not in df.columns:
                continue
            sub = df[[f"{etype}_id", col]].dropna()
            value = sub[col].astype("str").str.strip().str.casefold()
            keep = (value != "").to_numpy()
            ids = sub[f"{etype}_id"].astype("str")[keep].reset_index(drop=True)
            parts.append((etype, col, ids, value[keep].reset_index(drop=True), np.flatnonzero(keep), len(sub)))
    columns = ["entity_type", "entity_id", "id_type", "value"]
    if not parts:
        return pd.DataFrame(columns=columns, dtype="str"), pd.Index([], dtype=object), *(np.zeros(0, np.int64),) * 2, 0
    # node codes: employers before persons ("employer" < "person"), each type's ids sorted
    node, node_uniques = _codes_by_group(parts, group=0, text=2)
    names = [(etype + SEP) + np.asarray(u, dtype=object) for etype, u in node_uniques]  # object: fast lookups
    # identifier codes: by type name, then value
    ident, ident_uniques = _codes_by_group(parts, group=1, text=3)
    n_ident = sum(len(u) for _, u in ident_uniques)
    node_all, ident_all = np.concatenate(node), np.concatenate(ident)
    first = ~pd.Series(node_all * max(n_ident, 1) + ident_all).duplicated().to_numpy()  # drop_duplicates
    sizes = [len(p[4]) for p in parts]
    # index labels as identifier_rows always had them: positions in the concat of all parts
    starts = np.cumsum([0] + [p[5] for p in parts])
    index = np.concatenate([starts[i] + p[4] for i, p in enumerate(parts)])
    part_of = np.repeat(np.arange(len(parts), dtype=np.int32), sizes)

    def constant(i: int) -> pd.Series:  # each part's entity or identifier type, as Arrow dictionary text
        words = pa.DictionaryArray.from_arrays(pa.array(part_of), pa.array([p[i] for p in parts]))
        return pd.Series(words.cast(pa.large_string()), dtype="str", index=index)

    rows = pd.DataFrame(
        {
            "entity_type": constant(0),
            "entity_id": pd.concat([p[2] for p in parts], ignore_index=True).set_axis(index),
            "id_type": constant(1),
            "value": pd.concat([p[3] for p in parts], ignore_index=True).set_axis(index),
        }
    )
    return rows[first], pd.Index(np.concatenate(names), dtype=object), node_all[first], ident_all[first], n_ident


def _codes_by_group(parts: list[Any], group: int, text: int) -> tuple[list[np.ndarray], list[tuple[str, Any]]]:
    """Codes of each part's texts (`parts[i][text]`) numbered across groups (`parts[i][group]`,
    in sorted order), each group's distinct texts sorted; and each group's distinct texts."""
    codes_of: list[np.ndarray] = [np.zeros(0, np.int64)] * len(parts)
    uniques_of, offset = [], 0
    for name in sorted({p[group] for p in parts}):
        mine = [i for i, p in enumerate(parts) if p[group] == name]
        codes, uniques = pd.factorize(pd.concat([parts[i][text] for i in mine], ignore_index=True), sort=True)
        bounds = np.cumsum([0] + [len(parts[i][text]) for i in mine])
        for k, i in enumerate(mine):
            codes_of[i] = codes[bounds[k] : bounds[k + 1]].astype(np.int64) + offset
        uniques_of.append((name, uniques))
        offset += len(uniques)
    return codes_of, uniques_of


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
) -> tuple[pd.DataFrame, pd.Index, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Entity pairs linked by shared phones / bank accounts, households excepted.

    Returns the identifier rows used, the node names ("type<SEP>id"), link arrays
    (src, dst, weight) over node codes, and each row's node code. Identifier values held by more than
    `identifier_max_degree` entities are too common to link anyone. Entities that also share an
    address are a household (an elder using a relative's phone, a couple's joint account) and are
    not linked; an address alone never links.
    """
    rows, node_names, node, ident, n_ident = _coded_identifier_rows(dataset, IDENTIFIER_TYPES)
    if rows.empty:
        return None
    weights = {"phone": s.phone_weight, "bank_account": s.bank_account_weight, "address": s.address_weight}
    degree = np.bincount(ident, minlength=n_ident)
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
    return rows[strong], node_names, shared.row[link], shared.col[link], shared.data[link], node[strong]


def identity_rings(dataset: Dataset, s: RingSettings, tokens: Tokens | None = None) -> Found | None:
    got = identity_links(dataset, s)
    if got is None:
        return None
    rows, node_names, src, dst, lw, row_node = got
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
    er = rows.assign(ring=labels[row_node])
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
