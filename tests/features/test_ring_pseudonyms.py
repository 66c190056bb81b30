"""Ring pseudonyms of shared identifiers are keyed (issue 19, item 3): `phone#tok-...` under the
installation's masking key, the token the API gives the same value, never a guessable digest."""

from __future__ import annotations

import pandas as pd

from api.ring_evidence import identifier_values
from features.rings import detect_rings
from features.rings.identity import identifier_label
from graph.contract import IDENTIFIER_TYPES
from graph.dataset import dataset_from_frames
from graph.store import EntityRef, Subgraph
from riskgraph.server_keys import Tokens

IDENTITY = [f"P{i:03d}" for i in range(10, 14)]


def _frames() -> dict[str, pd.DataFrame]:
    """Persons with their own phones, bank accounts and addresses, but four sharing one phone and
    one bank account (an identity ring)."""
    pid = [f"P{i:03d}" for i in range(40)]
    phone = [f"139{i:05d}" for i in range(40)]
    bank = [f"6222{i:06d}" for i in range(40)]
    for i in range(10, 14):
        phone[i], bank[i] = "13900000999", "62220000999"
    address = [f"{i} side street" for i in range(40)]
    return {"persons": pd.DataFrame({"person_id": pid, "phone": phone, "bank_account": bank, "address": address})}


def test_identity_ring_evidence_names_identifiers_by_keyed_tokens() -> None:
    tokens, other = Tokens(b"k" * 32), Tokens(b"o" * 32)
    dataset = dataset_from_frames(_frames())
    keyed = detect_rings(dataset, tokens=tokens)
    plain = detect_rings(dataset)
    assert set(keyed.members["ring_id"]) == set(plain.members["ring_id"])  # the key changes no ring
    ids = keyed.edges[keyed.edges["target_type"].isin(IDENTIFIER_TYPES)]
    assert len(ids) and ids["target_id"].str.match(r"^(phone|bank_account|address)#tok-[0-9a-f]{20}$").all()
    assert {"phone#" + tokens("13900000999"), "bank_account#" + tokens("62220000999")} <= set(ids["target_id"])
    assert not ids["target_id"].str.contains("13900000999|62220000999").any()
    again = detect_rings(dataset, tokens=other)  # another key, other pseudonyms
    assert set(again.edges["target_id"]).isdisjoint(ids["target_id"])


def test_the_api_maps_keyed_pseudonyms_back_with_the_same_tokens() -> None:
    tokens = Tokens(b"k" * 32)
    label = identifier_label(pd.Series(["phone"]), pd.Series(["13900000999"]), tokens).iloc[0]
    sub = Subgraph(nodes={EntityRef("person", p): {"phone": "13900000999"} for p in IDENTITY}, edges=[])
    assert identifier_values(sub, {("phone", label)}, tokens) == {("phone", label): "13900000999"}
    assert identifier_values(sub, {("phone", label)}, Tokens(b"o" * 32)) == {}
